/**
 * The Keras model reader (src/train/keras) against the published CERN SparkDLTrigger models and the
 * independent Python reference (scripts/keras-reference.py → test/fixtures/keras/*.expected.json):
 *   1. every weight equals what h5py reads (shape, dtype, first values, sums, sha256 of the float32 bytes);
 *   2. the layer graph (classes, inbound layers, input shapes, Keras 3 operation nodes and the GRU's mask);
 *   3. a plain float64 forward pass written here, from the read weights, reproduces the reference's GRU states,
 *      logits and softmax outputs (so the reader's layouts are right, independent of any tfjs code);
 *   4. the ZIP reader on archives built here, corrupt / truncated / foreign files giving the typed errors, and
 *      config normalisation (Sequential, shared layers, nested models) from configs written here.
 * The model files live outside the repository: $HEPML_MODELS, else ../shared/models/sparkdltrigger; tests that
 * need them are skipped (with the reason) when absent.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { CorruptDataError, HepMlError, InputNotFoundError, UnsupportedError } from '../../src/errors.js';
import {
  isHdf5,
  isZip,
  kerasGraphFromConfig,
  openZip,
  readKerasModel,
  type KerasLayer,
  type KerasModel,
} from '../../src/train/keras/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = process.env.HEPML_MODELS ?? join(REPO, '..', 'shared', 'models', 'sparkdltrigger');
const FIXTURES = join(REPO, 'test', 'fixtures', 'keras');
const MODEL_FILES = ['InclusiveClassifier.h5', 'myGRUmodel.keras'] as const;

// ---------------------------------------------------------------------------------------------------------
// Fixture

interface FixtureWeight {
  layer: string;
  weight: string;
  shape: number[];
  dtype: string;
  h5_path: string;
  sum: number;
  sum_abs: number;
  first: number[];
  sha256_f32le: string;
}
interface Fixture {
  model_file: string;
  sha256: string;
  size: number;
  format: 'keras3' | 'keras2-h5';
  keras_version: string;
  graph: {
    inputs: string[];
    outputs: string[];
    layers: { name: string; class_name: string; inbound: string[]; inbound_kwargs: Record<string, string> }[];
  };
  inputs: {
    gru_input: { shape: [number, number]; events: { rows: number; f32le_b64: string; description: string }[] };
    hlf_input: { shape: [number]; events: string[] };
  };
  outputs: Record<string, number[][]>;
  intermediates: Record<string, number[][] | string>;
  weights: FixtureWeight[];
}

function loadFixture(file: string): Fixture {
  return JSON.parse(readFileSync(join(FIXTURES, `${file}.expected.json`), 'utf8')) as Fixture;
}

function f32FromB64(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Float32Array(copy.buffer);
}

function modelPath(file: string): string {
  return join(MODELS, file);
}

/** Skips `t` loudly when the model file is absent; returns its path otherwise. */
function needModel(t: { skip(msg?: string): void }, file: string): string | undefined {
  const p = modelPath(file);
  if (!existsSync(p)) {
    t.skip(`model file ${p} not found (set HEPML_MODELS to the directory holding ${MODEL_FILES.join(', ')})`);
    return undefined;
  }
  return p;
}

