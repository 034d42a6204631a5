/**
 * Generate benchmark: generateEvents for each process (qcd, ttbar, wjets), one thread, events in memory;
 * then end to end through an Arrow IPC file, as `hep-ml generate -o FILE` runs it (makeSchema +
 * toRecordBatch + IpcStreamWriter).
 *
 * Baseline measured in the same run, per process: allocating fresh typed arrays of exactly the sizes and
 * types the generator outputs for the same events (every column's values and offsets, batch by batch) and
 * filling them with the generator's own PRNG (xoshiro128**, src/generate/rng.ts): Float32Array with
 * uniform(), Int32/Uint32Array with nextInt32(). That is the cost of just producing random numbers into the
 * output buffers; `vs_prng_fill` = generate seconds / fill seconds (1 = at the floor).
 *
 * MB = 1e6 bytes. In memory: bytes of the output typed arrays (values + offsets + sizes); end to end: the
 * IPC file's size. Prints one JSON document on stdout, logs on stderr.
 * Env: BENCH_EVENTS (per process, default 20000), BENCH_SECONDS (min seconds per measurement, default 1.5).
 */
import os, { tmpdir } from 'node:os';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../src/columnar/index.js';
import { generateEvents, generatorFields, generatorMetadata, PROCESSES, type GenerateOptions, type Process } from '../src/generate/index.js';
import { Rng } from '../src/generate/rng.js';
import type { ColumnBatch, ColumnData } from '../src/root/columns.js';
import { medianTime } from './lib.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const minSeconds = Number(process.env.BENCH_SECONDS ?? 1.5);
const BATCH = 1000; // the CLI's default --batch-size
const SEED = 1;
const log = (s: string) => process.stderr.write(`${s}\n`);

const time = (fn: () => unknown, minRuns = 3) => medianTime(fn, { minSeconds, minRuns });

type Shape = { kind: 'f32' | 'i32' | 'u32'; length: number };

/** The typed arrays of one column (offsets, values), in order. */
function arraysOf(d: ColumnData, out: ArrayBufferView[]): void {
  if (d.kind === 'primitive') out.push(d.values);
  else if (d.kind === 'list') {
    out.push(d.offsets);
    arraysOf(d.child, out);
  } else if (d.kind === 'fixed') arraysOf(d.child, out);
  else throw new Error(`unexpected column kind ${(d as { kind: string }).kind}`);
}

function shapeOf(a: ArrayBufferView): Shape {
  if (a instanceof Float32Array) return { kind: 'f32', length: a.length };
  if (a instanceof Int32Array) return { kind: 'i32', length: a.length };
  if (a instanceof Uint32Array) return { kind: 'u32', length: a.length };
  throw new Error(`unexpected array type ${a.constructor.name}`);
}

const EFLOW_SIZES = ['EFlowTrack_size', 'EFlowPhoton_size', 'EFlowNeutralHadron_size'];

/** One pass over the events, outside the timings: EFlow objects, output bytes, the array shapes per batch. */
function describe(opts: GenerateOptions): { eflow: number; eflowMin: number; eflowMax: number; bytes: number; shapes: Shape[][] } {
  let eflow = 0;
  let eflowMin = Infinity;
  let eflowMax = 0;
  let bytes = 0;
  const shapes: Shape[][] = [];
  for (const b of generateEvents(opts)) {
    const arrays: ArrayBufferView[] = [];
    for (const c of b.columns) arraysOf(c.data, arrays);
    for (const a of arrays) bytes += a.byteLength;
    shapes.push(arrays.map(shapeOf));
    const sizes = EFLOW_SIZES.map((n) => (b.columns.find((c) => c.name === n)!.data as { values: Int32Array }).values);
    for (let e = 0; e < b.entryStop - b.entryStart; e++) {
      const n = sizes[0]![e]! + sizes[1]![e]! + sizes[2]![e]!;
      eflow += n;
      if (n < eflowMin) eflowMin = n;
      if (n > eflowMax) eflowMax = n;
    }
  }
  return { eflow, eflowMin, eflowMax, bytes, shapes };
}

let sink = 0;

function generateAll(opts: GenerateOptions): void {
  for (const b of generateEvents(opts)) sink += b.columns.length;
}

/** The baseline: fresh arrays of the generator's output shapes, filled with xoshiro128** output. */
function prngFill(shapes: Shape[][]): void {
  const rng = new Rng();
  rng.reseed(SEED, 0, 0);
  for (const batch of shapes) {
    for (const s of batch) {
      if (s.kind === 'f32') {
        const a = new Float32Array(s.length);
        for (let i = 0; i < a.length; i++) a[i] = rng.uniform();
        sink += a.length;
      } else if (s.kind === 'i32') {
        const a = new Int32Array(s.length);
        for (let i = 0; i < a.length; i++) a[i] = rng.nextInt32();
        sink += a.length;
      } else {
        const a = new Uint32Array(s.length);
        for (let i = 0; i < a.length; i++) a[i] = rng.nextInt32();
        sink += a.length;
      }
    }
  }
}

