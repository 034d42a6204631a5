/**
 * Prepare benchmark: prepare() --undersample on three features-shaped input files (what `hep-ml features`
 * writes: HLF_input FixedSizeList<Float32>[14], GRU_input FixedSizeList<Float32>[15219], n_particles,
 * label, encoded_label, entry), synthesized with random values in a temp dir, BENCH_ROWS rows per class in
 * batches of 256 (the features stage's batch size).
 *
 * Timed, one thread, files in the OS temp dir (in the page cache after they are written, no fsync):
 *   - in_memory: a memory budget large enough that pass 1 keeps the batches and pass 2 reads them from
 *     memory (the inputs are read once);
 *   - bucketed: a small budget (BENCH_BUCKET_MEMORY, default 64 MB) that sends the kept rows through
 *     several temporary bucket files (the inputs are read twice, the buckets written and read once).
 * Baseline measured in the same run: copying the same input bytes to new files with plain reads and
 * writes (8 MiB buffer, FileHandle.read/write), once and twice — the I/O floor: prepare reads its inputs
 * (once in memory, twice bucketed) and writes about as many output bytes as it keeps.
 *
 * Rates: rows/s = input rows / seconds; input MB/s = input file bytes (1e6) / seconds.
 * Prints one JSON document on stdout, logs on stderr.
 * Env: BENCH_ROWS (per class, default 1500), BENCH_SECONDS (min seconds per measurement, default 2),
 * BENCH_BUCKET_MEMORY (the bucketed run's memory budget, default "64 MB").
 */
import os, { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { medianTime } from './lib.js';
import { join } from 'node:path';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../src/columnar/index.js';
import { featureFields, featureMetadata } from '../src/features/index.js';
import { prepare, type PrepareOptions, type PrepareSummary } from '../src/prepare/index.js';
import type { ColumnBatch } from '../src/root/columns.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1500);
const minSeconds = Number(process.env.BENCH_SECONDS ?? 2);
const BUCKET_MEMORY = process.env.BENCH_BUCKET_MEMORY ?? '64 MB';
const IN_MEMORY_BUDGET = '8 GB';
const BATCH = 256;
const CLASSES = ['qcd', 'ttbar', 'wjets'] as const;
const log = (s: string) => process.stderr.write(`${s}\n`);
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

const time = (fn: () => unknown, before: () => unknown, minRuns = 3) => medianTime(fn, { minSeconds, minRuns, before });

/** A small xorshift32 for the synthetic values (the values do not matter to prepare, only their size). */
function xorshift(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) * 2 ** -32;
  };
}

const fields = featureFields({ recipe: 'sparkdltrigger' });
const expected = ['HLF_input', 'GRU_input', 'n_particles', 'label', 'encoded_label', 'entry'];
if (fields.map((f) => f.name).join() !== expected.join()) throw new Error(`unexpected feature fields ${fields.map((f) => f.name).join()}`);
const sizeOf = (name: string) => (fields.find((f) => f.name === name)!.type as { size: number }).size;
const N_HLF = sizeOf('HLF_input');
const GRU = sizeOf('GRU_input');
const K = sizeOf('encoded_label');

/** Writes one class's features file: `rows` rows of random values, label `label`. */
async function writeClass(path: string, label: number, rows: number, seed: number): Promise<void> {
  const schema = makeSchema(fields, { ...featureMetadata({ recipe: 'sparkdltrigger' }, 'bench'), 'hep-ml.source': JSON.stringify([`bench:${CLASSES[label]}`]) });
  const r = xorshift(seed);
  const w = await IpcStreamWriter.open(path, { schema });
  for (let start = 0; start < rows; start += BATCH) {
    const m = Math.min(BATCH, rows - start);
    const hlf = new Float32Array(m * N_HLF);
    for (let i = 0; i < hlf.length; i++) hlf[i] = 100 * r() - 10;
    const gru = new Float32Array(m * GRU);
    for (let i = 0; i < gru.length; i++) gru[i] = r() - 0.5;
    const np = new Int32Array(m);
    for (let i = 0; i < m; i++) np[i] = 100 + Math.floor(400 * r());
    const onehot = new Float32Array(m * K);
    for (let i = 0; i < m; i++) onehot[i * K + label] = 1;
    const entry = new BigInt64Array(m);
    for (let i = 0; i < m; i++) entry[i] = BigInt(start + i);
    const f32 = (values: Float32Array) => ({ kind: 'primitive' as const, dtype: 'float32' as const, values });
    const batch: ColumnBatch = {
      entryStart: start,
      entryStop: start + m,
      columns: [
        { name: 'HLF_input', data: { kind: 'fixed', size: N_HLF, child: f32(hlf) } },
        { name: 'GRU_input', data: { kind: 'fixed', size: GRU, child: f32(gru) } },
        { name: 'n_particles', data: { kind: 'primitive', dtype: 'int32', values: np } },
        { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: new Int32Array(m).fill(label) } },
        { name: 'encoded_label', data: { kind: 'fixed', size: K, child: f32(onehot) } },
        { name: 'entry', data: { kind: 'primitive', dtype: 'int64', values: entry } },
      ],
    };
    await w.write(toRecordBatch(schema, batch));
  }
  await w.close();
}

const COPY_BUF = 8 * 1024 * 1024;
const copyBuf = Buffer.allocUnsafe(COPY_BUF);
/** Plain read + write of `from` into a new file `to`. */
async function copy(from: string, to: string): Promise<number> {
  const src = await open(from, 'r');
  const dst = await open(to, 'w');
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await src.read(copyBuf, 0, COPY_BUF, null);
      if (bytesRead === 0) break;
      let off = 0;
      while (off < bytesRead) off += (await dst.write(copyBuf, off, bytesRead - off)).bytesWritten;
      total += bytesRead;
    }
  } finally {
    await src.close();
    await dst.close();
  }
  return total;
}

