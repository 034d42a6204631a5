/**
 * The whole chain on toy events, as a library call: generate → features → prepare → convert (Parquet,
 * TFRecord) → train (WORKERS processes) → evaluate, in one directory laid out like examples/Makefile's:
 *
 *   features/<process>.arrow    the recipe's rows per process (generated events piped straight in)
 *   data/                       prepare's train.arrow, test.arrow, scaler.json, prepare.json;
 *                               convert's train.parquet, test.parquet, test.tfrecord
 *   model/                      train's model directory (trained on train.parquet, validated on test.tfrecord)
 *   eval/                       evaluate's metrics.json, roc.csv and plots (on test.parquet): eval/roc.png
 *
 * Every stage is the one the commands run, called in-process; the point is a first run that shows each
 * stage's output being read by the next one.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IpcStreamWriter } from '../columnar/index.js';
import type { ColumnBatch } from '../root/columns.js';
import { convert, type ConvertSummary } from '../convert/index.js';
import { UsageError } from '../errors.js';
import { evaluate } from '../evaluate/run.js';
import type { Evaluation } from '../evaluate/metrics.js';
import type { FeaturesInput } from '../features/run.js';
import { writeFeatures } from '../features/run.js';
import type { FeaturesStats } from '../features/stream.js';
import { generateEvents, generatorFields, generatorMetadata, PROCESSES, type Process } from '../generate/index.js';
import { prepare, type PrepareSummary } from '../prepare/index.js';
import { strategyParams } from '../train/distributed/strategies.js';
import type { ModelKind } from '../train/models.js';
import { train, type EpochRecord } from '../train/trainer.js';

/** Fraction of generated events that pass the recipe's selection (docs/commands/generate.md, measured). */
export const SELECTION_EFFICIENCY: Record<Process, number> = { qcd: 0.097, ttbar: 0.733, wjets: 0.916 };

