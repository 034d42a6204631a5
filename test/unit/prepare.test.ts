/**
 * The prepare stage on synthetic feature files: labels and one-hot, exact undersampling, stratified split
 * sizes, min-max scaling against hand-computed min/max (both fit modes), row content preserved, determinism
 * (byte-identical runs; independent of input batch sizes and of the memory budget, i.e. buckets on disk vs
 * in memory), all-or-nothing outputs after a failure, schema and usage errors, and the building blocks
 * (PRNG, class parsing, sizes, scaler file).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpcStreamWriter, fromRecordBatch, makeSchema, openIpcStream, toRecordBatch } from '../../src/columnar/index.js';
import { type ColumnData, type ColumnType, concatColumns } from '../../src/root/columns.js';
import { CorruptDataError, InputNotFoundError, SchemaMismatchError, SelectionError, UsageError } from '../../src/errors.js';
import {
  MinMaxAccumulator,
  Rng,
  applyMinMax,
  fitMinMax,
  loadScaler,
  parseClassArg,
  parseFraction,
  parseScaler,
  parseSize,
  prepare,
  randomPermutation,
  randomPrefix,
  resolveClasses,
  splitmix64,
  type PrepareOptions,
  type PrepareSummary,
} from '../../src/prepare/index.js';
import { rng } from '../fixtures/columnar-data.js';

// ---------------------------------------------------------------------------------------------------
// Synthetic feature files: GRU_input[0] of every row is a unique id = class * 100000 + row.

const F = 14;
const f32 = (size: number): ColumnType => ({ kind: 'fixed', size, child: { kind: 'primitive', dtype: 'float32' } });
const fixedF32 = (size: number, values: Float32Array): ColumnData => ({ kind: 'fixed', size, child: { kind: 'primitive', dtype: 'float32', values } });

interface FeatureFile {
  path: string;
  ids: number[];
  /** HLF values by id (float32, as written). */
  hlf: Map<number, Float32Array | Float64Array>;
}

interface GenOpts {
  rows: number;
  cls: number;
  gru?: number;
  batch?: number;
  seed?: number;
  labels?: boolean;
  extras?: boolean; // list<float32>, utf8 and bool columns too
  reorder?: boolean; // a different column order (same columns)
  hlf?: (row: number, j: number) => number;
  metadata?: Record<string, string>;
  dtype?: 'float32' | 'float64';
}

