/**
 * Flatten benchmark: pass 1 (Scanner) and pass 2 (Padder) on NanoAOD-like data generated in memory, against,
 * in the same run, the memory bandwidth of writing the same output (fresh Float32Array/Uint8Array of the
 * same sizes per batch, filled with Float32Array.fill / Uint8Array.fill).
 *
 * Data: 200k events in batches of 10k; two collections (Muon, Jet) of 5 float32 branches each, every
 * collection's branches sharing one count per event (as in NanoAOD): counts Poisson(3) with a 2% tail
 * uniform up to 20. One thread (Node's main thread); MB = 1e6 bytes of padded output (values + masks).
 * Prints one JSON document on stdout. Env: BENCH_SECONDS (min seconds per measurement, default 1.5),
 * BENCH_EVENTS (default 200000).
 */
import os, { tmpdir } from 'node:os';
import { rng } from '../test/fixtures/columnar-data.js';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../src/columnar/index.js';
import { padStream, scanStream } from '../src/flatten/stream.js';
import type { ColumnBatch, ColumnData, ColumnType } from '../src/root/columns.js';
import { Padder, Scanner, type PadOptions, type Specs } from '../src/flatten/index.js';

const minSeconds = Number(process.env.BENCH_SECONDS ?? 1.5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const BATCH = 10_000;
const MEAN = 3;
const TAIL = 20;
const log = (s: string) => process.stderr.write(`${s}\n`);

function poisson(r: () => number, mean: number): number {
  const l = Math.exp(-mean);
  let k = 0;
  let p = r();
  while (p > l) {
    k++;
    p *= r();
  }
  return k;
}

// ---------------------------------------------------------------------------------------------------
// Data

const collections = { Muon: ['pt', 'eta', 'phi', 'mass', 'dxy'], Jet: ['pt', 'eta', 'phi', 'mass', 'btag'] };
const names = Object.entries(collections).flatMap(([c, vars]) => vars.map((v) => `${c}_${v}`));
const r = rng(2024);
const batches: ColumnBatch[] = [];
let inputBytes = 0;
for (let start = 0; start < EVENTS; start += BATCH) {
  const rows = Math.min(BATCH, EVENTS - start);
  const columns: { name: string; data: ColumnData }[] = [];
  for (const [c, vars] of Object.entries(collections)) {
    const offsets = new Int32Array(rows + 1);
    for (let i = 0; i < rows; i++) {
      const n = r() < 0.02 ? Math.floor(r() * (TAIL + 1)) : Math.min(TAIL, poisson(r, MEAN));
      offsets[i + 1] = offsets[i]! + n;
    }
    for (const v of vars) {
      const values = new Float32Array(offsets[rows]!);
      for (let i = 0; i < values.length; i++) values[i] = v === 'pt' ? 5 + 100 * -Math.log(1 - r()) : (r() - 0.5) * 5;
      columns.push({ name: `${c}_${v}`, data: { kind: 'list', offsets, child: { kind: 'primitive', dtype: 'float32', values } } });
      inputBytes += values.byteLength + offsets.byteLength;
    }
  }
  batches.push({ entryStart: start, entryStop: start + rows, columns });
}
const fields: { name: string; type: ColumnType }[] = names.map((name) => ({ name, type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }));

// ---------------------------------------------------------------------------------------------------
// Timing

/** Median seconds of repeated runs of fn (at least minRuns, until minSeconds), after an uncounted warm-up. */
function time(fn: () => unknown, minRuns = 3): { median: number; runs: number } {
  const w = performance.now();
  while (performance.now() - w < (minSeconds * 1000) / 3) fn();
  const t: number[] = [];
  const start = performance.now();
  while (t.length < minRuns || performance.now() - start < minSeconds * 1000) {
    const a = performance.now();
    fn();
    t.push((performance.now() - a) / 1000);
  }
  t.sort((x, y) => x - y);
  return { median: t[Math.floor(t.length / 2)]!, runs: t.length };
}

const meta = { source: 'bench', hepmlVersion: 'bench' };
function scanAll(): Specs {
  const s = new Scanner(fields);
  for (const b of batches) s.add(b);
  return s.specs(meta);
}
let sink = 0;
function padAll(specs: Specs, opts: PadOptions): number {
  const p = new Padder(fields, specs, opts);
  let bytes = 0;
  for (const b of batches) {
    const out = p.pad(b);
    for (const c of out.columns) {
      if (c.data.kind === 'fixed' && c.data.child.kind === 'primitive') bytes += c.data.child.values.byteLength;
    }
    sink += out.columns.length;
  }
  return bytes;
}

const specs = scanAll();
const jdim = Object.fromEntries(specs.jkeys.map((k) => [k, specs.jdim[k]!]));
const plain: PadOptions = { pad: NaN, maxLen: {}, groups: [] };
const outputBytes = padAll(specs, plain);
const valueBytes = outputBytes - names.reduce((s, n) => s + EVENTS * specs.jdim[n]!, 0);
log(`${EVENTS} events, ${names.length} branches, jdim ${JSON.stringify(jdim)}, output ${(outputBytes / 1e6).toFixed(1)} MB`);

// Baseline: write the same output sizes per batch (fresh arrays, as pad allocates them).
const sizes = batches.map((b) => names.map((n) => (b.entryStop - b.entryStart) * specs.jdim[n]!));
function fillOnly(): void {
  for (const perBatch of sizes) {
    for (const n of perBatch) {
      const v = new Float32Array(n).fill(NaN);
      const m = new Uint8Array(n).fill(1);
      sink += v.length + m.length;
    }
  }
}

const rate = (seconds: number, runs: number) => ({
  seconds: +seconds.toFixed(4),
  runs,
  mb_per_s_output: +(outputBytes / 1e6 / seconds).toFixed(1),
  events_per_s: Math.round(EVENTS / seconds),
});

log('scan ...');
const tScan = time(scanAll);
log('pad ...');
const tPad = time(() => padAll(specs, plain));
log('scan + pad ...');
const tBoth = time(() => padAll(scanAll(), plain));
log('pad --pad 0 ...');
const tPad0 = time(() => padAll(specs, { ...plain, pad: 0 }));
log('pad --normalize minmax ...');
const tNorm = time(() => padAll(specs, { ...plain, normalize: 'minmax' }));
log('pad --group muon=Muon_* --group jet=Jet_* ...');
const grouped: PadOptions = { ...plain, groups: [{ name: 'muon', glob: 'Muon_*' }, { name: 'jet', glob: 'Jet_*' }] };
const groupBytes = padAll(specs, grouped);
const tGroup = time(() => padAll(specs, grouped));
log('baseline: fill ...');
const tFill = time(fillOnly);

// End to end, as `hep-ml flatten in.arrow -o out.arrow` runs it: IPC file in (read twice), IPC file out.
log('end to end through Arrow IPC files ...');
const work = mkdtempSync(join(tmpdir(), 'hepml-bench-flatten-'));
const inPath = join(work, 'in.arrow');
{
  const schema = makeSchema(fields, { 'hep-ml.source': 'bench' });
  const w = await IpcStreamWriter.open(inPath, { schema });
  for (const b of batches) await w.write(toRecordBatch(schema, b));
  await w.close();
}
const e2e: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const sp = await scanStream(inPath, { hepmlVersion: 'bench' });
  const w = await IpcStreamWriter.open(join(work, 'out.arrow'));
  await padStream(inPath, sp, plain, w);
  await w.close();
  e2e.push((performance.now() - t0) / 1000);
}
e2e.sort((a, b) => a - b);
const tE2e = e2e[1]!;
const outFileBytes = statSync(join(work, 'out.arrow')).size;
rmSync(work, { recursive: true, force: true });

