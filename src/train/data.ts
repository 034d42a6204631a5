/**
 * Training data: any dataset hep-ml writes (Arrow IPC, Parquet, TFRecord, a shard directory; see
 * src/convert/dataset.ts) streamed into fixed-size training batches of Float32 inputs and integer labels,
 * through a seeded shuffle buffer of bounded size. Memory: the shuffle buffer plus one input batch.
 *
 * Columns: each model input reads one column, a fixed-size list (hep-ml's own layout) or a list of the
 * right length (e.g. Parquet written with `--layout sparkdltrigger`), of any numeric type. Labels come from
 * `label` (integer class index) or else `encoded_label` (one-hot; the arg-max is taken).
 */
import { datasetPieces, openDataset } from '../convert/dataset.js';
import type { BatchSource, Field } from '../convert/types.js';
import { SchemaMismatchError, UsageError } from '../errors.js';
import { Rng } from '../prepare/rng.js';
import type { ColumnBatch, ColumnData, NumericArray } from '../root/columns.js';
import { columnRows, columnType, formatColumnType } from '../root/columns.js';
import type { ModelInput } from './models.js';
import { scaleInto } from '../prepare/scaler.js';

export interface Batch {
  /** One array per model input, rows × width (row-major). */
  inputs: Float32Array[];
  /** Class index per row. */
  labels: Int32Array;
  rows: number;
}

export interface DataSpec {
  inputs: ModelInput[];
  classes: number;
}

/** Copies row i of a column into dst[at .. at+width). */
type RowCopier = (i: number, dst: Float32Array, at: number) => void;

const width = (i: ModelInput): number => i.shape.reduce((a, b) => a * b, 1);

function leafValues(c: ColumnData): NumericArray | undefined {
  return c.kind === 'primitive' ? c.values : undefined;
}

/** A row copier for a column holding `w` numbers per row, or a reason why it cannot be read. */
function copier(c: ColumnData, w: number, where: () => string): RowCopier {
  if (c.kind === 'fixed') {
    const v = leafValues(c.child);
    if (!v || c.size !== w) throw new SchemaMismatchError(`${where()}: expected ${w} numbers per row, the column is ${formatColumnType(columnType(c))}`);
    if (v instanceof Float32Array) return (i, dst, at) => dst.set(v.subarray(i * w, i * w + w), at);
    if (v instanceof BigInt64Array || v instanceof BigUint64Array) return (i, dst, at) => { for (let k = 0; k < w; k++) dst[at + k] = Number(v[i * w + k]!); };
    const n = v as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
    return (i, dst, at) => { for (let k = 0; k < w; k++) dst[at + k] = n[i * w + k]!; };
  }
  if (c.kind === 'list') {
    const v = leafValues(c.child);
    if (!v || v instanceof BigInt64Array || v instanceof BigUint64Array) throw new SchemaMismatchError(`${where()}: a list of ${c.child.kind === 'primitive' ? c.child.dtype : c.child.kind} cannot feed the model`);
    const off = c.offsets;
    const n = v as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
    return (i, dst, at) => {
      const s = Number(off[i]!), e = Number(off[i + 1]!);
      if (e - s !== w) throw new SchemaMismatchError(`${where()}: row ${i} of the batch has ${e - s} values, the model needs ${w}`);
      if (n instanceof Float32Array) dst.set(n.subarray(s, e), at);
      else for (let k = 0; k < w; k++) dst[at + k] = n[s + k]!;
    };
  }
  throw new SchemaMismatchError(`${where()}: a ${c.kind} column cannot feed the model (expected a fixed-size list of ${w} numbers)`);
}

/** The label of row i, or a reason it cannot be read. Optional labels: -1 without a label column or for label -1. */
function labelReader(batch: ColumnBatch, classes: number, where: string, optional = false): (i: number) => number {
  const lab = batch.columns.find((c) => c.name === 'label');
  const one = batch.columns.find((c) => c.name === 'encoded_label');
  if (lab && lab.data.kind === 'primitive' && !(lab.data.values instanceof Float32Array || lab.data.values instanceof Float64Array)) {
    const v = lab.data.values;
    return (i) => {
      const y = Number(v[i]!);
      if (optional && y === -1) return -1;
      if (!(y >= 0 && y < classes)) {
        throw new UsageError(`${where}: row ${i} of a batch has label ${y}${y === -1 ? ' (no class: run hep-ml prepare, or features --label)' : ''}; expected 0..${classes - 1}`);
      }
      return y;
    };
  }
  if (one && (one.data.kind === 'fixed' || one.data.kind === 'list')) {
    // one-hot as a fixed-size list (hep-ml) or a list (Parquet/TFRecord in the sparkdltrigger layout)
    const rowOf = copier(one.data, classes, () => `${where}, column encoded_label`);
    const row = new Float32Array(classes);
    return (i) => {
      rowOf(i, row, 0);
      let best = 0;
      for (let k = 1; k < classes; k++) if (row[k]! > row[best]!) best = k;
      if (!(row[best]! > 0)) throw new UsageError(`${where}: row ${i} of a batch has an all-zero encoded_label`);
      return best;
    };
  }
  if (optional) return () => -1;
  throw new SchemaMismatchError(`${where}: no label column (an integer 'label' or an 'encoded_label' of ${classes} values)`);
}

