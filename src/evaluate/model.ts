/**
 * A trained model applied to datasets: what `evaluate`, `predict` (and `serve`) share. Opens a model
 * directory, checks each dataset against the model (input columns and shapes, class names), scales data that
 * did not go through `hep-ml prepare` with the model's own min-max scaler, and streams class probabilities
 * batch by batch (memory: one batch).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import type { BatchSource } from '../convert/types.js';
import type { ColumnData } from '../root/columns.js';
import { InputNotFoundError, SchemaMismatchError } from '../errors.js';
import { scalerCoefficients, type MinMaxScaler } from '../prepare/scaler.js';
import { classNamesOf, streamBatches, type InputScaling } from '../train/data.js';
import { loadEngine } from '../train/engine.js';
import { loadModelDir, type ModelMeta } from '../train/model-io.js';
import type { ModelInput } from '../train/models.js';
import { predictRows } from '../train/trainer.js';
import type { HistoryPoint } from './types.js';

export interface LoadedModel {
  dir: string;
  model: tfTypes.LayersModel;
  meta: ModelMeta;
  inputs: ModelInput[];
  classes: string[];
}

/** Loads a model directory (model.json, weights.bin, hep-ml-model.json) and the tensor engine. */
export async function openModel(dir: string): Promise<LoadedModel> {
  await loadEngine();
  const { model, meta } = await loadModelDir(dir);
  return { dir, model, meta, inputs: meta.inputs.map(({ name, column, shape }) => ({ name, column, shape })), classes: meta.output.classes };
}

/** The model's scaler as an on-the-fly input scaling, when it has one. */
function modelScaling(meta: ModelMeta): (InputScaling & { scaler: MinMaxScaler }) | undefined {
  const s = meta.scaler as (Partial<MinMaxScaler> & { column?: unknown }) | null | undefined;
  if (!s || typeof s.column !== 'string' || !Array.isArray(s.min) || !Array.isArray(s.max)) return undefined;
  const scaler = s as MinMaxScaler;
  return { column: scaler.column, ...scalerCoefficients(scaler), scaler };
}

/** How far outside [0, 1] min-max scaled data may lie (test rows beyond the training rows' range). */
const SCALED_SLACK = 0.5;

const fmt = (x: number) => (Number.isFinite(x) ? +x.toPrecision(4) : x).toString();

