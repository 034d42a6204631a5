/**
 * Truth values for the real ROOT files in ../shared/testdata (see its README.md), and a comparison of
 * the reader's `ColumnData` against them.
 *
 * Truth format (schema_version 1, computed with uproot3 3.14.4):
 *   file.trees[i].branches[NAME] is one of
 *     kind 'flat'    one value (or one fixed-size array, `inner_shape`) per entry   → primitive / fixed(...)
 *     kind 'jagged'  a list per entry (elements may be fixed arrays, `inner_shape`) → list(primitive | fixed(...))
 *     kind 'other'   layout 'string'         → utf8 (sha256_concat / sha256_len_prefixed)
 *                    layout 'generic'        → vector<string>, vector<vector<int>>, TRefArray …: nested lists
 *                    layout 'object' / 'jagged_object' → TVector2/3, TLorentzVector, TRef: per-field stats,
 *                                               see `objectField()`.
 *   `first` = entries 0..min(3, n)-1, `last` = [entry n-1], each nested like the entry itself.
 *   Hashes: sha256_native = all leaf values flattened in entry order, little-endian bytes of `dtype` (bool one
 *   byte); counts_sha256 = per-entry lengths as little-endian int64; sha256_concat = sha256 of the concatenated
 *   string bytes; sha256_len_prefixed = sha256 over, per entry, (byte length as little-endian int64) + bytes.
 *   Stats: NaN are excluded from sum/sum_sq/min/max (min/max null when no non-NaN value); sums are exactly
 *   rounded float64 sums (math.fsum) of the values widened to float64; sum_int is the exact integer sum.
 *   NaN / ±Infinity and integers beyond 2^53 are JSON strings; `loadTruth` turns them into NaN / ±Infinity /
 *   bigint (and every integer of an int64/uint64 branch into bigint).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ColumnData, DType, NumericArray } from '../../src/root/columns.js';

// ---------------------------------------------------------------------------------------------------------
// Truth file types

export type TruthDType = DType;
/** A parsed truth scalar: NaN/±Infinity as numbers, 64-bit integers as bigint, bool as boolean. */
export type TruthScalar = number | bigint | boolean | null;
export type TruthValue = TruthScalar | string | TruthValue[];

export interface TruthLeafInfo {
  class: string;
  name: string;
  title: string;
}

/** What the oracle saw of the branch in the file (for messages, not for comparisons). */
export interface TruthRootInfo {
  path: string;
  branch_class: string;
  title: string;
  leaves: TruthLeafInfo[];
  fClassName?: string;
  fStreamerType?: number;
  fType?: number;
  fID?: number;
  n_subbranches?: number;
  uproot3_interpretation?: string;
  disk_dtype?: string;
}

export interface TruthOracleCorrection {
  what: string;
  n_values_differing_from_uproot3: number;
  max_abs_diff_vs_uproot3: number;
  uproot3_sha256_f64: string;
}

/** Statistics over all leaf values (NaN excluded from sums and min/max). */
export interface TruthStats {
  n_values: number;
  n_nan: number;
  sum: number;
  sum_sq: number;
  /** exact integer sum, integer dtypes and bool only */
  sum_int?: number | bigint;
  /** present where the branch holds NaN (equal to sum/sum_sq in every file here) */
  sum_finite?: number;
  sum_sq_finite?: number;
  min: TruthScalar;
  max: TruthScalar;
}

/** A numeric column: dtype, hashes, stats, first/last. Also the shape of one field of an object branch. */
export interface TruthNumeric extends TruthStats {
  dtype: TruthDType;
  sha256_native: string;
  sha256_f64: string;
  first: TruthValue[];
  last: TruthValue[];
}

export interface TruthNumericBranch extends TruthNumeric {
  kind: 'flat' | 'jagged';
  n_entries: number;
  /** fixed-size array per value: per entry (flat) or per collection element (jagged) */
  inner_shape?: number[];
  /** jagged only */
  total_count?: number;
  max_count?: number;
  counts_sha256?: string;
  note?: string;
  /** Double32 with a range: values recomputed with ROOT's formula; compare with a tolerance */
  oracle_correction?: TruthOracleCorrection;
  root: TruthRootInfo;
}

export interface TruthStringBranch {
  kind: 'other';
  layout: 'string';
  dtype: 'string';
  n_entries: number;
  /** total number of bytes */
  total_count: number;
  sha256_concat: string;
  sha256_len_prefixed: string;
  first: string[];
  last: string[];
  note?: string;
  root: TruthRootInfo;
}

export interface TruthNumericLeaves {
  n_values: number;
  n_nan: number;
  sum: number;
  sum_sq: number;
  min: TruthScalar;
  max: TruthScalar;
}