/** Checks a dataset's fields against the model inputs up front (before any batch is read). */
export function checkFields(fields: Field[], spec: DataSpec, name: string, o: { labels?: 'required' | 'optional'; reader?: string } = {}): void {
  const missing = spec.inputs.filter((i) => !fields.some((f) => f.name === i.column)).map((i) => i.column);
  if (o.labels !== 'optional' && !fields.some((f) => f.name === 'label' || f.name === 'encoded_label')) missing.push('label (or encoded_label)');
  if (missing.length) {
    throw new SchemaMismatchError(
      `${name}: missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (has: ${fields.map((f) => f.name).join(', ')}); ${o.reader ?? 'training'} reads the output of hep-ml prepare or features`,
    );
  }
}

/** A min-max scaling applied to one input column as it is read (x' = (x - lo) / k; k NaN: constant → 0.5). */
export interface InputScaling {
  column: string;
  lo: Float64Array;
  k: Float64Array;
  /**
   * For a source whose provenance is unknown: called with its first batch; false means the data are already
   * scaled and are used as they are.
   */
  decide?: (batch: ColumnBatch) => boolean;
}

/** Class names from a dataset's metadata (prepare's record, or features' label), else undefined. */
export function classNamesOf(metadata: Record<string, string>): string[] | undefined {
  const rec = metadata['hep-ml.prepare'];
  if (rec) {
    try {
      const labels = (JSON.parse(rec) as { labels?: unknown }).labels;
      if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) return labels as string[];
    } catch {
      /* not ours */
    }
  }
  return undefined;
}

export interface StreamOptions {
  batchSize: number;
  /** Rows held for shuffling (0: the file order). */
  shuffleRows: number;
  /** The shuffle's generator (required when shuffleRows > 0). */
  rng?: Rng;
  /** Called with each opened source (metadata, row counts). */
  onSource?: (source: BatchSource, path: string) => void;
  /** Called after each input batch with the number of rows read. */
  onRead?: (rows: number) => void;
  /**
   * Read only shard `index` of `count` (distributed training): with at least `count` files (a shard
   * directory counts its files) file i goes to worker i mod count; with fewer, every worker reads the files
   * and keeps rows [index·m/count, (index+1)·m/count) of every input batch (record batch, row group) of m
   * rows — shards within one row per batch of each other.
   */
  shard?: { index: number; count: number };
  /** 'optional': data without labels is read too (label -1). Default 'required'. */
  labels?: 'required' | 'optional';
  /** Per opened source: an input column to scale on the fly (data that did not go through hep-ml prepare). */
  scaleFor?: (source: BatchSource) => InputScaling | undefined;
  /** Names the reader in messages (default 'training'). */
  reader?: string;
}

/** Which files a worker of a sharded stream opens, and whether it keeps every batch of them. */
export async function shardPlan(paths: string[], shard?: { index: number; count: number }): Promise<{ files: string[]; byBatch: boolean }> {
  if (!shard || shard.count <= 1) return { files: paths, byBatch: false };
  if (!(shard.index >= 0 && shard.index < shard.count)) throw new RangeError(`shard ${shard.index} of ${shard.count}`);
  const pieces = (await Promise.all(paths.map((p) => datasetPieces(p)))).flat();
  if (pieces.length >= shard.count) return { files: pieces.filter((_, i) => i % shard.count === shard.index), byBatch: false };
  return { files: pieces, byBatch: true };
}

/**
 * One pass over the datasets at `paths`, in order, as batches of `batchSize` rows (the last one shorter).
 * With shuffleRows > 0 rows go through a shuffle buffer of that many rows (seeded: the same rng state gives
 * the same order).
 */
