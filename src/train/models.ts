/**
 * The three classifiers of the CERN particle-classifier recipe (features-spec §9), built with tfjs layers and
 * hep-ml's FastGRU / SeededDropout:
 *
 *  - dnn:       HLF_input [14] → Dense 50 relu → Dense 20 relu → Dense 10 relu → Dense 3 softmax   (2,013 params)
 *  - gru:       GRU_input [801, 19] → Masking(0) + GRU(50) → Dropout 0.2 → Dense 3 softmax          (10,803)
 *  - inclusive: GRU(50) on GRU_input → Dropout 0.2, Dropout 0.2 on HLF_input; concatenate → Dense 25
 *               relu → Dense 3 softmax                                                              (12,353)
 *
 * Weights are initialised from `seed` with Keras' defaults (Glorot-uniform kernels, orthogonal recurrent
 * kernel, zero biases), drawn by hep-ml's own generator: the same seed gives the same model on any engine.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { Rng } from '../prepare/rng.js';
import { FastGru, SeededDropout, prepareGru } from './layers.js';

export type ModelKind = 'dnn' | 'gru' | 'inclusive';
export const MODEL_KINDS: readonly ModelKind[] = ['dnn', 'gru', 'inclusive'];

/** One model input: the tfjs input name, the dataset column it is fed from, its per-event shape. */
export interface ModelInput {
  name: string;
  column: string;
  shape: number[];
}

export interface ModelOptions {
  /** dnn: hidden widths (default 50,20,10); gru: [GRU units] (50); inclusive: [GRU units, dense width] (50,25). */
  units?: number[];
  /** Number of classes (default 3). */
  classes?: number;
  /** Dropout rate (default 0.2; gru and inclusive). */
  dropout?: number;
  /** Initialisation and dropout seed (default 0). */
  seed?: number;
  /** HLF width (default 14) and particle matrix shape (default 801 × 19). */
  hlfWidth?: number;
  particles?: number;
  particleFeatures?: number;
}

export const DEFAULT_UNITS: Record<ModelKind, number[]> = { dnn: [50, 20, 10], gru: [50], inclusive: [50, 25] };

export function modelInputs(kind: ModelKind, o: ModelOptions = {}): ModelInput[] {
  const hlf: ModelInput = { name: 'hlf_input', column: 'HLF_input', shape: [o.hlfWidth ?? 14] };
  const gru: ModelInput = { name: 'gru_input', column: 'GRU_input', shape: [o.particles ?? 801, o.particleFeatures ?? 19] };
  return kind === 'dnn' ? [hlf] : kind === 'gru' ? [gru] : [gru, hlf];
}

