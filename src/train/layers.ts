/**
 * hep-ml's own tfjs layers:
 *
 *  - `FastGRU`: Keras `Masking(0.0)` + `GRU(units, reset_after=True, return_sequences=False)` as one layer,
 *    computed by the fused GRU op (src/train/gru: C → WebAssembly SIMD, or the JS fallback) and wired into
 *    tfjs' autodiff with `tf.customGrad`. Keras weight layout: kernel [F, 3U], recurrent_kernel [U, 3U],
 *    bias [2, 3U], gates z, r, h. No gradient flows to the input (the input is always data).
 *  - `SeededDropout`: Keras `Dropout(rate)` whose masks are reproducible: the k-th training call draws its
 *    mask from seed (seed, k). tfjs' own Dropout with a seed draws the *same* mask on every call, and
 *    without one it is not reproducible. The call counter is part of a checkpoint, so a resumed run draws
 *    the masks an uninterrupted run would have drawn.
 *
 * Both are registered with tfjs' serialization, so saved models load with tf.loadLayersModel.
 */
import * as tf from '@tensorflow/tfjs';
import { gruFactory, type GruOp } from './gru/index.js';

type Tensor = tf.Tensor;
type Kwargs = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------
// The GRU op instances

let makeOp: (() => GruOp<Float32Array>) | undefined;
let opKind: 'wasm' | 'js' | undefined;
let opNote: string | undefined;

/**
 * Prepares the fused GRU op (once per process; 'wasm' unless prefer is 'js' or HEPML_GRU_KERNEL=js). Must be
 * awaited before a FastGRU layer runs; buildModel/loadModel do it. Returns the kernel kind and, when wasm
 * was wanted but not used, why.
 */
export async function prepareGru(prefer?: 'wasm' | 'js'): Promise<{ kind: 'wasm' | 'js'; note?: string }> {
  const want = prefer ?? (process.env.HEPML_GRU_KERNEL === 'js' ? 'js' : 'wasm');
  if (!makeOp || opKind !== want) {
    let note: string | undefined;
    const f = await gruFactory({ prefer: want, onFallback: (r) => (note = r) });
    makeOp = f.make;
    opKind = f.kind;
    opNote = note;
  }
  return opNote ? { kind: opKind!, note: opNote } : { kind: opKind! };
}

// ---------------------------------------------------------------------------------------------------
// FastGRU

export interface FastGruArgs {
  units: number;
  name?: string;
  trainable?: boolean;
  inputShape?: number[];
  batchInputShape?: (number | null)[];
}

export class FastGru extends tf.layers.Layer {
  static className = 'HepMlFastGRU';
  readonly units: number;
  private op?: GruOp<Float32Array>;
  /** Forward calls so far; the one whose state the op holds for backward(). */
  private calls = 0;
  private heldTraining = -1;

