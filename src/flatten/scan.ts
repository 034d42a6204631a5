/**
 * Pass 1 of flatten: statistics over every column, written as the specs (src/flatten/types.ts).
 *
 * Column kinds (classifyColumn):
 *   jagged  list<T> with T numeric (bool counts as numeric, 0/1), or list<fixed<k, T>> (nested fixed
 *           sizes multiply: list<fixed<2, fixed<3, T>>> has inner 6). `inner` = scalars per list element.
 *   flat    a numeric primitive (bool included).
 *   other   everything else: utf8, list<utf8>, list<list<..>>, and top-level fixed<k, ..> (e.g. a Float_t[4]
 *           branch). Pad passes these through unchanged; the specs list them only in `types`.
 *
 * Per jagged branch: jdim (maximum list length, in list elements), hist (hist[n] = entries with n list
 * elements; length jdim + 1), min/max over the non-NaN scalars, NaN count and `values` (scalars: list
 * elements × inner). Per flat branch: min/max, NaNs, values (= entries). int64/uint64 min/max are compared as
 * BigInt and reported through Number (the nearest double). min/max of a branch without a non-NaN value are
 * null. Infinities take part in min/max (a branch holding +Inf has maxv Infinity, which JSON writes as null).
 *
 * Hot loops run over typed arrays only: one loop over the offsets (lengths → histogram) and one over the
 * values (min/max/NaN) per column and batch.
 */
import type { ColumnBatch, ColumnData, ColumnType, DType, NumericArray } from '../root/columns.js';
import { formatColumnType } from '../root/columns.js';
import { SchemaMismatchError } from '../errors.js';
import { SPECS_FORMAT, SPECS_VERSION, type Specs } from './types.js';

export type ColumnClass =
  | { kind: 'jagged'; dtype: DType; inner: number }
  | { kind: 'flat'; dtype: DType }
  | { kind: 'other' };

/** How flatten treats a column type (see the module comment). */
export function classifyColumn(t: ColumnType): ColumnClass {
  if (t.kind === 'primitive') return { kind: 'flat', dtype: t.dtype };
  if (t.kind === 'list') {
    let inner = 1;
    let c = t.child;
    while (c.kind === 'fixed') {
      inner *= c.size;
      c = c.child;
    }
    if (c.kind === 'primitive') return { kind: 'jagged', dtype: c.dtype, inner };
  }
  return { kind: 'other' };
}

/** The scalar values under a list column's fixed-size chain, and the scalars per list element. */
export function listLeaf(col: ColumnData): { offsets: Int32Array; values: NumericArray; inner: number } | undefined {
  if (col.kind !== 'list') return undefined;
  let inner = 1;
  let c = col.child;
  while (c.kind === 'fixed') {
    inner *= c.size;
    c = c.child;
  }
  if (c.kind !== 'primitive') return undefined;
  return { offsets: col.offsets, values: c.values, inner };
}

/** Running min/max/NaN count of one branch. */
interface Stats {
  min: number;
  max: number;
  /** min/max of 64-bit integer branches, exact. */
  bigMin: bigint | null;
  bigMax: bigint | null;
  nans: number;
  values: number;
}

interface ScanColumn {
  name: string;
  type: ColumnType;
  cls: ColumnClass;
  stats: Stats;
  jdim: number;
  /** hist[n] = entries with n list elements (grown as needed). */
  hist: Float64Array;
}

function newStats(): Stats {
  return { min: Infinity, max: -Infinity, bigMin: null, bigMax: null, nans: 0, values: 0 };
}

/** min/max/NaNs over values[from, to) of a float array. */
function floatStats(v: Float32Array | Float64Array, from: number, to: number, s: Stats): void {
  let mn = s.min;
  let mx = s.max;
  let nans = 0;
  for (let i = from; i < to; i++) {
    const x = v[i]!;
    if (x !== x) nans++;
    else {
      if (x < mn) mn = x;
      if (x > mx) mx = x;
    }
  }
  s.min = mn;
  s.max = mx;
  s.nans += nans;
  s.values += to - from;
}

