/**
 * The convert stage's two interfaces: a sink that writes column batches in some format, and a source that
 * reads them back. Every format (Arrow IPC, Parquet, TFRecord) implements both, so `convert` is any source
 * → any sink, and the trainer reads any of them.
 */
import type { ColumnBatch, ColumnType } from '../root/columns.js';

export interface Field {
  name: string;
  type: ColumnType;
}

export type OutputFormat = 'arrow' | 'parquet' | 'tfrecord';
export type Compression = 'none' | 'snappy' | 'zstd' | 'gzip';

/** Writes batches of one schema; the output appears under its final name only when close() succeeds. */
export interface BatchSink {
  /** Writes one batch (columns in `fields` order, same names and types). Resolves when accepted (backpressure). */
  write(batch: ColumnBatch): Promise<void>;
  /** Finishes the output (footer, flush, rename from the temp name). */
  close(): Promise<{ bytes: number; rows: number }>;
  /** Removes the partial output. Safe to call after a failed write or twice. */
  abort(): Promise<void>;
}

/** Reads batches of one schema, once, in order. */
export interface BatchSource {
  /** The input as messages name it. */
  readonly name: string;
  readonly fields: Field[];
  /** Schema metadata (hep-ml.* keys and whatever the writer stored). */
  readonly metadata: Record<string, string>;
  /** Total rows when the format says so up front (Parquet footer, manifest), else undefined. */
  readonly rows?: number;
  batches(): AsyncGenerator<ColumnBatch>;
  close(): Promise<void>;
}
