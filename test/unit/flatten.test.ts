/**
 * flatten pass 1 (Scanner) and pass 2 (Padder): seeded property tests against a naive reference, layout
 * decisions (inner fixed sizes, groups, jdim 0), normalization, truncation counts, the Arrow/IPC round trip of
 * the output, and the validation errors.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import * as arrow from 'apache-arrow';
import { IpcStreamWriter, fromRecordBatch, makeSchema, readIpcStream, toRecordBatch } from '../../src/columnar/index.js';
import { type ColumnBatch, type ColumnData, type ColumnType, type DType, type NumericArray, allocTyped, columnType, formatColumnType } from '../../src/root/columns.js';
import { SchemaMismatchError, SelectionError, UsageError } from '../../src/errors.js';
import { Padder, Scanner, classifyColumn, type PadOptions, type Specs } from '../../src/flatten/index.js';
import { offsetsOf, rng, utf8Column } from '../fixtures/columnar-data.js';

// ---------------------------------------------------------------------------------------------------
// Random jagged data, kept alongside as plain numbers for the reference

/** A jagged branch as the test sees it: rows → list elements → `inner` scalars (as Number()). */
interface JagRef {
  name: string;
  dtype: DType;
  inner: number;
  rows: number[][][];
}

type Rand = () => number;

/** Poisson-like list lengths: many empty lists, mean about `mean`, a tail up to `cap`. */
function lengths(r: Rand, rows: number, mean: number, cap: number, pEmpty = 0.25): number[] {
  return Array.from({ length: rows }, () => {
    if (r() < pEmpty) return 0;
    if (r() < 0.03) return Math.floor(r() * (cap + 1));
    return Math.min(cap, Math.floor(-Math.log(1 - r()) * mean));
  });
}

/** `n` scalars of `dtype` (typed array) and their Number() values. */
function scalars(r: Rand, dtype: DType, n: number): { arr: NumericArray; nums: number[] } {
  const arr = allocTyped(dtype, n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'float32':
        (arr as Float32Array)[i] = r() < 0.05 ? NaN : (r() - 0.5) * 200;
        break;
      case 'float64':
        (arr as Float64Array)[i] = r() < 0.05 ? NaN : r() < 0.02 ? (r() - 0.5) * 1e42 : (r() - 0.5) * 1e6 + 1e-9 * r();
        break;
      case 'bool':
        (arr as Uint8Array)[i] = r() < 0.5 ? 1 : 0;
        break;
      case 'int8':
        (arr as Int8Array)[i] = Math.floor(r() * 256) - 128;
        break;
      case 'uint16':
        (arr as Uint16Array)[i] = Math.floor(r() * 65536);
        break;
      case 'int32':
        (arr as Int32Array)[i] = Math.floor(r() * 2 ** 32) - 2 ** 31;
        break;
      case 'int64':
        (arr as BigInt64Array)[i] = BigInt(Math.floor(r() * 2e9) - 1e9) * 123456789123n + BigInt(Math.floor(r() * 1000));
        break;
      case 'uint64':
        (arr as BigUint64Array)[i] = BigInt(Math.floor(r() * 1e9)) * 987654321987n + 1n;
        break;
      default:
        throw new Error(`no generator for ${dtype}`);
    }
  }
  const nums = Array.from(arr as ArrayLike<number | bigint>, (v) => Number(v));
  return { arr, nums };
}

/**
 * A list column (list<T> or list<fixed<inner, T>>) for the given lengths. With `skew`, the child has extra
 * junk elements before and after, and the offsets start past 0 (a sliced list).
 */
function jagged(r: Rand, name: string, dtype: DType, lens: number[], inner = 1, skew = 0): { data: ColumnData; ref: JagRef } {
  const total = lens.reduce((a, b) => a + b, 0);
  const { arr, nums } = scalars(r, dtype, (total + 2 * skew) * inner);
  const offsets = offsetsOf(lens).map((o) => o + skew);
  const rows: number[][][] = [];
  for (let i = 0; i < lens.length; i++) {
    const row: number[][] = [];
    for (let j = offsets[i]!; j < offsets[i + 1]!; j++) row.push(nums.slice(j * inner, (j + 1) * inner));
    rows.push(row);
  }
  const leaf: ColumnData = { kind: 'primitive', dtype, values: arr };
  const child: ColumnData = inner === 1 ? leaf : { kind: 'fixed', size: inner, child: leaf };
  return { data: { kind: 'list', offsets, child }, ref: { name, dtype, inner, rows } };
}

function batchOf(entryStart: number, rows: number, columns: { name: string; data: ColumnData }[]): ColumnBatch {
  return { entryStart, entryStop: entryStart + rows, columns };
}

function fieldsOf(b: ColumnBatch): { name: string; type: ColumnType }[] {
  return b.columns.map((c) => ({ name: c.name, type: columnType(c.data) }));
}

const opts = (o: Partial<PadOptions> = {}): PadOptions => ({ pad: NaN, maxLen: {}, groups: [], ...o });

function scan(batches: ColumnBatch[]): Specs {
  const s = new Scanner(fieldsOf(batches[0]!));
  for (const b of batches) s.add(b);
  return s.specs({ source: 'test.arrow', hepmlVersion: '0.0.0-test' });
}

function col(b: ColumnBatch, name: string): ColumnData {
  const c = b.columns.find((x) => x.name === name);
  assert.ok(c, `no column '${name}' in ${b.columns.map((x) => x.name).join(', ')}`);
  return c.data;
}

