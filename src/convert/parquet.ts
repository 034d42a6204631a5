/**
 * Parquet out and in, through parquet-wasm 0.8.0 (arrow-rs `parquet` compiled to wasm) and apache-arrow.
 *
 * Writing (openParquetWriter). What the files look like:
 *   - every column REQUIRED (hep-ml columns never hold nulls); float32 → FLOAT, float64 → DOUBLE,
 *     int8/16/32 → INT32 (INT(8|16|32, signed)), uint8/16/32 → INT32 (INT(n, unsigned)), int64 → INT64,
 *     uint64 → INT64 (INT(64, unsigned)), bool → BOOLEAN, utf8 → BYTE_ARRAY (STRING);
 *   - list<T> and fixed<n, T> → the standard 3-level LIST, `<name> (LIST) { repeated group list {
 *     required <T> element } }`, nested for list<list<T>> and fixed<n, fixed<m, T>>. Parquet has no
 *     fixed-size list: the size survives through the `ARROW:schema` footer key arrow-rs writes (the Arrow
 *     schema, IPC-encoded), which arrow-rs/pyarrow readers (and openParquetSource) apply;
 *   - data pages V1, PLAIN encoding (dictionary encoding off for every column: for float data it costs
 *     2–3.6× CPU and makes files larger, io-eval §1.3), no BYTE_STREAM_SPLIT (DuckDB rejects it on
 *     integers), chunk and page statistics on; compression SNAPPY (default), ZSTD (level 1), GZIP
 *     (level 6) or none;
 *   - footer key-value metadata: opts.metadata plus `ARROW:schema` (which carries opts.metadata too).
 *
 * How it streams: each write() wraps the batch's typed arrays as Arrow Data (no copy; child fields
 * named `element`), serializes it as an IPC stream, and parquet-wasm copies that into wasm memory as a
 * RecordBatch. Those batches are handed to parquet-wasm's `transformParquetStream` through a
 * pull-based ReadableStream (highWaterMark 0): write() resolves only when the wasm writer asks for the
 * next batch, i.e. when it has encoded the previous one. arrow-rs cuts row groups itself at
 * `rowGroupSize` rows (batches are split across row groups as needed) and emits each finished row
 * group as one chunk of bytes; a pump writes those to the file, awaiting 'drain'. While the pump waits,
 * the wasm writer cannot emit, stops pulling, and write() waits too: memory stays at about one row
 * group (encoded, in wasm) plus one batch (and its IPC copy), whatever the file size. Every wasm
 * object is freed or handed over (the stream consumes the RecordBatches it reads).
 *
 * Reading (openParquetSource): row group by row group, with bounded memory and catchable errors. The
 * footer is decoded in JS; for each row group a one-row-group Parquet file is assembled from positional
 * reads of its column chunks and decoded by parquet-wasm's sync `readParquet` in batches of about 16 MB
 * (src/convert/parquet-footer.ts explains why not parquet-wasm's own Blob/byte-range reader: it turns
 * a corrupt page into an uncatchable wasm panic). Each batch leaves wasm as IPC stream bytes and
 * becomes ColumnData through apache-arrow (fromRecordBatch: views, no further copy).
 */
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { type WriteStream } from 'node:fs';
import { open as fsOpen, rename, unlink, type FileHandle } from 'node:fs/promises';
import { arrowType, emptyColumn, fromRecordBatch, makeSchema, schemaFields, toRecordBatch } from '../columnar/arrow.js';
import { BrokenPipeError, openTempOutput, untrackTemp } from '../columnar/ipc.js';
import {
  CorruptDataError,
  type ErrorContext,
  HepMlError,
  InputNotFoundError,
  IoError,
  UnsupportedError,
  UsageError,
} from '../errors.js';
import {
  type ColumnBatch,
  type ColumnData,
  type ColumnType,
  DTYPE_BYTES,
  columnRows,
  formatColumnType,
  sliceRows,
} from '../root/columns.js';
import {
  FooterError,
  FooterUnsupportedError,
  PARQUET_MAGIC,
  type ParquetFooter,
  type RowGroupPlan,
  planRowGroup,
  readFooter,
  readRowGroupFile,
  schemaOnlyFile,
  withKeyValue,
} from './parquet-footer.js';
import type { BatchSink, BatchSource, Compression, Field } from './types.js';