/** min/max over values[from, to) of a ≤ 32-bit integer array (no NaNs possible). */
function intStats(v: Exclude<NumericArray, Float32Array | Float64Array | BigInt64Array | BigUint64Array>, from: number, to: number, s: Stats): void {
  let mn = s.min;
  let mx = s.max;
  for (let i = from; i < to; i++) {
    const x = v[i]!;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  s.min = mn;
  s.max = mx;
  s.values += to - from;
}

function bigStats(v: BigInt64Array | BigUint64Array, from: number, to: number, s: Stats): void {
  if (to <= from) return;
  let mn = s.bigMin ?? v[from]!;
  let mx = s.bigMax ?? v[from]!;
  for (let i = from; i < to; i++) {
    const x = v[i]!;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  s.bigMin = mn;
  s.bigMax = mx;
  s.min = Number(mn);
  s.max = Number(mx);
  s.values += to - from;
}

function valueStats(v: NumericArray, from: number, to: number, s: Stats): void {
  if (v instanceof Float32Array || v instanceof Float64Array) floatStats(v, from, to, s);
  else if (v instanceof BigInt64Array || v instanceof BigUint64Array) bigStats(v, from, to, s);
  else intStats(v, from, to, s);
}

/** Adds the list lengths of rows [0, rows) to the histogram; returns it (grown if needed) and the max length. */
function lengthHist(offsets: Int32Array, rows: number, hist: Float64Array): { hist: Float64Array; max: number } {
  let h = hist;
  let max = 0;
  let prev = offsets[0]!;
  for (let i = 1; i <= rows; i++) {
    const o = offsets[i]!;
    const n = o - prev;
    prev = o;
    if (n >>> 0 >= h.length) {
      // (a negative n wraps to a huge unsigned value and lands here too)
      if (n < 0) throw new SchemaMismatchError(`list offsets decrease at row ${i - 1}`);
      const g = new Float64Array(Math.max(n + 1, h.length * 2));
      g.set(h);
      h = g;
    }
    h[n]!++;
    if (n > max) max = n;
  }
  return { hist: h, max };
}

/** Pass 1: feed batches with add(), then take specs(). */
export class Scanner {
  private readonly cols: ScanColumn[];
  private entries = 0;

  constructor(fields: { name: string; type: ColumnType }[]) {
    this.cols = fields.map((f) => ({
      name: f.name,
      type: f.type,
      cls: classifyColumn(f.type),
      stats: newStats(),
      jdim: 0,
      hist: new Float64Array(8),
    }));
  }

  add(batch: ColumnBatch): void {
    const rows = batch.entryStop - batch.entryStart;
    const cols = batch.columns;
    if (cols.length !== this.cols.length) {
      throw new SchemaMismatchError(`batch has ${cols.length} columns, the scanned schema has ${this.cols.length}`);
    }
    for (let c = 0; c < cols.length; c++) {
      const sc = this.cols[c]!;
      const { name, data } = cols[c]!;
      if (name !== sc.name) throw new SchemaMismatchError(`batch column ${c} is '${name}', the scanned schema has '${sc.name}'`);
      if (sc.cls.kind === 'jagged') {
        const leaf = listLeaf(data);
        if (!leaf || leaf.inner !== sc.cls.inner) throw new SchemaMismatchError(`column '${name}' is not ${formatColumnType(sc.type)}`);
        if (leaf.offsets.length !== rows + 1) {
          throw new SchemaMismatchError(`column '${name}' has ${leaf.offsets.length - 1} rows, the batch ${rows}`);
        }
        const h = lengthHist(leaf.offsets, rows, sc.hist);
        sc.hist = h.hist;
        if (h.max > sc.jdim) sc.jdim = h.max;
        valueStats(leaf.values, leaf.offsets[0]! * leaf.inner, leaf.offsets[rows]! * leaf.inner, sc.stats);
      } else if (sc.cls.kind === 'flat') {
        if (data.kind !== 'primitive') throw new SchemaMismatchError(`column '${name}' is not ${formatColumnType(sc.type)}`);
        if (data.values.length !== rows) throw new SchemaMismatchError(`column '${name}' has ${data.values.length} rows, the batch ${rows}`);
        valueStats(data.values, 0, rows, sc.stats);
      }
    }
    this.entries += rows;
  }

  specs(meta: { source: string; hepmlVersion: string }): Specs {
    const s: Specs = {
      format: SPECS_FORMAT,
      version: SPECS_VERSION,
      hepml_version: meta.hepmlVersion,
      source: meta.source,
      created: new Date().toISOString(),
      entries: this.entries,
      jkeys: [],
      fkeys: [],
      jdim: {},
      minv: {},
      maxv: {},
      nans: {},
      values: {},
      hist: {},
      inner: {},
      types: {},
    };
    for (const c of this.cols) {
      s.types[c.name] = formatColumnType(c.type);
      if (c.cls.kind === 'other') continue;
      const st = c.stats;
      const some = st.values - st.nans > 0;
      s.minv[c.name] = some ? st.min : null;
      s.maxv[c.name] = some ? st.max : null;
      s.nans[c.name] = st.nans;
      s.values[c.name] = st.values;
      if (c.cls.kind === 'jagged') {
        s.jkeys.push(c.name);
        s.jdim[c.name] = c.jdim;
        s.inner[c.name] = c.cls.inner;
        s.hist[c.name] = Array.from(c.hist.subarray(0, c.jdim + 1));
      } else s.fkeys.push(c.name);
    }
    return s;
  }
}