/** The float32 values and the mask of a padded tensor column, with its sizes. */
function tensorOf(b: ColumnBatch, name: string): { values: Float32Array; size: number; mask: Uint8Array; width: number } {
  const v = col(b, name);
  const m = col(b, `${name}.mask`);
  assert.equal(v.kind, 'fixed');
  assert.equal(m.kind, 'fixed');
  if (v.kind !== 'fixed' || m.kind !== 'fixed' || v.child.kind !== 'primitive' || m.child.kind !== 'primitive') throw new Error('unreachable');
  assert.ok(v.child.values instanceof Float32Array, `${name}: values are ${v.child.values.constructor.name}`);
  assert.ok(m.child.values instanceof Uint8Array, `${name}.mask: ${m.child.values.constructor.name}`);
  return { values: v.child.values, size: v.size, mask: m.child.values as Uint8Array, width: m.size };
}

const same = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || a === b;

/**
 * The naive reference for one output tensor: members stacked per element (row-major [W][K]), values as
 * float32 (normalized when `norm` is given: (x - min) / (max - min) in double), `pad` past each list's end,
 * and a mask of one byte per element. Compared entry by entry with what the Padder wrote.
 */
function checkTensor(
  out: ColumnBatch,
  name: string,
  members: JagRef[],
  cap: number,
  pad: number,
  norm: Record<string, { min: number; max: number }> = {},
): { entries: number; values: number; cutRows: Set<number> } {
  const t = tensorOf(out, name);
  const W = Math.max(1, cap);
  const K = members.reduce((s, m) => s + m.inner, 0);
  const rows = members[0]!.rows.length;
  assert.equal(t.width, W, `${name}: width`);
  assert.equal(t.size, W * K, `${name}: values per row`);
  assert.equal(t.values.length, rows * W * K, `${name}: value count`);
  assert.equal(t.mask.length, rows * W, `${name}: mask count`);
  let entries = 0;
  let values = 0;
  const cutRows = new Set<number>();
  let realSlots = 0;
  for (let i = 0; i < rows; i++) {
    const n = members[0]!.rows[i]!.length;
    for (const m of members) assert.equal(m.rows[i]!.length, n, 'test data: group members need equal counts');
    if (n > cap) {
      entries++;
      values += (n - cap) * K;
      cutRows.add(i);
    }
    for (let j = 0; j < W; j++) {
      const real = j < Math.min(n, cap);
      assert.equal(t.mask[i * W + j], real ? 1 : 0, `${name}.mask row ${i} slot ${j} (length ${n})`);
      if (real) realSlots++;
      let c = 0;
      for (const m of members) {
        for (let q = 0; q < m.inner; q++, c++) {
          const got = t.values[(i * W + j) * K + c]!;
          let want: number;
          if (!real) want = pad;
          else {
            const x = m.rows[i]![j]![q]!;
            const nm = norm[m.name];
            want = Math.fround(nm ? (x - nm.min) / (nm.max - nm.min) : x);
          }
          if (!same(got, want)) {
            assert.fail(`${name} row ${i} slot ${j} component ${c} (${m.name}[${q}]): got ${got}, want ${want}${real ? '' : ' (padding)'}`);
          }
        }
      }
    }
  }
  // counts preserved: every element kept by the width is marked real
  const kept = members[0]!.rows.reduce((s, r) => s + Math.min(r.length, cap), 0);
  assert.equal(realSlots, kept);
  assert.equal(t.mask.reduce((s, x) => s + x, 0), kept, `${name}: mask sum`);
  return { entries, values, cutRows };
}

// ---------------------------------------------------------------------------------------------------

const DTYPES: DType[] = ['float32', 'float64', 'int8', 'uint16', 'int32', 'int64', 'uint64', 'bool'];

/** A few batches with one jagged branch per dtype, an all-empty branch, a long-list branch, flat columns. */
function randomBatches(seed: number, batchRows: number[]): { batches: ColumnBatch[]; refs: Map<string, JagRef>; flat: Map<string, number[]> } {
  const r = rng(seed);
  const refs = new Map<string, JagRef>();
  const flat = new Map<string, number[]>();
  const batches: ColumnBatch[] = [];
  let start = 0;
  for (const rows of batchRows) {
    const cols: { name: string; data: ColumnData }[] = [];
    const add = (j: { data: ColumnData; ref: JagRef }) => {
      cols.push({ name: j.ref.name, data: j.data });
      const prev = refs.get(j.ref.name);
      if (prev) prev.rows.push(...j.ref.rows);
      else refs.set(j.ref.name, j.ref);
    };
    for (const dt of DTYPES) add(jagged(r, `J_${dt}`, dt, lengths(r, rows, 3, 12), 1, dt === 'float32' || dt === 'int64' ? 3 : 0));
    add(jagged(r, 'J_empty', 'float32', new Array(rows).fill(0)));
    add(jagged(r, 'J_long', 'float32', lengths(r, rows, 30, 70, 0.1)));
    add(jagged(r, 'J_vec3', 'float64', lengths(r, rows, 2, 6), 3, 2));
    for (const dt of ['float64', 'int32', 'bool'] as DType[]) {
      const { arr, nums } = scalars(r, dt, rows);
      cols.push({ name: `F_${dt}`, data: { kind: 'primitive', dtype: dt, values: arr } });
      flat.set(`F_${dt}`, [...(flat.get(`F_${dt}`) ?? []), ...nums]);
    }
    cols.push({ name: 'S_text', data: utf8Column(Array.from({ length: rows }, (_, i) => `e${start + i}`)) });
    batches.push(batchOf(start, rows, cols));
    start += rows;
  }
  return { batches, refs, flat };
}