const modelCache = new Map<string, Promise<KerasModel>>();
function model(path: string): Promise<KerasModel> {
  let m = modelCache.get(path);
  if (!m) {
    m = readKerasModel(path);
    modelCache.set(path, m);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// A plain float64 forward pass over the normalised graph (per event, no batching)

interface Value {
  data: Float64Array;
  /** without the batch dimension */
  shape: number[];
  /** per time step: 1 kept, 0 masked (Keras mask propagation) */
  mask?: Uint8Array;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function activate(name: unknown, v: Float64Array): Float64Array {
  const out = new Float64Array(v.length);
  if (name === 'linear') out.set(v);
  else if (name === 'relu') for (let i = 0; i < v.length; i++) out[i] = Math.max(0, v[i]!);
  else if (name === 'softmax') {
    let max = -Infinity;
    for (const x of v) max = Math.max(max, x);
    let s = 0;
    for (let i = 0; i < v.length; i++) s += out[i] = Math.exp(v[i]! - max);
    for (let i = 0; i < v.length; i++) out[i]! /= s;
  } else throw new Error(`test forward pass: activation ${String(name)}`);
  return out;
}

function weightsOf(m: KerasModel, layer: string, names: string[]): Float64Array[] {
  const ws = m.weights.get(layer);
  assert.ok(ws, `no weights for layer ${layer}`);
  return names.map((n) => {
    const w = ws.find((x) => x.name === n);
    assert.ok(w, `layer ${layer} has no weight ${n}`);
    return Float64Array.from(w.data);
  });
}

function gruStep(
  x: Float64Array,
  xOff: number,
  F: number,
  h: Float64Array,
  U: number,
  W: Float64Array,
  R: Float64Array,
  b: Float64Array,
): Float64Array {
  const G = 3 * U;
  const xw = new Float64Array(G);
  const hu = new Float64Array(G);
  for (let j = 0; j < G; j++) {
    let a = b[j]!;
    for (let f = 0; f < F; f++) a += x[xOff + f]! * W[f * G + j]!;
    xw[j] = a;
    let c = b[G + j]!;
    for (let k = 0; k < U; k++) c += h[k]! * R[k * G + j]!;
    hu[j] = c;
  }
  const out = new Float64Array(U);
  for (let k = 0; k < U; k++) {
    const z = sigmoid(xw[k]! + hu[k]!);
    const r = sigmoid(xw[U + k]! + hu[U + k]!);
    const hh = Math.tanh(xw[2 * U + k]! + r * hu[2 * U + k]!);
    out[k] = z * h[k]! + (1 - z) * hh;
  }
  return out;
}

/** Runs the model on one event; returns every layer's value (Dense also under '<name>:preactivation'). */
function forwardEvent(m: KerasModel, feeds: Record<string, Value>): Map<string, Value> {
  const values = new Map<string, Value>();
  const get = (name: string): Value => {
    const v = values.get(name);
    assert.ok(v, `value of ${name} not computed yet (graph order)`);
    return v;
  };
  for (const l of m.layers) {
    const c = l.config;
    const ins = l.inbound.map(get);
    const x = ins[0];
    let out: Value;
    switch (l.className) {
      case 'InputLayer': {
        const f = feeds[l.name];
        assert.ok(f, `no feed for ${l.name}`);
        out = f;
        break;
      }
      case 'NotEqual': {
        const constant = l.callArgs?.find((a) => a.kind === 'value');
        assert.ok(x && constant && constant.kind === 'value' && typeof constant.value === 'number');
        out = { data: x.data.map((v) => (v !== constant.value ? 1 : 0)), shape: x.shape };
        break;
      }
      case 'Any': {
        assert.ok(x && (c.axis === -1 || c.axis === x.shape.length) && c.keepdims !== true, 'Any over the last axis');
        const inner = x.shape[x.shape.length - 1]!;
        const n = x.data.length / inner;
        const d = new Float64Array(n);
        for (let i = 0; i < n; i++) for (let j = 0; j < inner; j++) if (x.data[i * inner + j] !== 0) d[i] = 1;
        out = { data: d, shape: x.shape.slice(0, -1) };
        break;
      }
      case 'Masking': {
        assert.ok(x && x.shape.length === 2);
        const [T, F] = x.shape as [number, number];
        const mask = new Uint8Array(T);
        const d = new Float64Array(x.data.length);
        for (let t = 0; t < T; t++) {
          for (let f = 0; f < F; f++) if (x.data[t * F + f] !== c.mask_value) mask[t] = 1;
          if (mask[t]) for (let f = 0; f < F; f++) d[t * F + f] = x.data[t * F + f]!;
        }
        out = { data: d, shape: x.shape, mask };
        break;
      }
      case 'GRU': {
        assert.ok(x && x.shape.length === 2);
        assert.equal(c.reset_after, true);
        assert.equal(c.return_sequences, false);
        const [T, F] = x.shape as [number, number];
        const U = c.units as number;
        const [W, R, b] = weightsOf(m, l.name, ['kernel', 'recurrent_kernel', 'bias']) as [Float64Array, Float64Array, Float64Array];
        const maskFrom = l.inboundKwargs?.mask;
        const mask = maskFrom !== undefined ? Uint8Array.from(get(maskFrom).data) : x.mask;
        let h: Float64Array = new Float64Array(U);
        for (let t = 0; t < T; t++) {
          if (mask && !mask[t]) continue; // masked step: the state carries over
          h = gruStep(x.data, t * F, F, h, U, W, R, b);
        }
        out = { data: h, shape: [U] };
        break;
      }
      case 'Dropout':
        assert.ok(x);
        out = x;
        break;
      case 'Concatenate': {
        const total = ins.reduce((a, v) => a + v.data.length, 0);
        const d = new Float64Array(total);
        let o = 0;
        for (const v of ins) {
          assert.equal(v.shape.length, 1);
          d.set(v.data, o);
          o += v.data.length;
        }
        out = { data: d, shape: [total] };
        break;
      }
      case 'Dense': {
        assert.ok(x && x.shape.length === 1);
        const [W, b] = weightsOf(m, l.name, ['kernel', 'bias']) as [Float64Array, Float64Array];
        const n = c.units as number;
        const inF = x.data.length;
        const pre = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let a = b[j]!;
          for (let i = 0; i < inF; i++) a += x.data[i]! * W[i * n + j]!;
          pre[j] = a;
        }
        values.set(`${l.name}:preactivation`, { data: pre, shape: [n] });
        out = { data: activate(c.activation, pre), shape: [n] };
        break;
      }
      default:
        throw new Error(`test forward pass: layer class ${l.className}`);
    }
    values.set(l.name, out);
  }
  return values;
}

function close(actual: number, expected: number, atol: number, rtol: number): boolean {
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}

// ---------------------------------------------------------------------------------------------------------
// 1–3: the published models

const EXPECTED_GRAPH: Record<(typeof MODEL_FILES)[number], [string, string, string[], Record<string, string>?][]> = {
  'InclusiveClassifier.h5': [
    ['gru_input', 'InputLayer', []],
    ['masking', 'Masking', ['gru_input']],
    ['gru', 'GRU', ['masking']],
    ['hlf_input', 'InputLayer', []],
    ['dropout', 'Dropout', ['gru']],
    ['dropout_1', 'Dropout', ['hlf_input']],
    ['concatenate', 'Concatenate', ['dropout', 'dropout_1']],
    ['dense', 'Dense', ['concatenate']],
    ['dense_1', 'Dense', ['dense']],
  ],
  'myGRUmodel.keras': [
    ['gru_input', 'InputLayer', []],
    ['not_equal', 'NotEqual', ['gru_input']],
    ['masking', 'Masking', ['gru_input']],
    ['any', 'Any', ['not_equal']],
    ['gru', 'GRU', ['masking'], { mask: 'any' }],
    ['hlf_input', 'InputLayer', []],
    ['dropout', 'Dropout', ['gru']],
    ['dropout_1', 'Dropout', ['hlf_input']],
    ['concatenate', 'Concatenate', ['dropout', 'dropout_1']],
    ['dense', 'Dense', ['concatenate']],
    ['dense_1', 'Dense', ['dense']],
  ],
};

for (const file of MODEL_FILES) {
  describe(`published model ${file}`, () => {
    const fx = loadFixture(file);

    test('the fixture was generated from this very file', (t) => {
      const p = needModel(t, file);
      if (!p) return;
      const sha = createHash('sha256').update(readFileSync(p)).digest('hex');
      assert.equal(sha, fx.sha256, `${p} differs from the file the fixture was made from; rerun scripts/keras-reference.py`);
    });

    test('weights equal what h5py reads (shape, dtype, first values, sums, sha256)', async (t) => {
      const p = needModel(t, file);
      if (!p) return;
      const m = await model(p);
      const seen = new Set<string>();
      for (const w of fx.weights) {
        const key = `${w.layer}/${w.weight}`;
        seen.add(key);
        const got = m.weights.get(w.layer)?.find((x) => x.name === w.weight);
        assert.ok(got, `reader has no weight ${key}`);
        assert.deepEqual(got.shape, w.shape, key);
        assert.equal(got.data.length, w.shape.reduce((a, b) => a * b, 1), key);
        assert.equal(w.dtype, 'float32');
        assert.match(got.dtype, /f4$/, key);
        assert.equal(got.source, w.h5_path, key);
        assert.deepEqual(Array.from(got.data.subarray(0, 3)), w.first, `${key} first values`);
        let sum = 0;
        let sumAbs = 0;
        for (const v of got.data) {
          sum += v;
          sumAbs += Math.abs(v);
        }
        assert.ok(close(sum, w.sum, 0, 1e-6) || Math.abs(sum - w.sum) <= 1e-9, `${key} sum ${sum} vs ${w.sum}`);
        assert.ok(close(sumAbs, w.sum_abs, 0, 1e-6), `${key} sum|w| ${sumAbs} vs ${w.sum_abs}`);
        const sha = createHash('sha256').update(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength)).digest('hex');
        assert.equal(sha, w.sha256_f32le, `${key} sha256 of the float32 values`);
      }
      const readKeys = [...m.weights].flatMap(([layer, ws]) => ws.map((w) => `${layer}/${w.name}`));
      assert.deepEqual(readKeys.sort(), [...seen].sort(), 'the reader found exactly the reference weights');
      // Keras order within each layer
      for (const [layer, ws] of m.weights) {
        const ref = fx.weights.filter((w) => w.layer === layer).map((w) => w.weight);
        assert.deepEqual(
          ws.map((w) => w.name),
          ref,
          `${layer}: weight order`,
        );
      }
    });

    test('layer graph: classes, inbound layers, shapes, inputs and outputs', async (t) => {
      const p = needModel(t, file);
      if (!p) return;
      const m = await model(p);
      assert.equal(m.format, fx.format);
      assert.equal(m.kerasVersion, fx.keras_version);
      assert.deepEqual(m.inputs, ['gru_input', 'hlf_input']);
      assert.deepEqual(m.outputs, ['dense_1']);
      assert.deepEqual(
        m.layers.map((l) => [l.name, l.className, l.inbound, ...(l.inboundKwargs ? [l.inboundKwargs] : [])]),
        EXPECTED_GRAPH[file],
      );
      // the same graph as the Python reference read
      assert.deepEqual(
        m.layers.map((l) => ({ name: l.name, class_name: l.className, inbound: l.inbound, inbound_kwargs: l.inboundKwargs ?? {} })),
        fx.graph.layers,
      );
      const byName = new Map(m.layers.map((l) => [l.name, l]));
      const L = (n: string): KerasLayer => byName.get(n)!;
      assert.deepEqual(L('gru_input').shape, [null, 801, 19]);
      assert.deepEqual(L('hlf_input').shape, [null, 14]);
      assert.deepEqual(L('gru').outputShape, [null, 50]);
      assert.deepEqual(L('concatenate').outputShape, [null, 64]);
      assert.deepEqual(L('dense').outputShape, [null, 25]);
      assert.deepEqual(L('dense_1').outputShape, [null, 3]);
      assert.equal(L('gru').config.units, 50);
      assert.equal(L('gru').config.reset_after, true);
      assert.equal(L('masking').config.mask_value, 0);
      assert.equal(L('dense').config.activation, 'relu');
      assert.equal(L('dense_1').config.activation, 'softmax');
      assert.deepEqual(
        m.layers.filter((l) => l.isOperation).map((l) => l.name),
        file.endsWith('.keras') ? ['not_equal', 'any'] : [],
      );
      if (file.endsWith('.keras')) {
        assert.deepEqual(L('not_equal').callArgs, [
          { kind: 'tensor', layer: 'gru_input' },
          { kind: 'value', value: 0 },
        ]);
        assert.deepEqual(L('any').outputShape, [null, 801]);
        assert.equal(m.modelClass, 'Functional');
        assert.equal(m.modelName, 'functional_1');
      } else {
        assert.equal(m.backend, 'tensorflow');
        assert.equal(m.modelClass, 'Model');
        assert.equal(m.modelName, 'model');
      }
      assert.equal((m.trainingConfig as { loss?: string } | undefined)?.loss, 'categorical_crossentropy');
      assert.deepEqual([...m.weights.keys()].sort(), ['dense', 'dense_1', 'gru']);
    });

    test('a float64 forward pass from the read weights reproduces the reference (GRU state, logits, softmax)', async (t) => {
      const p = needModel(t, file);
      if (!p) return;
      const m = await model(p);
      const [T, F] = fx.inputs.gru_input.shape;
      const events = fx.inputs.gru_input.events;
      assert.ok(events.length >= 6);
      const inter = fx.intermediates;
      const ref = (k: string): number[][] => {
        const v = inter[k];
        assert.ok(Array.isArray(v), `fixture has no intermediate ${k}`);
        return v;
      };
      let maxOut = 0;
      let maxLogit = 0;
      for (let e = 0; e < events.length; e++) {
        const ev = events[e]!;
        const rows = f32FromB64(ev.f32le_b64);
        assert.equal(rows.length, ev.rows * F);
        const x = new Float64Array(T * F);
        x.set(rows);
        const hlf = Float64Array.from(f32FromB64(fx.inputs.hlf_input.events[e]!));
        const values = forwardEvent(m, { gru_input: { data: x, shape: [T, F] }, hlf_input: { data: hlf, shape: [14] } });
        const what = `event ${e} (${ev.description})`;
        const gru = values.get('gru')!.data;
        ref('gru')[e]!.forEach((v, k) => assert.ok(close(gru[k]!, v, 1e-9, 0), `${what}: GRU state[${k}] ${gru[k]} vs ${v}`));
        for (const k of ['dense', 'dense:preactivation', 'dense_1:preactivation']) {
          const got = values.get(k)!.data;
          ref(k)[e]!.forEach((v, j) => {
            assert.ok(close(got[j]!, v, 1e-6, 1e-6), `${what}: ${k}[${j}] ${got[j]} vs ${v}`);
            if (k === 'dense_1:preactivation') maxLogit = Math.max(maxLogit, Math.abs(got[j]! - v));
          });
        }
        const out = values.get('dense_1')!.data;
        fx.outputs.dense_1![e]!.forEach((v, j) => {
          assert.ok(close(out[j]!, v, 1e-6, 0), `${what}: output[${j}] ${out[j]} vs ${v}`);
          maxOut = Math.max(maxOut, Math.abs(out[j]! - v));
        });
      }
      t.diagnostic(`max |Δ| softmax ${maxOut.toExponential(2)}, logits ${maxLogit.toExponential(2)}`);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// 4a: the ZIP reader on archives built here

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface ZipSpec {
  name: string;
  data: Uint8Array;
  method?: 0 | 8 | 12;
  flags?: number;
  crc?: number;
}

/** A ZIP archive as `zipfile` writes it: local headers + data, central directory, end record (+ comment). */
function makeZip(entries: ZipSpec[], comment = ''): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const name = Buffer.from(e.name, 'utf8');
    const c = e.crc ?? crc(e.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(e.flags ?? 0, 6);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(c, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(e.flags ?? 0, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(c, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    parts.push(lh, name, body);
    central.push(ch, name);
    offset += lh.length + name.length + body.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const com = Buffer.from(comment, 'utf8');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(com.length, 20);
  return new Uint8Array(Buffer.concat([...parts, ...central, eocd, com]));
}

const TEXT = new TextEncoder().encode('{"hello": "wörld"} '.repeat(50));
const BIN = Uint8Array.from({ length: 3000 }, (_, i) => (i * 37) & 0xff);

function expectError(fn: () => unknown, cls: new (...a: never[]) => HepMlError, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.match(e.message, re);
    return true;
  });
}

describe('ZIP reader', () => {
  test('stored and deflated entries read back, CRC-checked, with an archive comment', () => {
    const bytes = makeZip(
      [
        { name: 'a/stored.bin', data: BIN },
        { name: 'deflated.json', data: TEXT, method: 8 },
        { name: 'empty', data: new Uint8Array(0), method: 8 },
      ],
      'a comment',
    );
    assert.ok(isZip(bytes));
    const z = openZip(bytes, 'test.zip');
    assert.deepEqual(
      z.entries.map((e) => [e.name, e.method, e.size]),
      [
        ['a/stored.bin', 0, BIN.length],
        ['deflated.json', 8, TEXT.length],
        ['empty', 8, 0],
      ],
    );
    assert.ok(z.entries[1]!.compressedSize < TEXT.length);
    assert.deepEqual(z.read('a/stored.bin'), BIN);
    assert.equal(z.readText('deflated.json'), new TextDecoder().decode(TEXT));
    assert.equal(z.read('empty').length, 0);
    assert.equal(z.entry('nope'), undefined);
    expectError(() => z.read('nope'), CorruptDataError, /no entry 'nope'/);
  });

  test('a wrong CRC, corrupt deflate data and truncation are CorruptDataError', () => {
    const badCrc = makeZip([{ name: 'x', data: BIN, crc: crc(BIN) ^ 1 }]);
    expectError(() => openZip(badCrc, 'crc.zip').read('x'), CorruptDataError, /CRC-32 mismatch/);

    const good = makeZip([{ name: 'x', data: TEXT, method: 8 }]);
    const flipped = good.slice();
    flipped[30 + 1 + 3] ^= 0xff; // inside the deflate stream
    expectError(() => openZip(flipped, 'flip.zip').read('x'), CorruptDataError, /ZIP entry 'x'/);

    expectError(() => openZip(good.subarray(0, good.length - 5), 'cut.zip'), CorruptDataError, /end-of-central-directory/);
    expectError(() => openZip(good.subarray(0, 10), 'tiny.zip'), CorruptDataError, /not a complete ZIP/);
    // central directory intact, data cut away: the entry's local header points past the end
    const two = makeZip([
      { name: 'x', data: BIN },
      { name: 'y', data: BIN },
    ]);
    const z = openZip(two, 'two.zip');
    const lh = z.entry('y')!.localHeaderOffset;
    const holed = two.slice();
    holed.fill(0, lh, lh + 30);
    expectError(() => openZip(holed, 'holed.zip').read('y'), CorruptDataError, /no local file header/);
  });

  test('ZIP64, encryption and other compression methods are UnsupportedError', () => {
    const z64 = makeZip([{ name: 'x', data: BIN }]);
    const dv = new DataView(z64.buffer, z64.byteOffset, z64.byteLength);
    const eocd = z64.length - 22;
    dv.setUint16(eocd + 8, 0xffff, true);
    dv.setUint16(eocd + 10, 0xffff, true);
    expectError(() => openZip(z64, 'z64.zip'), UnsupportedError, /ZIP64/);
    expectError(() => openZip(makeZip([{ name: 'x', data: BIN, method: 12 }]), 'bz.zip').read('x'), UnsupportedError, /method 12/);
    expectError(() => openZip(makeZip([{ name: 'x', data: BIN, flags: 1 }]), 'enc.zip').read('x'), UnsupportedError, /encrypted/);
  });

  test('format sniffing', () => {
    assert.equal(isZip(new Uint8Array([0x50, 0x4b, 0x05, 0x06])), false);
    assert.equal(isHdf5(new Uint8Array([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])), true);
    assert.equal(isHdf5(new TextEncoder().encode('\x89HDF')), false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 4b: files that are not (good) Keras models

describe('readKerasModel errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hepml-keras-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Uint8Array | string): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  async function rejects(p: string, cls: new (...a: never[]) => HepMlError, re: RegExp): Promise<void> {
    await assert.rejects(readKerasModel(p), (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      assert.match(e.message, re);
      assert.equal(e.context.file?.startsWith(p), true, `the error names the file: ${e.describe()}`);
      return true;
    });
  }

  test('missing file, directory, SavedModel directory', async () => {
    await rejects(join(dir, 'nope.keras'), InputNotFoundError, /no such file/);
    const d = join(dir, 'adir');
    mkdirSync(d);
    await rejects(d, InputNotFoundError, /directory/);
    const sm = join(dir, 'saved_model');
    mkdirSync(sm);
    writeFileSync(join(sm, 'saved_model.pb'), 'x');
    await rejects(sm, UnsupportedError, /SavedModel/);
  });

  test('empty, text and non-Keras ZIP files', async () => {
    await rejects(write('empty.h5', ''), UnsupportedError, /not a Keras model file.*empty/);
    await rejects(write('text.keras', 'hello, this is not a model'), UnsupportedError, /not a Keras model file.*68 65 6c 6c/);
    await rejects(write('other.zip', makeZip([{ name: 'README.txt', data: TEXT }])), UnsupportedError, /not a Keras 3 model: no config.json/);
    await rejects(write('bad-json.keras', makeZip([{ name: 'config.json', data: TEXT.subarray(0, 30) }])), CorruptDataError, /config.json is not valid JSON/);
    const subclassed = JSON.stringify({ module: 'my', class_name: 'MyModel', config: {} });
    await rejects(
      write('sub.keras', makeZip([{ name: 'config.json', data: new TextEncoder().encode(subclassed) }, { name: 'model.weights.h5', data: BIN }])),
      UnsupportedError,
      /model class 'MyModel'/,
    );
  });

  describe('damaged copies of the published models', () => {
    const keras = modelPath('myGRUmodel.keras');
    const h5 = modelPath('InclusiveClassifier.h5');

    /** The .keras archive rebuilt with config.json edited by `edit`. */
    function rebuilt(edit: (cfg: { config: { layers: { name: string; class_name: string; config: Record<string, unknown> }[] } }) => void): Uint8Array {
      const z = openZip(new Uint8Array(readFileSync(keras)), keras);
      const cfg = JSON.parse(z.readText('config.json')) as Parameters<typeof edit>[0];
      edit(cfg);
      return makeZip([
        { name: 'metadata.json', data: z.read('metadata.json') },
        { name: 'config.json', data: new TextEncoder().encode(JSON.stringify(cfg)), method: 8 },
        { name: 'model.weights.h5', data: z.read('model.weights.h5'), method: 8 },
      ]);
    }
    const layerOf = (cfg: Parameters<Parameters<typeof rebuilt>[0]>[0], name: string) => cfg.config.layers.find((l) => l.name === name)!;

    test('a rebuilt (deflated) archive reads the same as the original', async (t) => {
      if (!needModel(t, 'myGRUmodel.keras')) return;
      const m = await readKerasModel(write('rebuilt.keras', rebuilt(() => {})));
      const orig = await model(keras);
      assert.deepEqual(m.layers, orig.layers);
      for (const [k, ws] of orig.weights) assert.deepEqual(m.weights.get(k), ws);
    });

    test('truncated or bit-flipped files are CorruptDataError', async (t) => {
      if (!needModel(t, 'myGRUmodel.keras') || !needModel(t, 'InclusiveClassifier.h5')) return;
      const kb = new Uint8Array(readFileSync(keras));
      const hb = new Uint8Array(readFileSync(h5));
      for (const n of [100, 5000, Math.floor(kb.length / 2), kb.length - 1]) {
        await rejects(write(`cut${n}.keras`, kb.subarray(0, n)), CorruptDataError, /ZIP|truncated/);
      }
      for (const n of [9, 512, 20000, Math.floor(hb.length / 2), hb.length - 1]) {
        await rejects(write(`cut${n}.h5`, hb.subarray(0, n)), CorruptDataError, /HDF5/);
      }
      const flipped = kb.slice();
      flipped[Math.floor(kb.length * 0.6)] ^= 0x10;
      await rejects(write('flip.keras', flipped), CorruptDataError, /model.weights.h5.*CRC-32 mismatch/);
    });

    test('HDF5 files that are not Keras models', async (t) => {
      if (!needModel(t, 'myGRUmodel.keras')) return;
      const z = openZip(new Uint8Array(readFileSync(keras)), keras);
      await rejects(write('model.weights.h5', z.read('model.weights.h5')), UnsupportedError, /Keras 3 weights file/);
    });

    test('a config that disagrees with the weights names the layer', async (t) => {
      if (!needModel(t, 'myGRUmodel.keras')) return;
      await rejects(
        write('units.keras', rebuilt((c) => void (layerOf(c, 'dense').config.units = 24))),
        CorruptDataError,
        /layer 'dense' \(Dense\): kernel has shape \[64, 25\], expected \[64, 24\]/,
      );
      await rejects(
        write('gru.keras', rebuilt((c) => void (layerOf(c, 'gru').config.units = 49))),
        CorruptDataError,
        /layer 'gru' \(GRU\): kernel has shape \[19, 150\], expected \[19, 147\]/,
      );
      await rejects(
        write('nobias.keras', rebuilt((c) => void (layerOf(c, 'dense_1').config.use_bias = false))),
        CorruptDataError,
        /layer 'dense_1' \(Dense\): 2 variables .* expected 1 \(kernel\)/,
      );
      await rejects(
        write('custom.keras', rebuilt((c) => void (layerOf(c, 'dense_1').class_name = 'DENSE'))),
        UnsupportedError,
        /layer 'dense_1' \(DENSE\): a layer class with variables/,
      );
      await rejects(
        write('renamed.keras', rebuilt((c) => void (layerOf(c, 'dense_1').class_name = 'MyDense'))),
        CorruptDataError,
        /weight group \/layers\/dense_1 belongs to no layer/,
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 4c: config normalisation

describe('kerasGraphFromConfig', () => {
  const dense = (name: string, units: number, extra: Record<string, unknown> = {}) => ({
    class_name: 'Dense',
    config: { name, units, activation: 'relu', use_bias: true, ...extra },
  });
  const summary = (g: ReturnType<typeof kerasGraphFromConfig>) =>
    g.layers.map((l) => [l.name, l.className, l.inbound.join(','), JSON.stringify(l.shape ?? l.outputShape ?? null)]);

  test('Keras 2 Sequential (dict and Keras 2.0 list form): an InputLayer is added, the graph is linear', () => {
    const layers = [dense('d1', 8, { batch_input_shape: [null, 14] }), dense('d2', 3)];
    for (const cfg of [
      { class_name: 'Sequential', config: { name: 'sequential_3', layers } },
      { class_name: 'Sequential', config: layers },
    ]) {
      const g = kerasGraphFromConfig(cfg);
      assert.equal(g.modelClass, 'Sequential');
      assert.deepEqual(summary(g), [
        ['d1_input', 'InputLayer', '', '[null,14]'],
        ['d1', 'Dense', 'd1_input', '[null,8]'],
        ['d2', 'Dense', 'd1', '[null,3]'],
      ]);
      assert.deepEqual(g.inputs, ['d1_input']);
      assert.deepEqual(g.outputs, ['d2']);
    }
  });

  test('Keras 3 Sequential, with an InputLayer or only a build shape', () => {
    const withInput = {
      module: 'keras',
      class_name: 'Sequential',
      config: {
        name: 'seq',
        layers: [
          { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 801, 19], name: 'input_layer' } },
          { module: 'keras.layers', class_name: 'Masking', config: { name: 'masking', mask_value: 0 } },
          { module: 'keras.layers', class_name: 'GRU', config: { name: 'gru', units: 50, reset_after: true } },
          { module: 'keras.layers', class_name: 'Dense', config: { name: 'dense', units: 3, activation: 'softmax' } },
        ],
      },
    };
    assert.deepEqual(summary(kerasGraphFromConfig(withInput)), [
      ['input_layer', 'InputLayer', '', '[null,801,19]'],
      ['masking', 'Masking', 'input_layer', '[null,801,19]'],
      ['gru', 'GRU', 'masking', '[null,50]'],
      ['dense', 'Dense', 'gru', '[null,3]'],
    ]);
    const buildOnly = {
      module: 'keras',
      class_name: 'Sequential',
      config: { name: 'seq', layers: [{ module: 'keras.layers', class_name: 'Dense', config: { name: 'dense', units: 3 }, build_config: { input_shape: [null, 14] } }] },
    };
    assert.deepEqual(summary(kerasGraphFromConfig(buildOnly)), [
      ['dense_input', 'InputLayer', '', '[null,14]'],
      ['dense', 'Dense', 'dense_input', '[null,3]'],
    ]);
    expectError(
      () => kerasGraphFromConfig({ class_name: 'Sequential', config: { layers: [dense('d', 3)] } }),
      UnsupportedError,
      /Sequential model without an input shape/,
    );
  });

  const input = (name: string, shape: (number | null)[]) => ({
    name,
    class_name: 'InputLayer',
    config: { batch_input_shape: shape, name },
    inbound_nodes: [],
  });
  const call = (name: string, cls: string, config: Record<string, unknown>, ...from: string[]) => ({
    name,
    class_name: cls,
    config: { name, ...config },
    inbound_nodes: [from.map((f) => [f, 0, 0, {}])],
  });

  test('functional configs are sorted topologically; single-input Keras 3 endpoints', () => {
    const g = kerasGraphFromConfig({
      class_name: 'Model',
      config: {
        name: 'm',
        layers: [call('out', 'Dense', { units: 2 }, 'cat'), call('cat', 'Concatenate', { axis: -1 }, 'a', 'b'), input('b', [null, 3]), input('a', [null, 4])],
        input_layers: [
          ['a', 0, 0],
          ['b', 0, 0],
        ],
        output_layers: ['out', 0, 0],
      },
    });
    assert.deepEqual(summary(g), [
      ['b', 'InputLayer', '', '[null,3]'],
      ['a', 'InputLayer', '', '[null,4]'],
      ['cat', 'Concatenate', 'a,b', '[null,7]'],
      ['out', 'Dense', 'cat', '[null,2]'],
    ]);
    assert.deepEqual(g.inputs, ['a', 'b']);
    assert.deepEqual(g.outputs, ['out']);
  });

  test('shared layers, multi-output tensors, nested models, unknown inputs and cycles are refused', () => {
    const base = (layers: unknown[]) => ({
      class_name: 'Functional',
      config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['d', 0, 0]] },
    });
    const shared = { ...call('d', 'Dense', { units: 2 }, 'x'), inbound_nodes: [[['x', 0, 0, {}]], [['x', 0, 0, {}]]] };
    expectError(() => kerasGraphFromConfig(base([input('x', [null, 3]), shared])), UnsupportedError, /layer 'd': is called 2 times/);
    const secondOut = { ...call('d', 'Dense', { units: 2 }, 'x'), inbound_nodes: [[['x', 0, 1, {}]]] };
    expectError(() => kerasGraphFromConfig(base([input('x', [null, 3]), secondOut])), UnsupportedError, /several outputs/);
    const nested = { name: 'd', class_name: 'Functional', config: {}, inbound_nodes: [[['x', 0, 0, {}]]] };
    expectError(() => kerasGraphFromConfig(base([input('x', [null, 3]), nested])), UnsupportedError, /nested model/);
    expectError(() => kerasGraphFromConfig(base([input('x', [null, 3]), call('d', 'Dense', { units: 2 }, 'y')])), CorruptDataError, /'y', which is not a layer/);
    const cyc = base([input('x', [null, 3]), call('d', 'Add', {}, 'x', 'e'), call('e', 'Dense', { units: 3 }, 'd')]);
    expectError(() => kerasGraphFromConfig(cyc), CorruptDataError, /cycle/);
  });
});
