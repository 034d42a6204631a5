/**
 * Features benchmark: the SparkDLTrigger recipe (selection + 801×19 matrix + 14 HLF + sort + per-event
 * standardization) on events from `hep-ml generate` (equal parts QCD, tt̄, W+jets, 100–600 EFlow objects
 * per event), one thread, data in memory.
 *
 * Baselines measured in the same run:
 *   - naive: the straightforward transcription of the spec that the tests use as their oracle
 *     (test/helpers/sparkdl-reference.ts: objects, O(n²) cones, a sort of all 801 rows) — what a direct
 *     port of the published Python UDFs does, without Spark or Python overhead;
 *   - output_fill: allocating and filling the output buffers alone (61 kB per selected event), the
 *     memory-bandwidth floor.
 * The published rate (12–19 events/s per core: 25.5 M events in 2–3 h on 400 cores, features-spec §10)
 * is quoted, not measured.
 *
 * Env: BENCH_EVENTS (per process, default 2000), BENCH_SECONDS (min seconds per measurement, default 2).
 */
import os from 'node:os';
import { extractFeatures, emptyStats, GRU_WIDTH, type RecipeOptions } from '../src/features/index.js';
import { generateEvents, type Process } from '../src/generate/index.js';
import type { ColumnBatch } from '../src/root/columns.js';
import { batchToEvents } from '../test/helpers/delphes-events.js';
import { referenceFeatures } from '../test/helpers/sparkdl-reference.js';
import { medianTime } from './lib.js';

const time = (fn: () => unknown, minRuns = 3) => medianTime(fn, { minSeconds, minRuns });

const PER_PROCESS = Number(process.env.BENCH_EVENTS ?? 2000);
const minSeconds = Number(process.env.BENCH_SECONDS ?? 2);
const log = (s: string) => process.stderr.write(`${s}\n`);

const batches: ColumnBatch[] = [];
for (const p of ['qcd', 'ttbar', 'wjets'] as Process[]) batches.push(...generateEvents({ process: p, events: PER_PROCESS, seed: 7, batchSize: 1000 }));
const EVENTS = PER_PROCESS * 3;

/** Mean EFlow objects per event of the input. */
function multiplicity(): { eflow_mean: number; eflow_min: number; eflow_max: number } {
  let sum = 0;
  let min = Infinity;
  let max = 0;
  for (const b of batches) {
    const off = ['EFlowTrack.PT', 'EFlowPhoton.ET', 'EFlowNeutralHadron.ET'].map((n) => (b.columns.find((c) => c.name === n)!.data as { offsets: Int32Array }).offsets);
    for (let e = 0; e < b.entryStop - b.entryStart; e++) {
      const n = off.reduce((s, o) => s + o[e + 1]! - o[e]!, 0);
      sum += n;
      min = Math.min(min, n);
      max = Math.max(max, n);
    }
  }
  return { eflow_mean: Math.round(sum / EVENTS), eflow_min: min, eflow_max: max };
}

async function runRecipe(opts: Partial<RecipeOptions>): Promise<{ selected: number; particles: number }> {
  const stats = emptyStats();
  for await (const b of extractFeatures(batches, { ...opts, batchRows: 256 }, stats)) void b;
  return { selected: stats.selected, particles: stats.particles };
}


const mult = multiplicity();
log(`${EVENTS} generated events, EFlow objects per event ${mult.eflow_min}–${mult.eflow_max} (mean ${mult.eflow_mean})`);
const results: Record<string, unknown> = {};
let selected = 0;
for (const [name, opts] of [
  ['sparkdltrigger_dr', { recipe: 'sparkdltrigger', sort: 'dr' }],
  ['sparkdltrigger_pt', { recipe: 'sparkdltrigger', sort: 'pt' }],
  ['corrected_dr', { recipe: 'corrected', sort: 'dr' }],
] as [string, Partial<RecipeOptions>][]) {
  log(`${name} ...`);
  const r = await runRecipe(opts);
  selected = r.selected;
  const t = await time(() => runRecipe(opts));
  results[name] = {
    seconds: +t.median.toFixed(4),
    runs: t.runs,
    events_per_s: Math.round(EVENTS / t.median),
    selected_events_per_s: Math.round(r.selected / t.median),
    selected: r.selected,
    particles_per_selected_event: Math.round(r.particles / r.selected),
    output_mb_per_s: +((r.selected * GRU_WIDTH * 4) / 1e6 / t.median).toFixed(1),
  };
}

log('baseline: output buffers only ...');
let sink = 0;
const tFill = await time(() => {
  for (let done = 0; done < selected; done += 256) {
    const n = Math.min(256, selected - done);
    const g = new Float32Array(n * GRU_WIDTH).fill(1);
    sink += g.length;
  }
});

log('baseline: naive transcription of the spec (a subset) ...');
const naiveEvents = batches.flatMap((b) => batchToEvents(b)).filter((_, i) => i % 10 === 0);
const tNaive = await time(() => {
  for (const ev of naiveEvents) sink += typeof referenceFeatures(ev, { muons: 'MuonTight', sort: 'dr', corrected: false }) === 'string' ? 0 : 1;
}, 1);
const naiveRate = naiveEvents.length / tNaive.median;
const main = results.sparkdltrigger_dr as { events_per_s: number };
const PUBLISHED = [12, 19];

process.stdout.write(
  JSON.stringify(
    {
      bench: 'features',
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => +x.toFixed(2)),
      note: 'one thread, generated events in memory (equal parts qcd/ttbar/wjets, seed 7); events_per_s counts every input event (rejected ones too) = events/s per core; seconds = median of repeated runs after a warm-up',
      data: { events: EVENTS, ...mult },
      results,
      baselines: {
        naive_transcription: { events: naiveEvents.length, seconds: +tNaive.median.toFixed(3), events_per_s: Math.round(naiveRate) },
        output_fill_only: { seconds: +tFill.median.toFixed(4), selected_events_per_s: Math.round(selected / tFill.median) },
        published_spark_python_per_core: { events_per_s: PUBLISHED, source: 'features-spec §10: 25.5 M events, 2–3 h, 400 cores (quoted, not measured)' },
      },
      speedup: {
        vs_naive: +(main.events_per_s / naiveRate).toFixed(1),
        vs_published_per_core: [+(main.events_per_s / PUBLISHED[1]!).toFixed(0), +(main.events_per_s / PUBLISHED[0]!).toFixed(0)],
      },
      target: { events_per_s_per_core: 2000, met: main.events_per_s >= 2000 },
    },
    null,
    2,
  ) + '\n',
);
void sink;