async function writeIpc(opts: GenerateOptions, path: string): Promise<void> {
  const schema = makeSchema(generatorFields(opts), generatorMetadata(opts));
  const w = await IpcStreamWriter.open(path, { schema });
  try {
    for (const b of generateEvents(opts)) await w.write(toRecordBatch(schema, b));
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

const work = mkdtempSync(join(tmpdir(), 'hepml-bench-generate-'));
const results: Record<string, unknown> = {};
let totalEvents = 0;
let totalGen = 0;
let totalFill = 0;
let totalE2e = 0;
let totalObjects = 0;
try {
  for (const p of PROCESSES as Process[]) {
    const opts: GenerateOptions = { process: p, events: EVENTS, seed: SEED, batchSize: BATCH };
    const d = describe(opts);
    log(`${p}: ${EVENTS} events, EFlow objects per event ${d.eflowMin}–${d.eflowMax} (mean ${Math.round(d.eflow / EVENTS)}), ${(d.bytes / 1e6).toFixed(1)} MB of arrays`);
    log(`${p}: generate in memory ...`);
    const tGen = await time(() => generateAll(opts));
    log(`${p}: baseline: PRNG fill of the same arrays ...`);
    const tFill = await time(() => prngFill(d.shapes));
    log(`${p}: end to end, Arrow IPC file ...`);
    const path = join(work, `${p}.arrow`);
    const tE2e = await time(() => writeIpc(opts, path));
    const fileBytes = statSync(path).size;
    rmSync(path, { force: true });
    totalEvents += EVENTS;
    totalObjects += d.eflow;
    totalGen += tGen.median;
    totalFill += tFill.median;
    totalE2e += tE2e.median;
    results[p] = {
      eflow_per_event: { mean: Math.round(d.eflow / EVENTS), min: d.eflowMin, max: d.eflowMax },
      in_memory: {
        seconds: +tGen.median.toFixed(4),
        runs: tGen.runs,
        events_per_s: Math.round(EVENTS / tGen.median),
        eflow_objects_per_s: Math.round(d.eflow / tGen.median),
        output_mb: +(d.bytes / 1e6).toFixed(1),
        mb_per_s: +(d.bytes / 1e6 / tGen.median).toFixed(1),
      },
      baseline_prng_fill: {
        seconds: +tFill.median.toFixed(4),
        runs: tFill.runs,
        mb_per_s: +(d.bytes / 1e6 / tFill.median).toFixed(1),
        values_per_s: Math.round(d.bytes / 4 / tFill.median),
      },
      vs_prng_fill: +(tGen.median / tFill.median).toFixed(2),
      end_to_end_ipc_file: {
        seconds: +tE2e.median.toFixed(4),
        runs: tE2e.runs,
        events_per_s: Math.round(EVENTS / tE2e.median),
        file_mb: +(fileBytes / 1e6).toFixed(1),
        mb_per_s: +(fileBytes / 1e6 / tE2e.median).toFixed(1),
        vs_prng_fill: +(tE2e.median / tFill.median).toFixed(2),
      },
    };
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

process.stdout.write(
  JSON.stringify(
    {
      bench: 'generate',
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => +x.toFixed(2)),
      note:
        'one thread; seconds = median of repeated runs after an uncounted warm-up; in_memory = generateEvents consumed batch by batch (batch size 1000, seed 1), rates per core; mb_per_s in memory = bytes of the output typed arrays (values + offsets + sizes); end_to_end_ipc_file = makeSchema + toRecordBatch + IpcStreamWriter to a file in the OS temp dir (page cache, no fsync), mb_per_s of the file; baseline_prng_fill = fresh typed arrays of the same sizes/types per batch filled with the same xoshiro128** (Rng.uniform / nextInt32), the cost of just producing the random numbers into the output; vs_prng_fill = seconds / baseline seconds',
      data: { events_per_process: EVENTS, batch_size: BATCH, seed: SEED },
      results,
      all_processes: {
        events_per_s: Math.round(totalEvents / totalGen),
        eflow_objects_per_s: Math.round(totalObjects / totalGen),
        end_to_end_events_per_s: Math.round(totalEvents / totalE2e),
        vs_prng_fill: +(totalGen / totalFill).toFixed(2),
      },
      sink: sink > 0,
    },
    null,
    2,
  ) + '\n',
);