export interface ParquetWriteOptions {
  /** Codec for every column (default 'snappy'). */
  compression?: Compression;
  /**
   * Rows per row group (the last one may be shorter). Default: enough rows for about
   * PARQUET_ROW_GROUP_BYTES (64 MiB) of uncompressed column data, at least 1, estimated from the first
   * non-empty batch (exact for fixed-size columns; for lists and strings, later batches with much longer
   * lists would make bigger row groups, so the default also caps a row group at twice that many bytes of
   * *encoded* data). An explicit size is capped at 1 GiB of encoded data per row group (arrow-rs buffers a
   * row group in wasm memory, which ends at 4 GiB).
   */
  rowGroupSize?: number;
  /** Key-value metadata stored in the file footer (and in the Arrow schema that ARROW:schema holds). */
  metadata?: Record<string, string>;
  /** The stream that target '-' writes to (default process.stdout); it is flushed, not ended, at close. */
  stdout?: NodeJS.WritableStream;
}

/** The default target size of a row group, in uncompressed bytes of column data. */
export const PARQUET_ROW_GROUP_BYTES = 64 * 1024 * 1024;

/** A row group never holds more than this many encoded bytes, whatever rowGroupSize says (wasm32 memory). */
const MAX_ROW_GROUP_ENCODED_BYTES = 1024 * 1024 * 1024;
/** Batches bigger than this (uncompressed) are handed to wasm in slices. */
const MAX_SEND_BYTES = 32 * 1024 * 1024;

/** The reader decodes a row group in batches of about this many uncompressed bytes. */
const PARQUET_READ_BATCH_BYTES = 16 * 1024 * 1024;

/** The footer key where arrow-rs (and pyarrow) store the Arrow schema. */
const ARROW_SCHEMA_KEY = 'ARROW:schema';
/** The name of the single child of a LIST's repeated group (the Parquet spec's; arrow-rs takes the Arrow child's name). */
const ELEMENT = 'element';
/** hep-ml columns hold no nulls: REQUIRED in Parquet (non-nullable Arrow fields). */
const NULLABLE = false;

const CODECS: Record<Compression, pw.Compression> = {
  none: pw.Compression.UNCOMPRESSED,
  snappy: pw.Compression.SNAPPY,
  zstd: pw.Compression.ZSTD,
  gzip: pw.Compression.GZIP,
};

/** Whether a file starts with the Parquet magic `PAR1`. */
export function isParquetFile(head: Uint8Array): boolean {
  return head.length >= 4 && PARQUET_MAGIC.every((b, i) => head[i] === b);
}

// ---------------------------------------------------------------------------------------------------
// Arrow types and data as parquet-wasm gets them: `element` children, non-nullable

function parquetArrowType(t: ColumnType): arrow.DataType {
  switch (t.kind) {
    case 'fixed':
      return new arrow.FixedSizeList(t.size, new arrow.Field(ELEMENT, parquetArrowType(t.child), NULLABLE));
    case 'list':
      return new arrow.List(new arrow.Field(ELEMENT, parquetArrowType(t.child), NULLABLE));
    default:
      return arrowType(t);
  }
}

/** The same buffers under the `element`-named type (no copy). */
function relabel(d: arrow.Data, t: ColumnType): arrow.Data {
  switch (t.kind) {
    case 'fixed': {
      const child = relabel(d.children[0] as arrow.Data, t.child);
      const type = new arrow.FixedSizeList(t.size, new arrow.Field(ELEMENT, child.type, NULLABLE));
      return arrow.makeData({ type, offset: d.offset, length: d.length, nullCount: 0, child });
    }
    case 'list': {
      const child = relabel(d.children[0] as arrow.Data, t.child);
      const type = new arrow.List(new arrow.Field(ELEMENT, child.type, NULLABLE));
      return arrow.makeData({ type, offset: d.offset, length: d.length, nullCount: 0, valueOffsets: d.valueOffsets as Int32Array, child });
    }
    default:
      return d;
  }
}

/** Checks that every column type can be written; UsageError naming the column otherwise. */
function checkFields(fields: Field[]): void {
  if (fields.length === 0) throw new UsageError('a Parquet file needs at least one column');
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw new UsageError(`duplicate column name '${f.name}': Parquet columns must be unique`);
    seen.add(f.name);
    const why = unsupported(f.type);
    if (why) throw new UsageError(`column '${f.name}' (${describe(f.type)}) cannot be written to Parquet: ${why}`);
  }
}

