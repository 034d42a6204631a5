/**
 * Convert benchmark: feature rows of the published shape (HLF_input 14, GRU_input 801×19 = 15 219, encoded_label 3
 * float32, label int32) from `hep-ml generate | hep-ml features` (ttbar + wjets, sparkdltrigger recipe), in memory,
 * written to files by one thread:
 *
 *   parquet  snappy, zstd   (parquet-wasm, dictionary off, V1 pages)
 *   tfrecord plain, gzip    (our Example encoder + @node-rs/crc32; node:zlib)
 *   arrow    IPC stream     (apache-arrow, per-batch with backpressure)
 *
 * MB/s = float32 payload (4 bytes × 15 236 values per event) / wall seconds of the write (best of BENCH_REPEATS).
 * Baseline in the same run: parquetjs-lite (the Parquet library our requirements named) on a small subset, flat
 * `repeated FLOAT` columns, snappy. Also: reading each file back (hep-ml's readers), MB/s of payload.
 *
 * Env: BENCH_EVENTS (default 20000), BENCH_BASELINE_EVENTS (default 200), BENCH_REPEATS (default 2).
 */
import os, { tmpdir } from 'node:os';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { extractFeatures, featureFields } from '../src/features/index.js';
import { generateEvents } from '../src/generate/index.js';
import { openDataset, openFileSink, type Compression, type Field, type OutputFormat } from '../src/convert/index.js';
import type { ColumnBatch } from '../src/root/columns.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20000);
const BASE_EVENTS = Number(process.env.BENCH_BASELINE_EVENTS ?? 200);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
const BATCH = 500;
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------------
// Data: real feature rows from the toy generator (two processes, interleaved batches)