/** Smallest and largest value of a numeric column, through lists and fixed-size lists (NaN ignored). */
function valueRange(d: ColumnData): [number, number] {
  while (d.kind === 'fixed' || d.kind === 'list') d = d.child;
  if (d.kind !== 'primitive') return [0, 0];
  let lo = Infinity;
  let hi = -Infinity;
  const v = d.values as ArrayLike<number | bigint>;
  for (let i = 0; i < v.length; i++) {
    const x = Number(v[i]);
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/**
 * Per dataset: checks its classes against the model's, and decides whether to scale it. Data written by
 * `hep-ml prepare` is already scaled; `hep-ml features` output (or any data without prepare's record) that
 * has the model's scaled column is scaled with the model's scaler, and `log` says so once. Data without any
 * hep-ml metadata (TFRecord) are judged by the range of their first batch.
 */
export function sourceCheck(m: LoadedModel, log: (line: string) => void): (source: BatchSource) => InputScaling | undefined {
  const scaling = modelScaling(m.meta);
  let said = false;
  return (source) => {
    const names = classNamesOf(source.metadata);
    if (names && names.join('\u0000') !== m.classes.join('\u0000')) {
      throw new SchemaMismatchError(`${source.name}: the data's classes (${names.join(', ')}) are not the model's (${m.classes.join(', ')})`);
    }
    for (const inp of m.inputs) {
      const f = source.fields.find((x) => x.name === inp.column);
      const need = inp.shape.reduce((a, b) => a * b, 1);
      if (f?.type.kind === 'fixed' && f.type.size !== need) {
        throw new SchemaMismatchError(`${source.name}, column ${inp.column}: ${f.type.size} values per row, the model's input ${inp.name} needs ${need} (${inp.shape.join('×')})`);
      }
    }
    if (!scaling || source.metadata['hep-ml.prepare'] !== undefined) return undefined;
    if (!source.fields.some((f) => f.name === scaling.column)) return undefined;
    if (!Object.keys(source.metadata).some((k) => k.startsWith('hep-ml.'))) {
      // No record of how the data were made (a TFRecord file keeps no metadata, nor do other tools' files):
      // min-max scaled values lie in about [0, 1], the recipe's raw features do not (the lepton's pT alone is
      // above 23 GeV), so the first batch's range tells.
      return {
        ...scaling,
        decide: (batch) => {
          const c = batch.columns.find((x) => x.name === scaling.column);
          const [lo, hi] = c ? valueRange(c.data) : [0, 0];
          const scaled = lo >= -SCALED_SLACK && hi <= 1 + SCALED_SLACK;
          log(
            `${source.name}: no record of hep-ml prepare (${/\.tfrecords?(\.gz)?$/i.test(source.name) ? 'TFRecord keeps no metadata' : 'no hep-ml metadata'}); ` +
              `${scaling.column} values lie in [${fmt(lo)}, ${fmt(hi)}]: ${scaled ? 'already scaled, used as they are' : "scaling with the model's min-max scaler"}`,
          );
          return !scaled;
        },
      };
    }
    if (!said) {
      said = true;
      log(`${source.name}: not written by hep-ml prepare; scaling ${scaling.column} with the model's min-max scaler (fit on ${scaling.scaler.rows.toLocaleString('en-US')} rows)`);
    }
    return scaling;
  };
}

export interface ScoredBatch {
  /** Class probabilities, rows × classes, row-major. */
  prob: Float32Array;
  /** Class index per row, -1 where the data has none. */
  labels: Int32Array;
  rows: number;
  /** Index of the batch's first event in the whole input (files in order). */
  first: number;
}

export interface ScoreOptions {
  batchSize?: number;
  /** 'optional' reads data without labels (predict); 'required' (evaluate) needs them. */
  labels: 'required' | 'optional';
  reader: string;
  log?: (line: string) => void;
  onSource?: (source: BatchSource, path: string) => void;
  onRead?: (rows: number) => void;
  signal?: AbortSignal;
}

/** The model's class probabilities over datasets, in file order, batch by batch. */
export async function* scoreBatches(m: LoadedModel, paths: string[], o: ScoreOptions): AsyncGenerator<ScoredBatch> {
  const eng = await loadEngine();
  const tf = eng.tf;
  const C = m.classes.length;
  let first = 0;
  // notes about a source (its scaling) are printed once a batch of it has been read: a source that fails on
  // its first batch gets its one-line error only
  const pending: string[] = [];
  const stream = streamBatches(
    paths,
    { inputs: m.inputs, classes: C },
    {
      batchSize: o.batchSize ?? 1024,
      shuffleRows: 0,
      labels: o.labels,
      reader: o.reader,
      scaleFor: sourceCheck(m, (l) => pending.push(l)),
      onSource: o.onSource,
      onRead: o.onRead,
    },
  );
  for await (const b of stream) {
    if (o.signal?.aborted) throw o.signal.reason;
    for (const l of pending.splice(0)) o.log?.(l);
    const prob = await predictRows(tf, m.model, m.inputs, b.inputs, b.rows);
    if (prob.length !== b.rows * C) throw new SchemaMismatchError(`the model gives ${prob.length / b.rows} outputs per event, its description says ${C} classes`, { file: m.dir });
    yield { prob, labels: b.labels, rows: b.rows, first };
    first += b.rows;
  }
}

/** The training log of a model directory (metrics.jsonl), or [] when it has none (an imported model). */
export async function readHistory(dir: string): Promise<HistoryPoint[]> {
  let text: string;
  try {
    text = await readFile(join(dir, 'metrics.jsonl'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new InputNotFoundError(`cannot read the training log: ${(e as Error).message}`, { file: join(dir, 'metrics.jsonl') });
  }
  const out: HistoryPoint[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      const num = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : undefined);
      const epoch = num('epoch');
      const loss = num('loss');
      const accuracy = num('accuracy');
      if (epoch === undefined || loss === undefined || accuracy === undefined) continue;
      out.push({ epoch, loss, accuracy, val_loss: num('val_loss'), val_accuracy: num('val_accuracy') });
    } catch {
      /* a torn last line of an interrupted run */
    }
  }
  // a resumed run appends: keep the last record of each epoch
  const byEpoch = new Map<number, HistoryPoint>();
  for (const h of out) byEpoch.set(h.epoch, h);
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}
