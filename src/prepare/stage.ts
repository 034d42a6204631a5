/**
 * The prepare stage: per-class feature files (what `hep-ml features` writes) → labelled, undersampled,
 * min-max scaled, shuffled `train.arrow` and `test.arrow`, plus the fitted scaler. Bounded memory, exact
 * and deterministic for a seed. See docs/commands/prepare.md for the semantics and how they differ from the
 * published SparkDLTrigger notebook.
 *
 * Passes:
 *   0  open every input, check its schema (nothing is read yet)
 *   1  count the rows of each class; fit min/max on all rows (--scaler-fit all). When the inputs fit in half
 *      the memory budget, their batches are kept in memory and pass 2 reads them from there.
 *      Then the decisions, from seeded PRNG streams: which rows each class keeps (a uniform random subset of
 *      min-class-count rows with --undersample), which of them are test rows (exactly round(f·kept) per
 *      class), and the output position of every kept row (one random permutation of all train rows, one of
 *      all test rows). O(rows) Int32 of memory.
 *   2  read the inputs again and scatter each kept row into the bucket that holds its output position
 *      (bucket b of a split holds output rows [b·R, (b+1)·R), R a multiple of --batch-size sized so a
 *      bucket takes about a quarter of the memory budget); fit min/max on the train rows (--scaler-fit train).
 *      Buckets are Arrow IPC files in a temporary directory inside the output directory; in memory, a
 *      "bucket" is just an index into the kept batches.
 *   3  per bucket, in order: put its rows in output order, scale the feature column, set the labels, and
 *      write batches of --batch-size rows.
 *
 * The output order is a function of (inputs, seed) only: the number of buckets, the input batch sizes and
 * the memory budget change nothing in the bytes written.
 */
import type * as arrow from 'apache-arrow';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IpcStreamWriter, fromRecordBatch, makeSchema, openIpcStream, schemaFields, toRecordBatch, trackTemp, untrackTemp } from '../columnar/index.js';
import { CorruptDataError, HepMlError, InputNotFoundError, IoError, SchemaMismatchError, SelectionError, UnsupportedError, UsageError } from '../errors.js';
import { type ColumnBatch, type ColumnData, type ColumnType, formatColumnType } from '../root/columns.js';
import { type PrepareClassSpec, parseFraction, parseSize, resolveClasses } from './classes.js';
import { columnBytes, gatherColumn } from './gather.js';
import { Rng, randomPermutation, randomPrefix } from './rng.js';
import { type MinMaxScaler, MinMaxAccumulator, scaleInto, scalerCoefficients, scalerJson } from './scaler.js';
import { makeTempDir } from '../columnar/tempdir.js';

export const LABEL_COLUMN = 'label';
export const ONEHOT_COLUMN = 'encoded_label';
/** Schema metadata key of the HLF feature names (a JSON array), written by `hep-ml features`. */
export const HLF_NAMES_KEY = 'hep-ml.features.hlf_names';
/** Schema metadata key of the prepare record in train.arrow/test.arrow. */
export const PREPARE_META_KEY = 'hep-ml.prepare';
export const SUMMARY_FORMAT = 'hep-ml/prepare-summary';

export type ScalerFit = 'all' | 'train';

export interface PrepareOptions {
  /** The classes: name, optional explicit label, files (see resolveClasses for the default labels). */
  classes: PrepareClassSpec[];
  /** Output directory (created if missing): train.arrow, test.arrow, scaler.json, prepare.json. */
  out: string;
  /** Keep exactly min-class-count rows of every class (default false: keep all). */
  undersample?: boolean;
  /** Fraction of each class's kept rows that go to test, in [0, 1) (default 0.2). */
  testFraction?: number;
  /** PRNG seed (default 42). */
  seed?: number;
  /** Fit the min-max scaler on all input rows (default, as published) or on the training rows only. */
  scalerFit?: ScalerFit;
  /** The column to scale: a FixedSizeList of float32/float64 (default 'HLF_input'). */
  scaleColumn?: string;
  /** Memory budget for row data, bytes or a size string ("1 GB", default). */
  memory?: number | string;
  /** Rows per output batch (default 1024). */
  batchSize?: number;
  /** Called as the passes progress; an exception thrown here aborts the run (cleanly). */
  onProgress?: (p: PrepareProgress) => void;
}