export interface DemoOptions {
  /** The directory to fill (created; must be empty or absent). */
  dir: string;
  /** About this many selected events per process (default 1,000). */
  events?: number;
  model?: ModelKind;
  epochs?: number;
  /** Training processes (default 2; 1 trains in this process). */
  workers?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  /** hep-ml version, recorded in the outputs' metadata. */
  version?: string;
  /** One line per finished step (and per epoch). */
  log?: (line: string) => void;
  /** Progress within a step: rows (or events) done of total. */
  progress?: (step: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface DemoStep {
  step: string;
  seconds: number;
  outputs: string[];
}

export interface DemoResult {
  dir: string;
  /** eval/roc.png */
  roc: string;
  evaluation: Evaluation;
  /** Generated events, selected events and the selection statistics per process. */
  features: Record<string, FeaturesStats & { generated: number }>;
  prepare: PrepareSummary;
  epochs: EpochRecord[];
  steps: DemoStep[];
  /** Bytes of everything in dir. */
  bytes: number;
  seconds: number;
}

/** Generated events per process for about `selected` selected events each. */
export function demoEventCounts(selected: number): Record<Process, number> {
  return Object.fromEntries(PROCESSES.map((p) => [p, Math.ceil(selected / SELECTION_EFFICIENCY[p])])) as Record<Process, number>;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const selected = o.events ?? 1000;
  const model = o.model ?? 'inclusive';
  const epochs = o.epochs ?? 8;
  const workers = o.workers ?? 2;
  const seed = o.seed ?? 42;
  const lr = o.lr ?? 0.01;
  const log = o.log ?? (() => {});
  const progress = o.progress ?? (() => {});
  if (!Number.isSafeInteger(selected) || selected < 20) throw new UsageError(`--events must be an integer ≥ 20 (selected events per process), got ${selected}`);
  if (!Number.isSafeInteger(epochs) || epochs < 1) throw new UsageError(`--epochs must be a positive integer, got ${epochs}`);
  if (!Number.isSafeInteger(workers) || workers < 1) throw new UsageError(`--workers must be a positive integer, got ${workers}`);
  const dir = resolve(o.dir);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new UsageError(`${dir} is not empty: the demo needs a new or empty directory`);
  const steps: DemoStep[] = [];
  const timed = async <T>(step: string, outputs: string[], f: () => Promise<T>): Promise<T> => {
    o.signal?.throwIfAborted();
    const t = performance.now();
    const r = await f();
    steps.push({ step, seconds: +((performance.now() - t) / 1000).toFixed(3), outputs });
    return r;
  };
  const rel = (p: string) => p.slice(dir.length + 1);

  // 1–2. Toy events of each process straight into the recipe (as `generate | features` does), one file each.
  const features: DemoResult['features'] = {};
  const counts = demoEventCounts(selected);
  await mkdir(join(dir, 'features'));
  for (const p of PROCESSES) {
    const out = join(dir, 'features', `${p}.arrow`);
    const gen = { process: p, events: counts[p], seed, batchSize: 1000 };
    const stats = await timed(`generate | features ${p}`, [out], async () => {
      const input: FeaturesInput = {
        fields: generatorFields(gen),
        metadata: generatorMetadata(gen),
        entryOffset: 0,
        entries: gen.events,
        name: `generate:${p}`,
        batches: (async function* (): AsyncGenerator<ColumnBatch> {
          yield* generateEvents(gen);
        })(),
        close: async () => {},
      };
      const writer = await IpcStreamWriter.open(out);
      try {
        const s = await writeFeatures(input, writer, { label: PROCESSES.indexOf(p), version: o.version, onBatch: (s) => progress(`features ${p}`, s.events, gen.events) });
        await writer.close();
        return s;
      } catch (e) {
        await writer.abort();
        throw e;
      }
    });
    features[p] = { ...stats, generated: gen.events };
    log(`generate | features ${p}: ${gen.events.toLocaleString('en-US')} events, ${stats.selected.toLocaleString('en-US')} selected → ${rel(out)} (${last(steps).seconds.toFixed(1)} s)`);
  }

  // 3. Labels, equal classes, min-max scaling, split, shuffle.
  const data = join(dir, 'data');
  const summary = await timed('prepare', [join(data, 'train.arrow'), join(data, 'test.arrow'), join(data, 'scaler.json')], () =>
    prepare({
      classes: PROCESSES.map((p) => ({ name: p, files: [join(dir, 'features', `${p}.arrow`)] })),
      out: data,
      undersample: true,
      seed,
      onProgress: (p) => progress(`prepare ${p.phase}`, p.rowsDone, p.rowsTotal),
    }),
  );
  log(`prepare: ${summary.rows.input} rows → ${summary.rows.train} train + ${summary.rows.test} test (undersampled, scaled, shuffled) → data/ (${last(steps).seconds.toFixed(1)} s)`);

  // 4. The rows for other tools; training and evaluation read these back.
  const conversions: [string, 'parquet' | 'tfrecord', string][] = [
    ['train.arrow', 'parquet', 'train.parquet'],
    ['test.arrow', 'parquet', 'test.parquet'],
    ['test.arrow', 'tfrecord', 'test.tfrecord'],
  ];
  for (const [from, to, name] of conversions) {
    const out = join(data, name);
    const s: ConvertSummary = await timed(`convert ${name}`, [out], () =>
      convert({ input: join(data, from), to, output: out, version: o.version, onProgress: (q) => progress(`convert ${name}`, q.rows, q.rowsTotal ?? q.rows) }),
    );
    log(`convert: data/${from} → data/${name} (${(s.bytes / 1e6).toFixed(1)} MB, ${last(steps).seconds.toFixed(1)} s)`);
  }

  // 5. Training, validated after every epoch.
  const modelDir = join(dir, 'model');
  const trained = await timed('train', [modelDir], () =>
    train({
      model,
      data: [join(data, 'train.parquet')],
      validation: [join(data, 'test.tfrecord')],
      out: modelDir,
      epochs,
      lr,
      batchSize: o.batchSize,
      seed,
      signal: o.signal,
      progress: (p) => progress(`train epoch ${p.epoch}/${p.epochs}`, p.rows, p.totalRows ?? p.rows),
      onEpoch: (r) =>
        log(
          `train: epoch ${r.epoch}/${epochs}: loss ${r.loss.toFixed(4)}` +
            (r.val_auc ? `, val AUC ${Object.entries(r.val_auc).map(([c, a]) => `${c} ${a.toFixed(3)}`).join(' ')}` : '') +
            ` (${r.seconds.toFixed(1)} s)`,
        ),
      distributed: workers > 1 ? { workers, strategy: strategyParams('sync') } : undefined,
    }),
  );
  log(`train: ${model} model, ${workers} worker${workers > 1 ? 's' : ''}, ${epochs} epochs → model/ (${last(steps).seconds.toFixed(1)} s)`);

  // 6. The test set through the model: metrics and plots.
  const evalDir = join(dir, 'eval');
  const ev = await timed('evaluate', [evalDir], () =>
    evaluate({ model: modelDir, data: [join(data, 'test.parquet')], out: evalDir, signal: o.signal, onProgress: (r, t) => progress('evaluate', r, t ?? r) }),
  );
  const e = ev.evaluation;
  log(
    `evaluate: ${e.rows} test events, accuracy ${e.accuracy.toFixed(3)}, AUC ${e.per_class.map((c) => `${c.name} ${c.auc === null ? 'n/a' : c.auc.toFixed(3)}`).join(' ')} → eval/ (${last(steps).seconds.toFixed(1)} s)`,
  );
  return {
    dir,
    roc: join(evalDir, 'roc.png'),
    evaluation: e,
    features,
    prepare: summary,
    epochs: trained.epochs,
    steps,
    bytes: await duBytes(dir),
    seconds: +((performance.now() - t0) / 1000).toFixed(3),
  };
}

function last<T>(a: T[]): T {
  return a[a.length - 1]!;
}

async function duBytes(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let n = 0;
  for (const e of await readdir(path)) n += await duBytes(join(path, e));
  return n;
}
