/**
 * Min-max scaling, Spark MinMaxScaler semantics: per feature, x' = (x - min) / (max - min); a feature
 * whose max == min maps to 0.5. Computed in float64, written as float32. Only finite values take part in the
 * fit (NaN and ±Infinity are ignored); NaN stays NaN, ±Infinity stays ±Infinity. A feature with no finite
 * value in the fit has min = max = null and maps every finite value to 0.5. No clipping: values outside
 * the fitted range (test rows when the scaler was fit on the training rows) fall outside [0, 1].
 *
 * File format ('hep-ml/minmax-scaler' version 1, see docs/commands/prepare.md):
 *   { format, version, column, fit, rows, features?, min: (number|null)[], max: (number|null)[] }
 */
import { readFile } from 'node:fs/promises';
import { CorruptDataError, InputNotFoundError, IoError, SchemaMismatchError } from '../errors.js';

export const SCALER_FORMAT = 'hep-ml/minmax-scaler';
export const SCALER_VERSION = 1;

export interface MinMaxScaler {
  format: typeof SCALER_FORMAT;
  version: typeof SCALER_VERSION;
  /** The column the scaler was fit on (a FixedSizeList of `min.length` values per row). */
  column: string;
  /** What it was fit on: 'all' (every input row) or 'train' (the training rows); free text from the API. */
  fit: string;
  /** Rows that took part in the fit. */
  rows: number;
  /** Feature names, when the input schema metadata gave them (`hep-ml.features.hlf_names`). */
  features?: string[];
  /** Per feature: the smallest finite value seen, or null when there was none. */
  min: (number | null)[];
  /** Per feature: the largest finite value seen, or null when there was none. */
  max: (number | null)[];
}

export type FloatArray = Float32Array | Float64Array;

/** Accumulates per-feature finite min/max over rows of `width` values each, in any order. */
export class MinMaxAccumulator {
  readonly min: Float64Array;
  readonly max: Float64Array;
  private _rows = 0;

  constructor(readonly width: number) {
    if (!Number.isInteger(width) || width < 1) throw new RangeError(`MinMaxAccumulator: bad width ${width}`);
    this.min = new Float64Array(width).fill(Infinity);
    this.max = new Float64Array(width).fill(-Infinity);
  }

  get rows(): number {
    return this._rows;
  }

  /** Adds every row of `values` (row-major, `width` per row). */
  add(values: ArrayLike<number>): void {
    const w = this.width;
    const rows = Math.floor(values.length / w);
    const mn = this.min;
    const mx = this.max;
    for (let r = 0, o = 0; r < rows; r++, o += w) {
      for (let j = 0; j < w; j++) {
        const v = values[o + j]!;
        // v - v is 0 only for finite v (NaN and ±Infinity give NaN)
        if (v - v === 0) {
          if (v < mn[j]!) mn[j] = v;
          if (v > mx[j]!) mx[j] = v;
        }
      }
    }
    this._rows += rows;
  }

  /** Adds row `row` of `values`. */
  addRow(values: ArrayLike<number>, row: number): void {
    const w = this.width;
    const o = row * w;
    const mn = this.min;
    const mx = this.max;
    for (let j = 0; j < w; j++) {
      const v = values[o + j]!;
      if (v - v === 0) {
        if (v < mn[j]!) mn[j] = v;
        if (v > mx[j]!) mx[j] = v;
      }
    }
    this._rows++;
  }

  /** The fitted scaler. */
  scaler(opts: { column?: string; fit?: string; features?: string[] } = {}): MinMaxScaler {
    const min: (number | null)[] = [];
    const max: (number | null)[] = [];
    for (let j = 0; j < this.width; j++) {
      const ok = this.min[j]! <= this.max[j]!;
      min.push(ok ? this.min[j]! : null);
      max.push(ok ? this.max[j]! : null);
    }
    const s: MinMaxScaler = {
      format: SCALER_FORMAT,
      version: SCALER_VERSION,
      column: opts.column ?? 'HLF_input',
      fit: opts.fit ?? 'all',
      rows: this._rows,
      min,
      max,
    };
    if (opts.features) s.features = opts.features;
    return reorder(s);
  }
}

/** Key order of the JSON file (features before the arrays). */
function reorder(s: MinMaxScaler): MinMaxScaler {
  const out = { format: s.format, version: s.version, column: s.column, fit: s.fit, rows: s.rows } as MinMaxScaler;
  if (s.features) out.features = s.features;
  out.min = s.min;
  out.max = s.max;
  return out;
}