export interface PrepareProgress {
  /** count: pass 1; scatter: pass 2 (buckets on disk only); write: pass 3. */
  phase: 'count' | 'scatter' | 'write';
  rowsDone: number;
  /** Rows the phase will handle; during 'count', an estimate from the bytes read so far. */
  rowsTotal: number;
  /** Input bytes read (count, scatter) or output bytes written (write). */
  bytes: number;
}

export interface PrepareClassSummary {
  name: string;
  label: number;
  files: string[];
  /** Input rows. */
  rows: number;
  /** Rows kept (after undersampling). */
  kept: number;
  train: number;
  test: number;
}

export interface PrepareSummary {
  format: typeof SUMMARY_FORMAT;
  version: 1;
  /** The output directory (absolute). */
  out: string;
  /** Output file names, in `out`. */
  outputs: { train: string; test: string; scaler: string; summary: string };
  classes: PrepareClassSummary[];
  rows: { input: number; kept: number; train: number; test: number };
  undersample: boolean;
  testFraction: number;
  seed: number;
  scalerFit: ScalerFit;
  scaleColumn: string;
  /** Rows the scaler was fit on. */
  scalerRows: number;
  batchSize: number;
  /** Output bytes. */
  bytes: { train: number; test: number };
  /**
   * How this run went: input bytes (file sizes), whether the rows were held in memory or went through
   * buckets on disk, bytes of those temporary files, seconds. Not in prepare.json, which depends only on
   * the rows of the inputs and the options that change the output.
   */
  run: { inputBytes: number; inMemory: boolean; buckets: { train: number; test: number }; memory: number; tempBytes: number; seconds: number };
}

// ---------------------------------------------------------------------------------------------------

interface InputFile {
  cls: number; // index into classes (= label)
  path: string;
  bytes: number;
  /** For each carried column, its index in this file's schema. */
  colIndex: number[];
  rows: number;
}

interface Layout {
  /** Input columns other than label/encoded_label, in the first file's order (the scale column among them). */
  carried: { name: string; type: ColumnType }[];
  scaleIdx: number;
  width: number;
  /** Output columns: a carried column index, or 'label' / 'onehot' / 'scaled'. */
  output: { name: string; type: ColumnType; src: number | 'label' | 'onehot' | 'scaled' }[];
  metadata: Map<string, string>;
  featureNames?: string[];
}

/** A batch of carried columns (in Layout.carried order). */
interface Chunk {
  cols: ColumnData[];
  rows: number;
}

/** Where the rows of one bucket come from, in output order. */
interface BucketIndex {
  chunks: Chunk[];
  chunk: Int32Array;
  row: Int32Array;
  label: Int32Array;
}

const TRAIN_MARK = -3;
const TEST_MARK = -2;
const MAX_BUCKETS = 1000;
const MAX_ROWS = 0x7ffffff0;
const BUCKET_LABEL = '__hepml_prepare_label';
const BUCKET_POS = '__hepml_prepare_pos';
const INT32: ColumnType = { kind: 'primitive', dtype: 'int32' };

/** round(x) with halves up, tolerant of binary noise in f·n (0.15·10 = 1.4999999999999998 → 2). */
function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5 + 1e-9);
}