function unsupported(t: ColumnType): string | undefined {
  switch (t?.kind) {
    case 'primitive':
      return t.dtype in DTYPE_BYTES ? undefined : `unknown dtype '${String(t.dtype)}'`;
    case 'utf8':
      return undefined;
    case 'fixed':
      if (!Number.isInteger(t.size) || t.size < 1 || t.size > 0x7fffffff) return `fixed-size arrays need a size of at least 1 (got ${t.size})`;
      return unsupported(t.child);
    case 'list':
      return unsupported(t.child);
    default:
      return `unknown column kind '${String((t as { kind?: unknown } | undefined)?.kind)}'`;
  }
}

function describe(t: ColumnType): string {
  try {
    return formatColumnType(t);
  } catch {
    return JSON.stringify(t);
  }
}

/** Rows of about `target` bytes, at `bytes` per `rows` rows; at least 1. */
function rowsFor(target: number, bytes: number, rows: number): number {
  const perRow = Math.max(1, bytes / Math.max(1, rows));
  return Math.max(1, Math.floor(target / perRow));
}

/** Uncompressed bytes of a column's data (values, offsets, string bytes), as Parquet will see them. */
function dataBytes(c: ColumnData): number {
  switch (c.kind) {
    case 'primitive':
      return c.values.byteLength;
    case 'fixed':
      return dataBytes(c.child);
    case 'list': {
      // The offsets may cover only part of the child (a sliced column): count that part.
      const o = c.offsets;
      const childRows = columnRows(c.child);
      const used = childRows === 0 ? 0 : (o[o.length - 1]! - o[0]!) / childRows;
      return o.byteLength + dataBytes(c.child) * used;
    }
    case 'utf8':
      return c.offsets.byteLength + (c.offsets[c.offsets.length - 1]! - c.offsets[0]!);
  }
}

// ---------------------------------------------------------------------------------------------------
// Writer

type Sink = NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean; writableLength?: number };

/**
 * Opens a Parquet writer on `target` (a path, or '-' for opts.stdout / process.stdout). A path is
 * written to `.<name>.<pid>.<random>.part` in the same directory and renamed onto `target` by close();
 * abort() (or process exit before close) removes it. Errors: UsageError (a column type Parquet cannot
 * take, no columns), IoError (cannot create the file, write failures such as a full disk),
 * SchemaMismatchError (a batch that does not match `fields`), BrokenPipeError (stdout went away).
 *
 * write() copies the batch (into the IPC buffer): the caller may reuse its arrays once it resolves.
 * At most one write() or close() may be pending.
 */
export async function openParquetWriter(target: string, fields: Field[], opts: ParquetWriteOptions = {}): Promise<BatchSink> {
  checkFields(fields);
  const compression = opts.compression ?? 'snappy';
  if (!(compression in CODECS)) throw new UsageError(`unknown Parquet compression '${String(compression)}' (none, snappy, zstd, gzip)`);
  const rg = opts.rowGroupSize;
  if (rg !== undefined && (!Number.isInteger(rg) || rg < 1)) throw new UsageError(`the row group size must be a positive integer, got ${rg}`);

  let sink: Sink;
  let temp: string | undefined;
  let final: string;
  if (target === '-') {
    final = '-';
    sink = (opts.stdout ?? process.stdout) as Sink;
  } else {
    const out = await openTempOutput(target);
    final = out.final;
    temp = out.temp;
    sink = out.stream as unknown as Sink;
  }
  return new ParquetWriter(final, target, sink, temp, fields, compression, rg, opts.metadata ?? {});
}

class ParquetWriter implements BatchSink {
  private readonly checkSchema: arrow.Schema;
  private readonly schema: arrow.Schema;
  private readonly metadata: Map<string, string>;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  private busy = false;
  private failure: Error | null = null;
  private rows = 0;
  private bytes = 0;
  private lastBytes: Uint8Array = new Uint8Array(0);

  // wasm side
  private started = false;
  private controller!: ReadableStreamDefaultController<pw.RecordBatch>;
  private readonly input: ReadableStream<pw.RecordBatch>;
  /** Read requests of the wasm writer not yet answered with a batch. */
  private demand = 0;
  private wake: (() => void) | null = null;
  private pump: Promise<void> | null = null;
  /** After abort or a failure: read the wasm output to its end (so it finishes and frees) but write nothing. */
  private discard = false;