async function writeFeatures(path: string, o: GenOpts): Promise<FeatureFile> {
  const W = o.gru ?? 19;
  const batch = o.batch ?? 64;
  const r = rng(o.seed ?? o.cls + 1);
  const dtype = o.dtype ?? 'float32';
  let fields: { name: string; type: ColumnType }[] = [
    { name: 'HLF_input', type: { kind: 'fixed', size: F, child: { kind: 'primitive', dtype } } },
    { name: 'GRU_input', type: f32(W) },
    { name: 'n_particles', type: { kind: 'primitive', dtype: 'int32' } },
  ];
  if (o.labels ?? true) fields.push({ name: 'label', type: { kind: 'primitive', dtype: 'int32' } }, { name: 'encoded_label', type: f32(3) });
  if (o.extras) {
    fields.push(
      { name: 'pts', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } },
      { name: 'tag', type: { kind: 'utf8' } },
      { name: 'flag', type: { kind: 'primitive', dtype: 'bool' } },
    );
  }
  if (o.reorder) fields = [...fields].reverse();
  const schema = makeSchema(fields, o.metadata ?? { 'hep-ml.features.hlf_names': JSON.stringify(Array.from({ length: F }, (_, j) => `hlf${j}`)), origin: 'synthetic' });
  const w = await IpcStreamWriter.open(path, { schema });
  const ids: number[] = [];
  const hlfById = new Map<number, Float32Array | Float64Array>();
  const enc = new TextEncoder();
  for (let a = 0; a < o.rows || (a === 0 && o.rows === 0); a += batch) {
    const m = Math.min(batch, o.rows - a);
    const hv = dtype === 'float32' ? new Float32Array(m * F) : new Float64Array(m * F);
    for (let i = 0; i < m; i++) for (let j = 0; j < F; j++) hv[i * F + j] = o.hlf ? o.hlf(a + i, j) : Math.fround((r() - 0.3) * (j + 1) * 10);
    const gru = new Float32Array(m * W);
    for (let i = 0; i < m; i++) {
      const id = o.cls * 100000 + a + i;
      ids.push(id);
      hlfById.set(id, dtype === 'float32' ? Float32Array.from(hv.subarray(i * F, i * F + F)) : Float64Array.from(hv.subarray(i * F, i * F + F)));
      gru[i * W] = id;
      for (let j = 1; j < W; j++) gru[i * W + j] = id * 0.5 + j;
    }
    const cols: Record<string, ColumnData> = {
      HLF_input: { kind: 'fixed', size: F, child: { kind: 'primitive', dtype, values: hv } },
      GRU_input: fixedF32(W, gru),
      n_particles: { kind: 'primitive', dtype: 'int32', values: Int32Array.from({ length: m }, (_, i) => (o.cls * 100000 + a + i) % 801) },
      label: { kind: 'primitive', dtype: 'int32', values: new Int32Array(m).fill(99) },
      encoded_label: fixedF32(3, new Float32Array(m * 3).fill(7)),
    };
    if (o.extras) {
      const lens = Array.from({ length: m }, (_, i) => (o.cls * 100000 + a + i) % 4);
      const off = new Int32Array(m + 1);
      for (let i = 0; i < m; i++) off[i + 1] = off[i]! + lens[i]!;
      const vals = new Float32Array(off[m]!);
      for (let i = 0; i < m; i++) for (let k = 0; k < lens[i]!; k++) vals[off[i]! + k] = (o.cls * 100000 + a + i) + k / 10;
      cols.pts = { kind: 'list', offsets: off, child: { kind: 'primitive', dtype: 'float32', values: vals } };
      const strs = Array.from({ length: m }, (_, i) => enc.encode(`id-${o.cls * 100000 + a + i}`));
      const so = new Int32Array(m + 1);
      strs.forEach((s, i) => (so[i + 1] = so[i]! + s.length));
      const bytes = new Uint8Array(so[m]!);
      strs.forEach((s, i) => bytes.set(s, so[i]!));
      cols.tag = { kind: 'utf8', offsets: so, bytes };
      cols.flag = { kind: 'primitive', dtype: 'bool', values: Uint8Array.from({ length: m }, (_, i) => (a + i) % 3 === 0 ? 1 : 0) };
    }
    if (m > 0) await w.write(toRecordBatch(schema, { entryStart: 0, entryStop: m, columns: fields.map((f) => ({ name: f.name, data: cols[f.name]! })) }));
    if (m <= 0) break;
  }
  await w.close();
  return { path, ids, hlf: hlfById };
}

interface Table {
  columns: Map<string, ColumnData>;
  types: Map<string, string>;
  names: string[];
  metadata: Map<string, string>;
  rows: number;
  batches: number[];
}

async function readTable(path: string): Promise<Table> {
  const s = await openIpcStream(path);
  const parts = new Map<string, ColumnData[]>();
  const batches: number[] = [];
  let rows = 0;
  for await (const rb of s.batches) {
    batches.push(rb.numRows);
    rows += rb.numRows;
    for (const c of fromRecordBatch(rb).columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  const names = s.schema.fields.map((f) => f.name);
  return {
    columns: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])),
    types: new Map(s.schema.fields.map((f) => [f.name, String(f.type)])),
    names,
    metadata: s.schema.metadata,
    rows,
    batches,
  };
}

const vals = (c: ColumnData | undefined): ArrayLike<number> => {
  let x = c!;
  while (x.kind === 'fixed') x = x.child;
  return (x as { values: ArrayLike<number> }).values;
};

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-prepare-unit-'));
}

async function threeClasses(d: string, rows: [number, number, number], o: Partial<GenOpts> = {}): Promise<FeatureFile[]> {
  return Promise.all(['qcd', 'tt', 'wjets'].map((n, i) => writeFeatures(join(d, `${n}.arrow`), { rows: rows[i]!, cls: i, ...o })));
}

function classesOf(files: FeatureFile[], names = ['qcd', 'ttbar', 'wjets']): PrepareOptions['classes'] {
  return files.map((f, i) => ({ name: names[i]!, files: [f.path] }));
}

/** Every output file's bytes, by name. */
function outBytes(dir: string): Record<string, Buffer> {
  return Object.fromEntries(['train.arrow', 'test.arrow', 'scaler.json', 'prepare.json'].map((n) => [n, readFileSync(join(dir, n))]));
}

// ---------------------------------------------------------------------------------------------------