export async function prepare(opts: PrepareOptions): Promise<PrepareSummary> {
  const t0 = performance.now();
  const classes = resolveClasses(opts.classes);
  const K = classes.length;
  const testFraction = parseFraction(opts.testFraction ?? 0.2);
  const seed = opts.seed ?? 42;
  if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
  const scalerFit = opts.scalerFit ?? 'all';
  if (scalerFit !== 'all' && scalerFit !== 'train') throw new UsageError(`--scaler-fit must be 'all' or 'train', got '${String(scalerFit)}'`);
  const memory = parseSize(opts.memory ?? '1 GB');
  const batchSize = opts.batchSize ?? 1024;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batchSize}`);
  const scaleColumn = opts.scaleColumn ?? 'HLF_input';
  if (scaleColumn === LABEL_COLUMN || scaleColumn === ONEHOT_COLUMN) throw new UsageError(`cannot scale the '${scaleColumn}' column: prepare writes it`);
  const undersample = opts.undersample ?? false;
  const progress = opts.onProgress ?? (() => undefined);

  // ---- pass 0: every input exists, is Arrow, and has the same columns
  const inputs: InputFile[] = [];
  for (const c of classes) for (const f of c.files) inputs.push({ cls: c.label, path: f, bytes: await fileSize(f), colIndex: [], rows: 0 });
  const schemas: arrow.Schema[] = [];
  for (const inp of inputs) {
    const s = await openIpcStream(inp.path);
    await s.close();
    schemas.push(s.schema);
  }
  // The first file on the command line (classes are sorted by label; files keep their order within a class).
  const firstIdx = firstGiven(opts.classes, inputs);
  const layout = checkSchemas(inputs, schemas, firstIdx, scaleColumn, K);
  const inputBytes = inputs.reduce((s, f) => s + f.bytes, 0);

  const outDir = resolve(opts.out);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw new IoError(`cannot create the output directory: ${(e as Error).message}`, { file: opts.out }, { cause: e });
  }
  const tmp = await makeTempDir(outDir, 'hep-ml-prepare-');
  const openWriters: IpcStreamWriter[] = [];
  /** Files inside `tmp` registered with trackTemp: untracked when `tmp` goes. */
  const tracked: string[] = [];
  const track = (p: string) => {
    trackTemp(p);
    tracked.push(p);
  };
  try {
    const target = Math.max(1, Math.floor(memory / 4));
    const inMemoryLimit = Math.floor(memory / 2);
    const inMemory = inputBytes <= inMemoryLimit;

    // ---- pass 1: count, fit on all rows, keep the batches when they fit
    const rows = new Array<number>(K).fill(0);
    const rowBytes = new Array<number>(K).fill(0);
    const accAll = new MinMaxAccumulator(layout.width);
    const cache: Chunk[][] = inputs.map(() => []);
    let bytesRead = 0;
    let rowsSeen = 0;
    for (let fi = 0; fi < inputs.length; fi++) {
      const inp = inputs[fi]!;
      let n = 0;
      for await (const chunk of readChunks(inp, layout, (b) => progress({ phase: 'count', rowsDone: rowsSeen, rowsTotal: estimate(rowsSeen, bytesRead + b, inputBytes), bytes: bytesRead + b }))) {
        n += chunk.rows;
        rowsSeen += chunk.rows;
        if (scalerFit === 'all') accAll.add(leaf(chunk.cols[layout.scaleIdx]!));
        for (const c of chunk.cols) rowBytes[inp.cls]! += columnBytes(c);
        if (inMemory) cache[fi]!.push(chunk);
      }
      inp.rows = n;
      rows[inp.cls]! += n;
      bytesRead += inp.bytes;
      progress({ phase: 'count', rowsDone: rowsSeen, rowsTotal: estimate(rowsSeen, bytesRead, inputBytes), bytes: bytesRead });
    }
    for (const c of classes) {
      if (rows[c.label] === 0) throw new SelectionError(`class '${c.name}' has no rows (${c.files.join(', ')})`, { file: c.files[0] });
      if (rows[c.label]! > MAX_ROWS) throw new UnsupportedError(`class '${c.name}' has ${rows[c.label]} rows; at most ${MAX_ROWS} are supported`, { file: c.files[0] });
    }

    // ---- decisions: kept / test / train per row, and every kept row's output position
    const minRows = Math.min(...rows);
    const kept = rows.map((n) => (undersample ? minRows : n));
    const nTest = kept.map((k) => Math.min(k, roundHalfUp(testFraction * k)));
    const nTrain = kept.map((k, i) => k - nTest[i]!);
    const T = [sum(nTrain), sum(nTest)] as const;
    if (T[0] > MAX_ROWS || T[1] > MAX_ROWS) throw new UnsupportedError(`${T[0] + T[1]} kept rows; at most ${MAX_ROWS} per split are supported`);
    const dest = rows.map((n, c) => {
      const perm = randomPrefix(n, new Rng(seed, `prepare/select/${c}`), kept[c]!);
      const d = new Int32Array(n).fill(-1);
      for (let i = 0; i < nTest[c]!; i++) d[perm[i]!] = TEST_MARK;
      for (let i = nTest[c]!; i < kept[c]!; i++) d[perm[i]!] = TRAIN_MARK;
      return d;
    });
    {
      const order = [randomPermutation(T[0], new Rng(seed, 'prepare/order/train')), randomPermutation(T[1], new Rng(seed, 'prepare/order/test'))];
      let jt = 0;
      let js = 0;
      for (const d of dest) {
        for (let i = 0; i < d.length; i++) {
          if (d[i] === TRAIN_MARK) d[i] = order[0]![jt++]!;
          else if (d[i] === TEST_MARK) d[i] = -2 - order[1]![js++]!;
        }
      }
    }

    // ---- buckets: R rows of output each (a multiple of batchSize), about `target` bytes
    const avgRow = rowBytes.map((b, c) => b / rows[c]!);
    const splitBytes = [sum(nTrain.map((n, c) => n * avgRow[c]!)), sum(nTest.map((n, c) => n * avgRow[c]!))];
    const R = [0, 1].map((s) => {
      const t = T[s]!;
      if (inMemory || t === 0 || splitBytes[s]! <= target) return Math.max(1, t);
      const rowsTarget = Math.floor((t * target) / splitBytes[s]!);
      return Math.max(batchSize, Math.floor(rowsTarget / batchSize) * batchSize);
    });
    const nb = [0, 1].map((s) => Math.ceil(T[s]! / R[s]!));
    if (!inMemory && nb[0]! + nb[1]! > MAX_BUCKETS) {
      throw new UsageError(`the kept rows need ${nb[0]! + nb[1]!} temporary buckets of at most ${fmtBytes(target)} (more than ${MAX_BUCKETS} open files): raise --memory`);
    }

    // ---- pass 2: scatter into buckets (or index the kept batches); fit on the train rows
    const accTrain = new MinMaxAccumulator(layout.width);
    const fitTrain = scalerFit === 'train';
    const memIndex: BucketIndex[] = [];
    const bucketPaths: string[][] = [[], []];
    let tempBytes = 0;
    if (inMemory) {
      const chunks: Chunk[] = [];
      for (let s = 0; s < 2; s++) memIndex.push({ chunks, chunk: new Int32Array(T[s]!), row: new Int32Array(T[s]!), label: new Int32Array(T[s]!) });
      for (let fi = 0; fi < inputs.length; fi++) {
        const inp = inputs[fi]!;
        const d = dest[inp.cls]!;
        let start = rowOffset(inputs, fi);
        for (const chunk of cache[fi]!) {
          const ci = chunks.length;
          chunks.push(chunk);
          const hlf = leaf(chunk.cols[layout.scaleIdx]!);
          for (let i = 0; i < chunk.rows; i++) {
            const v = d[start + i]!;
            if (v === -1) continue;
            const s = v >= 0 ? 0 : 1;
            const p = v >= 0 ? v : -2 - v;
            const ix = memIndex[s]!;
            ix.chunk[p] = ci;
            ix.row[p] = i;
            ix.label[p] = inp.cls;
            if (fitTrain && s === 0) accTrain.addRow(hlf, i);
          }
          start += chunk.rows;
        }
      }
    } else {
      const bucketFields = [...layout.carried, { name: BUCKET_LABEL, type: INT32 }, { name: BUCKET_POS, type: INT32 }];
      const bucketSchema = makeSchema(bucketFields);
      const writers: IpcStreamWriter[] = [];
      const hwm = Math.max(64 * 1024, Math.min(8 * 1024 * 1024, Math.floor(target / (4 * (nb[0]! + nb[1]!)))));
      for (let s = 0; s < 2; s++) {
        for (let b = 0; b < nb[s]!; b++) {
          const p = join(tmp.path, `${s === 0 ? 'train' : 'test'}-${String(b).padStart(4, '0')}.arrow`);
          bucketPaths[s]!.push(p);
          const w = await IpcStreamWriter.open(p, { schema: bucketSchema, highWaterMark: hwm });
          openWriters.push(w);
          writers.push(w);
        }
      }
      const totalRows = sum(rows);
      let done = 0;
      let readBefore = 0;
      const nKeys = nb[0]! + nb[1]!;
      for (let fi = 0; fi < inputs.length; fi++) {
        const inp = inputs[fi]!;
        const d = dest[inp.cls]!;
        let start = rowOffset(inputs, fi);
        let n = 0;
        for await (const chunk of readChunks(inp, layout, (b) => progress({ phase: 'scatter', rowsDone: done, rowsTotal: totalRows, bytes: readBefore + b }))) {
          if (n + chunk.rows > inp.rows) throw changed(inp);
          n += chunk.rows;
          const hlf = leaf(chunk.cols[layout.scaleIdx]!);
          const key = new Int32Array(chunk.rows);
          const count = new Int32Array(nKeys);
          for (let i = 0; i < chunk.rows; i++) {
            const v = d[start + i]!;
            let k = -1;
            if (v >= 0) {
              k = Math.floor(v / R[0]!);
              if (fitTrain) accTrain.addRow(hlf, i);
            } else if (v !== -1) k = nb[0]! + Math.floor((-2 - v) / R[1]!);
            key[i] = k;
            if (k >= 0) count[k]!++;
          }
          // Counting sort of the rows by bucket, input order kept within a bucket.
          const first = new Int32Array(nKeys + 1);
          for (let k = 0; k < nKeys; k++) first[k + 1] = first[k]! + count[k]!;
          const fill = first.slice(0, nKeys);
          const sorted = new Int32Array(first[nKeys]!);
          for (let i = 0; i < chunk.rows; i++) if (key[i]! >= 0) sorted[fill[key[i]!]!++] = i;
          for (let k = 0; k < nKeys; k++) {
            const m = count[k]!;
            if (m === 0) continue;
            const rowsK = sorted.subarray(first[k]!, first[k + 1]!);
            const zeros = new Int32Array(m);
            const cols = layout.carried.map((f, j) => ({ name: f.name, data: gatherColumn(f.type, [chunk.cols[j]!], zeros, rowsK, 0, m) }));
            const pos = new Int32Array(m);
            for (let i = 0; i < m; i++) {
              const v = d[start + rowsK[i]!]!;
              pos[i] = v >= 0 ? v : -2 - v;
            }
            cols.push({ name: BUCKET_LABEL, data: { kind: 'primitive', dtype: 'int32', values: new Int32Array(m).fill(inp.cls) } });
            cols.push({ name: BUCKET_POS, data: { kind: 'primitive', dtype: 'int32', values: pos } });
            await writers[k]!.write(toRecordBatch(bucketSchema, { entryStart: 0, entryStop: m, columns: cols }));
          }
          start += chunk.rows;
          done += chunk.rows;
        }
        if (n !== inp.rows) throw changed(inp);
        readBefore += inp.bytes;
        progress({ phase: 'scatter', rowsDone: done, rowsTotal: totalRows, bytes: readBefore });
      }
      for (let s = 0; s < 2; s++) {
        for (let b = 0; b < nb[s]!; b++) {
          const w = writers[s * nb[0]! + b]!;
          await w.close();
          track(bucketPaths[s]![b]!);
          tempBytes += w.bytesWritten;
        }
      }
      openWriters.length = 0;
    }
    for (const c of cache) c.length = 0;

    // ---- the scaler
    const features = layout.featureNames;
    const scaler: MinMaxScaler = (fitTrain ? accTrain : accAll).scaler({ column: scaleColumn, fit: scalerFit, ...(features ? { features } : {}) });
    const coef = scalerCoefficients(scaler);

    // ---- summary (known before pass 3 except the output bytes)
    const classSummaries: PrepareClassSummary[] = classes.map((c) => ({
      name: c.name,
      label: c.label,
      files: c.files,
      rows: rows[c.label]!,
      kept: kept[c.label]!,
      train: nTrain[c.label]!,
      test: nTest[c.label]!,
    }));
    const record = (split: 'train' | 'test') =>
      JSON.stringify({
        split,
        labels: classes.map((c) => c.name),
        classes: classSummaries,
        undersample,
        testFraction,
        seed,
        scalerFit,
        scaleColumn,
        scaler: { min: scaler.min, max: scaler.max, rows: scaler.rows },
      });

    // ---- pass 3: write train and test
    const outBytes = [0, 0];
    const totalOut = T[0] + T[1];
    let written = 0;
    for (let s = 0; s < 2; s++) {
      const split = s === 0 ? 'train' : 'test';
      const meta = new Map(layout.metadata);
      meta.set(PREPARE_META_KEY, record(split));
      const schema = makeSchema(
        layout.output.map((f) => ({ name: f.name, type: f.type })),
        Object.fromEntries(meta),
      );
      const staged = join(tmp.path, `${split}.arrow`);
      const w = await IpcStreamWriter.open(staged, { schema });
      openWriters.push(w);
      let outRow = 0;
      for (let b = 0; b < nb[s]!; b++) {
        const lo = b * R[s]!;
        const hi = Math.min(T[s]!, lo + R[s]!);
        const ix = inMemory ? memIndex[s]! : await loadBucket(bucketPaths[s]![b]!, layout, lo, hi - lo);
        for (let o = 0; o < hi - lo; o += batchSize) {
          const m = Math.min(batchSize, hi - lo - o);
          const batch = buildBatch(layout, ix, o, m, K, coef, outRow);
          await w.write(toRecordBatch(schema, batch));
          outRow += m;
          written += m;
          progress({ phase: 'write', rowsDone: written, rowsTotal: totalOut, bytes: outBytes[0]! + w.bytesWritten });
        }
        if (!inMemory) {
          await rmQuiet(bucketPaths[s]![b]!);
          untrackTemp(bucketPaths[s]![b]!);
        }
      }
      await w.close();
      openWriters.pop();
      track(staged);
      outBytes[s] = w.bytesWritten;
    }

    const summary: PrepareSummary = {
      format: SUMMARY_FORMAT,
      version: 1,
      out: outDir,
      outputs: { train: 'train.arrow', test: 'test.arrow', scaler: 'scaler.json', summary: 'prepare.json' },
      classes: classSummaries,
      rows: { input: sum(rows), kept: sum(kept), train: T[0], test: T[1] },
      undersample,
      testFraction,
      seed,
      scalerFit,
      scaleColumn,
      scalerRows: scaler.rows,
      batchSize,
      bytes: { train: outBytes[0]!, test: outBytes[1]! },
      run: { inputBytes, inMemory, buckets: { train: inMemory ? 0 : nb[0]!, test: inMemory ? 0 : nb[1]! }, memory, tempBytes, seconds: 0 },
    };
    const { out: _out, run: _run, ...persisted } = summary;
    for (const [name, text] of [['scaler.json', scalerJson(scaler)], ['prepare.json', JSON.stringify(persisted, null, 2) + '\n']] as const) {
      const p = join(tmp.path, name);
      track(p);
      await writeStaged(p, text);
    }

    // ---- publish: four renames at the very end
    for (const name of ['train.arrow', 'test.arrow', 'scaler.json', 'prepare.json']) {
      const from = join(tmp.path, name);
      try {
        await rename(from, join(outDir, name));
      } catch (e) {
        throw new IoError(`cannot move ${name} into the output directory: ${(e as Error).message}`, { file: join(outDir, name) }, { cause: e });
      }
      untrackTemp(from);
    }
    summary.run.seconds = +((performance.now() - t0) / 1000).toFixed(3);
    return summary;
  } finally {
    for (const w of openWriters) await w.abort();
    await tmp.remove();
    for (const p of tracked) untrackTemp(p);
  }
}

// ---------------------------------------------------------------------------------------------------

function sum(a: number[]): number {
  return a.reduce((s, x) => s + x, 0);
}

function estimate(rows: number, bytes: number, total: number): number {
  return bytes > 0 ? Math.max(rows, Math.round((rows * total) / bytes)) : rows;
}

function fmtBytes(b: number): string {
  return b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;
}

/** Row index (within its class) of the first row of inputs[fi]. */
function rowOffset(inputs: InputFile[], fi: number): number {
  let o = 0;
  for (let j = 0; j < fi; j++) if (inputs[j]!.cls === inputs[fi]!.cls) o += inputs[j]!.rows;
  return o;
}

function changed(inp: InputFile): CorruptDataError {
  return new CorruptDataError(`the file changed while prepare was reading it (it had ${inp.rows} rows in the first pass)`, { file: inp.path });
}

async function fileSize(path: string): Promise<number> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new InputNotFoundError('is a directory, not a file', { file: path });
    return st.size;
  } catch (e) {
    if (e instanceof HepMlError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputNotFoundError('no such file', { file: path }, { cause: e });
    throw new IoError(`cannot read: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

