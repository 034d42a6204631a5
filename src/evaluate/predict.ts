/**
 * The predict stage: a model directory and datasets → per-event class probabilities, streamed batch by batch
 * (memory: one batch) into Arrow IPC, Parquet or TFRecord.
 *
 * Columns: `event` (int64: the event's index over the inputs, in order), `label` (int32, -1 where the data
 * has none; only when the first input has a label column), `predicted` (int32: the arg-max class), and one
 * float32 `prob_<class>` per class. The schema metadata `hep-ml.predict` records the model and the classes.
 *
 *   await predict({ model: 'model/', data: ['events.parquet'], output: 'scores.parquet' });
 */
import { resolve } from 'node:path';
import { openFileSink } from '../convert/dataset.js';
import { checkCompression } from '../convert/index.js';
import type { BatchSink, Compression, Field, OutputFormat } from '../convert/types.js';
import { UsageError } from '../errors.js';
import type { ColumnBatch } from '../root/columns.js';
import { hepMlVersion } from '../version.js';
import { openModel, scoreBatches } from './model.js';

export const PREDICT_META_KEY = 'hep-ml.predict';

export interface PredictOptions {
  model: string;
  data: string[];
  /** A file, or '-' for an Arrow IPC stream on stdout. */
  output: string;
  /** Default: from the extension (.parquet/.pq, .tfrecord, otherwise Arrow IPC). */
  format?: OutputFormat;
  compression?: Compression;
  batchSize?: number;
  log?: (line: string) => void;
  onProgress?: (rows: number, total?: number) => void;
  signal?: AbortSignal;
}

export interface PredictSummary {
  output: string;
  format: OutputFormat;
  rows: number;
  bytes: number;
  classes: string[];
  columns: string[];
  seconds: number;
}

/** The output format a path implies. */
export function formatOf(path: string): OutputFormat {
  if (/\.(parquet|pq)$/i.test(path)) return 'parquet';
  if (/\.tfrecords?(\.gz)?$/i.test(path)) return 'tfrecord';
  return 'arrow';
}

/** `prob_<class>` with anything but letters, digits and _ replaced by _. */
export function probColumn(cls: string): string {
  return `prob_${cls.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

export async function predict(o: PredictOptions): Promise<PredictSummary> {
  const t0 = performance.now();
  if (o.data.length === 0) throw new UsageError('no data (--data PATH)');
  const format = o.format ?? formatOf(o.output);
  const m = await openModel(o.model);
  const C = m.classes.length;
  const probNames = m.classes.map(probColumn);
  if (new Set(probNames).size !== C) throw new UsageError(`class names ${m.classes.join(', ')} give clashing column names ${probNames.join(', ')}`);
  let withLabels: boolean | undefined;
  let total: number | undefined = 0;
  let sink: BatchSink | undefined;
  let fields: Field[] = [];
  let rows = 0;
  try {
    for await (const b of scoreBatches(m, o.data, {
      batchSize: o.batchSize,
      labels: 'optional',
      reader: 'predict',
      log: o.log,
      signal: o.signal,
      onSource: (s) => {
        withLabels ??= s.fields.some((f) => f.name === 'label' || f.name === 'encoded_label');
        total = total !== undefined && s.rows !== undefined ? total + s.rows : undefined;
      },
    })) {
      if (!sink) {
        fields = [
          { name: 'event', type: { kind: 'primitive', dtype: 'int64' } },
          ...(withLabels ? [{ name: 'label', type: { kind: 'primitive', dtype: 'int32' } } as Field] : []),
          { name: 'predicted', type: { kind: 'primitive', dtype: 'int32' } },
          ...probNames.map((name): Field => ({ name, type: { kind: 'primitive', dtype: 'float32' } })),
        ];
        const record = { model: resolve(o.model), kind: m.meta.model, classes: m.classes, data: o.data.map((p) => (p === '-' ? '-' : resolve(p))), hepml: hepMlVersion() };
        sink = await openFileSink(o.output, format, fields, {
          compression: checkCompression(format, o.compression, o.output),
          metadata: { [PREDICT_META_KEY]: JSON.stringify(record) },
        });
      }
      const n = b.rows;
      const event = new BigInt64Array(n);
      const predicted = new Int32Array(n);
      const cols = m.classes.map(() => new Float32Array(n));
      for (let i = 0; i < n; i++) {
        event[i] = BigInt(b.first + i);
        let best = 0;
        for (let k = 0; k < C; k++) {
          const p = b.prob[i * C + k]!;
          cols[k]![i] = p;
          if (p > b.prob[i * C + best]!) best = k;
        }
        predicted[i] = best;
      }
      const batch: ColumnBatch = {
        entryStart: b.first,
        entryStop: b.first + n,
        columns: [
          { name: 'event', data: { kind: 'primitive', dtype: 'int64', values: event } },
          ...(withLabels ? [{ name: 'label', data: { kind: 'primitive' as const, dtype: 'int32' as const, values: b.labels } }] : []),
          { name: 'predicted', data: { kind: 'primitive', dtype: 'int32', values: predicted } },
          ...probNames.map((name, k) => ({ name, data: { kind: 'primitive' as const, dtype: 'float32' as const, values: cols[k]! } })),
        ],
      };
      await sink.write(batch);
      rows += n;
      o.onProgress?.(rows, total);
    }
    if (!sink) throw new UsageError(`nothing to predict: ${o.data.join(', ')} ${o.data.length > 1 ? 'have' : 'has'} no events`);
    const { bytes } = await sink.close();
    return { output: o.output, format, rows, bytes, classes: m.classes, columns: fields.map((f) => f.name), seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await sink?.abort();
    throw e;
  }
}
