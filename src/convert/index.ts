/**
 * The convert stage: any hep-ml dataset (Arrow IPC, Parquet, TFRecord, a sharded directory) → Parquet,
 * TFRecord or Arrow IPC, as one file (or stdout) or as shards with a manifest.
 *
 *   const s = await convert({ input: 'train.arrow', to: 'parquet', output: 'train.parquet' });
 */
import { UsageError } from '../errors.js';
import { openDataset, openFileSink, openShardedSink, type InputFormat } from './dataset.js';
import { parseLayout, planLayout, type Layout } from './layout.js';
import type { BatchSink, Compression, OutputFormat } from './types.js';

export * from './types.js';
export * from './layout.js';
export * from './dataset.js';
export * from './parquet.js';
export * from './tfrecord.js';

export interface ConvertOptions {
  /** A path, or '-' for an Arrow IPC stream on stdin. */
  input: string;
  to: OutputFormat;
  /** A file, '-' for stdout, or with rowsPerFile a directory. */
  output: string;
  compression?: Compression;
  /** Parquet rows per row group. */
  rowGroupSize?: number;
  /** Shard the output: a directory of `part-NNNNN.<ext>` files of at most this many rows, plus `_manifest.json`. */
  rowsPerFile?: number;
  layout?: Layout | string;
  /** hep-ml version recorded in the manifest and metadata. */
  version?: string;
  onProgress?: (p: { rows: number; rowsTotal?: number }) => void;
}

export interface ConvertSummary {
  input: string;
  inputFormat: InputFormat;
  output: string;
  to: OutputFormat;
  compression: Compression;
  layout: Layout;
  rows: number;
  bytes: number;
  files: number;
  seconds: number;
}

export function parseFormat(s: string): OutputFormat {
  if (s === 'parquet' || s === 'tfrecord' || s === 'arrow') return s;
  throw new UsageError(`unknown format '${s}' (parquet, tfrecord or arrow)`);
}

/**
 * The codec, checked against the ones the format allows: the one asked for, else the format's default — gzip
 * for a TFRecord file named `*.gz`, as TensorFlow's `compression_type="GZIP"` expects of such a name.
 */
export function checkCompression(to: OutputFormat, c: string | undefined, output?: string): Compression {
  const allowed: Record<OutputFormat, Compression[]> = {
    parquet: ['snappy', 'zstd', 'gzip', 'none'],
    tfrecord: ['none', 'gzip'],
    arrow: ['none'],
  };
  const v = (c ?? (to === 'tfrecord' && output !== undefined && /\.gz$/i.test(output) ? 'gzip' : allowed[to][0]!)) as Compression;
  if (!allowed[to].includes(v)) {
    throw new UsageError(`--compression ${c} is not available for ${to} (${allowed[to].join(', ')})`);
  }
  return v;
}

export async function convert(opts: ConvertOptions): Promise<ConvertSummary> {
  const t0 = performance.now();
  const compression = checkCompression(opts.to, opts.compression, opts.output);
  const layout = parseLayout(opts.layout);
  if (opts.rowsPerFile !== undefined && (!Number.isInteger(opts.rowsPerFile) || opts.rowsPerFile < 1)) {
    throw new UsageError(`--rows-per-file must be a positive integer, got ${opts.rowsPerFile}`);
  }
  if (opts.rowsPerFile !== undefined && opts.output === '-') throw new UsageError('--rows-per-file writes a directory: give -o DIR, not -');
  if (opts.rowGroupSize !== undefined && opts.to !== 'parquet') throw new UsageError('--row-group-size applies to --to parquet');
  const { format, source } = await openDataset(opts.input);
  let sink: (BatchSink & { files?: () => unknown[] }) | undefined;
  try {
    const plan = planLayout(layout, source.fields, opts.to, source.name);
    const metadata: Record<string, string> = { ...source.metadata, 'hep-ml.convert': JSON.stringify({ from: format, to: opts.to, compression, layout, hepml: opts.version ?? '' }) };
    const sinkOpts = { compression, rowGroupSize: opts.rowGroupSize, metadata };
    sink = opts.rowsPerFile
      ? await openShardedSink(opts.output, opts.to, plan.fields, { ...sinkOpts, rowsPerFile: opts.rowsPerFile, layout, hepml: opts.version ?? '' })
      : await openFileSink(opts.output, opts.to, plan.fields, sinkOpts);
    let rows = 0;
    for await (const b of source.batches()) {
      await sink.write(plan.apply(b));
      rows += b.entryStop - b.entryStart;
      opts.onProgress?.({ rows, rowsTotal: source.rows });
    }
    const r = await sink.close();
    const files = sink.files ? sink.files().length : 1;
    return {
      input: source.name,
      inputFormat: format,
      output: opts.output,
      to: opts.to,
      compression,
      layout,
      rows: r.rows,
      bytes: r.bytes,
      files,
      seconds: +((performance.now() - t0) / 1000).toFixed(3),
    };
  } catch (e) {
    await sink?.abort();
    throw e;
  } finally {
    await source.close();
  }
}