/** vector<string>, vector<TString>, vector<vector<int>>, vector<vector<string>>, TRefArray[...] */
export interface TruthGenericBranch {
  kind: 'other';
  layout: 'generic';
  /** uproot3 interpretation, e.g. "asgenobj(STLVector(STLString()))" */
  dtype: string;
  n_entries: number;
  /** number of outer elements */
  total_count: number;
  max_count: number;
  counts_sha256: string;
  /** stats over all numbers at any depth (absent for string leaves) */
  numeric_leaves?: TruthNumericLeaves;
  first: TruthValue[];
  last: TruthValue[];
  note?: string;
  root: TruthRootInfo;
}

export interface TruthObjectBranch {
  kind: 'other';
  layout: 'object' | 'jagged_object';
  /** TLorentzVector, TVector2, TVector3, TRef */
  object_class: string;
  n_entries: number;
  total_count?: number;
  max_count?: number;
  counts_sha256?: string;
  inner_shape?: number[];
  hidden_fields_not_reported?: string[];
  fields: Record<string, TruthNumeric>;
  note?: string;
  root: TruthRootInfo;
}

export type TruthOtherBranch = TruthStringBranch | TruthGenericBranch | TruthObjectBranch;
export type TruthBranch = TruthNumericBranch | TruthOtherBranch;

export interface TruthSkipped {
  reason: string;
  root?: TruthRootInfo;
}

export interface TruthTree {
  tree: string;
  cycle: number;
  class: string;
  title: string;
  entries: number;
  branches: Record<string, TruthBranch>;
  skipped: Record<string, TruthSkipped>;
  n_branches_read: number;
  n_branches_skipped: number;
}

export interface TruthFile {
  schema_version: number;
  file: string;
  sha256: string;
  size: number;
  oracle: Record<string, unknown>;
  trees: TruthTree[];
  root_version: number;
  fCompress: number;
  uproot3_compression: string;
  origin: string;
  other_keys: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Locating and loading

/** The repository root (parent of test/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** $HEPML_TESTDATA, else ../shared/testdata seen from the repository root. May not exist. */
export function testdataDir(): string {
  const env = process.env.HEPML_TESTDATA;
  return env && env.length > 0 ? resolve(env) : resolve(REPO_ROOT, '..', 'shared', 'testdata');
}

/** True if `dir` looks like the test data directory (has root/ and truth/). */
export function hasTestdata(dir: string = testdataDir()): boolean {
  return existsSync(join(dir, 'root')) && existsSync(join(dir, 'truth'));
}

/** Every truth file with its ROOT file, sorted by name. */
export function truthFiles(testdata: string): { rootFile: string; truthPath: string }[] {
  const truthDir = join(testdata, 'truth');
  const suffix = '.truth.json';
  return readdirSync(truthDir)
    .filter((n) => n.endsWith(suffix))
    .sort()
    .map((n) => ({ rootFile: join(testdata, 'root', n.slice(0, -suffix.length)), truthPath: join(truthDir, n) }));
}

/** ROOT files under root/ that have no truth file (a reader must still open them without crashing). */
export function rootFilesWithoutTruth(testdata: string): string[] {
  const withTruth = new Set(truthFiles(testdata).map((t) => t.rootFile));
  return readdirSync(join(testdata, 'root'))
    .filter((n) => n.endsWith('.root'))
    .sort()
    .map((n) => join(testdata, 'root', n))
    .filter((p) => !withTruth.has(p));
}

const INT64_DTYPES = new Set<string>(['int64', 'uint64']);
const NUMERIC_DTYPES = new Set<string>([
  'bool',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'float32',
  'float64',
]);

/** Parse one JSON scalar of a numeric context: "NaN", "Infinity", "-Infinity", big-integer strings. */
function parseScalar(v: unknown, as64: boolean): TruthScalar {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return as64 && Number.isInteger(v) ? BigInt(v) : v;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string') {
    if (v === 'NaN' || v === 'nan') return NaN;
    if (v === 'Infinity' || v === 'inf' || v === '+Infinity') return Infinity;
    if (v === '-Infinity' || v === '-inf') return -Infinity;
    if (/^[-+]?\d+$/.test(v)) return BigInt(v);
    const n = Number(v);
    if (!Number.isNaN(n)) return n;
  }
  throw new Error(`truth: cannot parse numeric value ${JSON.stringify(v)}`);
}

function parseNested(v: unknown, as64: boolean): TruthValue {
  return Array.isArray(v) ? v.map((x) => parseNested(x, as64)) : parseScalar(v, as64);
}

function parseNumericFields(o: Record<string, unknown>, dtype: string | undefined): void {
  const as64 = dtype !== undefined && INT64_DTYPES.has(dtype);
  for (const k of ['min', 'max']) if (k in o) o[k] = parseScalar(o[k], as64);
  for (const k of ['sum', 'sum_sq', 'sum_finite', 'sum_sq_finite']) if (k in o) o[k] = parseScalar(o[k], false);
  if ('sum_int' in o) {
    const s = parseScalar(o.sum_int, false);
    o.sum_int = typeof s === 'number' && !Number.isSafeInteger(s) ? BigInt(s) : s;
  }
  for (const k of ['first', 'last']) if (Array.isArray(o[k])) o[k] = (o[k] as unknown[]).map((x) => parseNested(x, as64));
}

