/**
 * The training loop behind `hep-ml train`: streams batches from datasets (src/train/data.ts), trains a tfjs
 * model (src/train/models.ts) with Adam, validates, and after every epoch writes
 *
 *   OUT/model.json, weights.bin, hep-ml-model.json   the latest model (usable by evaluate/serve at any time)
 *   OUT/checkpoints/epoch-NNNN/                       model + optimizer state + loop state of that epoch
 *   OUT/state.json                                    which checkpoint is the latest (what --resume reads)
 *   OUT/metrics.jsonl                                 one JSON line per epoch
 *   OUT/tensorboard/events.out.tfevents.*             the same metrics for TensorBoard
 *
 * Determinism: the initial weights, every epoch's shuffle and every dropout mask derive from --seed, so a run
 * is reproducible on one engine, and a resumed run continues as the uninterrupted run would have (up to
 * Adam's bias-correction terms, which tfjs recomputes on restore: float32 round-off).
 */
import { appendFile, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import { CorruptDataError, InputNotFoundError, UsageError } from '../errors.js';
import { Rng } from '../prepare/rng.js';
import { hepMlVersion } from '../version.js';
import { classNamesOf, concatTyped, rowBytes, streamBatches, type Batch, type DataSpec } from './data.js';
import { loadEngine, type Engine, type EngineName } from './engine.js';
import { prepareGru } from './layers.js';
import { classMetrics, type ClassMetrics } from './metrics.js';
import {
  DEFAULT_UNITS,
  buildModel,
  compileModel,
  countParams,
  dropoutLayers,
  modelInputs,
  type ModelInput,
  type ModelKind,
} from './models.js';
import {
  META_FILE,
  MODEL_FORMAT,
  MODEL_VERSION,
  loadLayers,
  optimizerState,
  restoreOptimizer,
  saveLayers,
  saveModelDir,
  writeFileAtomic,
  type ModelMeta,
} from './model-io.js';
import { EventFileWriter } from './tensorboard.js';
import { Coordinator, type DistributedOptions } from './distributed/coordinator.js';
import { openDataset } from '../convert/dataset.js';

export const STATE_FORMAT = 'hep-ml/train-state';
/** Default memory for the shuffle buffer. */
export const DEFAULT_SHUFFLE_BYTES = 128 * 1024 * 1024;

export interface TrainOptions {
  model: ModelKind;
  data: string[];
  validation?: string[];
  out: string;
  epochs: number;
  batchSize?: number;
  lr?: number;
  units?: number[];
  seed?: number;
  dropout?: number;
  /** Continue from OUT's latest checkpoint up to `epochs`. */
  resume?: boolean;
  /** Replace an existing OUT (without resume). */
  overwrite?: boolean;
  /** Rows in the shuffle buffer (default: what fits in 128 MiB, at most 100,000; 0: file order). */
  shuffleRows?: number;
  engine?: EngineName | 'auto';
  gruKernel?: 'wasm' | 'js';
  /** Logs (one line each, no newline). */
  log?: (line: string) => void;
  progress?: (p: TrainProgress) => void;
  /** Called after each epoch with its record (as written to metrics.jsonl). */
  onEpoch?: (r: EpochRecord) => void;
  /** Stop between batches (the last completed epoch's checkpoint stays). */
  signal?: AbortSignal;
  /** Train across worker processes (src/train/distributed); this process coordinates. */
  distributed?: DistributedOptions;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  rows: number;
  /** Rows per epoch when known (the dataset says so, or an earlier epoch counted them). */
  totalRows?: number;
  loss: number;
  accuracy: number;
  samplesPerS: number;
}

export interface EpochRecord {
  epoch: number;
  rows: number;
  loss: number;
  accuracy: number;
  val_loss?: number;
  val_accuracy?: number;
  val_auc?: Record<string, number>;
  val_rows?: number;
  seconds: number;
  samples_per_s: number;
  lr: number;
  wall_time: string;
  /** Distributed runs: strategy, workers, steps, all-reduce time or parameter-server statistics. */
  [extra: string]: unknown;
}

export interface TrainResult {
  out: string;
  epochs: EpochRecord[];
  engine: string;
  gruKernel?: string;
  params: number;
  meta: ModelMeta;
}

interface TrainState {
  format: typeof STATE_FORMAT;
  version: 1;
  epoch: number;
  checkpoint: string;
  rowsPerEpoch?: number;
  dropoutCalls: number[];
  settings: { model: ModelKind; units: number[]; seed: number; classes: string[]; dropout: number };
  distributed?: { strategy: string; workers: number };
}

const pad4 = (n: number) => String(n).padStart(4, '0');

async function exists(p: string): Promise<boolean> {
  try {
    await readdir(p);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') throw new UsageError(`--out ${p} exists and is not a directory`);
    throw e;
  }
}

/** Default shuffle rows for a model: what fits in DEFAULT_SHUFFLE_BYTES, at most 100,000. */
export function defaultShuffleRows(spec: DataSpec): number {
  return Math.max(1, Math.min(100_000, Math.floor(DEFAULT_SHUFFLE_BYTES / rowBytes(spec))));
}

/** Tensors of a batch's inputs, in model input order. */
export function inputTensors(tf: Engine['tf'], b: Batch, inputs: ModelInput[]): tfTypes.Tensor[] {
  return inputs.map((inp, k) => tf.tensor(b.inputs[k]!, [b.rows, ...inp.shape]));
}

/**
 * The model's outputs for `rows` rows given as one row-major array per input (in model input order); every
 * tensor is disposed, also when predict throws.
 */
export async function predictRows(tf: Engine['tf'], model: tfTypes.LayersModel, inputs: ModelInput[], arrays: Float32Array[], rows: number): Promise<Float32Array> {
  const xs = inputs.map((inp, k) => tf.tensor(arrays[k]!, [rows, ...inp.shape], 'float32'));
  try {
    const p = model.predict(xs.length === 1 ? xs[0]! : xs) as tfTypes.Tensor;
    try {
      return (await p.data()) as Float32Array;
    } finally {
      p.dispose();
    }
  } finally {
    tf.dispose(xs);
  }
}

/** Tensors for a batch, in model input order, and one-hot labels. */
export function toTensors(tf: Engine['tf'], b: Batch, inputs: ModelInput[], classes: number): { xs: tfTypes.Tensor[]; ys: tfTypes.Tensor } {
  const xs = inputTensors(tf, b, inputs);
  const y = new Float32Array(b.rows * classes);
  for (let i = 0; i < b.rows; i++) y[i * classes + b.labels[i]!] = 1;
  return { xs, ys: tf.tensor2d(y, [b.rows, classes]) };
}

/** Class probabilities of a model over datasets (no shuffle), with the labels. */
export async function predictDatasets(
  model: tfTypes.LayersModel,
  inputs: ModelInput[],
  classes: number,
  paths: string[],
  o: { batchSize?: number; signal?: AbortSignal } = {},
): Promise<{ prob: Float32Array; labels: Int32Array }> {
  const eng = await loadEngine();
  const tf = eng.tf;
  const probs: Float32Array[] = [];
  const labels: Int32Array[] = [];
  for await (const b of streamBatches(paths, { inputs, classes }, { batchSize: o.batchSize ?? 512, shuffleRows: 0 })) {
    if (o.signal?.aborted) throw o.signal.reason;
    probs.push(await predictRows(tf, model, inputs, b.inputs, b.rows));
    labels.push(b.labels); // every batch has arrays of its own
  }
  return { prob: concatTyped(probs, (n) => new Float32Array(n)), labels: concatTyped(labels, (n) => new Int32Array(n)) };
}

async function readState(out: string): Promise<TrainState> {
  let text: string;
  try {
    text = await readFile(join(out, 'state.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new InputNotFoundError(`--resume: ${out} has no state.json (no completed epoch to resume from)`, { file: out });
    }
    throw e;
  }
  const s = JSON.parse(text) as TrainState;
  if (s.format !== STATE_FORMAT) throw new CorruptDataError('state.json is not a hep-ml training state', { file: join(out, 'state.json') });
  return s;
}

/** Runs a training (see the module comment). */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? (() => undefined);
  const out = resolve(o.out);
  const batchSize = o.batchSize ?? 128;
  const lr = o.lr ?? 1e-3;
  const seed = o.seed ?? 0;
  const dropout = o.dropout ?? 0.2;
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new UsageError(`--epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batchSize}`);
  if (!(lr > 0 && Number.isFinite(lr))) throw new UsageError(`--lr must be a positive number, got ${lr}`);
  if (o.data.length === 0) throw new UsageError('no training data (--data PATH)');
  if (o.data.includes('-') && o.epochs > 1) throw new UsageError('standard input can be read once: use --epochs 1, or write the data to a file');

  // ---- the output directory and what to resume
  let state: TrainState | undefined;
  if (o.resume) {
    state = await readState(out);
    if (state.settings.model !== o.model) throw new UsageError(`--resume: ${out} holds a ${state.settings.model} model, not ${o.model}`);
    if (o.units && o.units.join(',') !== state.settings.units.join(',')) {
      throw new UsageError(`--resume: ${out} was trained with --units ${state.settings.units.join(',')}, not ${o.units.join(',')}`);
    }
    if (state.epoch >= o.epochs) throw new UsageError(`--resume: ${out} already has ${state.epoch} epoch(s); ask for more with --epochs N (N > ${state.epoch})`);
  } else if (await exists(out)) {
    if ((await readdir(out)).length > 0) {
      if (!o.overwrite) throw new UsageError(`--out ${out} is not empty: use --resume to continue its training, or --overwrite to replace it`);
      await rm(out, { recursive: true, force: true });
    }
  }
  await mkdir(out, { recursive: true });

  // ---- engine and kernel
  const eng = await loadEngine(o.engine);
  const tf = eng.tf;
  log(eng.reason);
  let gruKernel: string | undefined;
  if (o.model !== 'dnn') {
    const k = await prepareGru(o.gruKernel);
    gruKernel = k.kind;
    log(`GRU kernel ${k.kind}${k.note ? ` (${k.note})` : k.kind === 'wasm' ? ' (C → WebAssembly SIMD)' : ''}`);
  }

  // ---- data: classes and provenance from the first training input's metadata
  const units = o.units ?? state?.settings.units ?? DEFAULT_UNITS[o.model];
  let classNames = state?.settings.classes;
  let firstMeta: Record<string, string> | undefined;
  let rowsKnown: number | undefined = state?.rowsPerEpoch;
  const inputs = modelInputs(o.model);
  const specFor = (classes: number): DataSpec => ({ inputs, classes });
  // the first epoch's stream is opened before the model exists (its metadata names the classes)
  const startEpoch = (state?.epoch ?? 0) + 1;
  let sourceRows: number | undefined = 0;
  const onSource = (src: { metadata: Record<string, string>; rows?: number }) => {
    firstMeta ??= src.metadata;
    sourceRows = sourceRows === undefined || src.rows === undefined ? undefined : sourceRows + src.rows;
  };
  const shuffleRows = o.shuffleRows ?? defaultShuffleRows(specFor(3));
  const epochStream = (epoch: number, classes: number) =>
    streamBatches(o.data, specFor(classes), { batchSize, shuffleRows, rng: new Rng(seed, `shuffle/${epoch}`), onSource });

  // peek at the first source's metadata without consuming rows: open the stream, take its first batch
  // (distributed: the workers stream; here only the metadata is read)
  const classesGuess = classNames?.length ?? 3;
  let stream: AsyncGenerator<Batch>;
  let first: IteratorResult<Batch>;
  if (o.distributed) {
    if (o.data.includes('-')) throw new UsageError('distributed training reads its data from files: standard input cannot be shared between workers');
    const { source } = await openDataset(o.data[0]!);
    firstMeta = source.metadata;
    await source.close();
    classNames ??= classNamesOf(firstMeta) ?? ['qcd', 'ttbar', 'wjets'];
    stream = (async function* () {})();
    first = { done: true, value: undefined };
  } else {
    stream = epochStream(startEpoch, classesGuess);
    first = await stream.next();
    classNames ??= (firstMeta && classNamesOf(firstMeta)) ?? ['qcd', 'ttbar', 'wjets'];
    if (classNames.length !== classesGuess) {
      await stream.return(undefined);
      sourceRows = 0;
      stream = epochStream(startEpoch, classNames.length);
      first = await stream.next();
    }
    if (first.done) throw new UsageError(`no rows in the training data (${o.data.join(', ')})`);
  }
  const classes = classNames.length;

  // ---- model
  let model: tfTypes.LayersModel;
  let optimizer: tfTypes.AdamOptimizer;
  if (state) {
    const ck = join(out, state.checkpoint);
    model = await loadLayers(ck);
    optimizer = compileModel(model, lr);
    // Adam's slots exist only after a first step: create them by restoring (setWeights builds them)
    await restoreOptimizer(optimizer, await readFile(join(ck, 'optimizer.json'), 'utf8'), await readFile(join(ck, 'optimizer.bin')), ck);
    const drops = dropoutLayers(model);
    drops.forEach((d, i) => (d.calls = state!.dropoutCalls[i] ?? 0));
    log(`resuming after epoch ${state.epoch} from ${state.checkpoint}`);
  } else {
    model = await buildModel(o.model, { units, classes, dropout, seed });
    optimizer = compileModel(model, lr);
  }
  // a short last batch draws the rows of a full batch's masks it has (what N synchronous replicas do)
  for (const d of dropoutLayers(model)) d.shard = { offset: 0, total: batchSize };
  const params = countParams(model);
  let coord: Coordinator | undefined;
  let lrNow = lr;
  log(`${o.model} model: ${params.toLocaleString('en-US')} parameters, inputs ${inputs.map((i) => `${i.column}[${i.shape.join('×')}]`).join(' + ')}, ${classes} classes (${classNames.join(', ')})`);
  log(`batch ${batchSize}, Adam lr ${lr}, shuffle buffer ${shuffleRows.toLocaleString('en-US')} rows, seed ${seed}`);

  const metaFor = (epochsDone: number, history: EpochRecord[]): ModelMeta => {
    const feat = firstMeta?.['hep-ml.features'];
    const prep = firstMeta?.['hep-ml.prepare'];
    let recipe: Record<string, unknown> | null = null;
    let scaler: Record<string, unknown> | null = null;
    try {
      if (feat) recipe = { ...(JSON.parse(feat) as Record<string, unknown>), sort: firstMeta?.['hep-ml.features.sort'], hlf_names: JSON.parse(firstMeta?.['hep-ml.features.hlf_names'] ?? 'null') };
      if (prep) {
        const p = JSON.parse(prep) as { scaler?: unknown; scaleColumn?: unknown; scalerFit?: unknown };
        scaler = p.scaler ? { kind: 'minmax', column: p.scaleColumn, fit: p.scalerFit, ...(p.scaler as object) } : null;
      }
    } catch {
      /* foreign metadata: leave it out */
    }
    const last = history[history.length - 1];
    return {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
      hepml: hepMlVersion(),
      created: new Date().toISOString(),
      model: o.model,
      inputs: inputs.map((i) => ({ ...i, dtype: 'float32' as const })),
      output: { name: 'probabilities', classes: classNames! },
      units,
      params,
      recipe,
      scaler,
      training: {
        epochs: epochsDone,
        batchSize,
        lr,
        seed,
        dropout,
        shuffleRows,
        engine: eng.name,
        gruKernel,
        data: o.data.map((p) => (p === '-' ? p : resolve(p))),
        validation: o.validation?.map((p) => resolve(p)),
        ...(o.distributed
          ? { distributed: { ...o.distributed.strategy, workers: o.distributed.workers, lrScaling: o.distributed.lrScaling ?? 'none', workerLr: lrNow } }
          : {}),
        final: last,
      },
    };
  };

  // ---- logs: metrics.jsonl (cut back to the resumed epoch) and TensorBoard
  const jsonl = join(out, 'metrics.jsonl');
  const history: EpochRecord[] = [];
  if (state) {
    try {
      const lines = (await readFile(jsonl, 'utf8')).split('\n').filter(Boolean);
      const keep = lines.filter((l) => (JSON.parse(l) as EpochRecord).epoch <= state!.epoch);
      for (const l of keep) history.push(JSON.parse(l) as EpochRecord);
      await writeFileAtomic(jsonl, keep.map((l) => l + '\n').join(''));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const tb = await EventFileWriter.open(join(out, 'tensorboard'));

  try {
    if (o.distributed) {
      const d = o.distributed;
      coord = await Coordinator.start(
        d,
        {
          model: o.model,
          units,
          classes,
          dropout,
          seed,
          lr,
          batchSize,
          shuffleRows,
          data: d.coordinator === undefined ? o.data.map((p) => resolve(p)) : o.data,
          engine: eng.name,
          gruKernel: o.gruKernel,
        },
        log,
        o.signal,
      );
      lrNow = coord.lr;
      log(`strategy ${d.strategy.strategy}${d.strategy.strategy === 'sync' ? '' : `, communication window ${d.strategy.window}`}${d.strategy.strategy === 'aeasgd' || d.strategy.strategy === 'eamsgd' ? `, rho ${d.strategy.rho}, elastic lr ${d.strategy.elasticLr}` : ''}${d.strategy.strategy === 'eamsgd' ? `, momentum ${d.strategy.momentum}` : ''}; ${d.workers} worker(s), learning rate ${lrNow}${d.lrScaling === 'linear' ? ' (scaled linearly)' : ''}`);
    }

    for (let epoch = startEpoch; epoch <= o.epochs; epoch++) {
      if (epoch > startEpoch && !coord) {
        sourceRows = 0;
        stream = epochStream(epoch, classes);
        first = await stream.next();
      }
      const t0 = performance.now();
      let rows = 0;
      let lossSum = 0;
      let accSum = 0;
      let res = first;
      let extra: Record<string, unknown> = {};
      if (coord) {
        const r = await coord.runEpoch(epoch, model, optimizer, dropoutLayers(model), {
          signal: o.signal,
          progress: (n, l, a) => {
            if (n === 0) return;
            o.progress?.({ epoch, epochs: o.epochs, rows: n, totalRows: rowsKnown ?? (sourceRows || undefined), loss: l / n, accuracy: a / n, samplesPerS: n / ((performance.now() - t0) / 1000) });
          },
        });
        rows = r.rows;
        lossSum = r.lossSum;
        accSum = r.accSum;
        extra = r.extra;
        if (rows === 0) throw new UsageError(`no rows in the training data (${o.data.join(', ')})`);
      }
      while (!res.done) {
        if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
        const b = res.value;
        const { xs, ys } = toTensors(tf, b, inputs, classes);
        let r: number | number[];
        try {
          r = await model.trainOnBatch(xs.length === 1 ? xs[0]! : xs, ys);
        } finally {
          tf.dispose([...xs, ys]);
        }
        const [loss, acc] = Array.isArray(r) ? r : [r, NaN];
        if (!Number.isFinite(loss!)) throw new CorruptDataError(`the loss became ${loss} at epoch ${epoch}, after ${rows} rows (check the inputs for NaN/Inf; try a lower --lr)`);
        rows += b.rows;
        lossSum += loss! * b.rows;
        accSum += acc! * b.rows;
        const secs = (performance.now() - t0) / 1000;
        o.progress?.({
          epoch,
          epochs: o.epochs,
          rows,
          totalRows: rowsKnown ?? (sourceRows || undefined),
          loss: lossSum / rows,
          accuracy: accSum / rows,
          samplesPerS: rows / secs,
        });
        res = await stream.next();
      }
      rowsKnown = rows;
      const seconds = (performance.now() - t0) / 1000;
      const rec: EpochRecord = {
        epoch,
        rows,
        loss: lossSum / rows,
        accuracy: accSum / rows,
        seconds: +seconds.toFixed(3),
        samples_per_s: +(rows / seconds).toFixed(1),
        lr: lrNow,
        wall_time: new Date().toISOString(),
        ...extra,
      };
      if (o.validation?.length) {
        const v = await predictDatasets(model, inputs, classes, o.validation, { signal: o.signal });
        const m: ClassMetrics = classMetrics(v.prob, v.labels, classes);
        rec.val_loss = m.loss;
        rec.val_accuracy = m.accuracy;
        rec.val_auc = Object.fromEntries(classNames.map((c, k) => [c, m.auc[k]!]));
        rec.val_rows = m.rows;
      }
      history.push(rec);

      // ---- checkpoint, then the model at OUT's root, then state.json (the commit point)
      const ckName = `checkpoints/epoch-${pad4(epoch)}`;
      const opt = await optimizerState(optimizer);
      const drops = dropoutLayers(model).map((d) => d.calls);
      const meta = metaFor(epoch, history);
      await mkdir(join(out, 'checkpoints'), { recursive: true });
      await saveModelDir(model, meta, join(out, ckName), { 'optimizer.json': opt.json, 'optimizer.bin': opt.bin });
      await saveLayers(model, out);
      await writeFileAtomic(join(out, META_FILE), JSON.stringify(meta, null, 2) + '\n');
      await appendFile(jsonl, JSON.stringify(rec) + '\n');
      const st: TrainState = {
        format: STATE_FORMAT,
        version: 1,
        epoch,
        checkpoint: ckName,
        rowsPerEpoch: rows,
        dropoutCalls: drops,
        settings: { model: o.model, units, seed, classes: classNames, dropout },
        ...(o.distributed ? { distributed: { strategy: o.distributed.strategy.strategy, workers: o.distributed.workers } } : {}),
      };
      await writeFileAtomic(join(out, 'state.json'), JSON.stringify(st, null, 2) + '\n');

      tb.scalar('loss', rec.loss, epoch);
      tb.scalar('accuracy', rec.accuracy, epoch);
      tb.scalar('samples_per_s', rec.samples_per_s, epoch);
      tb.scalar('learning_rate', lrNow, epoch);
      if (rec.val_loss !== undefined) {
        tb.scalar('val_loss', rec.val_loss, epoch);
        tb.scalar('val_accuracy', rec.val_accuracy!, epoch);
        for (const [c, a] of Object.entries(rec.val_auc!)) tb.scalar(`val_auc/${c}`, a, epoch);
      }
      await tb.flush();
      o.onEpoch?.(rec);
    }
  } catch (e) {
    await stream.return(undefined).catch(() => undefined);
    throw e;
  } finally {
    await tb.close();
    await coord?.close();
  }
  const meta = metaFor(history.length ? history[history.length - 1]!.epoch : 0, history);
  return { out, epochs: history, engine: eng.name, gruKernel, params, meta };
}