const both = rate(tBoth.median, tBoth.runs);
process.stdout.write(
  JSON.stringify(
    {
      bench: 'flatten',
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => +x.toFixed(2)),
      note:
        'seconds = median of repeated runs over all events (data in memory, after an uncounted warm-up), one thread; mb_per_s_output = padded output (float32 values + uint8 masks) / seconds, for every row including scan-only; baseline_fill = allocating and filling arrays of the same sizes (Float32Array.fill + Uint8Array.fill), the memory-bandwidth ceiling',
      data: {
        events: EVENTS,
        batch_events: BATCH,
        jagged_branches: names.length,
        counts: `Poisson(${MEAN}) per collection, 2% uniform tail to ${TAIL}`,
        jdim,
        input_mb: +(inputBytes / 1e6).toFixed(1),
        output_mb: +(outputBytes / 1e6).toFixed(1),
        output_values_mb: +(valueBytes / 1e6).toFixed(1),
        output_masks_mb: +((outputBytes - valueBytes) / 1e6).toFixed(1),
      },
      results: {
        scan: { ...rate(tScan.median, tScan.runs), mb_per_s_input: +(inputBytes / 1e6 / tScan.median).toFixed(1) },
        pad: rate(tPad.median, tPad.runs),
        scan_and_pad: both,
        pad_zero: rate(tPad0.median, tPad0.runs),
        pad_normalize_minmax: rate(tNorm.median, tNorm.runs),
        pad_grouped: { ...rate(tGroup.median, tGroup.runs), mb_per_s_output: +(groupBytes / 1e6 / tGroup.median).toFixed(1), output_mb: +(groupBytes / 1e6).toFixed(1) },
        baseline_fill: rate(tFill.median, tFill.runs),
        end_to_end_ipc_files: { ...rate(tE2e, 3), output_file_mb: +(outFileBytes / 1e6).toFixed(1) },
      },
      fraction_of_fill_bandwidth: +(tFill.median / tBoth.median).toFixed(2),
      target_mb_per_s: 200,
      meets_target: both.mb_per_s_output >= 200,
      sink: sink > 0,
    },
    null,
    2,
  ) + '\n',
);