async function rmQuiet(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

async function writeStaged(path: string, text: string): Promise<void> {
  try {
    await writeFile(path, text, { flag: 'wx' });
  } catch (e) {
    throw new IoError(`cannot write: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

/** The index of the first file given on the command line, in `inputs` (which is sorted by label). */
function firstGiven(specs: PrepareClassSpec[], inputs: InputFile[]): number {
  const first = specs[0]!.files[0]!;
  const i = inputs.findIndex((f) => f.path === first);
  return i >= 0 ? i : 0;
}

/** The values of a fixed-size column of a primitive type, row-major. */
function leaf(c: ColumnData): Float32Array | Float64Array {
  let x = c;
  while (x.kind === 'fixed') x = x.child;
  return (x as { values: Float32Array | Float64Array }).values;
}

/** Validates every input's schema against the first file's; returns the layout of the output. */
function checkSchemas(inputs: InputFile[], schemas: arrow.Schema[], firstIdx: number, scaleColumn: string, K: number): Layout {
  const fieldsOf = (i: number) => {
    try {
      return schemaFields(schemas[i]!);
    } catch (e) {
      if (e instanceof HepMlError && e.context.file === undefined) e.context.file = inputs[i]!.path;
      throw e;
    }
  };
  const isLabel = (n: string) => n === LABEL_COLUMN || n === ONEHOT_COLUMN;
  const describe = (fs: { name: string; type: ColumnType }[]) => fs.map((f) => `${f.name} (${formatColumnType(f.type)})`).join(', ');

  const all = inputs.map((_, i) => fieldsOf(i));
  for (let i = 0; i < inputs.length; i++) {
    const fs = all[i]!;
    const f = fs.find((x) => x.name === scaleColumn);
    if (!f) {
      throw new SchemaMismatchError(`no column '${scaleColumn}' (a fixed-size list of float32 or float64) to scale; the file's columns: ${describe(fs) || '(none)'}`, { file: inputs[i]!.path });
    }
    if (f.type.kind !== 'fixed' || f.type.child.kind !== 'primitive' || (f.type.child.dtype !== 'float32' && f.type.child.dtype !== 'float64')) {
      throw new SchemaMismatchError(`column '${scaleColumn}' is ${formatColumnType(f.type)}; prepare scales a fixed-size list of float32 or float64`, { file: inputs[i]!.path });
    }
  }
  const ref = all[firstIdx]!;
  const refPath = inputs[firstIdx]!.path;
  const carried = ref.filter((f) => !isLabel(f.name));
  const refTypes = new Map(carried.map((f) => [f.name, formatColumnType(f.type)]));
  for (let i = 0; i < inputs.length; i++) {
    const fs = all[i]!.filter((f) => !isLabel(f.name));
    const here = new Map(fs.map((f) => [f.name, formatColumnType(f.type)]));
    const missing = carried.filter((f) => !here.has(f.name)).map((f) => f.name);
    const extra = fs.filter((f) => !refTypes.has(f.name)).map((f) => f.name);
    const differ = fs.filter((f) => refTypes.has(f.name) && refTypes.get(f.name) !== here.get(f.name));
    if (missing.length || extra.length || differ.length) {
      const why = [
        missing.length ? `lacks column(s) ${missing.join(', ')}` : '',
        extra.length ? `has extra column(s) ${extra.join(', ')}` : '',
        ...differ.map((f) => `column '${f.name}' is ${here.get(f.name)} here, ${refTypes.get(f.name)} in ${refPath}`),
      ].filter((x) => x);
      throw new SchemaMismatchError(`schema differs from ${refPath} (every input must have the same columns, apart from ${LABEL_COLUMN}/${ONEHOT_COLUMN}): ${why.join('; ')}`, { file: inputs[i]!.path });
    }
    const pos = new Map(all[i]!.map((f, j) => [f.name, j]));
    inputs[i]!.colIndex = carried.map((f) => pos.get(f.name)!);
  }
  const scaleIdx = carried.findIndex((f) => f.name === scaleColumn);
  const st = carried[scaleIdx]!.type as Extract<ColumnType, { kind: 'fixed' }>;
  const width = st.size;
  const output: Layout['output'] = [];
  const labelType: ColumnType = INT32;
  const onehotType: ColumnType = { kind: 'fixed', size: K, child: { kind: 'primitive', dtype: 'float32' } };
  for (const f of ref) {
    if (f.name === LABEL_COLUMN) output.push({ name: f.name, type: labelType, src: 'label' });
    else if (f.name === ONEHOT_COLUMN) output.push({ name: f.name, type: onehotType, src: 'onehot' });
    else if (f.name === scaleColumn) output.push({ name: f.name, type: { kind: 'fixed', size: width, child: { kind: 'primitive', dtype: 'float32' } }, src: 'scaled' });
    else output.push({ name: f.name, type: f.type, src: carried.findIndex((c) => c.name === f.name) });
  }
  if (!ref.some((f) => f.name === LABEL_COLUMN)) output.push({ name: LABEL_COLUMN, type: labelType, src: 'label' });
  if (!ref.some((f) => f.name === ONEHOT_COLUMN)) output.push({ name: ONEHOT_COLUMN, type: onehotType, src: 'onehot' });
  const metadata = new Map(schemas[firstIdx]!.metadata);
  let featureNames: string[] | undefined;
  const names = metadata.get(HLF_NAMES_KEY);
  if (names !== undefined && scaleColumn === 'HLF_input') {
    try {
      const parsed = JSON.parse(names) as unknown;
      if (Array.isArray(parsed) && parsed.length === width && parsed.every((x) => typeof x === 'string')) featureNames = parsed as string[];
    } catch {
      // not JSON: no names
    }
  }
  return { carried, scaleIdx, width, output, metadata, featureNames };
}

/** The batches of one input as chunks of carried columns; `onBytes` gets the bytes read so far. */
async function* readChunks(inp: InputFile, layout: Layout, onBytes: (bytes: number) => void): AsyncGenerator<Chunk> {
  const s = await openIpcStream(inp.path);
  try {
    for await (const rb of s.batches) {
      if (rb.numRows === 0) continue;
      let cb: ColumnBatch;
      try {
        cb = fromRecordBatch(rb);
      } catch (e) {
        if (e instanceof HepMlError && e.context.file === undefined) e.context.file = inp.path;
        throw e;
      }
      yield { cols: inp.colIndex.map((j) => cb.columns[j]!.data), rows: rb.numRows };
      onBytes(s.bytesRead);
    }
  } finally {
    await s.close();
  }
}

/** Reads bucket file `path` (output rows [lo, lo + n) of its split) into an index in output order. */
async function loadBucket(path: string, layout: Layout, lo: number, n: number): Promise<BucketIndex> {
  const s = await openIpcStream(path);
  const chunks: Chunk[] = [];
  const ix: BucketIndex = { chunks, chunk: new Int32Array(n).fill(-1), row: new Int32Array(n), label: new Int32Array(n) };
  const nc = layout.carried.length;
  let seen = 0;
  try {
    for await (const rb of s.batches) {
      if (rb.numRows === 0) continue;
      const cb = fromRecordBatch(rb);
      const ci = chunks.length;
      chunks.push({ cols: cb.columns.slice(0, nc).map((c) => c.data), rows: rb.numRows });
      const labels = (cb.columns[nc]!.data as { values: Int32Array }).values;
      const pos = (cb.columns[nc + 1]!.data as { values: Int32Array }).values;
      for (let i = 0; i < rb.numRows; i++) {
        const q = pos[i]! - lo;
        if (q < 0 || q >= n || ix.chunk[q] !== -1) throw new CorruptDataError(`temporary bucket file is inconsistent (row position ${pos[i]})`, { file: path });
        ix.chunk[q] = ci;
        ix.row[q] = i;
        ix.label[q] = labels[i]!;
      }
      seen += rb.numRows;
    }
  } finally {
    await s.close();
  }
  if (seen !== n) throw new CorruptDataError(`temporary bucket file has ${seen} rows, expected ${n}`, { file: path });
  return ix;
}

/** Output rows [o, o + m) of a bucket as a batch of the output columns. */
function buildBatch(layout: Layout, ix: BucketIndex, o: number, m: number, K: number, coef: { lo: Float64Array; k: Float64Array }, entryStart: number): ColumnBatch {
  const columns = layout.output.map((f) => {
    let data: ColumnData;
    if (f.src === 'label') {
      data = { kind: 'primitive', dtype: 'int32', values: ix.label.slice(o, o + m) };
    } else if (f.src === 'onehot') {
      const v = new Float32Array(m * K);
      for (let i = 0; i < m; i++) v[i * K + ix.label[o + i]!] = 1;
      data = { kind: 'fixed', size: K, child: { kind: 'primitive', dtype: 'float32', values: v } };
    } else if (f.src === 'scaled') {
      const si = layout.scaleIdx;
      const raw = gatherColumn(layout.carried[si]!.type, ix.chunks.map((c) => c.cols[si]!), ix.chunk, ix.row, o, m);
      const v = new Float32Array(m * layout.width);
      scaleInto(leaf(raw), v, coef.lo, coef.k, 0, m);
      data = { kind: 'fixed', size: layout.width, child: { kind: 'primitive', dtype: 'float32', values: v } };
    } else {
      const j = f.src;
      data = gatherColumn(layout.carried[j]!.type, ix.chunks.map((c) => c.cols[j]!), ix.chunk, ix.row, o, m);
    }
    return { name: f.name, data };
  });
  return { entryStart, entryStop: entryStart + m, columns };
}