/** Fits a scaler on row-major values (`width` per row). */
export function fitMinMax(values: ArrayLike<number>, width: number, opts: { column?: string; fit?: string; features?: string[] } = {}): MinMaxScaler {
  const acc = new MinMaxAccumulator(width);
  acc.add(values);
  return acc.scaler(opts);
}

/** Per-feature offset and factor such that x' = (x - lo) * k, or k = NaN for "constant: 0.5". */
export function scalerCoefficients(s: MinMaxScaler): { lo: Float64Array; k: Float64Array } {
  const w = s.min.length;
  const lo = new Float64Array(w);
  const k = new Float64Array(w);
  for (let j = 0; j < w; j++) {
    const mn = s.min[j];
    const mx = s.max[j];
    if (mn === null || mx === null || mn === undefined || mx === undefined || !(mx > mn)) {
      lo[j] = 0;
      k[j] = NaN;
    } else {
      lo[j] = mn;
      k[j] = mx - mn; // divided, not multiplied by 1/range: exact 1.0 at max
    }
  }
  return { lo, k };
}

/**
 * Scales row-major values (`scaler.min.length` per row) into float32: (x - min) / (max - min) in float64,
 * 0.5 for constant features, NaN/±Infinity kept. Writes into `out` when given (same length).
 */
export function applyMinMax(scaler: MinMaxScaler, values: ArrayLike<number>, out?: Float32Array): Float32Array {
  const w = scaler.min.length;
  if (values.length % w !== 0) throw new RangeError(`applyMinMax: ${values.length} values are not rows of ${w}`);
  const res = out ?? new Float32Array(values.length);
  if (res.length !== values.length) throw new RangeError(`applyMinMax: output has ${res.length} values, input ${values.length}`);
  const { lo, k } = scalerCoefficients(scaler);
  scaleInto(values, res, lo, k, 0, values.length / w);
  return res;
}

/** Scales rows [0, rows) of `src` (row-major, lo.length per row) into `dst` starting at row `dstRow`. */
export function scaleInto(src: ArrayLike<number>, dst: Float32Array, lo: Float64Array, k: Float64Array, dstRow: number, rows: number): void {
  const w = lo.length;
  for (let r = 0; r < rows; r++) {
    const so = r * w;
    const d = (dstRow + r) * w;
    for (let j = 0; j < w; j++) {
      const x = src[so + j]!;
      const kj = k[j]!;
      if (kj === kj) dst[d + j] = (x - lo[j]!) / kj;
      else dst[d + j] = x - x === 0 ? 0.5 : x; // constant feature: finite → 0.5, NaN/±Inf kept
    }
  }
}

/** Checks a parsed scaler object; SchemaMismatchError naming `name` when it is not one. */
export function parseScaler(obj: unknown, name = '<scaler>'): MinMaxScaler {
  const s = obj as Partial<MinMaxScaler> | null;
  const bad = (why: string) =>
    new SchemaMismatchError(`not a hep-ml min-max scaler (format '${SCALER_FORMAT}' version ${SCALER_VERSION}): ${why}`, { file: name });
  if (typeof s !== 'object' || s === null) throw bad('not a JSON object');
  if (s.format !== SCALER_FORMAT) throw bad(`format is ${JSON.stringify(s.format)}`);
  if (s.version !== SCALER_VERSION) throw bad(`version is ${JSON.stringify(s.version)}`);
  if (!Array.isArray(s.min) || !Array.isArray(s.max) || s.min.length !== s.max.length || s.min.length === 0) {
    throw bad('min and max must be arrays of the same, non-zero length');
  }
  for (const v of [...s.min, ...s.max]) if (v !== null && typeof v !== 'number') throw bad('min/max hold something other than numbers and null');
  if (typeof s.column !== 'string') throw bad('no column name');
  if (s.features !== undefined && (!Array.isArray(s.features) || s.features.length !== s.min.length)) {
    throw bad('features must list one name per feature');
  }
  return s as MinMaxScaler;
}

/** Reads a scaler JSON file (as written by `hep-ml prepare`). */
export async function loadScaler(path: string): Promise<MinMaxScaler> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new InputNotFoundError('no such scaler file', { file: path }, { cause: e });
    throw new IoError(`cannot read the scaler file: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new CorruptDataError(`the scaler file is not JSON: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  return parseScaler(obj, path);
}

/** The scaler as the JSON text written to scaler.json. */
export function scalerJson(s: MinMaxScaler): string {
  return JSON.stringify(reorder(s), null, 2) + '\n';
}