function parseBranch(b: Record<string, unknown>): void {
  if (b.kind === 'flat' || b.kind === 'jagged') {
    parseNumericFields(b, b.dtype as string);
  } else if (b.layout === 'generic' && b.numeric_leaves) {
    parseNumericFields(b.numeric_leaves as Record<string, unknown>, undefined);
    // numbers inside first/last; strings there are data unless the leaves are numeric
    for (const k of ['first', 'last']) if (Array.isArray(b[k])) b[k] = (b[k] as unknown[]).map((x) => parseNested(x, false));
  } else if (b.fields && typeof b.fields === 'object') {
    for (const f of Object.values(b.fields as Record<string, Record<string, unknown>>)) parseNumericFields(f, f.dtype as string);
  }
}

/** Read and parse a truth file (special float strings, big integers, int64 values as bigint). */
export function loadTruth(path: string): TruthFile {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as TruthFile;
  for (const t of raw.trees) {
    for (const b of Object.values(t.branches)) parseBranch(b as unknown as Record<string, unknown>);
  }
  return raw;
}

/** A tree by name (and cycle; without one, the highest cycle). */
export function findTree(truth: TruthFile, name: string, cycle?: number): TruthTree | undefined {
  let best: TruthTree | undefined;
  for (const t of truth.trees) {
    if (t.tree !== name) continue;
    if (cycle !== undefined) {
      if (t.cycle === cycle) return t;
    } else if (!best || t.cycle > best.cycle) best = t;
  }
  return best;
}

export function isNumericBranch(b: TruthBranch): b is TruthNumericBranch {
  return b.kind === 'flat' || b.kind === 'jagged';
}

/**
 * One field of an object branch (TLorentzVector.fX, TRef.id …) as a numeric branch: `jagged` for
 * layout 'jagged_object' (counts from the parent, and its `inner_shape`), `flat` for layout 'object'.
 */
export function objectField(b: TruthObjectBranch, field: string): TruthNumericBranch {
  const f = b.fields[field];
  if (!f) throw new Error(`truth: ${b.object_class} branch ${b.root.path} has no field ${field} (has ${Object.keys(b.fields).join(', ')})`);
  const out: TruthNumericBranch = {
    ...f,
    kind: b.layout === 'jagged_object' ? 'jagged' : 'flat',
    n_entries: b.n_entries,
    root: b.root,
  };
  if (b.inner_shape) out.inner_shape = b.inner_shape;
  if (b.layout === 'jagged_object') {
    out.total_count = b.total_count;
    out.max_count = b.max_count;
    out.counts_sha256 = b.counts_sha256;
  }
  if (b.note) out.note = b.note;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Hashing helpers

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function sha256Hex(a: ArrayBufferView): string {
  return createHash('sha256').update(bytesOf(a)).digest('hex');
}

/** sha256 of the per-entry lengths (offsets[i+1]-offsets[i]) as little-endian int64. */
export function countsSha256(offsets: Int32Array): string {
  const n = Math.max(0, offsets.length - 1);
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const c = offsets[i + 1]! - offsets[i]!;
    words[2 * i] = c;
    words[2 * i + 1] = c < 0 ? -1 : 0;
  }
  return sha256Hex(words);
}

/** sha256_concat and sha256_len_prefixed of strings rows [0, n) of a utf8 column. */
export function stringHashes(offsets: Int32Array, bytes: Uint8Array): { concat: string; lenPrefixed: string; totalBytes: number } {
  const n = Math.max(0, offsets.length - 1);
  const lo = n > 0 ? offsets[0]! : 0;
  const hi = n > 0 ? offsets[n]! : 0;
  const concat = createHash('sha256').update(bytes.subarray(lo, hi)).digest('hex');
  const buf = new Uint8Array(8 * n + (hi - lo));
  const dv = new DataView(buf.buffer);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const a = offsets[i]!;
    const b = offsets[i + 1]!;
    dv.setBigInt64(p, BigInt(b - a), true);
    p += 8;
    buf.set(bytes.subarray(a, b), p);
    p += b - a;
  }
  return { concat, lenPrefixed: createHash('sha256').update(buf).digest('hex'), totalBytes: hi - lo };
}

// ---------------------------------------------------------------------------------------------------------
// Column helpers

const BYTES: Record<DType, number> = {
  bool: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float32: 4,
  float64: 8,
};

function rowsOf(c: ColumnData): number {
  switch (c.kind) {
    case 'primitive':
      return c.values.length;
    case 'fixed':
      return c.size > 0 ? Math.floor(rowsOf(c.child) / c.size) : 0;
    case 'list':
    case 'utf8':
      return Math.max(0, c.offsets.length - 1);
  }
}