const work = mkdtempSync(join(tmpdir(), 'hepml-bench-prepare-'));
let out: Record<string, unknown>;
try {
  const t0 = performance.now();
  const files = CLASSES.map((c) => join(work, `${c}.arrow`));
  for (let c = 0; c < CLASSES.length; c++) await writeClass(files[c]!, c, ROWS, 1000 + c);
  const inputBytes = (await Promise.all(files.map((f) => stat(f)))).reduce((s, st) => s + st.size, 0);
  const inputRows = ROWS * CLASSES.length;
  log(`${CLASSES.length} classes × ${ROWS} rows, ${(inputBytes / 1e6).toFixed(1)} MB of input written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const rssAfterInput = maxRssMb();

  const copyDir = join(work, 'copy');
  const clearCopies = () => rm(copyDir, { recursive: true, force: true });
  const copyAll = async (times: number) => {
    await mkdir(copyDir, { recursive: true });
    let copied = 0;
    for (let k = 0; k < times; k++) for (let i = 0; i < files.length; i++) copied += await copy(files[i]!, join(copyDir, `${k}-${i}.arrow`));
    if (copied !== times * inputBytes) throw new Error(`copied ${copied} bytes, expected ${times * inputBytes}`);
  };
  log('baseline: copy the inputs once ...');
  const tCopy1 = await time(() => copyAll(1), clearCopies);
  log('baseline: copy the inputs twice ...');
  const tCopy2 = await time(() => copyAll(2), clearCopies);
  await clearCopies();

  const outDir = join(work, 'out');
  const clearOut = () => rm(outDir, { recursive: true, force: true });
  const classes = CLASSES.map((name, c) => ({ name, files: [files[c]!] }));
  let last: PrepareSummary | undefined;
  const run = (memory: string) => async () => {
    const opts: PrepareOptions = { classes, out: outDir, undersample: true, memory, seed: 42 };
    last = await prepare(opts);
  };

  log(`prepare --undersample, bucketed (--memory ${BUCKET_MEMORY}) ...`);
  const tBucket = await time(run(BUCKET_MEMORY), clearOut);
  const sBucket = last!;
  if (sBucket.run.inMemory) throw new Error(`BENCH_BUCKET_MEMORY ${BUCKET_MEMORY} did not force buckets`);
  const rssAfterBucketed = maxRssMb();

  log(`prepare --undersample, in memory (--memory ${IN_MEMORY_BUDGET}) ...`);
  const tMem = await time(run(IN_MEMORY_BUDGET), clearOut);
  const sMem = last!;
  if (!sMem.run.inMemory) throw new Error('the in-memory run went through buckets');
  const rssAfterInMemory = maxRssMb();
  await clearOut();

  const rate = (t: { median: number; runs: number }) => ({
    seconds: +t.median.toFixed(3),
    runs: t.runs,
    rows_per_s: Math.round(inputRows / t.median),
    input_mb_per_s: +(inputBytes / 1e6 / t.median).toFixed(1),
  });
  const outputMb = (s: PrepareSummary) => +((s.bytes.train + s.bytes.test) / 1e6).toFixed(1);
  out = {
    bench: 'prepare',
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    note:
      'prepare() --undersample (seed 42, test fraction 0.2, batch size 1024), one thread, files in the OS temp dir (page cache, no fsync); seconds = median of repeated runs after an uncounted warm-up; rows_per_s and input_mb_per_s count input rows / input file bytes; baseline_copy_* = plain read+write copies of all input files to new files (8 MiB buffer), once and twice, the I/O floor (in memory prepare reads its inputs once, bucketed twice); vs_copy_* = seconds / baseline seconds; max_rss_mb = process peak RSS (process.resourceUsage().maxRSS) after each phase, cumulative over the process, bucketed measured before in-memory',
    data: {
      classes: CLASSES.length,
      rows_per_class: ROWS,
      input_rows: inputRows,
      input_batch_rows: BATCH,
      input_mb: +(inputBytes / 1e6).toFixed(1),
      row_bytes: Math.round(inputBytes / inputRows),
      kept_rows: sMem.rows.kept,
      train_rows: sMem.rows.train,
      test_rows: sMem.rows.test,
    },
    results: {
      in_memory: {
        ...rate(tMem),
        memory: IN_MEMORY_BUDGET,
        output_mb: outputMb(sMem),
        vs_copy_once: +(tMem.median / tCopy1.median).toFixed(2),
        vs_copy_twice: +(tMem.median / tCopy2.median).toFixed(2),
      },
      bucketed: {
        ...rate(tBucket),
        memory: BUCKET_MEMORY,
        buckets: sBucket.run.buckets,
        temp_mb: +(sBucket.run.tempBytes / 1e6).toFixed(1),
        output_mb: outputMb(sBucket),
        vs_copy_twice: +(tBucket.median / tCopy2.median).toFixed(2),
      },
      baseline_copy_once: { ...rate(tCopy1), copied_mb: +(inputBytes / 1e6).toFixed(1) },
      baseline_copy_twice: { ...rate(tCopy2), copied_mb: +((2 * inputBytes) / 1e6).toFixed(1) },
    },
    max_rss_mb: { after_input: rssAfterInput, after_bucketed: rssAfterBucketed, after_in_memory: rssAfterInMemory },
  };
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