function refStats(nums: number[]): { min: number | null; max: number | null; nans: number } {
  let min = Infinity;
  let max = -Infinity;
  let nans = 0;
  let some = false;
  for (const x of nums) {
    if (Number.isNaN(x)) nans++;
    else {
      some = true;
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
  }
  return { min: some ? min : null, max: some ? max : null, nans };
}

// ---------------------------------------------------------------------------------------------------

describe('flatten: column classes', () => {
  test('jagged, flat and other', () => {
    const p = (dtype: DType): ColumnType => ({ kind: 'primitive', dtype });
    assert.deepEqual(classifyColumn({ kind: 'list', child: p('float32') }), { kind: 'jagged', dtype: 'float32', inner: 1 });
    assert.deepEqual(classifyColumn({ kind: 'list', child: p('bool') }), { kind: 'jagged', dtype: 'bool', inner: 1 });
    assert.deepEqual(classifyColumn({ kind: 'list', child: { kind: 'fixed', size: 2, child: { kind: 'fixed', size: 3, child: p('int16') } } }), {
      kind: 'jagged',
      dtype: 'int16',
      inner: 6,
    });
    assert.deepEqual(classifyColumn(p('int64')), { kind: 'flat', dtype: 'int64' });
    assert.deepEqual(classifyColumn(p('bool')), { kind: 'flat', dtype: 'bool' });
    for (const t of [{ kind: 'utf8' }, { kind: 'list', child: { kind: 'utf8' } }, { kind: 'list', child: { kind: 'list', child: p('int32') } }, { kind: 'fixed', size: 3, child: p('float32') }] as ColumnType[]) {
      assert.deepEqual(classifyColumn(t), { kind: 'other' }, formatColumnType(t));
    }
  });
});

describe('flatten: scan (pass 1)', () => {
  for (const seed of [1, 2, 3]) {
    test(`specs equal the reference statistics (seed ${seed})`, () => {
      const { batches, refs, flat } = randomBatches(seed, [0, 37, 200, 1, 113]);
      const specs = scan(batches);
      assert.equal(specs.format, 'hep-ml/flatten-specs');
      assert.equal(specs.version, 1);
      assert.equal(specs.source, 'test.arrow');
      assert.equal(specs.hepml_version, '0.0.0-test');
      assert.ok(!Number.isNaN(Date.parse(specs.created)));
      assert.equal(specs.entries, 351);
      assert.deepEqual(specs.jkeys, [...refs.keys()]);
      assert.deepEqual(specs.fkeys, [...flat.keys()]);
      assert.equal(specs.types['S_text'], 'utf8');
      assert.equal(specs.types['J_vec3'], 'list<fixed<3, float64>>');
      assert.ok(!('S_text' in specs.minv) && !specs.jkeys.includes('S_text') && !specs.fkeys.includes('S_text'));
      for (const [name, ref] of refs) {
        const lens = ref.rows.map((row) => row.length);
        const jdim = Math.max(0, ...lens);
        assert.equal(specs.jdim[name], jdim, `${name} jdim`);
        assert.equal(specs.inner[name], ref.inner);
        const hist = new Array(jdim + 1).fill(0);
        for (const n of lens) hist[n]++;
        assert.deepEqual(specs.hist[name], hist, `${name} hist`);
        const all = ref.rows.flat(2);
        const st = refStats(all);
        assert.equal(specs.minv[name], st.min, `${name} min`);
        assert.equal(specs.maxv[name], st.max, `${name} max`);
        assert.equal(specs.nans[name], st.nans, `${name} nans`);
        assert.equal(specs.values[name], all.length, `${name} values`);
      }
      assert.equal(specs.jdim['J_empty'], 0);
      assert.deepEqual(specs.hist['J_empty'], [351]);
      assert.equal(specs.minv['J_empty'], null);
      assert.ok(specs.nans['J_float64']! > 0 && specs.nans['J_float32']! > 0, 'the data has NaNs');
      for (const [name, nums] of flat) {
        const st = refStats(nums);
        assert.equal(specs.minv[name], st.min, `${name} min`);
        assert.equal(specs.maxv[name], st.max, `${name} max`);
        assert.equal(specs.nans[name], st.nans);
        assert.equal(specs.values[name], 351);
      }
      // the specs survive JSON
      assert.deepEqual(JSON.parse(JSON.stringify(specs)), specs);
    });
  }

  test('int64 min/max beyond 2^53 come from exact BigInt comparison', () => {
    const vals = BigInt64Array.from([2n ** 60n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 5n]);
    const b = batchOf(0, 2, [
      { name: 'j', data: { kind: 'list', offsets: Int32Array.from([0, 1, 4]), child: { kind: 'primitive', dtype: 'int64', values: vals } } },
      { name: 'f', data: { kind: 'primitive', dtype: 'uint64', values: BigUint64Array.from([2n ** 64n - 1n, 3n]) } },
    ]);
    const s = scan([b]);
    assert.equal(s.minv['j'], -(2 ** 63));
    assert.equal(s.maxv['j'], Number(2n ** 63n - 1n));
    assert.equal(s.minv['f'], 3);
    assert.equal(s.maxv['f'], 2 ** 64);
    assert.deepEqual(s.hist['j'], [0, 1, 0, 1]);
  });

  test('a column of a different kind or name than the scanned schema is refused', () => {
    const b = batchOf(0, 1, [{ name: 'j', data: { kind: 'list', offsets: Int32Array.from([0, 1]), child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(1) } } }]);
    const s = new Scanner(fieldsOf(b));
    assert.throws(() => s.add(batchOf(0, 1, [{ name: 'k', data: col(b, 'j') }])), (e) => e instanceof SchemaMismatchError && /'k'/.test(e.message));
    assert.throws(() => s.add(batchOf(0, 1, [{ name: 'j', data: { kind: 'primitive', dtype: 'float32', values: new Float32Array(1) } }])), SchemaMismatchError);
  });
});