describe('prepare: balance, split, labels, content', () => {
  test('--undersample keeps exactly the smallest class count of every class; split sizes are round(f·kept) per class', async () => {
    const d = tmp();
    try {
      const files = await threeClasses(d, [137, 400, 251]);
      const s = await prepare({ classes: classesOf(files), out: join(d, 'out'), undersample: true, testFraction: 0.2 });
      assert.deepEqual(s.classes.map((c) => [c.name, c.label, c.rows, c.kept, c.train, c.test]), [
        ['qcd', 0, 137, 137, 110, 27],
        ['ttbar', 1, 400, 137, 110, 27],
        ['wjets', 2, 251, 137, 110, 27],
      ]);
      assert.deepEqual(s.rows, { input: 788, kept: 411, train: 330, test: 81 });
      const byId = new Map<number, number>();
      files.forEach((f, c) => f.ids.forEach((id) => byId.set(id, c)));
      const seen = new Set<number>();
      for (const [split, n] of [['train', 110], ['test', 27]] as const) {
        const t = await readTable(join(d, 'out', `${split}.arrow`));
        const gru = vals(t.columns.get('GRU_input'));
        const label = vals(t.columns.get('label'));
        const onehot = vals(t.columns.get('encoded_label'));
        const counts = [0, 0, 0];
        for (let i = 0; i < t.rows; i++) {
          const id = gru[i * 19]!;
          const c = byId.get(id);
          assert.notEqual(c, undefined, `row ${i}: id ${id} is an input row`);
          assert.ok(!seen.has(id), `id ${id} appears once over train and test`);
          seen.add(id);
          assert.equal(label[i], c, 'label = the class of the input row');
          assert.deepEqual(Array.from(onehot).slice(i * 3, i * 3 + 3), [0, 1, 2].map((k) => (k === c ? 1 : 0)), 'one-hot of the label');
          counts[c!]!++;
        }
        assert.deepEqual(counts, [n, n, n], `${split}: exact per-class counts`);
        // Classes are mixed (shuffled), not in blocks: the first 30 rows are not all one class.
        assert.ok(new Set(Array.from(label).slice(0, 30)).size > 1, `${split} is shuffled across classes`);
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('without --undersample every row is kept; per-class rounding half up (f = 0.25: 7 → 2, 10 → 3, 13 → 3)', async () => {
    const d = tmp();
    try {
      const files = await threeClasses(d, [7, 10, 13], { batch: 3 });
      const s = await prepare({ classes: classesOf(files), out: join(d, 'out'), testFraction: 0.25 });
      assert.deepEqual(s.classes.map((c) => [c.kept, c.train, c.test]), [[7, 5, 2], [10, 7, 3], [13, 10, 3]]);
      const train = await readTable(join(d, 'out', 'train.arrow'));
      const test = await readTable(join(d, 'out', 'test.arrow'));
      const ids = [...Array.from(vals(train.columns.get('GRU_input'))).filter((_, i) => i % 19 === 0), ...Array.from(vals(test.columns.get('GRU_input'))).filter((_, i) => i % 19 === 0)];
      assert.deepEqual([...ids].sort((a, b) => a - b), files.flatMap((f) => f.ids).sort((a, b) => a - b), 'the multiset of rows is the input');
      // 0.15 · 10 is 1.4999999999999998 in binary: still rounded half up to 2
      const s2 = await prepare({ classes: classesOf(files), out: join(d, 'out2'), testFraction: 0.15 });
      assert.equal(s2.classes[1]!.test, 2);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('every output row carries its input row unchanged (GRU_input, n_particles, lists, strings, bools), in bucket and in-memory mode', async () => {
    const d = tmp();
    try {
      const files = await threeClasses(d, [40, 60, 50], { extras: true, batch: 7 });
      const inputs = new Map<number, { gru: number[]; np: number; pts: number[]; tag: string; flag: number }>();
      for (const f of files) {
        const t = await readTable(f.path);
        const gru = vals(t.columns.get('GRU_input'));
        const pts = t.columns.get('pts') as Extract<ColumnData, { kind: 'list' }>;
        const tag = t.columns.get('tag') as Extract<ColumnData, { kind: 'utf8' }>;
        for (let i = 0; i < t.rows; i++) {
          inputs.set(gru[i * 19]!, {
            gru: Array.from(gru).slice(i * 19, i * 19 + 19),
            np: vals(t.columns.get('n_particles'))[i]!,
            pts: Array.from(vals(pts.child)).slice(pts.offsets[i]!, pts.offsets[i + 1]!),
            tag: new TextDecoder().decode(tag.bytes.subarray(tag.offsets[i]!, tag.offsets[i + 1]!)),
            flag: vals(t.columns.get('flag'))[i]!,
          });
        }
      }
      const outs: Record<string, Buffer>[] = [];
      for (const memory of ['1 GB', '3 kB']) {
        const out = join(d, `out-${memory.replace(' ', '')}`);
        const s = await prepare({ classes: classesOf(files), out, memory, batchSize: 4 });
        assert.equal(s.run.inMemory, memory === '1 GB');
        if (memory !== '1 GB') assert.ok(s.run.buckets.train > 5, `many buckets (${s.run.buckets.train})`);
        let n = 0;
        for (const split of ['train', 'test']) {
          const t = await readTable(join(out, `${split}.arrow`));
          assert.deepEqual(t.names, ['HLF_input', 'GRU_input', 'n_particles', 'label', 'encoded_label', 'pts', 'tag', 'flag']);
          const gru = vals(t.columns.get('GRU_input'));
          const pts = t.columns.get('pts') as Extract<ColumnData, { kind: 'list' }>;
          const tag = t.columns.get('tag') as Extract<ColumnData, { kind: 'utf8' }>;
          for (let i = 0; i < t.rows; i++) {
            const want = inputs.get(gru[i * 19]!)!;
            assert.deepEqual(Array.from(gru).slice(i * 19, i * 19 + 19), want.gru);
            assert.equal(vals(t.columns.get('n_particles'))[i], want.np);
            assert.deepEqual(Array.from(vals(pts.child)).slice(pts.offsets[i]!, pts.offsets[i + 1]!), want.pts);
            assert.equal(new TextDecoder().decode(tag.bytes.subarray(tag.offsets[i]!, tag.offsets[i + 1]!)), want.tag);
            assert.equal(vals(t.columns.get('flag'))[i], want.flag);
            n++;
          }
        }
        assert.equal(n, 150);
        outs.push(outBytes(out));
      }
      assert.deepEqual(outs[0], outs[1], 'buckets on disk give the same bytes as in memory');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('output schema: input columns in order, label Int32 and encoded_label [K] replaced in place or appended; metadata of the first file plus hep-ml.prepare', async () => {
    const d = tmp();
    try {
      const a = await writeFeatures(join(d, 'a.arrow'), { rows: 20, cls: 0, labels: false, metadata: { origin: 'first' } });
      const b = await writeFeatures(join(d, 'b.arrow'), { rows: 20, cls: 1, reorder: true, metadata: { origin: 'second' } });
      await prepare({ classes: [{ name: 'sig', files: [a.path] }, { name: 'bkg', files: [b.path] }], out: join(d, 'out') });
      const t = await readTable(join(d, 'out', 'train.arrow'));
      assert.deepEqual(t.names, ['HLF_input', 'GRU_input', 'n_particles', 'label', 'encoded_label']);
      assert.equal(t.types.get('label'), 'Int32');
      assert.equal(t.types.get('encoded_label'), 'FixedSizeList[2]<Float32>');
      assert.equal(t.types.get('HLF_input'), 'FixedSizeList[14]<Float32>');
      assert.equal(t.metadata.get('origin'), 'first');
      const rec = JSON.parse(t.metadata.get('hep-ml.prepare')!);
      assert.equal(rec.split, 'train');
      assert.deepEqual(rec.labels, ['sig', 'bkg']);
      assert.equal(rec.seed, 42);
      assert.equal(rec.scalerFit, 'all');
      assert.deepEqual(rec.classes.map((c: { name: string; rows: number }) => [c.name, c.rows]), [['sig', 20], ['bkg', 20]]);
      const test2 = await readTable(join(d, 'out', 'test.arrow'));
      assert.equal(JSON.parse(test2.metadata.get('hep-ml.prepare')!).split, 'test');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('test fraction 0: an empty but valid test.arrow; batches of --batch-size rows', async () => {
    const d = tmp();
    try {
      const files = await threeClasses(d, [10, 11, 12]);
      const s = await prepare({ classes: classesOf(files), out: join(d, 'out'), testFraction: 0, batchSize: 8 });
      assert.equal(s.rows.test, 0);
      const test = await readTable(join(d, 'out', 'test.arrow'));
      assert.equal(test.rows, 0);
      assert.ok(test.names.includes('encoded_label'));
      const train = await readTable(join(d, 'out', 'train.arrow'));
      assert.deepEqual(train.batches, [8, 8, 8, 8, 1]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('prepare: scaling', () => {
  test('--scaler-fit all: min/max over every input row of every class (before undersampling); max == min → 0.5; NaN ignored and kept', async () => {
    const d = tmp();
    try {
      // feature 0: a ramp; feature 1: constant 3; feature 2: NaN on every 5th row; others random
      const hlf = (cls: number) => (row: number, j: number) =>
        j === 0 ? cls * 1000 + row : j === 1 ? 3 : j === 2 ? (row % 5 === 0 ? NaN : Math.fround(row * 0.25 - cls)) : Math.fround(Math.sin(row * 7 + j + cls));
      const files = await Promise.all([30, 80, 50].map((n, c) => writeFeatures(join(d, `c${c}.arrow`), { rows: n, cls: c, hlf: hlf(c) })));
      const s = await prepare({ classes: classesOf(files), out: join(d, 'out'), undersample: true });
      const scaler = await loadScaler(join(d, 'out', 'scaler.json'));
      assert.equal(scaler.fit, 'all');
      assert.equal(scaler.rows, 160, 'fit on all 160 input rows, not the 90 kept');
      assert.equal(s.scalerRows, 160);
      assert.deepEqual(scaler.features, Array.from({ length: F }, (_, j) => `hlf${j}`));
      // hand-computed from every input row
      const all = files.flatMap((f) => [...f.hlf.values()]);
      for (let j = 0; j < F; j++) {
        const col = all.map((v) => v[j]!).filter((x) => !Number.isNaN(x));
        assert.equal(scaler.min[j], Math.min(...col), `min of feature ${j}`);
        assert.equal(scaler.max[j], Math.max(...col), `max of feature ${j}`);
      }
      assert.equal(scaler.min[0], 0);
      assert.equal(scaler.max[0], 2049);
      const byId = new Map(files.flatMap((f) => [...f.hlf.entries()]));
      for (const split of ['train', 'test']) {
        const t = await readTable(join(d, 'out', `${split}.arrow`));
        const gru = vals(t.columns.get('GRU_input'));
        const h = vals(t.columns.get('HLF_input'));
        for (let i = 0; i < t.rows; i++) {
          const raw = byId.get(gru[i * 19]!)!;
          for (let j = 0; j < F; j++) {
            const x = raw[j]!;
            const want = j === 1 ? 0.5 : Number.isNaN(x) ? NaN : Math.fround((x - scaler.min[j]!) / (scaler.max[j]! - scaler.min[j]!));
            assert.ok(Object.is(h[i * F + j], want), `${split} row ${i} feature ${j}: ${h[i * F + j]} vs ${want}`);
          }
        }
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('--scaler-fit train: min/max over the training rows only; test rows may fall outside [0, 1] (no clipping)', async () => {
    const d = tmp();
    try {
      const noise = (row: number, j: number) => { const x = Math.sin(row * 12.9898 + j * 78.233) * 43758.5453; return x - Math.floor(x); };
      const files = await threeClasses(d, [60, 90, 70], { hlf: (row, j) => noise(row, j) * (j + 1) - 7 * j, dtype: 'float64' });
      for (const memory of ['1 GB', '4 kB']) {
        const out = join(d, `out-${memory.replace(' ', '')}`);
        await prepare({ classes: classesOf(files), out, undersample: true, scalerFit: 'train', memory, batchSize: 8 });
        const scaler = await loadScaler(join(out, 'scaler.json'));
        assert.equal(scaler.fit, 'train');
        const byId = new Map(files.flatMap((f) => [...f.hlf.entries()]));
        const train = await readTable(join(out, 'train.arrow'));
        assert.equal(scaler.rows, train.rows);
        const trainIds = Array.from(vals(train.columns.get('GRU_input'))).filter((_, i) => i % 19 === 0);
        for (let j = 0; j < F; j++) {
          const col = trainIds.map((id) => byId.get(id)![j]!);
          assert.equal(scaler.min[j], Math.min(...col));
          assert.equal(scaler.max[j], Math.max(...col));
        }
        const test = await readTable(join(out, 'test.arrow'));
        const gru = vals(test.columns.get('GRU_input'));
        const h = vals(test.columns.get('HLF_input'));
        let outside = 0;
        for (let i = 0; i < test.rows; i++) {
          const raw = byId.get(gru[i * 19]!)!;
          for (let j = 0; j < F; j++) {
            const want = Math.fround((raw[j]! - scaler.min[j]!) / (scaler.max[j]! - scaler.min[j]!));
            assert.equal(h[i * F + j], want);
            if (want < 0 || want > 1) outside++;
          }
        }
        assert.ok(outside > 0, 'some test values fall outside [0, 1] and are kept');
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('fitMinMax / applyMinMax: hand-computed values, constant features, NaN and ±Infinity, no finite values', () => {
    const values = Float32Array.from([1, 5, NaN, 2, 3, 5, Infinity, 2, 2, 5, NaN, 2]); // 3 rows of 4
    const s = fitMinMax(values, 4, { column: 'x', fit: 'test' });
    assert.deepEqual(s.min, [1, 5, null, 2]);
    assert.deepEqual(s.max, [3, 5, null, 2]);
    assert.equal(s.rows, 3);
    const out = applyMinMax(s, values);
    assert.deepEqual(Array.from(out), [0, 0.5, NaN, 0.5, 1, 0.5, Infinity, 0.5, 0.5, 0.5, NaN, 0.5]);
    // a value seen outside the fit
    assert.deepEqual(Array.from(applyMinMax(s, [5, 1, 7, -1])), [2, 0.5, 0.5, 0.5]);
    assert.throws(() => applyMinMax(s, [1, 2, 3]), RangeError);
    const acc = new MinMaxAccumulator(2);
    acc.addRow([1, 2, 9, 9], 0);
    acc.addRow([1, 2, -4, 10], 1);
    assert.deepEqual(acc.scaler().min, [-4, 2]);
  });

  test('loadScaler / parseScaler: round trip and refusals', async () => {
    const d = tmp();
    try {
      const s = fitMinMax([0, 1, 2, 3], 2, { features: ['a', 'b'] });
      const p = join(d, 's.json');
      writeFileSync(p, JSON.stringify(s));
      assert.deepEqual(await loadScaler(p), s);
      await assert.rejects(loadScaler(join(d, 'nope.json')), InputNotFoundError);
      writeFileSync(p, '{not json');
      await assert.rejects(loadScaler(p), CorruptDataError);
      assert.throws(() => parseScaler({ format: 'other' }), SchemaMismatchError);
      assert.throws(() => parseScaler({ ...s, max: [1] }), SchemaMismatchError);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('prepare: determinism', () => {
  test('same inputs and seed → byte-identical outputs; another seed differs; input batch sizes and memory budget change nothing', async () => {
    const d = tmp();
    try {
      const a = await threeClasses(d, [50, 90, 70], { batch: 64 });
      const aBytes = readFileSync(a[1]!.path);
      const run = async (name: string, files: FeatureFile[], extra: Partial<PrepareOptions> = {}) => {
        const out = join(d, name);
        const s = await prepare({ classes: classesOf(files), out, undersample: true, scalerFit: 'train', batchSize: 16, ...extra });
        return { bytes: outBytes(out), s };
      };
      const r1 = await run('o1', a);
      const r2 = await run('o2', a);
      assert.deepEqual(r1.bytes, r2.bytes, 'two runs are byte-identical');
      // the same rows at the same paths, written in batches of 1, 13 and 1000 rows
      const b = await Promise.all([50, 90, 70].map((n, i) => writeFeatures(a[i]!.path, { rows: n, cls: i, batch: [1, 13, 1000][i] })));
      assert.notDeepEqual(aBytes, readFileSync(b[1]!.path), 'the inputs differ in batching');
      const r3 = await run('o3', b);
      assert.deepEqual(r1.bytes, r3.bytes, 'input batch sizes do not matter');
      const r4 = await run('o4', b, { memory: '2 kB' });
      assert.ok(!r4.s.run.inMemory && r4.s.run.buckets.train >= 6 && r4.s.run.buckets.test >= 2, JSON.stringify(r4.s.run));
      assert.deepEqual(r1.bytes, r4.bytes, 'many buckets on disk give the same bytes as in memory');
      const r5 = await run('o5', a, { seed: 43 });
      assert.notDeepEqual(r1.bytes['train.arrow'], r5.bytes['train.arrow'], 'another seed, another order');
      assert.notDeepEqual(r1.bytes['scaler.json'], r5.bytes['scaler.json'], 'another seed, other train rows');
      assert.equal(r5.s.rows.train, r1.s.rows.train);
      // the temporary directory is gone
      for (const o of ['o1', 'o4']) assert.deepEqual(readdirSync(join(d, o)).sort(), ['prepare.json', 'scaler.json', 'test.arrow', 'train.arrow']);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('Rng: fixed streams, bounds, permutations', () => {
    const a = new Rng(42, 'x');
    const b = new Rng(42, 'x');
    const c = new Rng(42, 'y');
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    assert.deepEqual(sa, Array.from({ length: 8 }, () => b.nextU32()));
    assert.notDeepEqual(sa, Array.from({ length: 8 }, () => c.nextU32()));
    const r = new Rng(1);
    const hist = new Array(7).fill(0);
    for (let i = 0; i < 7000; i++) hist[r.below(7)]++;
    assert.ok(hist.every((h) => h > 850 && h < 1150), String(hist));
    const p = randomPermutation(1000, new Rng(5));
    assert.deepEqual(Array.from(p).sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    const q = randomPrefix(100, new Rng(5), 10);
    assert.deepEqual(Array.from(q).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(randomPermutation(0, new Rng(1)).length, 0);
    // pinned: the stream must never change (outputs are promised to be reproducible across versions)
    assert.deepEqual(Array.from({ length: 3 }, ((g) => () => g.nextU32())(new Rng(42, 'prepare/order/train'))), [714032493, 3770738681, 2911185958]);
  });

  test('Rng: reference vectors of xoshiro128** (state 1, 2, 3, 4) and splitmix64 (state 0)', () => {
    const g = Object.assign(new Rng(0), { s0: 1, s1: 2, s2: 3, s3: 4 });
    assert.deepEqual(Array.from({ length: 5 }, () => g.nextU32()), [11520, 0, 5927040, 70819200, 2031721883]);
    const [st, z] = splitmix64(0n);
    assert.equal(z, 0xe220a8397b1dcdafn);
    assert.equal(splitmix64(st)[1], 0x6e789e6aa1b965f4n);
  });
});

describe('prepare: failures', () => {
  test('a failure while writing leaves no output file and no temporary directory; earlier outputs are untouched', async () => {
    const d = tmp();
    try {
      const files = await threeClasses(d, [40, 40, 40]);
      const out = join(d, 'out');
      await prepare({ classes: classesOf(files), out });
      const before = outBytes(out);
      for (const memory of ['1 GB', '3 kB']) {
        let n = 0;
        await assert.rejects(
          prepare({
            classes: classesOf(files),
            out,
            seed: 7,
            memory,
            batchSize: 4,
            onProgress: (p) => {
              if (p.phase === 'write' && ++n === 5) throw new Error('boom');
            },
          }),
          /boom/,
        );
        assert.deepEqual(readdirSync(out).sort(), ['prepare.json', 'scaler.json', 'test.arrow', 'train.arrow'], `no temp files left (${memory})`);
        assert.deepEqual(outBytes(out), before, 'the previous outputs are untouched');
      }
      const fresh = join(d, 'fresh');
      const bad = join(d, 'bad.arrow');
      writeFileSync(bad, Buffer.concat([readFileSync(files[2]!.path).subarray(0, 3000)]));
      await assert.rejects(prepare({ classes: [...classesOf(files.slice(0, 2)), { name: 'wjets', files: [bad] }], out: fresh }), (e: unknown) => {
        assert.ok(e instanceof CorruptDataError, String(e));
        assert.equal(e.context.file, bad);
        return true;
      });
      assert.deepEqual(readdirSync(fresh), [], 'a truncated input: nothing written');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('schema errors name the file: no HLF_input, HLF_input not a float fixed list, inputs that differ', async () => {
    const d = tmp();
    try {
      const good = await writeFeatures(join(d, 'good.arrow'), { rows: 10, cls: 0 });
      const other = await writeFeatures(join(d, 'other.arrow'), { rows: 10, cls: 1, gru: 7 });
      const extra = await writeFeatures(join(d, 'extra.arrow'), { rows: 10, cls: 1, extras: true });
      const noHlf = join(d, 'nohlf.arrow');
      {
        const schema = makeSchema([{ name: 'x', type: { kind: 'primitive', dtype: 'float32' } }]);
        const w = await IpcStreamWriter.open(noHlf, { schema });
        await w.write(toRecordBatch(schema, { entryStart: 0, entryStop: 2, columns: [{ name: 'x', data: { kind: 'primitive', dtype: 'float32', values: new Float32Array(2) } }] }));
        await w.close();
      }
      const err = async (classes: PrepareOptions['classes'], re: RegExp, file: string, extra2: Partial<PrepareOptions> = {}) =>
        assert.rejects(prepare({ classes, out: join(d, 'out'), ...extra2 }), (e: unknown) => {
          assert.ok(e instanceof SchemaMismatchError, String(e));
          assert.match(e.message, re);
          assert.equal(e.context.file, file);
          return true;
        });
      await err([{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [noHlf] }], /no column 'HLF_input'.*columns: x \(float32\)/, noHlf);
      await err([{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [other.path] }], /column 'GRU_input' is fixed<7, float32> here, fixed<19, float32>/, other.path);
      await err([{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [extra.path] }], /extra column\(s\) pts, tag, flag/, extra.path);
      await err([{ name: 'qcd', files: [good.path] }], /column 'n_particles' is int32; prepare scales a fixed-size list/, good.path, { scaleColumn: 'n_particles' });
      assert.ok(!existsSync(join(d, 'out')), 'schema errors come before the output directory is created');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('missing input → InputNotFoundError, not Arrow → CorruptDataError, a class without rows → SelectionError', async () => {
    const d = tmp();
    try {
      const good = await writeFeatures(join(d, 'good.arrow'), { rows: 10, cls: 0 });
      const empty = await writeFeatures(join(d, 'empty.arrow'), { rows: 0, cls: 1 });
      const text = join(d, 'text.arrow');
      writeFileSync(text, 'hello, this is not arrow\n');
      const out = join(d, 'out');
      await assert.rejects(prepare({ classes: [{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [join(d, 'missing.arrow')] }], out }), (e: unknown) => e instanceof InputNotFoundError && e.context.file === join(d, 'missing.arrow'));
      await assert.rejects(prepare({ classes: [{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [text] }], out }), (e: unknown) => e instanceof CorruptDataError && e.context.file === text);
      await assert.rejects(prepare({ classes: [{ name: 'qcd', files: [good.path] }, { name: 'tt', files: [empty.path] }], out }), (e: unknown) => {
        assert.ok(e instanceof SelectionError);
        assert.match(e.message, /class 'tt' has no rows/);
        return true;
      });
      assert.deepEqual(readdirSync(out), [], 'nothing left in the output directory');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('prepare: classes, labels, sizes', () => {
  test('default labels, aliases, next free labels, explicit labels', () => {
    const r = (...a: string[]) => resolveClasses(a.map(parseClassArg)).map((c) => `${c.name}:${c.label}:${c.files.join('+')}`);
    assert.deepEqual(r('wjets=w.arrow', 'qcd=q.arrow', 'ttbar=t.arrow'), ['qcd:0:q.arrow', 'ttbar:1:t.arrow', 'wjets:2:w.arrow']);
    assert.deepEqual(r('QCD=q', 'tt=t1', 'W=w', 'ttbar=t2,t3'), ['QCD:0:q', 'tt:1:t1+t2+t3', 'W:2:w']);
    assert.deepEqual(r('wlnu=w', 'qcd=q', 'tt=t', 'zjets=z'), ['qcd:0:q', 'tt:1:t', 'wlnu:2:w', 'zjets:3:z']);
    assert.deepEqual(r('sig=s', 'bkg=b1', 'bkg=b2'), ['sig:0:s', 'bkg:1:b1+b2']);
    assert.deepEqual(r('sig:1=s', 'bkg:0=b'), ['bkg:0:b', 'sig:1:s']);
    assert.deepEqual(r('sig=s', 'qcd=q'), ['qcd:0:q', 'sig:1:s']);
    assert.deepEqual(r('qcd:2=q', 'a=x', 'b=y'), ['a:0:x', 'b:1:y', 'qcd:2:q']);
    assert.throws(() => r('ttbar=t', 'wjets=w'), /labels must be 0\.\.1 without gaps/);
    assert.throws(() => r('a:0=x', 'b:0=y'), UsageError);
    assert.throws(() => r('qcd=q', 'sig:0=s'), /label 0 is given to both 'sig' and 'qcd'/);
    assert.throws(() => r('a=x', 'b=x'), /file x is given twice/);
    assert.throws(() => r('a:1=x', 'a:2=y'), /labels 1 and 2/);
    for (const bad of ['qcd', '=x', 'q cd=x', 'qcd:-1=x', 'qcd:a=x', 'qcd=', 'qcd=a,,b', 'qcd=-']) assert.throws(() => parseClassArg(bad), UsageError, bad);
  });

  test('parseSize, parseFraction', () => {
    assert.equal(parseSize('1 GB'), 1e9);
    assert.equal(parseSize('512 MB'), 512e6);
    assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
    assert.equal(parseSize('1.5 kb'), 1500);
    assert.equal(parseSize('12345'), 12345);
    for (const bad of ['', 'lots', '-1 MB', '0', '1 PB']) assert.throws(() => parseSize(bad), UsageError, bad);
    assert.equal(parseFraction('0'), 0);
    assert.equal(parseFraction('0.2'), 0.2);
    for (const bad of ['1', '-0.1', 'x', '', '1.5', 'NaN']) assert.throws(() => parseFraction(bad), UsageError, bad);
  });
});