function typeString(c: ColumnData): string {
  switch (c.kind) {
    case 'primitive':
      return c.dtype;
    case 'fixed':
      return `fixed<${c.size}, ${typeString(c.child)}>`;
    case 'list':
      return `list<${typeString(c.child)}>`;
    case 'utf8':
      return 'utf8';
  }
}

function expectedTypeString(b: TruthNumericBranch): string {
  let s: string = b.dtype;
  const shape = b.inner_shape ?? [];
  for (let i = shape.length - 1; i >= 0; i--) s = `fixed<${shape[i]}, ${s}>`;
  return b.kind === 'jagged' ? `list<${s}>` : s;
}

/** The leaf rows that rows [lo, hi) of `c` cover, descending through fixed and list levels. */
function leafSpan(c: ColumnData, lo: number, hi: number): { leaf: ColumnData; lo: number; hi: number } {
  switch (c.kind) {
    case 'fixed':
      return leafSpan(c.child, lo * c.size, hi * c.size);
    case 'list':
      return hi > lo ? leafSpan(c.child, c.offsets[lo]!, c.offsets[hi]!) : leafSpan(c.child, 0, 0);
    default:
      return { leaf: c, lo, hi };
  }
}

function allocOf(dtype: DType, n: number): NumericArray {
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return new Uint8Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'uint64':
      return new BigUint64Array(n);
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
  }
}

/** The same bytes seen as `dtype` (same element width required). */
function reinterpret(a: NumericArray, dtype: DType): NumericArray {
  const n = a.byteLength / BYTES[dtype];
  const buf = a.buffer as ArrayBuffer;
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return new Uint8Array(buf, a.byteOffset, n);
    case 'int8':
      return new Int8Array(buf, a.byteOffset, n);
    case 'int16':
      return new Int16Array(buf, a.byteOffset, n);
    case 'uint16':
      return new Uint16Array(buf, a.byteOffset, n);
    case 'int32':
      return new Int32Array(buf, a.byteOffset, n);
    case 'uint32':
      return new Uint32Array(buf, a.byteOffset, n);
    case 'int64':
      return new BigInt64Array(buf, a.byteOffset, n);
    case 'uint64':
      return new BigUint64Array(buf, a.byteOffset, n);
    case 'float32':
      return new Float32Array(buf, a.byteOffset, n);
    case 'float64':
      return new Float64Array(buf, a.byteOffset, n);
  }
}

/** Element-wise conversion as numpy's astype would do it for the values that occur here. */
function convert(a: NumericArray, dtype: DType): NumericArray {
  const out = allocOf(dtype, a.length);
  const srcBig = a instanceof BigInt64Array || a instanceof BigUint64Array;
  const dstBig = out instanceof BigInt64Array || out instanceof BigUint64Array;
  if (dtype === 'bool') {
    const o = out as Uint8Array;
    for (let i = 0; i < a.length; i++) o[i] = a[i] ? 1 : 0;
  } else if (srcBig === dstBig) {
    (out as { set(x: ArrayLike<number | bigint>): void }).set(a as ArrayLike<number | bigint>);
  } else if (dstBig) {
    const o = out as BigInt64Array | BigUint64Array;
    const src = a as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
    const wrap = dtype === 'int64' ? (x: bigint) => BigInt.asIntN(64, x) : (x: bigint) => BigInt.asUintN(64, x);
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      o[i] = Number.isFinite(v) ? wrap(BigInt(Math.trunc(v))) : 0n;
    }
  } else {
    const o = out as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
    const src = a as BigInt64Array | BigUint64Array;
    for (let i = 0; i < src.length; i++) o[i] = Number(src[i]!);
  }
  return out;
}

function toF64(a: NumericArray): Float64Array {
  if (a instanceof Float64Array) return a;
  return convert(a, 'float64') as Float64Array;
}

/** Row `i` of a column as plain JS values (bool → boolean, 64-bit → bigint, utf8 → string). */
function materialize(c: ColumnData, i: number, dtypeHint?: DType): TruthValue {
  switch (c.kind) {
    case 'primitive': {
      const v = c.values[i]!;
      return c.dtype === 'bool' ? v !== 0 && v !== 0n : (v as number | bigint);
    }
    case 'fixed': {
      const out: TruthValue[] = [];
      for (let k = 0; k < c.size; k++) out.push(materialize(c.child, i * c.size + k, dtypeHint));
      return out;
    }
    case 'list': {
      const out: TruthValue[] = [];
      for (let k = c.offsets[i]!; k < c.offsets[i + 1]!; k++) out.push(materialize(c.child, k, dtypeHint));
      return out;
    }
    case 'utf8':
      return UTF8.decode(c.bytes.subarray(c.offsets[i]!, c.offsets[i + 1]!));
  }
}

const UTF8 = new TextDecoder('utf-8');