describe('flatten: pad (pass 2) properties', () => {
  for (const [seed, pad] of [
    [11, NaN],
    [12, 0],
    [13, 7],
  ] as const) {
    test(`every real value at its index, padding past the end and masked (seed ${seed}, pad ${pad})`, () => {
      const { batches, refs, flat } = randomBatches(seed, [64, 0, 150, 3]);
      const specs = scan(batches);
      const fields = fieldsOf(batches[0]!);
      const padder = new Padder(fields, specs, opts({ pad }));
      const outs = batches.map((b) => padder.pad(b));
      // output schema: each jagged branch → b, b.mask in place; flat and other unchanged
      const names: string[] = [];
      for (const f of fields) names.push(...(refs.has(f.name) ? [f.name, `${f.name}.mask`] : [f.name]));
      assert.deepEqual(padder.fields.map((f) => f.name), names);
      for (const f of padder.fields) {
        if (refs.has(f.name)) {
          const W = Math.max(1, specs.jdim[f.name]!);
          assert.equal(formatColumnType(f.type), `fixed<${W * refs.get(f.name)!.inner}, float32>`);
        }
      }
      assert.equal(formatColumnType(padder.fields.find((f) => f.name === 'J_vec3.mask')!.type), `fixed<${specs.jdim['J_vec3']}, uint8>`);
      let row = 0;
      outs.forEach((out, bi) => {
        const n = batches[bi]!.entryStop - batches[bi]!.entryStart;
        assert.equal(out.entryStart, batches[bi]!.entryStart);
        assert.deepEqual(out.columns.map((c) => c.name), names);
        for (const [name, ref] of refs) {
          const part = { ...ref, rows: ref.rows.slice(row, row + n) };
          const t = checkTensor(out, name, [part], specs.jdim[name]!, pad);
          assert.equal(t.entries, 0);
        }
        // flat and other columns pass through as the same arrays
        for (const name of [...flat.keys(), 'S_text']) assert.equal(col(out, name), col(batches[bi]!, name));
        row += n;
      });
      assert.deepEqual(padder.truncation.entries, 0);
      assert.deepEqual(padder.truncation.values, 0);
      assert.deepEqual(Object.keys(padder.truncation.perColumn), [...refs.keys()]);
    });
  }

  for (const seed of [21, 22]) {
    test(`--max-len truncation is exact (seed ${seed})`, () => {
      const { batches, refs } = randomBatches(seed, [120, 80]);
      const specs = scan(batches);
      const r = rng(seed * 7);
      const maxLen: Record<string, number> = {};
      for (const name of refs.keys()) if (r() < 0.7) maxLen[name] = Math.floor(r() * 6);
      maxLen['J_long'] = 5;
      maxLen['J_vec3'] = 1;
      maxLen['J_float32'] = 40; // longer than jdim: pads further, cuts nothing
      const padder = new Padder(fieldsOf(batches[0]!), specs, opts({ maxLen, pad: -1 }));
      const perColumn: Record<string, { entries: number; values: number }> = {};
      const cut = new Set<number>();
      let row = 0;
      for (const b of batches) {
        const out = padder.pad(b);
        const n = b.entryStop - b.entryStart;
        for (const [name, ref] of refs) {
          const t = checkTensor(out, name, [{ ...ref, rows: ref.rows.slice(row, row + n) }], maxLen[name] ?? specs.jdim[name]!, -1);
          const pc = (perColumn[name] ??= { entries: 0, values: 0 });
          pc.entries += t.entries;
          pc.values += t.values;
          for (const i of t.cutRows) cut.add(row + i);
        }
        row += n;
      }
      const rep = padder.truncation;
      assert.deepEqual(rep.perColumn, perColumn);
      assert.equal(rep.values, Object.values(perColumn).reduce((s, p) => s + p.values, 0));
      assert.equal(rep.entries, cut.size, 'distinct truncated entries');
      assert.ok(rep.perColumn['J_long']!.entries > 0 && rep.perColumn['J_vec3']!.values % 3 === 0);
      assert.equal(rep.perColumn['J_float32']!.entries, 0);
      assert.equal(tensorOf(padder.pad(batches[0]!), 'J_float32').width, 40);
    });
  }

  test('data longer than the specs jdim (specs from other data) is truncated to jdim and counted', () => {
    const r = rng(5);
    const a = jagged(r, 'x', 'float32', [1, 2, 0]);
    const b = jagged(r, 'x', 'float32', [5, 2, 3]);
    const specs = scan([batchOf(0, 3, [{ name: 'x', data: a.data }])]);
    const p = new Padder([{ name: 'x', type: columnType(a.data) }], specs, opts());
    const out = p.pad(batchOf(0, 3, [{ name: 'x', data: b.data }]));
    checkTensor(out, 'x', [b.ref], 2, NaN);
    assert.deepEqual(p.truncation, { entries: 2, values: 4, perColumn: { x: { entries: 2, values: 4 } } });
  });

  test('list<fixed<k>>: k scalars per element, one mask byte per element', () => {
    const lens = [2, 0, 1];
    const data: ColumnData = {
      kind: 'list',
      offsets: offsetsOf(lens),
      child: { kind: 'fixed', size: 2, child: { kind: 'primitive', dtype: 'int32', values: Int32Array.from([1, 2, 3, 4, 5, 6]) } },
    };
    const b = batchOf(0, 3, [{ name: 'v', data }]);
    const p = new Padder(fieldsOf(b), scan([b]), opts({ pad: 0 }));
    assert.deepEqual(p.fields.map((f) => [f.name, formatColumnType(f.type)]), [
      ['v', 'fixed<4, float32>'],
      ['v.mask', 'fixed<2, uint8>'],
    ]);
    const t = tensorOf(p.pad(b), 'v');
    assert.deepEqual(Array.from(t.values), [1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 0, 0]);
    assert.deepEqual(Array.from(t.mask), [1, 1, 0, 0, 1, 0]);
  });

  test('a branch with only empty lists (jdim 0) gets one slot of padding, mask 0', () => {
    const b = batchOf(0, 3, [{ name: 'e', data: { kind: 'list', offsets: new Int32Array(4), child: { kind: 'primitive', dtype: 'float64', values: new Float64Array(0) } } }]);
    const specs = scan([b]);
    assert.equal(specs.jdim['e'], 0);
    const p = new Padder(fieldsOf(b), specs, opts({ pad: 7 }));
    assert.deepEqual(p.fields.map((f) => formatColumnType(f.type)), ['fixed<1, float32>', 'fixed<1, uint8>']);
    const t = tensorOf(p.pad(b), 'e');
    assert.deepEqual(Array.from(t.values), [7, 7, 7]);
    assert.deepEqual(Array.from(t.mask), [0, 0, 0]);
    // --max-len 0 likewise: everything cut and counted
    const q = new Padder(fieldsOf(b), scan([batchOf(0, 1, [{ name: 'e', data: { kind: 'list', offsets: Int32Array.from([0, 2]), child: { kind: 'primitive', dtype: 'float64', values: new Float64Array(2) } } }])]), opts({ maxLen: { e: 0 } }));
    const b2 = batchOf(0, 1, [{ name: 'e', data: { kind: 'list', offsets: Int32Array.from([0, 2]), child: { kind: 'primitive', dtype: 'float64', values: Float64Array.from([1, 2]) } } }]);
    const t2 = tensorOf(q.pad(b2), 'e');
    assert.ok(Number.isNaN(t2.values[0]!));
    assert.deepEqual(Array.from(t2.mask), [0]);
    assert.deepEqual(q.truncation.perColumn['e'], { entries: 1, values: 2 });
  });

  test('a zero-row batch gives zero-row columns', () => {
    const { batches } = randomBatches(3, [10]);
    const p = new Padder(fieldsOf(batches[0]!), scan(batches), opts());
    const { batches: empty } = randomBatches(4, [0]);
    const out = p.pad(empty[0]!);
    assert.equal(tensorOf(out, 'J_float32').values.length, 0);
    assert.equal(tensorOf(out, 'J_float32').mask.length, 0);
  });
});

