/**
 * The tfjs side of training: FastGRU against tfjs-layers' own GRU where their semantics coincide (tfjs-layers
 * only has reset_after=false), its gradients through tf.customGrad, SeededDropout, the model builder, and
 * save → load → identical predictions.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEngine, parseEngine, type Engine } from '../../src/train/engine.js';
import { FastGru, SeededDropout, prepareGru } from '../../src/train/layers.js';
import { buildModel, countParams, parseUnits } from '../../src/train/models.js';
import { loadModelDir, saveModelDir, MODEL_FORMAT, MODEL_VERSION, type ModelMeta } from '../../src/train/model-io.js';
import { Rng } from '../../src/prepare/rng.js';
import { rocAuc, classMetrics } from '../../src/train/metrics.js';

let eng: Engine;
before(async () => {
  eng = await loadEngine('cpu');
});

/** Random [B, T, F] sequences of the given real lengths, zero-padded at the end; `holes` zero rows inside. */
function sequences(B: number, T: number, F: number, lengths: number[], rng: Rng, holes: [number, number][] = []): Float32Array {
  const x = new Float32Array(B * T * F);
  for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) for (let f = 0; f < F; f++) x[(b * T + t) * F + f] = 2 * rng.next() - 1;
  for (const [b, t] of holes) x.fill(0, (b * T + t) * F, (b * T + t + 1) * F);
  return x;
}
const uniform = (n: number, s: number, rng: Rng) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * s);

/**
 * Weights where reset_after=true and reset_after=false give the same function: the reset gate saturated at
 * 1 (bias +40) and no recurrent bias on the candidate, so r ⊙ (h U_h) = (r ⊙ h) U_h.
 */
function coincidingWeights(F: number, U: number, rng: Rng) {
  const G = 3 * U;
  const kernel = uniform(F * G, 0.5, rng);
  const recurrent = uniform(U * G, 0.5, rng);
  const bias = new Float32Array(2 * G); // Keras reset_after: [input bias; recurrent bias]
  const tfjsBias = new Float32Array(G); // tfjs reset_after=false: one bias
  for (let j = 0; j < G; j++) {
    const gate = Math.floor(j / U);
    const v = gate === 1 ? 40 : (2 * rng.next() - 1) * 0.3;
    bias[j] = v;
    tfjsBias[j] = v;
  }
  // with a saturated reset gate the reset gate's inputs do not matter: zero them for clean numbers
  for (let f = 0; f < F; f++) for (let u = 0; u < U; u++) kernel[f * G + U + u] = 0;
  for (let k = 0; k < U; k++) for (let u = 0; u < U; u++) recurrent[k * G + U + u] = 0;
  return { kernel, recurrent, bias, tfjsBias };
}