log(`making ${EVENTS} feature rows ...`);
const t0 = performance.now();
const rows: ColumnBatch[] = [];
let have = 0;
for (const proc of ['ttbar', 'wjets'] as const) {
  const want = Math.ceil(EVENTS / 2);
  let got = 0;
  // ~75 % (ttbar) / ~91 % (wjets) pass the selection
  for await (const b of extractFeatures(generateEvents({ process: proc, events: Math.ceil(want / 0.7), seed: 3 }), { batchRows: BATCH, label: proc === 'ttbar' ? 1 : 2 })) {
    const n = Math.min(b.entryStop - b.entryStart, want - got, EVENTS - have);
    if (n <= 0) break;
    const slice = n === b.entryStop - b.entryStart ? b : { entryStart: have, entryStop: have + n, columns: b.columns.map((c) => ({ name: c.name, data: sliceFixed(c.data, n) })) };
    rows.push({ ...slice, entryStart: have, entryStop: have + n });
    got += n;
    have += n;
  }
}
log(`  ${have} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

function sliceFixed(d: ColumnBatch['columns'][number]['data'], n: number): ColumnBatch['columns'][number]['data'] {
  if (d.kind === 'primitive') return { ...d, values: d.values.subarray(0, n) as typeof d.values };
  if (d.kind === 'fixed') return { ...d, child: sliceFixed(d.child, n * d.size) };
  throw new Error('unexpected column');
}

const fields: Field[] = featureFields({}).filter((f) => f.name !== 'entry' && f.name !== 'n_particles');
const batches = rows.map((b) => ({ ...b, columns: b.columns.filter((c) => fields.some((f) => f.name === c.name)) }));
const PAYLOAD = have * (14 + 15219 + 3) * 4;
const payloadMB = PAYLOAD / 1e6;

const work = mkdtempSync(join(tmpdir(), 'hepml-bench-convert-'));

async function writeOnce(to: OutputFormat, compression: Compression, path: string, data: ColumnBatch[]): Promise<number> {
  const t = performance.now();
  const sink = await openFileSink(path, to, fields, { compression, metadata: { 'hep-ml.source': 'bench' } });
  for (const b of data) await sink.write(b);
  await sink.close();
  return (performance.now() - t) / 1000;
}

async function readOnce(path: string): Promise<{ seconds: number; rows: number }> {
  const t = performance.now();
  const { source } = await openDataset(path);
  let n = 0;
  for await (const b of source.batches()) n += b.entryStop - b.entryStart;
  await source.close();
  return { seconds: (performance.now() - t) / 1000, rows: n };
}

const results: Record<string, unknown> = {};
for (const [name, to, compression, ext] of [
  ['parquet_snappy', 'parquet', 'snappy', 'parquet'],
  ['parquet_zstd', 'parquet', 'zstd', 'parquet'],
  ['tfrecord', 'tfrecord', 'none', 'tfrecord'],
  ['tfrecord_gzip', 'tfrecord', 'gzip', 'tfrecord.gz'],
  ['arrow', 'arrow', 'none', 'arrow'],
] as [string, OutputFormat, Compression, string][]) {
  const path = join(work, `out.${ext}`);
  log(`${name} ...`);
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) times.push(await writeOnce(to, compression, path, batches));
  const best = Math.min(...times);
  const size = statSync(path).size;
  const rd = await readOnce(path);
  if (rd.rows !== have) throw new Error(`${name}: read ${rd.rows} rows back, wrote ${have}`);
  results[name] = {
    write_seconds: +best.toFixed(3),
    write_mb_per_s: +(payloadMB / best).toFixed(1),
    events_per_s: Math.round(have / best),
    file_mb: +(size / 1e6).toFixed(1),
    read_seconds: +rd.seconds.toFixed(3),
    read_mb_per_s: +(payloadMB / rd.seconds).toFixed(1),
  };
  rmSync(path, { force: true });
}

// Baseline: parquetjs-lite, one JS object per row, flat repeated FLOAT columns, snappy, on a subset.
log(`baseline: parquetjs-lite on ${BASE_EVENTS} events ...`);
const require = createRequire(import.meta.url);
const parquetjs = require('parquetjs-lite') as {
  ParquetSchema: new (s: unknown) => unknown;
  ParquetWriter: { openFile(schema: unknown, path: string, opts?: unknown): Promise<{ appendRow(r: unknown): Promise<void>; close(): Promise<void> }> };
};
const schema = new parquetjs.ParquetSchema({
  HLF_input: { type: 'FLOAT', repeated: true, compression: 'SNAPPY' },
  GRU_input: { type: 'FLOAT', repeated: true, compression: 'SNAPPY' },
  encoded_label: { type: 'FLOAT', repeated: true, compression: 'SNAPPY' },
  label: { type: 'INT32', compression: 'SNAPPY' },
});
const subset: { HLF_input: number[]; GRU_input: number[]; encoded_label: number[]; label: number }[] = [];
for (const b of batches) {
  const get = (n: string) => b.columns.find((c) => c.name === n)!.data as { kind: 'fixed'; child: { values: Float32Array } } & { values?: Int32Array };
  const h = get('HLF_input').child.values;
  const g = get('GRU_input').child.values;
  const e = get('encoded_label').child.values;
  const l = (b.columns.find((c) => c.name === 'label')!.data as { values: Int32Array }).values;
  for (let i = 0; i < b.entryStop - b.entryStart && subset.length < BASE_EVENTS; i++) {
    subset.push({ HLF_input: Array.from(h.subarray(i * 14, i * 14 + 14)), GRU_input: Array.from(g.subarray(i * 15219, (i + 1) * 15219)), encoded_label: Array.from(e.subarray(i * 3, i * 3 + 3)), label: l[i]! });
  }
  if (subset.length >= BASE_EVENTS) break;
}
const basePath = join(work, 'baseline.parquet');
const tb = performance.now();
const w = await parquetjs.ParquetWriter.openFile(schema, basePath, { useDataPageV2: false });
for (const r of subset) await w.appendRow(r);
await w.close();
const baseSeconds = (performance.now() - tb) / 1000;
const baseMB = (subset.length * (14 + 15219 + 3) * 4) / 1e6;
const baseRate = baseMB / baseSeconds;
rmSync(work, { recursive: true, force: true });

const ours = results.parquet_snappy as { write_mb_per_s: number };
const tf = results.tfrecord as { write_mb_per_s: number };
process.stdout.write(
  JSON.stringify(
    {
      bench: 'convert',
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => +x.toFixed(2)),
      note: 'one thread; write_mb_per_s = float32 payload (HLF 14 + GRU 15219 + label 3 per event) / best wall time of writing the file from batches in memory (page cache, no fsync); read = hep-ml reader back to column batches',
      data: { events: have, batch_events: BATCH, payload_mb: +payloadMB.toFixed(1), source: 'generate ttbar+wjets | features (sparkdltrigger)' },
      results,
      baseline: {
        parquetjs_lite_snappy: { events: subset.length, seconds: +baseSeconds.toFixed(3), write_mb_per_s: +baseRate.toFixed(2) },
      },
      speedup: { parquet_snappy_vs_parquetjs_lite: +(ours.write_mb_per_s / baseRate).toFixed(0) },
      targets: { parquet_mb_per_s: 150, parquet_met: ours.write_mb_per_s >= 150, tfrecord_mb_per_s: 300, tfrecord_met: tf.write_mb_per_s >= 300 },
    },
    null,
    2,
  ) + '\n',
);