describe('flatten: groups', () => {
  /** Muon_pt float32, Muon_eta float64, Muon_charge int32, Muon_dir list<fixed<2, float32>>, same counts. */
  function muons(seed: number, batchRows: number[], cap = 9) {
    const r = rng(seed);
    const batches: ColumnBatch[] = [];
    const refs = new Map<string, JagRef>();
    let start = 0;
    for (const rows of batchRows) {
      const lens = lengths(r, rows, 2.5, cap);
      const parts = [
        jagged(r, 'Muon_pt', 'float32', lens),
        jagged(r, 'Muon_eta', 'float64', lens, 1, 4),
        jagged(r, 'Muon_charge', 'int32', lens),
        jagged(r, 'Muon_dir', 'float32', lens, 2),
      ];
      const other = jagged(r, 'Jet_pt', 'float32', lengths(r, rows, 4, 10));
      const cols = [
        { name: 'run', data: { kind: 'primitive', dtype: 'int32', values: Int32Array.from({ length: rows }, (_, i) => start + i) } as ColumnData },
        { name: parts[0]!.ref.name, data: parts[0]!.data },
        { name: 'Jet_pt', data: other.data },
        ...parts.slice(1).map((p) => ({ name: p.ref.name, data: p.data })),
      ];
      for (const j of [...parts, other]) {
        const prev = refs.get(j.ref.name);
        if (prev) prev.rows.push(...j.ref.rows);
        else refs.set(j.ref.name, j.ref);
      }
      batches.push(batchOf(start, rows, cols));
      start += rows;
    }
    return { batches, refs };
  }

  test('members stack row-major into one tensor at the first member, with one shared mask', () => {
    const { batches, refs } = muons(31, [90, 40], 40);
    const specs = scan(batches);
    const p = new Padder(fieldsOf(batches[0]!), specs, opts({ groups: [{ name: 'muon', glob: 'Muon_*' }], pad: 0 }));
    const W = specs.jdim['Muon_pt']!;
    assert.deepEqual(p.fields.map((f) => [f.name, formatColumnType(f.type)]), [
      ['run', 'int32'],
      ['muon', `fixed<${W * 5}, float32>`],
      ['muon.mask', `fixed<${W}, uint8>`],
      ['Jet_pt', `fixed<${specs.jdim['Jet_pt']}, float32>`],
      ['Jet_pt.mask', `fixed<${specs.jdim['Jet_pt']}, uint8>`],
    ]);
    const members = ['Muon_pt', 'Muon_eta', 'Muon_charge', 'Muon_dir'].map((n) => refs.get(n)!);
    let row = 0;
    for (const b of batches) {
      const n = b.entryStop - b.entryStart;
      const out = p.pad(b);
      checkTensor(out, 'muon', members.map((m) => ({ ...m, rows: m.rows.slice(row, row + n) })), W, 0);
      row += n;
    }
  });

  test('a group with --max-len and --normalize', () => {
    const { batches, refs } = muons(32, [200]);
    const specs = scan(batches);
    const p = new Padder(fieldsOf(batches[0]!), specs, opts({ groups: [{ name: 'mu', glob: 'Muon_[pe]*' }], maxLen: { mu: 2 }, normalize: 'minmax' }));
    const out = p.pad(batches[0]!);
    const norm = Object.fromEntries(['Muon_pt', 'Muon_eta', 'Jet_pt'].map((n) => [n, { min: specs.minv[n]!, max: specs.maxv[n]! }]));
    const t = checkTensor(out, 'mu', [refs.get('Muon_pt')!, refs.get('Muon_eta')!], 2, NaN, norm);
    assert.ok(t.entries > 0);
    assert.deepEqual(p.truncation.perColumn['mu'], { entries: t.entries, values: t.values });
    checkTensor(out, 'Jet_pt', [refs.get('Jet_pt')!], specs.jdim['Jet_pt']!, NaN, norm);
  });

  test('members whose counts differ in an entry: error naming the entry', () => {
    const r = rng(9);
    const a = jagged(r, 'A_x', 'float32', [1, 2, 3]);
    const b = jagged(r, 'A_y', 'float32', [1, 3, 3]);
    const batch = batchOf(1000, 3, [
      { name: 'A_x', data: a.data },
      { name: 'A_y', data: b.data },
    ]);
    const p = new Padder(fieldsOf(batch), scan([batch]), opts({ groups: [{ name: 'a', glob: 'A_*' }] }));
    assert.throws(
      () => p.pad(batch),
      (e) => e instanceof SchemaMismatchError && /entry 1001/.test(e.message) && /'A_x'/.test(e.message) && /'A_y'/.test(e.message) && !e.message.includes('\n'),
    );
  });
});