  constructor(args: FastGruArgs) {
    super(args as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    if (!Number.isInteger(args.units) || args.units < 1) throw new RangeError(`FastGRU: units must be a positive integer, got ${args.units}`);
    this.units = args.units;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const features = shape[shape.length - 1];
    if (shape.length !== 3 || typeof features !== 'number') {
      throw new RangeError(`FastGRU expects [batch, steps, features] input, got [${shape.join(', ')}]`);
    }
    const G = 3 * this.units;
    const zeros = tf.initializers.zeros();
    // values are set by the model builder (seeded Glorot/orthogonal) or by loading weights
    this.addWeight('kernel', [features, G], 'float32', zeros);
    this.addWeight('recurrent_kernel', [this.units, G], 'float32', zeros);
    this.addWeight('bias', [2, G], 'float32', zeros);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [shape[0] ?? null, this.units];
  }

  override computeMask(): tf.Tensor {
    return null as unknown as tf.Tensor; // the sequence mask ends here (final state only)
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const training = kwargs.training === true;
    const [kernel, recurrent, bias] = this.weights; // as built: kernel, recurrent_kernel, bias
    return this.apply3(x, kernel!.read(), recurrent!.read(), bias!.read(), training);
  }

  private kernelOp(): GruOp<Float32Array> {
    if (!this.op) {
      if (!makeOp) throw new Error('FastGRU: the GRU op is not prepared (await prepareGru() before running the model)');
      this.op = makeOp();
    }
    return this.op;
  }

  private apply3(x: Tensor, kernel: Tensor, recurrent: Tensor, bias: Tensor, training: boolean): Tensor {
    const [B, T, F] = x.shape as [number, number, number];
    const U = this.units;
    const run = (xs: Float32Array, k: Float32Array, r: Float32Array, b: Float32Array, train: boolean): Float32Array =>
      this.kernelOp().forward({ x: xs, batch: B, steps: T, features: F, units: U, kernel: k, recurrentKernel: r, bias: b }, { training: train });
    const f = tf.customGrad(((...args: unknown[]) => {
      const [xt, kt, rt, bt] = args as Tensor[];
      const xs = xt!.dataSync() as Float32Array;
      const ks = kt!.dataSync() as Float32Array;
      const rs = rt!.dataSync() as Float32Array;
      const bs = bt!.dataSync() as Float32Array;
      const h = run(xs, ks, rs, bs, training);
      const call = ++this.calls;
      if (training) this.heldTraining = call;
      return {
        value: tf.tensor2d(h, [B, U]),
        gradFunc: (dy: Tensor | Tensor[]) => {
          // the op holds one forward's state: recompute when another forward ran in between
          if (this.heldTraining !== call) {
            run(xs, ks, rs, bs, true);
            this.heldTraining = call;
          }
          const g = this.kernelOp().backward((Array.isArray(dy) ? dy[0]! : dy).dataSync() as Float32Array);
          return [
            tf.zeros(xt!.shape),
            tf.tensor(g.kernel, kt!.shape),
            tf.tensor(g.recurrentKernel, rt!.shape),
            tf.tensor(g.bias, bt!.shape),
          ];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(x, kernel, recurrent, bias);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}

// ---------------------------------------------------------------------------------------------------
// SeededDropout

export interface SeededDropoutArgs {
  rate: number;
  seed?: number;
  name?: string;
}

export class SeededDropout extends tf.layers.Layer {
  static className = 'HepMlDropout';
  readonly rate: number;
  readonly seed: number;
  /** Training calls so far (the next mask is drawn from (seed, calls)). Saved in checkpoints. */
  calls = 0;
  /**
   * The rows this call's batch has within a full (global) batch of `total` rows: [offset, offset + batch).
   * The mask is drawn for the full batch and sliced, so N synchronous replicas of batch B apply exactly the
   * masks one process with batch N×B would, and a short last batch gets the first rows of a full batch's mask.
   */
  shard?: { offset: number; total: number };

  constructor(args: SeededDropoutArgs) {
    super(args as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    if (!(args.rate >= 0 && args.rate < 1)) throw new RangeError(`Dropout: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training !== true || this.rate === 0) return tf.clone(x);
    const k = this.calls++;
    // a distinct seed per call: (seed, k) mixed into 31 bits
    const s = (Math.imul(this.seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(k + 1, 0x85ebca6b)) >>> 1;
    const sh = this.shard;
    return tf.tidy(() => {
      let u: Tensor;
      if (sh && sh.offset + x.shape[0]! <= sh.total) {
        const all = tf.randomUniform([sh.total, ...x.shape.slice(1)], 0, 1, 'float32', s);
        u = tf.slice(all, [sh.offset, ...x.shape.slice(1).map(() => 0)], x.shape);
      } else u = tf.randomUniform(x.shape, 0, 1, 'float32', s);
      const keep = tf.greaterEqual(u, this.rate);
      return tf.mul(x, tf.div(tf.cast(keep, 'float32'), 1 - this.rate));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(FastGru);
tf.serialization.registerClass(SeededDropout);
