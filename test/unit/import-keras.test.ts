/**
 * import-keras on the published CERN models: the imported tfjs model (FastGRU, Dense, ...) reproduces the
 * Keras forward pass computed independently by scripts/keras-reference.py (numpy + h5py, float64) and stored
 * in test/fixtures/keras/*.expected.json — probabilities, the GRU's final state, the dense layers — and the
 * model directory round-trips. Also through the CLI, and refusals of what cannot be imported exactly.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../helpers/cli.js';
import { loadEngine, type Engine } from '../../src/train/engine.js';
import { buildFromKeras, importKeras } from '../../src/train/import-keras.js';
import { kerasGraphFromConfig, type KerasModel } from '../../src/train/keras/index.js';
import { UnsupportedError } from '../../src/errors.js';
import { loadModelDir, saveModelDir } from '../../src/train/model-io.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = process.env.HEPML_MODELS ?? join(REPO, '..', 'shared', 'models', 'sparkdltrigger');
const FIXTURES = join(REPO, 'test', 'fixtures', 'keras');
const FILES = ['InclusiveClassifier.h5', 'myGRUmodel.keras'] as const;
const missing = FILES.filter((f) => !existsSync(join(MODELS, f)));
const skip = missing.length ? `published models not found in ${MODELS} (set HEPML_MODELS): ${missing.join(', ')}` : false;
if (skip) console.error(`SKIPPING import-keras tests: ${skip}`);

interface Fixture {
  inputs: { gru_input: { shape: number[]; events: { rows: number; f32le_b64: string }[] }; hlf_input: { shape: number[]; events: string[] } };
  outputs: Record<string, number[][]>;
  intermediates: Record<string, number[][] | string>;
}

function decodeInputs(fx: Fixture): { gru: Float32Array; hlf: Float32Array; n: number } {
  const ev = fx.inputs.gru_input.events;
  const [T, F] = fx.inputs.gru_input.shape as [number, number];
  const n = ev.length;
  const gru = new Float32Array(n * T * F);
  ev.forEach((e, i) => {
    const b = Buffer.from(e.f32le_b64, 'base64');
    gru.set(new Float32Array(b.buffer, b.byteOffset, b.length / 4), i * T * F);
  });
  const hlf = new Float32Array(n * 14);
  // HLF rows: base64 of 14 little-endian float32 each
  (fx.inputs.hlf_input as { events: string[] }).events.forEach((e, i) => {
    const b = Buffer.from(e, 'base64');
    hlf.set(new Float32Array(b.buffer, b.byteOffset, b.length / 4), i * 14);
  });
  return { gru, hlf, n };
}

let eng: Engine;
before(async () => {
  eng = await loadEngine();
});

const maxAbs = (a: ArrayLike<number>, b: number[][]): number => {
  const flat = b.flat();
  assert.equal(a.length, flat.length);
  let m = 0;
  for (let i = 0; i < flat.length; i++) m = Math.max(m, Math.abs(a[i]! - flat[i]!));
  return m;
};

describe('import-keras: the published models', { skip }, () => {
  for (const file of FILES) {
    test(`${file}: predictions, GRU state and dense layers equal the independent numpy forward pass (≤ 1e-5)`, async (t) => {
      const tf = eng.tf;
      const fx = JSON.parse(readFileSync(join(FIXTURES, `${file}.expected.json`), 'utf8')) as Fixture;
      const { model, meta } = await importKeras(join(MODELS, file));
      assert.equal(meta.model, 'inclusive');
      assert.deepEqual(meta.inputs.map((i) => [i.name, i.column, i.shape]), [['gru_input', 'GRU_input', [801, 19]], ['hlf_input', 'HLF_input', [14]]]);
      assert.equal(meta.params, 12353);
      const { gru, hlf, n } = decodeInputs(fx);
      const xs = [tf.tensor(gru, [n, 801, 19]), tf.tensor(hlf, [n, 14])];
      const probe = tf.model({ inputs: model.inputs, outputs: ['gru', 'dense', 'dense_1'].map((l) => model.getLayer(l).output as ReturnType<typeof tf.input>) });
      const [g, d, p] = (probe.predict(xs) as ReturnType<typeof tf.tensor>[]).map((x) => x.dataSync());
      const dg = maxAbs(g!, fx.intermediates.gru as number[][]);
      const dd = maxAbs(d!, fx.intermediates.dense as number[][]);
      const dp = maxAbs(p!, fx.outputs.dense_1!);
      t.diagnostic(`max |Δ| GRU state ${dg.toExponential(2)}, dense ${dd.toExponential(2)}, probabilities ${dp.toExponential(2)}`);
      assert.ok(dg <= 1e-5, `GRU state ${dg}`);
      assert.ok(dd <= 1e-5 * Math.max(1, ...(fx.intermediates.dense as number[][]).flat().map(Math.abs)), `dense ${dd}`);
      assert.ok(dp <= 1e-5, `probabilities ${dp}`);
      // the comparison is not vacuous: the GRU states differ between events and from zero (except the empty event)
      assert.ok((fx.intermediates.gru as number[][]).slice(1).every((r) => r.some((v) => Math.abs(v) > 1e-3)));

      // save → load → the same predictions
      const dir = mkdtempSync(join(tmpdir(), 'hepml-import-'));
      try {
        await saveModelDir(model, meta, join(dir, 'm'));
        const back = await loadModelDir(join(dir, 'm'));
        assert.deepEqual(Array.from((back.model.predict(xs) as ReturnType<typeof tf.tensor>).dataSync()), Array.from(p!));
        assert.equal(back.meta.importedFrom?.file, file);
        assert.match(back.meta.importedFrom!.sha256, /^[0-9a-f]{64}$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('CLI: hep-ml import-keras writes a model directory, --json describes it; a non-model directory is not replaced', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hepml-import-cli-'));
    try {
      const r = spawnSync('node', [BIN, 'import-keras', join(MODELS, 'InclusiveClassifier.h5'), '-o', join(dir, 'm'), '--json'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const meta = JSON.parse(r.stdout) as { model: string; importedFrom: { format: string; kerasVersion: string } };
      assert.equal(meta.model, 'inclusive');
      assert.equal(meta.importedFrom.format, 'keras2-h5');
      for (const f of ['model.json', 'weights.bin', 'hep-ml-model.json']) assert.ok(existsSync(join(dir, 'm', f)));
      const again = spawnSync('node', [BIN, 'import-keras', join(MODELS, 'myGRUmodel.keras'), '-o', join(dir, 'm')], { encoding: 'utf8' });
      assert.equal(again.status, 0, again.stderr);
      const refuse = spawnSync('node', [BIN, 'import-keras', join(MODELS, 'myGRUmodel.keras'), '-o', REPO], { encoding: 'utf8' });
      assert.equal(refuse.status, 2, refuse.stderr);
      assert.match(refuse.stderr, /not a hep-ml model directory/);
      assert.ok(existsSync(join(REPO, 'package.json')));
      const bad = spawnSync('node', [BIN, 'import-keras', join(REPO, 'package.json'), '-o', join(dir, 'x')], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('import-keras: refusals', () => {
  const F = 3, U = 4, G = 12;
  const gruWeights = [
    { name: 'kernel', shape: [F, G], data: new Float32Array(F * G), dtype: '<f4', source: '' },
    { name: 'recurrent_kernel', shape: [U, G], data: new Float32Array(U * G), dtype: '<f4', source: '' },
    { name: 'bias', shape: [2, G], data: new Float32Array(2 * G), dtype: '<f4', source: '' },
  ];
  const denseWeights = [
    { name: 'kernel', shape: [U, 3], data: new Float32Array(U * 3), dtype: '<f4', source: '' },
    { name: 'bias', shape: [3], data: new Float32Array(3), dtype: '<f4', source: '' },
  ];
  const graph = (gru: Record<string, unknown>, opts: { masking?: boolean; extra?: Record<string, unknown> } = {}): KerasModel => {
    const g = kerasGraphFromConfig({
      class_name: 'Sequential',
      config: {
        name: 's',
        layers: [
          { class_name: 'InputLayer', config: { batch_input_shape: [null, 5, F], name: 'gru_input' } },
          ...(opts.masking === false ? [] : [{ class_name: 'Masking', config: { name: 'masking', mask_value: 0 } }]),
          { class_name: 'GRU', config: { name: 'gru', units: U, activation: 'tanh', recurrent_activation: 'sigmoid', reset_after: true, ...gru } },
          ...(opts.extra ? [opts.extra] : []),
          { class_name: 'Dense', config: { name: 'dense', units: 3, activation: 'softmax' } },
        ],
      },
    });
    return { format: 'keras2-h5', ...g, weights: new Map([['gru', gruWeights], ['dense', denseWeights]]) } as KerasModel;
  };

  test('the supported graph imports (a GRU model of 3 outputs)', async () => {
    await loadEngine();
    const { meta } = await buildFromKeras(graph({}), 'm.h5');
    assert.equal(meta.model, 'gru');
    assert.equal(meta.params, F * G + U * G + 2 * G + U * 3 + 3);
  });
  for (const [what, g, re] of [
    ['no Masking in front of the GRU', graph({}, { masking: false }), /layer 'gru' \(GRU\): a GRU without Masking\(0\)/],
    ['reset_after=False', graph({ reset_after: false }), /layer 'gru' \(GRU\): reset_after = false/],
    ['hard_sigmoid', graph({ recurrent_activation: 'hard_sigmoid' }), /recurrent_activation = "hard_sigmoid"/],
    ['return_sequences', graph({ return_sequences: true }), /return_sequences = true/],
    ['an unsupported layer', graph({}, { extra: { class_name: 'BatchNormalization', config: { name: 'bn' } } }), /layer 'bn' \(BatchNormalization\): this layer class is not supported/],
  ] as const) {
    test(`refused: ${what}`, async () => {
      await assert.rejects(buildFromKeras(g, 'm.h5'), (e: Error) => e instanceof UnsupportedError && re.test(e.message));
    });
  }
});