  private readonly onSinkError = (e: unknown) => {
    this.fail(this.wrapError(e));
  };

  constructor(
    private readonly target: string,
    private readonly displayName: string,
    private readonly sink: Sink,
    private readonly tempPath: string | undefined,
    private readonly fields: Field[],
    private readonly compression: Compression,
    private rowGroupSize: number | undefined,
    metadata: Record<string, string>,
  ) {
    const md = Object.entries(metadata).filter(([k]) => k !== ARROW_SCHEMA_KEY);
    this.metadata = new Map(md);
    this.checkSchema = makeSchema(fields);
    this.schema = new arrow.Schema(
      fields.map((f) => new arrow.Field(f.name, parquetArrowType(f.type), NULLABLE)),
      new Map(md),
    );
    this.input = new ReadableStream<pw.RecordBatch>(
      {
        start: (c) => {
          this.controller = c;
        },
        pull: () => {
          this.demand++;
          this.wakeUp();
        },
      },
      { highWaterMark: 0 },
    );
    sink.on('error', this.onSinkError);
  }

  async write(batch: ColumnBatch): Promise<void> {
    this.enter();
    try {
      const rows = batch.entryStop - batch.entryStart;
      const rb = this.toArrow(batch); // validates the whole batch first
      if (rows === 0) return; // nothing to write; close() handles a file with no rows
      const bytes = batch.columns.reduce((s, c) => s + dataBytes(c.data), 0);
      if (!this.started) this.start(this.rowGroupSize ?? rowsFor(PARQUET_ROW_GROUP_BYTES, bytes, rows));
      if (bytes <= MAX_SEND_BYTES) {
        await this.send(rb);
      } else {
        // A big batch goes to wasm in slices (views), so wasm memory does not grow with the caller's batch size.
        const step = rowsFor(MAX_SEND_BYTES, bytes, rows);
        for (let at = 0; at < rows; at += step) {
          const stop = Math.min(rows, at + step);
          const columns = batch.columns.map((c) => ({ name: c.name, data: sliceRows(c.data, at, stop) }));
          await this.send(this.toArrow({ entryStart: batch.entryStart + at, entryStop: batch.entryStart + stop, columns }));
        }
      }
      this.rows += rows;
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<{ bytes: number; rows: number }> {
    this.enter();
    try {
      if (!this.started) {
        // No rows: a valid file with the schema and no row groups (arrow-rs writes it from an empty batch).
        this.start(this.rowGroupSize ?? 1);
        await this.send(this.emptyBatch());
      }
      this.controller.close();
      await this.pump;
      this.check();
      if (this.bytes < 12 || !PARQUET_MAGIC.every((b, i) => this.lastBytes[i] === b)) {
        throw new IoError('parquet-wasm did not complete the file (no footer was produced)', this.ctx());
      }
      if (this.tempPath) {
        await this.finishFile();
        await rename(this.tempPath, this.target).catch((e: unknown) => {
          throw new IoError(`cannot rename ${this.tempPath} to the output: ${errMessage(e)}`, this.ctx(), { cause: e });
        });
        untrackTemp(this.tempPath);
      } else {
        await this.flushSink();
      }
      this.state = 'closed';
      this.sink.off('error', this.onSinkError);
      return { bytes: this.bytes, rows: this.rows };
    } catch (e) {
      this.busy = false;
      await this.abort();
      throw e;
    } finally {
      this.busy = false;
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.discard = true;
    this.failure ??= new Error('ParquetWriter: aborted');
    this.wakeUp();
    if (this.started) {
      // Let the wasm writer run to its end (its output is discarded) so that it frees its buffers.
      try {
        this.controller.close();
      } catch {
        // already closed
      }
    }
    if (this.tempPath) {
      const stream = this.sink as unknown as WriteStream;
      if (!stream.destroyed) {
        await new Promise<void>((res) => {
          stream.once('close', () => res());
          stream.destroy();
        });
      }
      await unlink(this.tempPath).catch(() => undefined);
      untrackTemp(this.tempPath);
    }
    // For '-', nothing can be taken back; the footer is never written, so no reader takes it for a file.
    this.sink.off('error', this.onSinkError);
  }

  // -------------------------------------------------------------------------------------------------

  private enter(): void {
    if (this.state !== 'open') throw new Error(`ParquetWriter: already ${this.state}`);
    if (this.busy) throw new Error('ParquetWriter: a write is already pending (await each write)');
    this.check();
    this.busy = true;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.discard = true;
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The batch as an Arrow RecordBatch of the Parquet schema (validated; buffers shared, not copied). */
  private toArrow(batch: ColumnBatch): arrow.RecordBatch {
    const rb = toRecordBatch(this.checkSchema, batch); // SchemaMismatchError on any mismatch
    const children = this.fields.map((f, i) => relabel(rb.data.children[i] as arrow.Data, f.type));
    const data = arrow.makeData({ type: new arrow.Struct(this.schema.fields), length: rb.numRows, nullCount: 0, children });
    return new arrow.RecordBatch(this.schema, data);
  }

  private emptyBatch(): arrow.RecordBatch {
    const cols = this.fields.map((f) => ({ name: f.name, data: emptyColumn(f.type) }));
    return this.toArrow({ entryStart: 0, entryStop: 0, columns: cols });
  }

  /** Creates the wasm writer (it reads the schema from the first batch, which send() is about to give it). */
  private start(rowGroupSize: number): void {
    this.started = true;
    let b = new pw.WriterPropertiesBuilder()
      .setWriterVersion(pw.WriterVersion.V1)
      .setCompression(CODECS[this.compression])
      .setDictionaryEnabled(false)
      .setMaxRowGroupSize(rowGroupSize);
    // A cap on the encoded size of a row group (arrow-rs measures the in-progress, compressed data): for
    // the default, against jagged batches much bigger than the first; for any size, against the wasm32
    // memory ceiling (running out of wasm memory is a panic that cannot be caught).
    b = b.setMaxRowGroupBytes(this.rowGroupSize === undefined ? 2 * PARQUET_ROW_GROUP_BYTES : MAX_ROW_GROUP_ENCODED_BYTES);
    if (this.metadata.size > 0) b = b.setKeyValueMetadata(new Map(this.metadata));
    const props = b.build(); // consumes the builder
    this.rowGroupSize = rowGroupSize;
    this.pump = pw
      .transformParquetStream(this.input, props) // consumes props
      .then((out) => this.runPump(out as ReadableStream<Uint8Array>))
      .catch((e: unknown) => this.fail(e instanceof HepMlError ? e : new IoError(`parquet-wasm: ${errMessage(e)}`, this.ctx(), { cause: e })));
  }

  /** Hands one batch to the wasm writer once it asks for one. */
  private async send(rb: arrow.RecordBatch): Promise<void> {
    const ipc = arrow.tableToIPC(new arrow.Table([rb]), 'stream');
    let table: pw.Table | undefined;
    let wb: pw.RecordBatch | undefined;
    try {
      table = pw.Table.fromIPCStream(ipc);
      wb = table.recordBatch(0);
    } catch (e) {
      wb?.free();
      throw new IoError(`parquet-wasm could not take the batch: ${errMessage(e)}`, this.ctx(), { cause: e });
    } finally {
      table?.free();
    }
    if (!wb) throw new IoError('parquet-wasm could not take the batch (no record batch)', this.ctx());
    try {
      while (this.demand === 0) {
        this.check();
        await new Promise<void>((res) => {
          this.wake = res;
        });
      }
      this.check();
    } catch (e) {
      wb.free();
      throw e;
    }
    this.demand--;
    this.controller.enqueue(wb); // ownership passes to the wasm stream
  }

  /** Copies the wasm writer's output to the sink with backpressure, until the wasm writer is done. */
  private async runPump(out: ReadableStream<Uint8Array>): Promise<void> {
    const reader = out.getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) return;
        const chunk = r.value;
        if (this.discard || chunk.byteLength === 0) continue;
        try {
          await this.writeChunk(chunk);
        } catch (e) {
          this.fail(e instanceof Error ? e : new Error(String(e)));
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  private async writeChunk(chunk: Uint8Array): Promise<void> {
    const s = this.sink;
    if (s.destroyed || s.writableEnded) throw new BrokenPipeError('output stream was closed before the Parquet file ended', this.ctx());
    const ok = s.write(chunk);
    this.bytes += chunk.byteLength;
    this.lastBytes = chunk.byteLength >= 4 ? chunk.subarray(chunk.byteLength - 4) : concatTail(this.lastBytes, chunk);
    this.check();
    if (!ok) await this.waitFor('drain');
  }

  /** Resolves on `event`; rejects on 'error' or on 'close' before it. */
  private waitFor(event: 'drain' | 'close'): Promise<void> {
    const s = this.sink;
    return new Promise<void>((res, rej) => {
      const done = (err?: Error) => {
        s.off(event, onEvent);
        s.off('error', onErr);
        s.off('close', onClose);
        if (err) rej(err);
        else res();
      };
      const onEvent = () => done();
      const onErr = (e: unknown) => done((this.failure ??= this.wrapError(e)));
      const onClose = () => done(this.failure ?? (this.failure = new BrokenPipeError('output stream was closed before the Parquet file ended', this.ctx())));
      s.on(event, onEvent);
      s.on('error', onErr);
      if (event !== 'close') s.on('close', onClose);
    });
  }

  private async flushSink(): Promise<void> {
    if ((this.sink.writableLength ?? 0) === 0) return;
    await new Promise<void>((res, rej) => {
      this.sink.write(new Uint8Array(0), (err?: Error | null) => (err ? rej(this.failure ?? this.wrapError(err)) : res()));
    });
  }

  private async finishFile(): Promise<void> {
    const closed = this.waitFor('close');
    this.sink.end();
    await closed;
    this.check();
  }

  private ctx() {
    return { file: this.target === '-' ? '<stdout>' : this.displayName };
  }

  private wrapError(e: unknown): Error {
    if (e instanceof HepMlError) return e;
    const code = (e as { code?: unknown } | null)?.code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET') {
      return new BrokenPipeError(`output closed by the consumer (${String(code)})`, this.ctx(), { cause: e });
    }
    return new IoError(`write failed: ${errMessage(e)}`, this.ctx(), { cause: e });
  }
}

function concatTail(prev: Uint8Array, chunk: Uint8Array): Uint8Array {
  const both = new Uint8Array(prev.length + chunk.length);
  both.set(prev, 0);
  both.set(chunk, prev.length);
  return both.subarray(Math.max(0, both.length - 4));
}

// ---------------------------------------------------------------------------------------------------
// Reader

export interface ParquetSourceOptions {
  /** The name errors and `source.name` give the file (default: the path). */
  name?: string;
}

/**
 * Opens a Parquet file for reading, row group by row group. `fields` come from the ARROW:schema footer
 * key when present (so fixed<n, T> comes back as fixed), otherwise from the Parquet schema (LIST →
 * list; see resolveSchema for files with large or dictionary types); `metadata` is the footer
 * key-value metadata without ARROW:schema (plus any key only the ARROW:schema carries); `rows` is the
 * footer's row count. Each row group becomes one or more ColumnBatches of about 16 MB (entries
 * numbered from 0 across the file; row groups with no rows are skipped).
 *
 * Memory: one row group at a time, never the whole file: its compressed bytes twice (in JS and in
 * wasm), its decoded arrays in wasm, and one ~16 MB batch as IPC bytes in wasm and in JS (and the
 * batches the consumer still holds). For a 64 MB row group of float32 features, wasm memory peaks near
 * 200 MB. Errors: InputNotFoundError (no such file), CorruptDataError (not Parquet, truncated,
 * corrupt pages), UnsupportedError (encryption, column types hep-ml has no column type for, nulls),
 * IoError (read failures).
 */
export async function openParquetSource(path: string, opts: ParquetSourceOptions = {}): Promise<BatchSource> {
  const name = opts.name ?? path;
  let fh: FileHandle | undefined;
  let size: number;
  try {
    fh = await fsOpen(path, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    size = st.size;
  } catch (e) {
    await fh?.close().catch(() => undefined);
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
      throw new InputNotFoundError(code === 'EISDIR' ? 'is a directory, not a file' : 'no such file', { file: name }, { cause: e });
    }
    throw new IoError(`cannot open: ${errMessage(e)}`, { file: name }, { cause: e });
  }
  const handle = fh;
  try {
    const fileFooter = await readFooter(handle, size).catch((e: unknown) => {
      throw readError(e, name);
    });
    const { footer, schema, fields } = resolveSchema(fileFooter, name);
    const metadata: Record<string, string> = {};
    for (const [k, v] of fileFooter.keyValue) if (k !== ARROW_SCHEMA_KEY) metadata[k] = v;
    for (const [k, v] of schema.metadata) if (k !== ARROW_SCHEMA_KEY && !(k in metadata)) metadata[k] = v;
    const expected = fields.map((f) => formatColumnType(f.type));

    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await handle.close().catch(() => undefined);
    };

    async function* batches(): AsyncGenerator<ColumnBatch> {
      try {
        let entry = 0;
        for (let i = 0; i < footer.rowGroupRows.length; i++) {
          const rgRows = footer.rowGroupRows[i]!;
          if (rgRows === 0) continue;
          if (closed) throw new IoError('the Parquet source was closed', { file: name });
          let plan: RowGroupPlan;
          let mini: Uint8Array;
          try {
            plan = planRowGroup(footer, i);
            mini = await readRowGroupFile(handle, plan);
          } catch (e) {
            throw readError(e, name, i);
          }
          // Decode in batches of about PARQUET_READ_BATCH_BYTES: arrow-rs's level buffers and each IPC copy stay that small.
          const batchRows = Math.max(1, Math.floor((rgRows * PARQUET_READ_BATCH_BYTES) / Math.max(1, plan.uncompressedBytes)));
          let got = 0;
          for (const table of decodeRowGroup(mini, batchRows, name, i)) {
            const types = schemaFields(table.schema).map((f) => formatColumnType(f.type));
            const names = table.schema.fields.map((f) => f.name);
            if (names.join('\0') !== fields.map((f) => f.name).join('\0') || types.join('\0') !== expected.join('\0')) {
              throw new CorruptDataError(
                `row group ${i} decodes to (${names.map((n, j) => `${n}: ${types[j]}`).join(', ')}), not the file's schema`,
                { file: name },
              );
            }
            for (const rb of table.batches) {
              if (rb.numRows === 0) continue;
              let b: ColumnBatch;
              try {
                b = fromRecordBatch(rb, entry + got); // UnsupportedError for nulls, naming the column
              } catch (e) {
                throw readError(e, name, i);
              }
              got += rb.numRows;
              yield b;
            }
          }
          if (got !== rgRows) throw new CorruptDataError(`row group ${i}: decoded ${got} rows, the footer says ${rgRows}`, { file: name });
          entry += got;
        }
      } finally {
        await close();
      }
    }

    return { name, fields, metadata, rows: footer.rows, batches, close };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e;
  }
}

/**
 * The Arrow schema arrow-rs reads for the file, and hep-ml fields for it. With the file's ARROW:schema
 * first (fixed-size lists come back as such). If that holds types hep-ml has no column type for, with a
 * rewritten ARROW:schema (LargeUtf8 → Utf8, LargeList → List, dictionary-encoded → its values: what
 * polars and pandas categoricals write), then without ARROW:schema (types from the Parquet schema
 * alone). UnsupportedError naming the column when none works. The footer returned is the one whose
 * ARROW:schema was used; row groups are decoded with it.
 */
function resolveSchema(fileFooter: ParquetFooter, name: string): { footer: ParquetFooter; schema: arrow.Schema; fields: Field[] } {
  const attempt = (footer: ParquetFooter) => {
    let schema: arrow.Schema;
    try {
      const ws = pw.readSchema(schemaOnlyFile(footer));
      schema = arrow.tableFromIPC(ws.intoIPCStream()).schema;
    } catch (e) {
      throw new CorruptDataError(`cannot read the Parquet schema: ${errMessage(e)}`, { file: name }, { cause: e });
    }
    for (const f of schema.fields) {
      try {
        schemaFields(new arrow.Schema([f]));
      } catch (e) {
        return { footer, schema, error: new UnsupportedError(`column '${f.name}': ${errMessage(e)}`, { file: name }, { cause: e }) };
      }
    }
    return { footer, schema, fields: schemaFields(schema) };
  };
  const first = attempt(fileFooter);
  if (first.fields) return { footer: first.footer, schema: first.schema, fields: first.fields };
  const hint = fileFooter.keyValue.find(([k]) => k === ARROW_SCHEMA_KEY)?.[1];
  if (hint !== undefined) {
    const rewritten = simplifyArrowSchemaHint(hint);
    for (const footer of [rewritten === undefined ? undefined : withKeyValue(fileFooter, ARROW_SCHEMA_KEY, rewritten), withKeyValue(fileFooter, ARROW_SCHEMA_KEY, undefined)]) {
      if (!footer) continue;
      const r = attempt(footer);
      if (r.fields) return { footer: r.footer, schema: r.schema, fields: r.fields };
    }
  }
  throw first.error!;
}

/** An ARROW:schema value (base64 IPC schema message) with Large/Dictionary types replaced; undefined if none or unreadable. */
function simplifyArrowSchemaHint(b64: string): string | undefined {
  let schema: arrow.Schema;
  try {
    schema = arrow.tableFromIPC(Buffer.from(b64, 'base64')).schema;
  } catch {
    return undefined;
  }
  let changed = false;
  const simplify = (t: arrow.DataType): arrow.DataType => {
    switch (t.typeId) {
      case arrow.Type.LargeUtf8:
        changed = true;
        return new arrow.Utf8();
      case arrow.Type.Dictionary:
        changed = true;
        return simplify((t as arrow.Dictionary).dictionary);
      case arrow.Type.LargeList: {
        changed = true;
        const c = (t as arrow.LargeList).children[0]!;
        return new arrow.List(new arrow.Field(c.name, simplify(c.type), c.nullable, c.metadata));
      }
      case arrow.Type.List: {
        const c = (t as arrow.List).children[0]!;
        return new arrow.List(new arrow.Field(c.name, simplify(c.type), c.nullable, c.metadata));
      }
      case arrow.Type.FixedSizeList: {
        const f = t as arrow.FixedSizeList;
        const c = f.children[0]!;
        return new arrow.FixedSizeList(f.listSize, new arrow.Field(c.name, simplify(c.type), c.nullable, c.metadata));
      }
      default:
        return t;
    }
  };
  const fields = schema.fields.map((f) => new arrow.Field(f.name, simplify(f.type), f.nullable, f.metadata));
  if (!changed) return undefined;
  const ipc = arrow.tableToIPC(new arrow.Table(new arrow.Schema(fields, schema.metadata)), 'stream');
  // The stream is the schema message and the 8-byte end-of-stream marker; ARROW:schema is the message alone.
  return Buffer.from(ipc.subarray(0, ipc.length - 8)).toString('base64');
}

/**
 * Decodes a one-row-group Parquet file, yielding one Arrow JS table per decoded batch. The wasm table
 * is freed when the generator ends (or is returned from early); each batch is moved out as IPC bytes.
 */
function* decodeRowGroup(mini: Uint8Array, batchRows: number, name: string, index: number): Generator<arrow.Table> {
  let wt: pw.Table;
  try {
    wt = pw.readParquet(mini, { batchSize: batchRows });
  } catch (e) {
    // A decoding error, or a wasm panic (RuntimeError: unreachable) on bytes arrow-rs did not expect.
    throw new CorruptDataError(`row group ${index}: cannot decode: ${errMessage(e)}`, { file: name }, { cause: e });
  }
  try {
    const n = wt.numBatches;
    for (let k = 0; k < n; k++) {
      let ipc: Uint8Array;
      try {
        const wb = wt.recordBatch(k);
        if (!wb) continue;
        ipc = wb.intoIPCStream(); // consumes wb (a reference-counted view of the table's batch)
      } catch (e) {
        throw new CorruptDataError(`row group ${index}: cannot export batch ${k}: ${errMessage(e)}`, { file: name }, { cause: e });
      }
      let t: arrow.Table;
      try {
        t = arrow.tableFromIPC(ipc);
      } catch (e) {
        throw new CorruptDataError(`row group ${index}: cannot convert to Arrow: ${errMessage(e)}`, { file: name }, { cause: e });
      }
      yield t;
    }
  } finally {
    wt.free();
  }
}

function readError(e: unknown, name: string, rowGroup?: number): HepMlError {
  if (e instanceof HepMlError) {
    if (e.context.file === undefined) e.context.file = name;
    if (rowGroup !== undefined && !e.message.startsWith('row group')) {
      const Ctor = e.constructor as new (m: string, c: ErrorContext, o: { cause: unknown }) => HepMlError;
      return new Ctor(`row group ${rowGroup}: ${e.message}`, e.context, { cause: e });
    }
    return e;
  }
  if (e instanceof FooterUnsupportedError) return new UnsupportedError(e.message, { file: name }, { cause: e });
  if (e instanceof FooterError) return new CorruptDataError(e.message, { file: name }, { cause: e });
  const code = (e as { code?: unknown } | null)?.code;
  const where = rowGroup === undefined ? '' : `row group ${rowGroup}: `;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new IoError(`${where}read failed: ${errMessage(e)}`, { file: name }, { cause: e });
  }
  return new CorruptDataError(`${where}${errMessage(e)}`, { file: name }, { cause: e });
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