export async function* streamBatches(paths: string[], spec: DataSpec, o: StreamOptions): AsyncGenerator<Batch> {
  const widths = spec.inputs.map(width);
  const cap = Math.max(0, Math.floor(o.shuffleRows));
  if (cap > 0 && !o.rng) throw new Error('streamBatches: shuffle needs an rng');
  const buf = cap > 0 ? widths.map((w) => new Float32Array(cap * w)) : [];
  const bufLabels = new Int32Array(cap);
  let filled = 0;

  let out: Batch | undefined;
  const fresh = (): Batch => ({ inputs: widths.map((w) => new Float32Array(o.batchSize * w)), labels: new Int32Array(o.batchSize), rows: 0 });
  const full = (): boolean => out !== undefined && out.rows === o.batchSize;

  const plan = await shardPlan(paths, o.shard);
  for (const path of plan.files) {
    const { source } = await openDataset(path);
    try {
      checkFields(source.fields, spec, source.name, { labels: o.labels, reader: o.reader });
      o.onSource?.(source, path);
      let sc = o.scaleFor?.(source);
      for await (const batch of source.batches()) {
        if (sc?.decide) sc = sc.decide(batch) ? { ...sc, decide: undefined } : undefined;
        const m = batch.columns.length ? columnRows(batch.columns[0]!.data) : 0;
        const lo = plan.byBatch ? Math.floor((o.shard!.index * m) / o.shard!.count) : 0;
        const hi = plan.byBatch ? Math.floor(((o.shard!.index + 1) * m) / o.shard!.count) : m;
        const where = (col: string) => () => `${source.name}, column ${col}`;
        const copiers = spec.inputs.map((inp, k) => {
          const c = batch.columns.find((x) => x.name === inp.column)!;
          const copy = copier(c.data, widths[k]!, where(inp.column));
          const s = sc;
          if (s?.column !== inp.column) return copy;
          if (s.lo.length !== widths[k]) throw new SchemaMismatchError(`${source.name}, column ${inp.column}: the scaler has ${s.lo.length} features, the column ${widths[k]}`);
          return (i: number, dst: Float32Array, at: number) => {
            copy(i, dst, at);
            scaleInto(dst.subarray(at, at + s.lo.length), dst, s.lo, s.k, at / s.lo.length, 1);
          };
        });
        const label = labelReader(batch, spec.classes, source.name, o.labels === 'optional');
        for (let i = lo; i < hi; i++) {
          const y = label(i);
          out ??= fresh();
          if (cap === 0) {
            const r = out.rows++;
            for (let k = 0; k < copiers.length; k++) copiers[k]!(i, out.inputs[k]!, r * widths[k]!);
            out.labels[r] = y;
          } else if (filled < cap) {
            for (let k = 0; k < copiers.length; k++) copiers[k]!(i, buf[k]!, filled * widths[k]!);
            bufLabels[filled++] = y;
            continue;
          } else {
            // emit a random held row, put the new one in its place
            const j = o.rng!.below(cap);
            const r = out.rows++;
            for (let k = 0; k < widths.length; k++) {
              const w = widths[k]!;
              out.inputs[k]!.set(buf[k]!.subarray(j * w, j * w + w), r * w);
              copiers[k]!(i, buf[k]!, j * w);
            }
            out.labels[r] = bufLabels[j]!;
            bufLabels[j] = y;
          }
          if (full()) {
            yield out!;
            out = undefined;
          }
        }
        o.onRead?.(hi - lo);
      }
    } finally {
      await source.close();
    }
  }
  // drain the shuffle buffer in random order
  while (filled > 0) {
    const j = o.rng!.below(filled);
    out ??= fresh();
    const r = out.rows++;
    for (let k = 0; k < widths.length; k++) {
      const w = widths[k]!;
      out.inputs[k]!.set(buf[k]!.subarray(j * w, j * w + w), r * w);
      if (j !== filled - 1) buf[k]!.copyWithin(j * w, (filled - 1) * w, filled * w);
    }
    out.labels[r] = bufLabels[j]!;
    bufLabels[j] = bufLabels[filled - 1]!;
    filled--;
    if (full()) {
      yield out!;
      out = undefined;
    }
  }
  if (out && out.rows > 0) {
    out.inputs = out.inputs.map((a, k) => a.subarray(0, out!.rows * widths[k]!));
    out.labels = out.labels.subarray(0, out.rows);
    yield out;
  }
}

/** Bytes one row takes in the shuffle buffer. */
export function rowBytes(spec: DataSpec): number {
  return spec.inputs.reduce((a, i) => a + 4 * width(i), 4);
}

/** The parts joined into one array of their type. */
export function concatTyped<A extends Float32Array | Int32Array>(parts: A[], make: (n: number) => A): A {
  const out = make(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