describe('flatten: normalization', () => {
  test('jagged and flat values become (x - min) / (max - min) as float32; padding stays the pad value', () => {
    const { batches, refs, flat } = randomBatches(41, [70, 30]);
    const specs = scan(batches);
    const p = new Padder(fieldsOf(batches[0]!), specs, opts({ normalize: 'minmax', pad: 7 }));
    // flat numeric columns become float32; utf8 passes through
    assert.equal(formatColumnType(p.fields.find((f) => f.name === 'F_int32')!.type), 'float32');
    assert.equal(formatColumnType(p.fields.find((f) => f.name === 'F_bool')!.type), 'float32');
    assert.equal(formatColumnType(p.fields.find((f) => f.name === 'S_text')!.type), 'utf8');
    const norm: Record<string, { min: number; max: number }> = {};
    for (const n of [...refs.keys(), ...flat.keys()]) {
      const mn = specs.minv[n];
      const mx = specs.maxv[n];
      if (typeof mn === 'number' && typeof mx === 'number' && Number.isFinite(mn) && Number.isFinite(mx) && mx !== mn) norm[n] = { min: mn, max: mx };
    }
    assert.ok(norm['J_int64'] && norm['J_float64'] && norm['F_float64']);
    let row = 0;
    for (const b of batches) {
      const n = b.entryStop - b.entryStart;
      const out = p.pad(b);
      for (const [name, ref] of refs) {
        checkTensor(out, name, [{ ...ref, rows: ref.rows.slice(row, row + n) }], specs.jdim[name]!, 7, norm);
      }
      for (const [name, nums] of flat) {
        const c = col(out, name);
        assert.ok(c.kind === 'primitive' && c.values instanceof Float32Array);
        const got = Array.from(c.values as Float32Array);
        const want = nums.slice(row, row + n).map((x) => Math.fround(norm[name] ? (x - norm[name].min) / (norm[name].max - norm[name].min) : x));
        got.forEach((g, i) => assert.ok(same(g, want[i]!), `${name}[${i}]: ${g} vs ${want[i]}`));
        for (const g of got) assert.ok(Number.isNaN(g) || (g >= 0 && g <= 1), `${name}: ${g} outside [0, 1]`);
      }
      row += n;
    }
  });

  test('a branch with min == max is left unchanged', () => {
    const data: ColumnData = { kind: 'list', offsets: Int32Array.from([0, 2, 3]), child: { kind: 'primitive', dtype: 'float32', values: Float32Array.from([4, 4, 4]) } };
    const b = batchOf(0, 2, [{ name: 'c', data }]);
    const p = new Padder(fieldsOf(b), scan([b]), opts({ normalize: 'minmax', pad: 0 }));
    assert.deepEqual(Array.from(tensorOf(p.pad(b), 'c').values), [4, 4, 4, 0]);
  });
});