/** Replace the leaf primitive of `c` by `values` (same length), keeping the structure above it. */
function withLeaf(c: ColumnData, dtype: DType, values: NumericArray): ColumnData {
  switch (c.kind) {
    case 'primitive':
      return { kind: 'primitive', dtype, values };
    case 'fixed':
      return { kind: 'fixed', size: c.size, child: withLeaf(c.child, dtype, values) };
    case 'list':
      return { kind: 'list', offsets: c.offsets, child: withLeaf(c.child, dtype, values) };
    case 'utf8':
      return c;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Numbers

/** Exactly rounded sum (Shewchuk / Python math.fsum). Non-finite values fall back to plain addition. */
export function fsum(values: Iterable<number>): number {
  const partials: number[] = [];
  let special = 0;
  let nonFinite = false;
  for (let x of values) {
    if (!Number.isFinite(x)) {
      nonFinite = true;
      special += x;
      continue;
    }
    let i = 0;
    for (let j = 0; j < partials.length; j++) {
      let y = partials[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  if (nonFinite) return special;
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi;
}

interface ColumnStats {
  n_values: number;
  n_nan: number;
  sum: number;
  sum_sq: number;
  sum_abs: number;
  sum_int?: bigint;
  min: number | bigint | null;
  max: number | bigint | null;
}

function statsOf(a: NumericArray, dtype: DType): ColumnStats {
  const n = a.length;
  if (a instanceof BigInt64Array || a instanceof BigUint64Array) {
    let s = 0n;
    let min: bigint | null = null;
    let max: bigint | null = null;
    for (let i = 0; i < n; i++) {
      const v = a[i]!;
      s += v;
      if (min === null || v < min) min = v;
      if (max === null || v > max) max = v;
    }
    const f = toF64(a);
    return {
      n_values: n,
      n_nan: 0,
      sum: fsum(f),
      sum_sq: fsum(f.map((x) => x * x)),
      sum_abs: fsum(f.map(Math.abs)),
      sum_int: s,
      min,
      max,
    };
  }
  const isFloat = dtype === 'float32' || dtype === 'float64';
  const vals: number[] = [];
  let nNan = 0;
  let min: number | null = null;
  let max: number | null = null;
  let sInt = 0;
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (Number.isNaN(v)) {
      nNan++;
      continue;
    }
    vals.push(v);
    if (!isFloat) sInt += v;
    if (min === null || v < min) min = v;
    if (max === null || v > max) max = v;
  }
  const out: ColumnStats = {
    n_values: n,
    n_nan: nNan,
    sum: fsum(vals),
    sum_sq: fsum(vals.map((x) => x * x)),
    sum_abs: fsum(vals.map(Math.abs)),
    min,
    max,
  };
  if (!isFloat) {
    out.sum_int = Number.isSafeInteger(sInt) ? BigInt(sInt) : vals.reduce((s, v) => s + BigInt(v), 0n);
  }
  return out;
}

function fmt(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) {
    const s = `[${v.map(fmt).join(', ')}]`;
    return s.length > 160 ? `${s.slice(0, 157)}...` : s;
  }
  return String(v);
}

interface Tol {
  rtol: number;
  atol: number;
}

/** Scalar equality: NaN equals NaN, bool vs 0/1, number vs bigint by value; with `tol`, |a-b| <= atol + rtol*|b|. */
function scalarEqual(actual: TruthValue, expected: TruthValue, tol?: Tol): boolean {
  if (Array.isArray(actual) || Array.isArray(expected)) return false;
  if (typeof expected === 'boolean') {
    if (typeof actual === 'boolean') return actual === expected;
    if (typeof actual === 'number' || typeof actual === 'bigint') return Number(actual) === (expected ? 1 : 0);
    return false;
  }
  if (typeof actual === 'boolean') return scalarEqual(expected, actual, tol);
  if (typeof expected === 'string' || typeof actual === 'string') return actual === expected;
  if (expected === null || actual === null) return actual === expected;
  if (typeof expected === 'bigint' || typeof actual === 'bigint') {
    const e = typeof expected === 'bigint' ? expected : Number.isInteger(expected) ? BigInt(expected) : null;
    const a = typeof actual === 'bigint' ? actual : Number.isInteger(actual) ? BigInt(actual) : null;
    if (e === null || a === null) return false;
    return e === a;
  }
  if (Number.isNaN(expected)) return Number.isNaN(actual);
  if (actual === expected) return true;
  if (!tol || !Number.isFinite(expected) || !Number.isFinite(actual)) return false;
  return Math.abs(actual - expected) <= tol.atol + tol.rtol * Math.abs(expected);
}

/** First path where two nested values differ, or null. */
function nestedDiff(actual: TruthValue, expected: TruthValue, path: string, tol?: Tol): string | null {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected a list ${fmt(expected)}, got ${fmt(actual)}`;
    if (actual.length !== expected.length) {
      return `${path}: expected ${expected.length} items ${fmt(expected)}, got ${actual.length} ${fmt(actual)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const d = nestedDiff(actual[i]!, expected[i]!, `${path}[${i}]`, tol);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(actual)) return `${path}: expected ${fmt(expected)}, got a list ${fmt(actual)}`;
  return scalarEqual(actual, expected, tol) ? null : `${path}: expected ${fmt(expected)}, got ${fmt(actual)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Comparison

export interface CompareOptions {
  /** relative tolerance of sum/sum_sq (README: about 1e-12) and of values in tolerance mode; default 1e-12 */
  rtol?: number;
  /** absolute tolerance of single values in tolerance mode; default 1e-15 */
  atol?: number;
  /**
   * Compare by statistics and first/last within tolerance instead of by hash. Automatic for branches with
   * `oracle_correction` (Double32 with a range).
   */
  tolerant?: boolean;
  /** compute and compare the statistics even when the hash matches (slower) */
  alwaysStats?: boolean;
  /**
   * Where the hash differs only because of NaN bit patterns (all statistics and first/last agree), accept
   * it (noted in `info`). Default false: the README asks for bit-exact sha256_native where NaN occur.
   */
  ignoreNanPayload?: boolean;
  /** stop collecting problems after this many (default 20) */
  maxProblems?: number;
}

export interface CompareResult {
  ok: boolean;
  /** what is wrong; empty when ok */
  problems: string[];
  /** what was noticed but accepted (dtype differing with identical bytes, tolerance used, …) */
  info: string[];
}

class Report {
  problems: string[] = [];
  info: string[] = [];
  constructor(private readonly max: number) {}
  problem(s: string): void {
    if (this.problems.length < this.max) this.problems.push(s);
    else if (this.problems.length === this.max) this.problems.push('… (more problems not shown)');
  }
  note(s: string): void {
    this.info.push(s);
  }
  result(): CompareResult {
    return { ok: this.problems.length === 0, problems: this.problems, info: this.info };
  }
}

/** Check row count, first/last (nested, as the truth writes them). */
function compareFirstLast(
  r: Report,
  col: ColumnData,
  nEntries: number,
  first: TruthValue[] | undefined,
  last: TruthValue[] | undefined,
  tol?: Tol,
  rowsMatch = true,
): void {
  const rows = rowsOf(col);
  if (first) {
    for (let i = 0; i < first.length && i < rows; i++) {
      const d = nestedDiff(materialize(col, i), first[i]!, `entry ${i}`, tol);
      if (d) {
        r.problem(`first: ${d}`);
        break;
      }
    }
  }
  if (last && last.length > 0 && rowsMatch && rows > 0) {
    const d = nestedDiff(materialize(col, rows - 1), last[0]!, `entry ${nEntries - 1} (last)`, tol);
    if (d) r.problem(`last: ${d}`);
  }
}

function compareStats(r: Report, s: ColumnStats, t: TruthStats, rtol: number, label = ''): void {
  const close = (a: number, b: number, scale: number) =>
    a === b || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= rtol * Math.max(Math.abs(a), Math.abs(b), scale);
  if (s.n_nan !== t.n_nan) r.problem(`${label}n_nan: expected ${t.n_nan}, got ${s.n_nan}`);
  const tsum = t.sum_finite ?? t.sum;
  const tsq = t.sum_sq_finite ?? t.sum_sq;
  if (!close(s.sum, tsum, s.sum_abs)) r.problem(`${label}sum: expected ${tsum}, got ${s.sum} (rtol ${rtol})`);
  if (!close(s.sum_sq, tsq, 0)) r.problem(`${label}sum_sq: expected ${tsq}, got ${s.sum_sq} (rtol ${rtol})`);
  if (t.sum_int !== undefined && s.sum_int !== undefined && BigInt(t.sum_int) !== s.sum_int) {
    r.problem(`${label}sum_int: expected ${t.sum_int}, got ${s.sum_int}`);
  }
  const tolMinMax: Tol = { rtol, atol: 0 };
  if (!scalarEqual(s.min, t.min, tolMinMax)) r.problem(`${label}min: expected ${fmt(t.min)}, got ${fmt(s.min)}`);
  if (!scalarEqual(s.max, t.max, tolMinMax)) r.problem(`${label}max: expected ${fmt(t.max)}, got ${fmt(s.max)}`);
}

function checkCounts(
  r: Report,
  offsets: Int32Array,
  t: { total_count?: number; max_count?: number; counts_sha256?: string },
): void {
  const n = Math.max(0, offsets.length - 1);
  let total = 0;
  let max = 0;
  let bad = -1;
  for (let i = 0; i < n; i++) {
    const c = offsets[i + 1]! - offsets[i]!;
    if (c < 0 && bad < 0) bad = i;
    total += c;
    if (c > max) max = c;
  }
  if (bad >= 0) r.problem(`offsets decrease at entry ${bad}: ${offsets[bad]} -> ${offsets[bad + 1]}`);
  if (t.total_count !== undefined && total !== t.total_count) r.problem(`total_count: expected ${t.total_count}, got ${total}`);
  if (t.max_count !== undefined && n > 0 && max !== t.max_count) r.problem(`max_count: expected ${t.max_count}, got ${max}`);
  if (t.counts_sha256 !== undefined) {
    const h = countsSha256(offsets);
    if (h !== t.counts_sha256) r.problem(`counts_sha256 differs (per-entry lengths; total ${total}, expected total ${t.total_count ?? '?'})`);
  }
}

/**
 * Compare a column with its truth. Numeric branches (flat/jagged): entries, structure (fixed sizes,
 * list), counts, dtype, sha256_native, first/last; statistics when the hash differs or with tolerance.
 * Strings: see compareStrings. Generic (vector<string>, vector<vector<…>>): counts, numeric leaf statistics,
 * first/last. Object branches need one column per field: use compareColumn(objectField(b, 'fX'), col).
 */
export function compareColumn(truth: TruthBranch, col: ColumnData, opts: CompareOptions = {}): CompareResult {
  if (truth.kind === 'other') {
    if (truth.layout === 'string') return compareStrings(truth, col, opts);
    if (truth.layout === 'generic') return compareGeneric(truth, col, opts);
    const r = new Report(opts.maxProblems ?? 20);
    r.problem(
      `${truth.root.path}: ${truth.layout} branch of ${truth.object_class} (fields ${Object.keys(truth.fields).join(', ')}) ` +
        `has no single-column form; compare each field with compareColumn(objectField(truth, name), column)`,
    );
    return r.result();
  }
  return compareNumeric(truth, col, opts);
}

function compareNumeric(t: TruthNumericBranch, col: ColumnData, opts: CompareOptions): CompareResult {
  const r = new Report(opts.maxProblems ?? 20);
  const rtol = opts.rtol ?? 1e-12;
  const tolerant = opts.tolerant === true || t.oracle_correction !== undefined;
  const tol: Tol | undefined = tolerant ? { rtol, atol: opts.atol ?? 1e-15 } : undefined;
  if (t.oracle_correction) r.note(`tolerance mode (oracle_correction: ${t.oracle_correction.what})`);
  if (t.note) r.note(`note: ${t.note}`);

  // rows
  const rows = rowsOf(col);
  const rowsMatch = rows === t.n_entries;
  if (!rowsMatch) r.problem(`entries: expected ${t.n_entries}, got ${rows}`);

  // structure
  const expectType = expectedTypeString(t);
  let structureOk = true;
  let node: ColumnData = col;
  if (t.kind === 'jagged') {
    if (node.kind !== 'list') {
      r.problem(`structure: expected ${expectType}, got ${typeString(col)}`);
      structureOk = false;
    } else {
      checkCounts(r, node.offsets, t);
      node = node.child;
    }
  }
  if (structureOk) {
    for (const d of t.inner_shape ?? []) {
      if (node.kind !== 'fixed' || node.size !== d) {
        r.problem(`structure: expected ${expectType}, got ${typeString(col)}`);
        structureOk = false;
        break;
      }
      node = node.child;
    }
  }
  if (structureOk && node.kind !== 'primitive') {
    r.problem(`structure: expected ${expectType}, got ${typeString(col)}`);
    structureOk = false;
  }

  const span = leafSpan(col, 0, rows);
  if (span.leaf.kind !== 'primitive') {
    if (structureOk) r.problem(`structure: expected ${expectType}, got ${typeString(col)}`);
    return r.result();
  }
  const leaf = span.leaf;
  const nValues = span.hi - span.lo;
  if (nValues !== t.n_values) r.problem(`n_values: expected ${t.n_values}, got ${nValues}`);

  // dtype: bring the values into the truth's dtype
  let values: NumericArray = leaf.values;
  const want = t.dtype;
  if (!NUMERIC_DTYPES.has(want)) {
    r.problem(`truth dtype ${want} is not numeric`);
    return r.result();
  }
  if (leaf.dtype !== want) {
    const sameWidth = BYTES[leaf.dtype] === BYTES[want];
    const rawHash = sameWidth ? sha256Hex(leaf.values.subarray(span.lo, span.hi)) : '';
    if (sameWidth && rawHash === t.sha256_native) {
      r.note(`dtype ${leaf.dtype} accepted for truth ${want}: bytes identical`);
      values = reinterpret(leaf.values, want);
    } else {
      values = convert(leaf.values, want);
      const convHash = sha256Hex(values.subarray(span.lo, span.hi));
      r.problem(
        `dtype: expected ${want}, got ${leaf.dtype}` +
          (convHash === t.sha256_native ? ' (values equal after conversion)' : ''),
      );
    }
  }
  const view = values.subarray(span.lo, span.hi);

  // hash
  let hashOk = false;
  let nanSuspect = false;
  if (t.sha256_native) {
    hashOk = sha256Hex(view) === t.sha256_native;
    if (!hashOk) {
      const f64ok = t.sha256_f64 !== undefined && sha256Hex(toF64(view)) === t.sha256_f64;
      if (tolerant) {
        r.note(`sha256_native differs (compared within tolerance instead)${f64ok ? '; sha256_f64 matches' : ''}`);
      } else if (f64ok) {
        r.problem('sha256_native differs but sha256_f64 matches (NaN payloads or dtype?)');
      } else if (t.n_nan > 0) {
        nanSuspect = true; // decided below, once the statistics are known
      } else {
        r.problem(`values differ: sha256_native mismatch over ${nValues} values`);
      }
    }
  }

  // first/last
  const before = r.problems.length;
  if (structureOk) {
    const vcol = withLeaf(col, want, values);
    compareFirstLast(r, vcol, t.n_entries, t.first, t.last, tol, rowsMatch);
  } else {
    r.note('first/last not compared: structure differs');
  }

  // stats
  if (!hashOk || tolerant || opts.alwaysStats) {
    const s = statsOf(view, want);
    compareStats(r, s, t, rtol);
  }
  if (nanSuspect) {
    const othersAgree = r.problems.length === before;
    const msg =
      `sha256_native differs over ${nValues} values, of which ${t.n_nan} are NaN` +
      (othersAgree
        ? '; n_nan, sums, min/max and first/last all agree, so probably only the NaN bit patterns (sign/payload) ' +
          'differ from the file (ROOT writes e.g. 0xffc00000; JS NaN literals are 0x7fc00000)'
        : '');
    if (othersAgree && opts.ignoreNanPayload) r.note(msg);
    else r.problem(msg);
  }
  return r.result();
}

/** A string branch (layout 'string') against a utf8 column: rows, total bytes, both hashes, first/last. */
export function compareStrings(truth: TruthStringBranch | TruthGenericBranch, col: ColumnData, opts: CompareOptions = {}): CompareResult {
  if (truth.layout === 'generic') return compareGeneric(truth, col, opts);
  const r = new Report(opts.maxProblems ?? 20);
  if (col.kind !== 'utf8') {
    r.problem(`structure: expected utf8, got ${typeString(col)}`);
    return r.result();
  }
  const rows = rowsOf(col);
  const rowsMatch = rows === truth.n_entries;
  if (!rowsMatch) r.problem(`entries: expected ${truth.n_entries}, got ${rows}`);
  const h = stringHashes(col.offsets, col.bytes);
  if (h.totalBytes !== truth.total_count) r.problem(`total_count (bytes): expected ${truth.total_count}, got ${h.totalBytes}`);
  if (h.concat !== truth.sha256_concat) r.problem('sha256_concat differs (string bytes)');
  if (h.lenPrefixed !== truth.sha256_len_prefixed) {
    r.problem(`sha256_len_prefixed differs${h.concat === truth.sha256_concat ? ' (same bytes, different boundaries)' : ''}`);
  }
  compareFirstLast(r, col, truth.n_entries, truth.first, truth.last, undefined, rowsMatch);
  return r.result();
}

/** Every primitive leaf value reachable from rows [0, n) (for numeric_leaves). */
function genericLeaves(c: ColumnData): NumericArray | null {
  const s = leafSpan(c, 0, rowsOf(c));
  if (s.leaf.kind !== 'primitive') return null;
  return s.leaf.values.subarray(s.lo, s.hi);
}

function compareGeneric(t: TruthGenericBranch, col: ColumnData, opts: CompareOptions): CompareResult {
  const r = new Report(opts.maxProblems ?? 20);
  const rtol = opts.rtol ?? 1e-12;
  const rows = rowsOf(col);
  const rowsMatch = rows === t.n_entries;
  if (!rowsMatch) r.problem(`entries: expected ${t.n_entries}, got ${rows}`);
  if (col.kind !== 'list') {
    r.problem(`structure: expected a list per entry (${t.dtype}), got ${typeString(col)}`);
    return r.result();
  }
  checkCounts(r, col.offsets, t);
  if (t.numeric_leaves) {
    const leaves = genericLeaves(col);
    if (!leaves) {
      r.problem(`structure: expected numeric leaves (${t.dtype}), got ${typeString(col)}`);
    } else {
      const nl = t.numeric_leaves;
      if (leaves.length !== nl.n_values) r.problem(`numeric_leaves.n_values: expected ${nl.n_values}, got ${leaves.length}`);
      const dtype: DType = leaves instanceof Float32Array ? 'float32' : leaves instanceof Float64Array ? 'float64' : 'int64';
      const s = statsOf(leaves, dtype);
      compareStats(r, { ...s, sum_int: undefined }, { ...nl, sum_int: undefined }, rtol, 'numeric_leaves.');
    }
  }
  compareFirstLast(r, col, t.n_entries, t.first, t.last, undefined, rowsMatch);
  return r.result();
}

/** "name: problem; problem" lines for an assertion message. */
export function formatResult(name: string, res: CompareResult): string {
  return res.problems.map((p) => `${name}: ${p}`).join('\n');
}
