/**
 * A model replica's weights and gradients as flat Float32Arrays (what the transport moves).
 */
import * as tf from '@tensorflow/tfjs';

type NamedTensor = { name: string; tensor: tf.Tensor };

/** All weights of a model, concatenated in model.weights order. */
export function flatWeights(model: tf.LayersModel): Float32Array {
  const ws = model.getWeights(); // the variables themselves: not to be disposed
  const n = ws.reduce((a, w) => a + w.size, 0);
  const out = new Float32Array(n);
  let at = 0;
  for (const w of ws) {
    out.set(w.dataSync() as Float32Array, at);
    at += w.size;
  }
  return out;
}

/** Sets all weights from a flat array laid out as flatWeights() returns it. */
export function setFlatWeights(model: tf.LayersModel, flat: Float32Array): void {
  const shapes = model.weights.map((w) => w.shape as number[]);
  const total = shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  if (total !== flat.length) throw new RangeError(`weights of ${flat.length} values for a model of ${total}`);
  let at = 0;
  const ts = shapes.map((s) => {
    const n = s.reduce((x, y) => x * y, 1);
    const t = tf.tensor(flat.subarray(at, at + n), s);
    at += n;
    return t;
  });
  model.setWeights(ts);
  tf.dispose(ts);
}

/** FNV-1a over the bytes of a Float32Array: replicas compare their weights with it. */
export function checksum(a: Float32Array): string {
  const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < u.length; i++) {
    h = Math.imul(h ^ u[i]!, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ u[i]!, 0x5bd1e995) >>> 0;
  }
  return h.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

/**
 * An "optimizer" that applies nothing: it copies the gradients tfjs computes in trainOnBatch into a flat
 * buffer (in the order trainOnBatch lists the variables, which is the order Adam's state follows), so
 * synchronous training runs exactly the forward and backward pass of single-process training, then applies
 * the all-reduced mean with the real optimizer.
 */
export class GradientCapture extends tf.Optimizer {
  static className = 'HepMlGradientCapture';
  /** Variable names in the order of the last capture. */
  names: string[] = [];
  shapes: number[][] = [];
  flat = new Float32Array(0);
  size = 0;

  /** Learns the variables (names, shapes, order) trainOnBatch will hand over, before any step. */
  prime(model: tf.LayersModel): void {
    type Compiled = { collectedTrainableWeights?: { read(): tf.Variable }[]; model?: Compiled };
    const m = model as unknown as Compiled;
    const vars = m.collectedTrainableWeights ?? m.model?.collectedTrainableWeights; // a Sequential keeps them on its inner model
    if (!vars) throw new Error('GradientCapture.prime: compile the model first');
    const vs = vars.map((w) => w.read());
    this.names = vs.map((v) => v.name);
    this.shapes = vs.map((v) => v.shape);
    this.size = vs.reduce((a, v) => a + v.size, 0);
    this.flat = new Float32Array(this.size + 3);
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list: NamedTensor[] = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name]! }));
    const size = list.reduce((a, g) => a + g.tensor.size, 0);
    if (size !== this.size || list.some((g, i) => g.name !== this.names[i])) throw new Error('GradientCapture: the variables differ from the primed ones');
    let at = 0;
    for (const g of list) {
      this.flat.set(g.tensor.dataSync() as Float32Array, at);
      at += g.tensor.size;
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {};
  }

  /** Gradient tensors from a flat buffer (the all-reduced mean), in capture order. */
  tensors(flat: Float32Array): NamedTensor[] {
    let at = 0;
    return this.names.map((name, i) => {
      const n = this.shapes[i]!.reduce((x, y) => x * y, 1);
      const t = tf.tensor(flat.subarray(at, at + n), this.shapes[i]!);
      at += n;
      return { name, tensor: t };
    });
  }
}