describe('flatten: Arrow round trip of the output', () => {
  test('padded batches → RecordBatch → IPC bytes → read back equal, and Arrow sees the types', async () => {
    const { batches } = randomBatches(51, [33, 0, 17]);
    const r = rng(52);
    const withOther = batches.map((b) => {
      const rows = b.entryStop - b.entryStart;
      const gl = lengths(r, rows, 3, 8);
      const lo = offsetsOf(Array.from({ length: rows }, (_, i) => i % 3));
      const lens2 = Array.from({ length: lo[rows]! }, (_, i) => i % 2);
      const lo2 = offsetsOf(lens2);
      const extra: { name: string; data: ColumnData }[] = [
        { name: 'O_strs', data: { kind: 'list', offsets: lo, child: utf8Column(Array.from({ length: lo[rows]! }, (_, i) => `s${i}`)) } },
        { name: 'O_ll', data: { kind: 'list', offsets: lo, child: { kind: 'list', offsets: lo2, child: { kind: 'primitive', dtype: 'int32', values: new Int32Array(lo2[lo2.length - 1]!) } } } },
        { name: 'G_a', data: jagged(r, 'G_a', 'int64', gl).data },
        { name: 'G_b', data: jagged(r, 'G_b', 'float32', gl, 2).data },
        { name: 'O_fix', data: { kind: 'fixed', size: 3, child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(rows * 3).fill(1.5) } } },
      ];
      return { ...b, columns: [...b.columns, ...extra] };
    });
    const specs = scan(withOther);
    assert.ok(!specs.jkeys.includes('O_strs') && !specs.jkeys.includes('O_ll') && !specs.fkeys.includes('O_fix'));
    const p = new Padder(fieldsOf(withOther[0]!), specs, opts({ groups: [{ name: 'g', glob: 'G_*' }], pad: NaN, maxLen: { J_long: 9 } }));
    const schema = makeSchema(p.fields, { 'hep-ml.flatten.pad': 'NaN' });
    const outs = withOther.map((b) => p.pad(b));
    for (const name of ['O_strs', 'O_ll', 'O_fix']) assert.equal(col(outs[0]!, name), col(withOther[0]!, name));

    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const w = await IpcStreamWriter.open('-', { stdout: sink, schema, end: true });
    for (const o of outs) await w.write(toRecordBatch(schema, o));
    await w.close();
    const bytes = Buffer.concat(chunks);

    const back: ColumnBatch[] = [];
    for await (const rb of readIpcStream((async function* () { yield new Uint8Array(bytes); })())) back.push(fromRecordBatch(rb));
    assert.equal(back.length, outs.length);
    back.forEach((g, i) => {
      assert.deepEqual(g.columns.map((c) => c.name), outs[i]!.columns.map((c) => c.name));
      g.columns.forEach((c, j) => {
        const want = outs[i]!.columns[j]!.data;
        assert.equal(formatColumnType(columnType(c.data)), formatColumnType(columnType(want)));
        if (want.kind === 'fixed' && want.child.kind === 'primitive') {
          const gv = (c.data as typeof want).child as typeof want.child;
          const a = new Uint8Array(gv.values.buffer, gv.values.byteOffset, gv.values.byteLength);
          const e = new Uint8Array(want.child.values.buffer, want.child.values.byteOffset, want.child.values.byteLength);
          assert.ok(Buffer.from(a).equals(Buffer.from(e)), `${c.name}: bytes differ`);
        }
      });
    });
    const t = arrow.tableFromIPC(bytes);
    assert.equal(t.numRows, 50);
    assert.equal(String(t.schema.fields.find((f) => f.name === 'J_float32')!.type), `FixedSizeList[${specs.jdim['J_float32']}]<Float32>`);
    assert.equal(String(t.schema.fields.find((f) => f.name === 'g')!.type), `FixedSizeList[${specs.jdim['G_a']! * 3}]<Float32>`);
    assert.equal(String(t.schema.fields.find((f) => f.name === 'g.mask')!.type), `FixedSizeList[${specs.jdim['G_a']}]<Uint8>`);
    assert.equal(String(t.schema.fields.find((f) => f.name === 'J_long')!.type), 'FixedSizeList[9]<Float32>');
    assert.equal(String(t.schema.fields.find((f) => f.name === 'J_empty')!.type), 'FixedSizeList[1]<Float32>');
    assert.equal(t.schema.metadata.get('hep-ml.flatten.pad'), 'NaN');
  });
});