describe('FastGRU layer', () => {
  test('forward equals tfjs-layers Masking + GRU (reset_after=false, sigmoid) where the two coincide, with masks at the end and inside', async () => {
    const tf = eng.tf;
    await prepareGru();
    const [B, T, F, U] = [5, 13, 4, 6];
    const rng = new Rng(3, 'coincide');
    const lengths = [13, 1, 0, 7, 10];
    const x = sequences(B, T, F, lengths, rng, [[0, 4], [3, 2], [4, 0]]);
    const w = coincidingWeights(F, U, rng);

    const inp = tf.input({ shape: [T, F] });
    const fast = tf.model({ inputs: inp, outputs: new FastGru({ units: U }).apply(inp) as tf.SymbolicTensor });
    fast.layers[1]!.setWeights([tf.tensor(w.kernel, [F, 3 * U]), tf.tensor(w.recurrent, [U, 3 * U]), tf.tensor(w.bias, [2, 3 * U])]);

    const inp2 = tf.input({ shape: [T, F] });
    const masked = tf.layers.masking({ maskValue: 0 }).apply(inp2) as tf.SymbolicTensor;
    const gruLayer = tf.layers.gru({ units: U, recurrentActivation: 'sigmoid', activation: 'tanh', resetAfter: false } as Parameters<typeof tf.layers.gru>[0]);
    const stock = tf.model({ inputs: inp2, outputs: gruLayer.apply(masked) as tf.SymbolicTensor });
    gruLayer.setWeights([tf.tensor(w.kernel, [F, 3 * U]), tf.tensor(w.recurrent, [U, 3 * U]), tf.tensor(w.tfjsBias, [3 * U])]);

    const xt = tf.tensor(x, [B, T, F]);
    const a = (fast.predict(xt) as tf.Tensor).dataSync();
    const b = (stock.predict(xt) as tf.Tensor).dataSync();
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
    assert.ok(max < 2e-6, `max |FastGRU − tfjs GRU| = ${max}`);
    // the all-masked sequence (length 0) stays at the zero state in both
    for (let u = 0; u < U; u++) assert.equal(a[2 * U + u], 0);
    // and the check is not vacuous: the outputs move
    assert.ok(Math.max(...Array.from(a, Math.abs)) > 0.1);
  });

  test('gradients through tf.customGrad equal tfjs-layers GRU gradients (coinciding weights)', async () => {
    const tf = eng.tf;
    await prepareGru();
    const [B, T, F, U] = [4, 9, 3, 5];
    const rng = new Rng(5, 'grad');
    const x = tf.tensor(sequences(B, T, F, [9, 4, 1, 6], rng, [[0, 3]]), [B, T, F]);
    const w = coincidingWeights(F, U, rng);
    const target = tf.tensor(uniform(B * U, 1, rng), [B, U]);

    const fast = new FastGru({ units: U });
    fast.apply(tf.input({ shape: [T, F] }));
    fast.setWeights([tf.tensor(w.kernel, [F, 3 * U]), tf.tensor(w.recurrent, [U, 3 * U]), tf.tensor(w.bias, [2, 3 * U])]);
    const gfast = tf.variableGrads(() => tf.sum(tf.mul(fast.apply(x, { training: true }) as tf.Tensor, target)) as tf.Scalar, fast.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val));

    const gru = tf.layers.gru({ units: U, recurrentActivation: 'sigmoid', resetAfter: false } as Parameters<typeof tf.layers.gru>[0]);
    const sym = tf.input({ shape: [T, F] });
    const stock = tf.model({ inputs: sym, outputs: gru.apply(tf.layers.masking({ maskValue: 0 }).apply(sym)) as tf.SymbolicTensor });
    gru.setWeights([tf.tensor(w.kernel, [F, 3 * U]), tf.tensor(w.recurrent, [U, 3 * U]), tf.tensor(w.tfjsBias, [3 * U])]);
    const gstock = tf.variableGrads(() => tf.sum(tf.mul(stock.apply(x, { training: true }) as tf.Tensor, target)) as tf.Scalar, gru.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val));

    const gf = Object.values(gfast.grads).map((t) => t.dataSync());
    const gs = Object.values(gstock.grads).map((t) => t.dataSync());
    const [lf, ls] = [gfast.value.dataSync()[0]!, gstock.value.dataSync()[0]!];
    assert.ok(Math.abs(lf - ls) < 1e-5, `loss ${lf} vs ${ls}`);
    // kernel and recurrent kernel: same layout in both (z, r, h); the reset gate's gradients are ≈0 (saturated)
    for (const k of [0, 1]) {
      let max = 0, scale = 0;
      for (let i = 0; i < gf[k]!.length; i++) {
        max = Math.max(max, Math.abs(gf[k]![i]! - gs[k]![i]!));
        scale = Math.max(scale, Math.abs(gs[k]![i]!));
      }
      assert.ok(max < 1e-4 * Math.max(1, scale), `weight ${k}: max |Δgrad| ${max} (scale ${scale})`);
      assert.ok(scale > 1e-3, 'non-trivial gradients');
    }
    // bias: Keras [2, 3U] (input row + recurrent row) against tfjs' single [3U]: for z and r both rows get
    // the same gradient as tfjs' bias; for the candidate, the input row matches tfjs' bias
    const G = 3 * U;
    for (let j = 0; j < G; j++) {
      assert.ok(Math.abs(gf[2]![j]! - gs[2]![j]!) < 1e-4, `input bias ${j}`);
      if (j < 2 * U) assert.ok(Math.abs(gf[2]![G + j]! - gs[2]![j]!) < 1e-4, `recurrent bias ${j}`);
    }
  });

  test('the input gets a zero gradient; a forward in between does not corrupt the backward (recomputed)', async () => {
    const tf = eng.tf;
    await prepareGru();
    const [B, T, F, U] = [3, 6, 2, 4];
    const rng = new Rng(9, 'between');
    const layer = new FastGru({ units: U });
    layer.apply(tf.input({ shape: [T, F] }));
    const w = coincidingWeights(F, U, rng);
    layer.setWeights([tf.tensor(w.kernel, [F, 3 * U]), tf.tensor(w.recurrent, [U, 3 * U]), tf.tensor(w.bias, [2, 3 * U])]);
    const x1 = tf.tensor(sequences(B, T, F, [6, 3, 5], rng), [B, T, F]);
    const x2 = tf.tensor(sequences(B, T, F, [2, 6, 1], rng), [B, T, F]);
    const vars = layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
    const ref = tf.variableGrads(() => tf.sum(layer.apply(x1, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    const again = tf.variableGrads(() => {
      const y = tf.sum(layer.apply(x1, { training: true }) as tf.Tensor) as tf.Scalar;
      layer.apply(x2, { training: true }); // another forward on the same op before the backward
      return y;
    }, vars);
    for (const k of Object.keys(ref.grads)) assert.deepEqual(Array.from(again.grads[k]!.dataSync()), Array.from(ref.grads[k]!.dataSync()));
    const gx = tf.grad((xx: tf.Tensor) => tf.sum(layer.apply(xx, { training: true }) as tf.Tensor))(x1);
    assert.ok(gx.dataSync().every((v) => v === 0));
  });
});

describe('SeededDropout', () => {
  test('inference is the identity; training masks at the rate, scaled by 1/(1−rate), reproducible per (seed, call)', () => {
    const tf = eng.tf;
    const x = tf.ones([200, 50]);
    const d1 = new SeededDropout({ rate: 0.2, seed: 7 });
    const d2 = new SeededDropout({ rate: 0.2, seed: 7 });
    assert.deepEqual(Array.from((d1.apply(x) as tf.Tensor).dataSync()), Array.from(x.dataSync()));
    const a1 = (d1.apply(x, { training: true }) as tf.Tensor).dataSync();
    const a2 = (d1.apply(x, { training: true }) as tf.Tensor).dataSync();
    const b1 = (d2.apply(x, { training: true }) as tf.Tensor).dataSync();
    assert.deepEqual(Array.from(a1), Array.from(b1), 'same seed, same call → same mask');
    assert.notDeepEqual(Array.from(a1), Array.from(a2), 'the next call draws a new mask');
    const zeros = a1.filter((v) => v === 0).length / a1.length;
    assert.ok(zeros > 0.17 && zeros < 0.23, `dropped fraction ${zeros}`);
    assert.ok(a1.every((v) => v === 0 || Math.abs(v - 1.25) < 1e-6));
    assert.equal(d1.calls, 2);
    d2.calls = 1;
    assert.deepEqual(Array.from((d2.apply(x, { training: true }) as tf.Tensor).dataSync()), Array.from(a2), 'a restored counter continues the sequence');
  });
});

describe('models', () => {
  test('parameter counts of the published architectures; --units parsing', async () => {
    assert.equal(countParams(await buildModel('dnn')), 2013);
    assert.equal(countParams(await buildModel('gru')), 10803);
    assert.equal(countParams(await buildModel('inclusive')), 12353);
    assert.equal(countParams(await buildModel('dnn', { units: [100, 50, 20] })), 15 * 100 + 101 * 50 + 51 * 20 + 21 * 3);
    assert.deepEqual(parseUnits('inclusive', '64,32'), [64, 32]);
    assert.throws(() => parseUnits('gru', '50,20'), /one number/);
    assert.throws(() => parseUnits('dnn', '50,x'), /positive integers/);
  });

  test('the same seed gives the same weights; another seed others; recurrent kernel blocks are orthogonal', async () => {
    const a = (await buildModel('gru', { seed: 4 })).getWeights().map((t) => Array.from(t.dataSync()));
    const b = (await buildModel('gru', { seed: 4 })).getWeights().map((t) => Array.from(t.dataSync()));
    const c = (await buildModel('gru', { seed: 5 })).getWeights().map((t) => Array.from(t.dataSync()));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a[0], c[0]);
    const rk = a[1]!; // [50, 150]: orthonormal rows
    const U = 50, G = 150;
    for (const [i, j] of [[0, 0], [0, 1], [7, 31], [49, 49]] as const) {
      let d = 0;
      for (let k = 0; k < G; k++) d += rk[i * G + k]! * rk[j * G + k]!;
      assert.ok(Math.abs(d - (i === j ? 1 : 0)) < 1e-5, `row ${i}·row ${j} = ${d}`);
    }
    assert.equal(rk.length, U * G);
    assert.ok(a[2]!.every((v) => v === 0), 'zero biases');
  });

  test('save → load → identical predictions, and the description round-trips', async () => {
    const tf = eng.tf;
    const dir = mkdtempSync(join(tmpdir(), 'hepml-model-'));
    try {
      const model = await buildModel('inclusive', { seed: 2 });
      const rng = new Rng(1, 'save');
      const xg = tf.tensor(sequences(3, 801, 19, [801, 40, 0], rng), [3, 801, 19]);
      const xh = tf.tensor(uniform(3 * 14, 1, rng), [3, 14]);
      const before = (model.predict([xg, xh]) as tf.Tensor).dataSync();
      const meta: ModelMeta = {
        format: MODEL_FORMAT, version: MODEL_VERSION, hepml: 'test', created: new Date().toISOString(), model: 'inclusive',
        inputs: [{ name: 'gru_input', column: 'GRU_input', shape: [801, 19], dtype: 'float32' }, { name: 'hlf_input', column: 'HLF_input', shape: [14], dtype: 'float32' }],
        output: { name: 'probabilities', classes: ['qcd', 'ttbar', 'wjets'] }, params: 12353,
      };
      await saveModelDir(model, meta, join(dir, 'm'));
      const loaded = await loadModelDir(join(dir, 'm'));
      const afterP = (loaded.model.predict([xg, xh]) as tf.Tensor).dataSync();
      assert.deepEqual(Array.from(afterP), Array.from(before));
      assert.deepEqual(loaded.meta, meta);
      const json = JSON.parse(readFileSync(join(dir, 'm', 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.match(JSON.stringify(json.modelTopology), /HepMlFastGRU/);
      // probabilities: rows sum to 1
      for (let r = 0; r < 3; r++) assert.ok(Math.abs(before[3 * r]! + before[3 * r + 1]! + before[3 * r + 2]! - 1) < 1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('engine and metrics', () => {
  test('parseEngine; an unavailable engine named explicitly is a usage error naming the reason', async () => {
    assert.equal(parseEngine(undefined), 'auto');
    assert.equal(parseEngine('tensorflow'), 'node');
    assert.equal(parseEngine('WASM'), 'wasm');
    assert.throws(() => parseEngine('gpu'), /unknown engine 'gpu'/);
    let nodeLoads = true;
    try {
      await import(['@tensorflow', 'tfjs-node'].join('/'));
    } catch {
      nodeLoads = false;
    }
    if (!nodeLoads) await assert.rejects(loadEngine('node'), /engine node could not be loaded/);
    const e = await loadEngine('cpu');
    assert.equal(e.backend, 'cpu');
  });

  test('rocAuc: perfect, inverted, ties count half; classMetrics', () => {
    assert.equal(rocAuc(Float32Array.of(0.1, 0.2, 0.8, 0.9), Uint8Array.of(0, 0, 1, 1)), 1);
    assert.equal(rocAuc(Float32Array.of(0.9, 0.8, 0.2, 0.1), Uint8Array.of(0, 0, 1, 1)), 0);
    assert.equal(rocAuc(Float32Array.of(0.5, 0.5, 0.5, 0.5), Uint8Array.of(0, 1, 0, 1)), 0.5);
    assert.ok(Number.isNaN(rocAuc(Float32Array.of(0.5), Uint8Array.of(1))));
    const m = classMetrics(Float32Array.of(0.7, 0.2, 0.1, 0.1, 0.8, 0.1), Int32Array.of(0, 2), 3);
    assert.equal(m.accuracy, 0.5);
    assert.ok(Math.abs(m.loss - (-Math.log(0.7) - Math.log(0.1)) / 2) < 1e-6);
  });
});