/** Parses `--units 50,20,10`. */
export function parseUnits(kind: ModelKind, s: string | undefined): number[] {
  if (s === undefined || s.trim() === '') return DEFAULT_UNITS[kind];
  const u = s.split(',').map((x) => Number(x.trim()));
  if (u.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError(`--units: expected positive integers separated by commas, got '${s}'`);
  const want = kind === 'dnn' ? 'one or more hidden widths' : kind === 'gru' ? 'one number (the GRU units)' : 'two numbers: GRU units, dense width';
  if ((kind === 'gru' && u.length !== 1) || (kind === 'inclusive' && u.length !== 2)) {
    throw new UsageError(`--units for the ${kind} model: ${want}, got '${s}'`);
  }
  return u;
}

/** Builds (uncompiled) and initialises a model. Prepares the GRU op when the model has one. */
export async function buildModel(kind: ModelKind, o: ModelOptions = {}): Promise<tf.LayersModel> {
  const units = o.units ?? DEFAULT_UNITS[kind];
  const classes = o.classes ?? 3;
  const rate = o.dropout ?? 0.2;
  const seed = o.seed ?? 0;
  if (kind !== 'dnn') await prepareGru();
  const ins = modelInputs(kind, o);
  const inputs = ins.map((i) => tf.input({ shape: i.shape, name: i.name }));
  let out: tf.SymbolicTensor;
  if (kind === 'dnn') {
    let h = inputs[0]!;
    units.forEach((n, i) => (h = tf.layers.dense({ units: n, activation: 'relu', name: i === 0 ? 'dense' : `dense_${i}` }).apply(h) as tf.SymbolicTensor));
    out = tf.layers.dense({ units: classes, activation: 'softmax', name: `dense_${units.length}` }).apply(h) as tf.SymbolicTensor;
  } else if (kind === 'gru') {
    const g = new FastGru({ units: units[0]!, name: 'gru' }).apply(inputs[0]!) as tf.SymbolicTensor;
    const d = new SeededDropout({ rate, seed: seed * 8 + 1, name: 'dropout' }).apply(g) as tf.SymbolicTensor;
    out = tf.layers.dense({ units: classes, activation: 'softmax', name: 'dense' }).apply(d) as tf.SymbolicTensor;
  } else {
    const g = new FastGru({ units: units[0]!, name: 'gru' }).apply(inputs[0]!) as tf.SymbolicTensor;
    const dg = new SeededDropout({ rate, seed: seed * 8 + 1, name: 'dropout' }).apply(g) as tf.SymbolicTensor;
    const dh = new SeededDropout({ rate, seed: seed * 8 + 2, name: 'dropout_1' }).apply(inputs[1]!) as tf.SymbolicTensor;
    const c = tf.layers.concatenate({ name: 'concatenate' }).apply([dg, dh]) as tf.SymbolicTensor;
    const h = tf.layers.dense({ units: units[1]!, activation: 'relu', name: 'dense' }).apply(c) as tf.SymbolicTensor;
    out = tf.layers.dense({ units: classes, activation: 'softmax', name: 'dense_1' }).apply(h) as tf.SymbolicTensor;
  }
  const model = tf.model({ inputs, outputs: out, name: kind });
  initialise(model, seed);
  return model;
}

/** Keras-default initial values from a seeded generator (one stream per weight). */
export function initialise(model: tf.LayersModel, seed: number): void {
  const values: tf.Tensor[] = [];
  model.layers.forEach((layer, li) => {
    layer.weights.forEach((w, wi) => {
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      // tfjs makes variable names unique per process (gru/kernel_1, ...): key the stream by position
      const rng = new Rng(seed, `init/${li}/${wi}`);
      const leaf = w.originalName.split('/').pop()!;
      let v: Float32Array;
      if (leaf.startsWith('bias')) v = new Float32Array(n);
      else if (leaf.startsWith('recurrent_kernel')) v = orthogonal(shape[0]!, shape[1]!, rng);
      else v = glorotUniform(shape[0]!, shape[1]!, rng);
      values.push(tf.tensor(v, shape));
    });
  });
  model.setWeights(values);
  tf.dispose(values);
}

function glorotUniform(fanIn: number, fanOut: number, rng: Rng): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const v = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < v.length; i++) v[i] = (2 * rng.next() - 1) * limit;
  return v;
}

function gaussian(rng: Rng): number {
  // Box–Muller; 1 - next() is in (0, 1]
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/** A [rows, cols] matrix with orthonormal rows (rows <= cols) or columns (rows > cols), as Keras' Orthogonal. */
function orthogonal(rows: number, cols: number, rng: Rng): Float32Array {
  const tall = rows > cols;
  const m = tall ? rows : cols; // vector length
  const k = tall ? cols : rows; // number of orthonormal vectors
  const q: Float64Array[] = [];
  for (let i = 0; i < k; i++) {
    const v = new Float64Array(m);
    for (;;) {
      for (let j = 0; j < m; j++) v[j] = gaussian(rng);
      // modified Gram–Schmidt, twice for stability
      for (let pass = 0; pass < 2; pass++) {
        for (const u of q) {
          let d = 0;
          for (let j = 0; j < m; j++) d += u[j]! * v[j]!;
          for (let j = 0; j < m; j++) v[j]! -= d * u[j]!;
        }
      }
      let norm = 0;
      for (let j = 0; j < m; j++) norm += v[j]! * v[j]!;
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let j = 0; j < m; j++) v[j]! /= norm;
        break;
      }
    }
    q.push(v);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = tall ? q[c]![r]! : q[r]![c]!;
  return out;
}

/** Adam with Keras' defaults (β1 0.9, β2 0.999, ε 1e-7), categorical cross-entropy, accuracy. */
export function compileModel(model: tf.LayersModel, lr: number): tf.AdamOptimizer {
  const optimizer = tf.train.adam(lr, 0.9, 0.999, 1e-7);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return optimizer;
}

/** The SeededDropout layers of a model, in order (their call counters go into checkpoints). */
export function dropoutLayers(model: tf.LayersModel): SeededDropout[] {
  return model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout);
}

/** Trainable parameter count. */
export function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
}