describe('flatten: validation errors', () => {
  const r = rng(77);
  const j = jagged(r, 'Jet_pt', 'float32', [1, 3, 0]);
  const k = jagged(r, 'Jet_eta', 'float32', [1, 3, 0]);
  const batch = batchOf(0, 3, [
    { name: 'Jet_pt', data: j.data },
    { name: 'Jet_eta', data: k.data },
    { name: 'nJet', data: { kind: 'primitive', dtype: 'int32', values: Int32Array.from([1, 3, 0]) } },
    { name: 'txt', data: utf8Column(['a', 'b', 'c']) },
  ]);
  const fields = fieldsOf(batch);
  const specs = scan([batch]);
  const oneLine = (cls: Function, re: RegExp) => (e: unknown) => e instanceof cls && re.test((e as Error).message) && !(e as Error).message.includes('\n');

  test('specs missing a jagged column of the input', () => {
    const s = structuredClone(specs);
    s.jkeys = s.jkeys.filter((x) => x !== 'Jet_eta');
    assert.throws(() => new Padder(fields, s, opts()), oneLine(SchemaMismatchError, /no jagged branch 'Jet_eta'.*test\.arrow/));
  });

  test('a column whose kind differs between input and specs', () => {
    const s = structuredClone(specs);
    s.jkeys = ['Jet_pt'];
    s.fkeys = ['Jet_eta', 'nJet'];
    assert.throws(() => new Padder(fields, s, opts()), oneLine(SchemaMismatchError, /'Jet_eta' is jagged \(list<float32>\) in the input but flat in the specs/));
    const s2 = structuredClone(specs);
    s2.jkeys.push('nJet');
    s2.jdim['nJet'] = 3;
    assert.throws(() => new Padder(fields, s2, opts()), oneLine(SchemaMismatchError, /'nJet' is flat \(int32\) in the input but jagged/));
    const s3 = structuredClone(specs);
    s3.fkeys.push('txt');
    assert.throws(() => new Padder(fields, s3, opts()), oneLine(SchemaMismatchError, /'txt' \(utf8\) is neither jagged nor flat/));
    const s4 = structuredClone(specs);
    s4.inner['Jet_pt'] = 3;
    assert.throws(() => new Padder(fields, s4, opts()), oneLine(SchemaMismatchError, /'Jet_pt' has 1 values per list element.*but 3/));
    assert.throws(() => new Padder(fields, { ...specs, format: 'nope' as never }, opts()), SchemaMismatchError);
  });

  test('a flat column missing from the specs is an error only with --normalize', () => {
    const s = structuredClone(specs);
    s.fkeys = [];
    assert.doesNotThrow(() => new Padder(fields, s, opts()));
    assert.throws(() => new Padder(fields, s, opts({ normalize: 'minmax' })), oneLine(SchemaMismatchError, /no flat branch 'nJet'/));
  });

  test('--max-len naming an unknown branch or group, a group member, or a bad length', () => {
    assert.throws(() => new Padder(fields, specs, opts({ maxLen: { Jet_phi: 3 } })), oneLine(UsageError, /--max-len Jet_phi: no jagged branch or group 'Jet_phi' \(known: Jet_pt, Jet_eta\)/));
    assert.throws(() => new Padder(fields, specs, opts({ maxLen: { nJet: 3 } })), oneLine(UsageError, /no jagged branch or group 'nJet'/));
    assert.throws(
      () => new Padder(fields, specs, opts({ maxLen: { Jet_pt: 3 }, groups: [{ name: 'jet', glob: 'Jet_*' }] })),
      oneLine(UsageError, /'Jet_pt' is stacked in group 'jet'.*--max-len jet=N/),
    );
    assert.throws(() => new Padder(fields, specs, opts({ maxLen: { Jet_pt: -1 } })), UsageError);
    assert.throws(() => new Padder(fields, specs, opts({ maxLen: { Jet_pt: 1.5 } })), UsageError);
    assert.doesNotThrow(() => new Padder(fields, specs, opts({ maxLen: { jet: 2 }, groups: [{ name: 'jet', glob: 'Jet_*' }] })));
  });

  test('group globs: matching nothing, matching a non-jagged column, overlapping, clashing names', () => {
    assert.throws(() => new Padder(fields, specs, opts({ groups: [{ name: 'mu', glob: 'Muon_*' }] })), oneLine(SelectionError, /group 'mu': no jagged branch matches 'Muon_\*'/));
    assert.throws(() => new Padder(fields, specs, opts({ groups: [{ name: 'j', glob: '*Jet*' }] })), oneLine(UsageError, /matches 'nJet', which is not jagged/));
    assert.throws(
      () => new Padder(fields, specs, opts({ groups: [{ name: 'a', glob: 'Jet_*' }, { name: 'b', glob: 'Jet_p*' }] })),
      oneLine(UsageError, /'Jet_pt' matches both group 'a' and group 'b'/),
    );
    assert.throws(() => new Padder(fields, specs, opts({ groups: [{ name: 'a', glob: 'Jet_pt' }, { name: 'a', glob: 'Jet_eta' }] })), UsageError);
    assert.throws(() => new Padder(fields, specs, opts({ groups: [{ name: 'txt', glob: 'Jet_*' }] })), oneLine(UsageError, /two columns named 'txt'/));
  });

  test('a batch whose columns are not the ones the padder was built for', () => {
    const p = new Padder(fields, specs, opts());
    assert.throws(() => p.pad({ ...batch, columns: batch.columns.slice(1) }), SchemaMismatchError);
    assert.throws(() => p.pad({ ...batch, columns: [batch.columns[1]!, batch.columns[0]!, ...batch.columns.slice(2)] }), oneLine(SchemaMismatchError, /column 0 is 'Jet_eta'/));
    assert.throws(() => p.pad({ ...batch, entryStop: 5 }), oneLine(SchemaMismatchError, /'Jet_pt' has 3 rows, the batch 5/));
  });
});
