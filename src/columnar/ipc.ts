/**
 * Arrow IPC *stream* format in and out, with real backpressure.
 *
 * Writing: apache-arrow 21.2's `RecordBatchStreamWriter.throughNode()` never signals backpressure (its
 * duplex calls back immediately and queues everything; /work/shared/reference/io-eval.md §3). Here a
 * RecordBatchStreamWriter subclass captures the bytes of each message as they are produced (overriding
 * the protected `_write` hook, so nothing goes to its internal queue), and IpcStreamWriter hands exactly
 * one batch's chunks to the Node stream, then awaits 'drain' when the stream says it is full. The schema
 * message is written once, the EOS marker once at close. Body buffers are passed by reference (no copy);
 * only runs of small chunks (message headers, padding, small buffers) are coalesced.
 *
 * Reading: RecordBatchReader over an async byte source, after a cheap check of the first 8 bytes so that
 * text or a ROOT file is reported as such instead of as a 1 GiB allocation failure. Input that is not an
 * Arrow IPC stream, or is truncated, is a CorruptDataError (exit 7: the bytes cannot be what they should
 * be); SchemaMismatchError (exit 8) is left for valid streams whose columns are not what a stage needs.
 */
import * as arrow from 'apache-arrow';
import { _InternalEmptyPlaceholderRecordBatch } from 'apache-arrow/recordbatch';
import { randomBytes } from 'node:crypto';
import { createWriteStream, unlinkSync, type WriteStream } from 'node:fs';
import { open as fsOpen, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CorruptDataError, HepMlError, InputNotFoundError, IoError, UsageError } from '../errors.js';

// ---------------------------------------------------------------------------------------------------
// Errors

/** The consumer of the output stream went away (EPIPE, or the stream was closed/destroyed under us). */
export class BrokenPipeError extends IoError {
  readonly code = 'EPIPE';
}

export function isBrokenPipe(e: unknown): boolean {
  return e instanceof BrokenPipeError || (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EPIPE');
}

/** The file is complete (renamed) or already removed: stop tracking it. */
export function untrackTemp(path: string): void {
  liveTempFiles.delete(path);
}

// ---------------------------------------------------------------------------------------------------
// Writer

/** Bytes of the EOS marker of the IPC stream format: continuation token, zero metadata length. */
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
/**
 * Written by abort() on a stream that cannot be deleted (stdout): a message header announcing 16 MiB of
 * metadata followed by only 8 bytes ("ABORTED!"), so a downstream reader fails ("expected to read N
 * metadata bytes") instead of taking a stream cut at a batch boundary (valid without EOS) for the
 * complete output. (A header with no bytes after it would not do: Arrow JS reads that as end of stream.)
 */
const POISON = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xf8, 0xff, 0xff, 0x00, ...Buffer.from('ABORTED!')]);

/** Chunks below this size are coalesced into one buffer before they go to the stream. */
const SMALL_CHUNK = 64 * 1024;

/** Captures the bytes Arrow's writer produces instead of queueing them in its AsyncByteQueue. */
class CapturingStreamWriter extends arrow.RecordBatchStreamWriter {
  private captured: Uint8Array[] = [];
  private capturedBytes = 0;

  // Protected extension point of RecordBatchWriter: every message piece (continuation token, length,
  // flatbuffer, padding, body buffers, EOS) goes through here.
  protected override _write(chunk: ArrayBufferView | ArrayBuffer): this {
    if (this._started) {
      const u8 = ArrayBuffer.isView(chunk)
        ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : new Uint8Array(chunk);
      if (u8.byteLength > 0) {
        this.captured.push(u8);
        this.capturedBytes += u8.byteLength;
        this._position += u8.byteLength;
      }
    }
    return this;
  }

  /** The bytes produced since the last take, runs of small chunks merged. */
  take(): { chunks: Uint8Array[]; bytes: number } {
    const chunks = coalesce(this.captured);
    const bytes = this.capturedBytes;
    this.captured = [];
    this.capturedBytes = 0;
    return { chunks, bytes };
  }

  start(schema: arrow.Schema): void {
    this.reset(undefined, schema);
  }
}

function coalesce(chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const flush = () => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) {
      const merged = new Uint8Array(runBytes);
      let p = 0;
      for (const c of run) {
        merged.set(c, p);
        p += c.byteLength;
      }
      out.push(merged);
    }
    run = [];
    runBytes = 0;
  };
  for (const c of chunks) {
    if (c.byteLength >= SMALL_CHUNK) {
      flush();
      out.push(c);
    } else {
      run.push(c);
      runBytes += c.byteLength;
      if (runBytes >= SMALL_CHUNK) flush();
    }
  }
  flush();
  return out;
}

/** Temp files of writers not yet closed or aborted: removed if the process exits first. */
const liveTempFiles = new Set<string>();
let exitHookInstalled = false;
/**
 * Registers a temporary file to be removed if the process exits or is interrupted (SIGINT, SIGTERM,
 * SIGHUP) before it is untracked. Used for output files before their rename and for spilled input.
 */
export function trackTemp(path: string): void {
  liveTempFiles.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    const removeAll = () => {
      for (const p of liveTempFiles) {
        try {
          unlinkSync(p);
        } catch {
          // already gone
        }
      }
      liveTempFiles.clear();
    };
    process.on('exit', removeAll);
    // Ctrl-C, kill, a closed terminal: remove the temp files, then die of the same signal as before.
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        removeAll();
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      };
      process.once(sig, onSignal);
    }
  }
}

/**
 * Creates `.<name>.<pid>.<random>.part` next to `target` (exclusively) and registers it with trackTemp:
 * the write stream of an output that is renamed onto `final` when complete. Errors: IoError.
 */
export async function openTempOutput(
  target: string,
  highWaterMark = 8 * 1024 * 1024,
): Promise<{ final: string; temp: string; stream: NodeJS.WritableStream & { destroyed?: boolean; writableLength?: number } }> {
  const final = resolve(target);
  const temp = join(dirname(final), `.${basename(final)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  // Tracked before it exists: a signal that arrives while the file is being opened still removes it.
  trackTemp(temp);
  const stream = createWriteStream(temp, { flags: 'wx', highWaterMark });
  try {
    await new Promise<void>((res, rej) => {
      stream.once('open', () => {
        stream.off('error', rej);
        res();
      });
      stream.once('error', rej);
    });
  } catch (e) {
    untrackTemp(temp);
    throw new IoError(`cannot create output file: ${errMessage(e)}`, { file: target }, { cause: e });
  }
  return { final, temp, stream };
}

export interface IpcStreamWriterOptions {
  /** The stream that target '-' writes to (default process.stdout); tests pass a PassThrough. */
  stdout?: NodeJS.WritableStream;
  /**
   * Write the schema message at open. Needed for a stream that may get zero batches (it is then still a
   * valid stream: schema + EOS); otherwise the first batch's schema is used.
   */
  schema?: arrow.Schema;
  /** For '-': end() the stream at close (default false: stdout stays open). Files are always closed. */
  end?: boolean;
  /** For a path: the file stream's high-water mark in bytes (default 8 MiB). */
  highWaterMark?: number;
}

type Sink = NodeJS.WritableStream & {
  destroyed?: boolean;
  writableEnded?: boolean;
  writableLength?: number;
  cork?: () => void;
  uncork?: () => void;
};

/**
 * Writes an Arrow IPC stream to stdout ('-') or to a file, one RecordBatch at a time with backpressure.
 *
 * A file target is written to `.<name>.<pid>.<random>.part` in the same directory and renamed onto the
 * final path by close(), so the final path only ever holds complete output (an existing file there is
 * replaced). abort() removes the temp file; so does process exit before close().
 *
 * Batches are serialized without copying their buffers: write() resolves once the stream accepted the
 * bytes (after 'drain' when the stream was over its high-water mark), but the stream may still hold
 * references to the batch's typed arrays until it flushes them. Do not overwrite a batch's arrays
 * after writing it (allocate fresh ones per batch). At most one write() or close() may be pending.
 */
export class IpcStreamWriter {
  private readonly arrowWriter = new CapturingStreamWriter();
  private currentSchema: arrow.Schema | null = null;
  private failure: Error | null = null;
  private busy = false;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  private _bytes = 0;
  private _batches = 0;
  private _rows = 0;
  private _drainWaits = 0;
  private readonly onError = (e: unknown) => {
    this.failure ??= this.wrapError(e);
  };

  private constructor(
    /** '-' or the absolute final path. */
    readonly target: string,
    private readonly sink: Sink,
    /** The temp path for a file target, undefined for '-'. */
    readonly tempPath: string | undefined,
    private readonly endSink: boolean,
  ) {
    sink.on('error', this.onError);
  }

  static async open(target: string, opts: IpcStreamWriterOptions = {}): Promise<IpcStreamWriter> {
    let w: IpcStreamWriter;
    if (target === '-') {
      w = new IpcStreamWriter('-', (opts.stdout ?? process.stdout) as Sink, undefined, opts.end ?? false);
    } else {
      const { final, temp, stream } = await openTempOutput(target, opts.highWaterMark);
      w = new IpcStreamWriter(final, stream, temp, true);
    }
    if (opts.schema) await w.writeSchema(opts.schema);
    return w;
  }

  get schema(): arrow.Schema | null {
    return this.currentSchema;
  }
  /** Bytes handed to the output stream so far (schema, batches, and EOS after close). */
  get bytesWritten(): number {
    return this._bytes;
  }
  get batchesWritten(): number {
    return this._batches;
  }
  get rowsWritten(): number {
    return this._rows;
  }
  /** How many times a write waited for the output stream's 'drain' (the backpressure in action). */
  get drainWaits(): number {
    return this._drainWaits;
  }

  /** Writes the schema message now (done implicitly by the first write()). Once per stream. */
  async writeSchema(schema: arrow.Schema): Promise<void> {
    this.enter();
    try {
      if (this.currentSchema) {
        if (sameSchema(schema, this.currentSchema)) return;
        throw new Error('IpcStreamWriter: the schema was already written');
      }
      this.currentSchema = schema;
      this.arrowWriter.start(schema);
      await this.flush();
    } finally {
      this.busy = false;
    }
  }

  /** Serializes and writes one batch; resolves when the output can take more. */
  async write(batch: arrow.RecordBatch): Promise<void> {
    this.enter();
    try {
      if (!this.currentSchema) {
        this.currentSchema = batch.schema;
        this.arrowWriter.start(batch.schema);
      } else if (batch.schema !== this.currentSchema) {
        if (!sameSchema(batch.schema, this.currentSchema)) {
          // Arrow's writer would silently end the stream and start a new one.
          throw new Error(
            `IpcStreamWriter: batch schema ${describeSchema(batch.schema)} differs from the stream's ${describeSchema(this.currentSchema)}`,
          );
        }
        batch = new arrow.RecordBatch(this.currentSchema, batch.data, batch.metadata);
      }
      this.arrowWriter.write(batch);
      this._batches++;
      this._rows += batch.numRows;
      await this.flush();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Writes the EOS marker and finishes: a file is closed and renamed onto its final path; '-' is flushed
   * (and ended if opts.end). On failure a file target's temp file is removed and the error rethrown.
   */
  async close(): Promise<void> {
    this.enter();
    try {
      if (!this.currentSchema) {
        throw new Error('IpcStreamWriter.close(): no schema was written (pass opts.schema for streams that may have no batches)');
      }
      this.arrowWriter.close(); // emits the EOS marker through _write
      await this.flush();
      if (this.tempPath) {
        await this.finishFile();
        await rename(this.tempPath, this.target).catch((e: unknown) => {
          throw new IoError(`cannot rename ${this.tempPath} to the output: ${errMessage(e)}`, { file: this.target }, { cause: e });
        });
        liveTempFiles.delete(this.tempPath);
      } else {
        await this.flushSink();
        if (this.endSink) await this.endStream();
      }
      this.state = 'closed';
      this.sink.off('error', this.onError);
    } catch (e) {
      this.busy = false;
      await this.abort();
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Gives up: a file target's temp file is removed (the final path is untouched). For '-', nothing can be
   * taken back, so if the stream is still writable an invalid message header is appended to make
   * downstream readers fail instead of accepting the truncated stream. Idempotent; never throws.
   */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.tempPath) {
      const stream = this.sink as unknown as WriteStream;
      if (!stream.destroyed) {
        await new Promise<void>((res) => {
          stream.once('close', () => res());
          stream.destroy();
        });
      }
      await unlink(this.tempPath).catch(() => undefined);
      liveTempFiles.delete(this.tempPath);
    } else if (this.currentSchema && !this.failure && !this.sink.destroyed && !this.sink.writableEnded) {
      try {
        this.sink.write(POISON);
        if (this.endSink) this.sink.end();
      } catch {
        // the stream is going away anyway
      }
    }
    this.sink.off('error', this.onError);
  }

  // -------------------------------------------------------------------------------------------------

  private enter(): void {
    if (this.state !== 'open') throw new Error(`IpcStreamWriter: already ${this.state}`);
    if (this.busy) throw new Error('IpcStreamWriter: a write is already pending (await each write)');
    if (this.failure) throw this.failure;
    this.busy = true;
  }

  /** Hands the captured chunks to the stream; awaits 'drain' if the stream asked for it. */
  private async flush(): Promise<void> {
    const { chunks, bytes } = this.arrowWriter.take();
    if (chunks.length === 0) return;
    const s = this.sink;
    this.checkWritable();
    let full = false;
    const corked = chunks.length > 1 && typeof s.cork === 'function';
    if (corked) s.cork!();
    try {
      for (const c of chunks) if (!s.write(c)) full = true;
    } finally {
      if (corked) s.uncork!();
    }
    this._bytes += bytes;
    if (this.failure) throw this.failure;
    if (full) {
      this._drainWaits++;
      await this.waitFor('drain');
    }
  }

  private checkWritable(): void {
    if (this.failure) throw this.failure;
    if (this.sink.destroyed || this.sink.writableEnded) {
      throw (this.failure = new BrokenPipeError('output stream was closed before the Arrow stream ended', this.ctx()));
    }
  }

  /** Resolves on `event`; rejects on 'error' or on 'close' before it. */
  private waitFor(event: 'drain' | 'finish' | 'close'): Promise<void> {
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
      const onClose = () =>
        done(this.failure ?? (this.failure = new BrokenPipeError('output stream was closed before the Arrow stream ended', this.ctx())));
      s.on(event, onEvent);
      s.on('error', onErr);
      if (event !== 'close') s.on('close', onClose);
    });
  }

  /** For '-': resolves once everything written so far has been flushed by the stream. */
  private async flushSink(): Promise<void> {
    if ((this.sink.writableLength ?? 0) === 0) return;
    this.checkWritable();
    await new Promise<void>((res, rej) => {
      // Writes complete in order: the callback of an empty write follows all earlier ones.
      this.sink.write(new Uint8Array(0), (err?: Error | null) => (err ? rej(this.failure ?? this.wrapError(err)) : res()));
    });
  }

  private async endStream(): Promise<void> {
    const finished = this.waitFor('finish');
    this.sink.end();
    await finished;
  }

  private async finishFile(): Promise<void> {
    const closed = this.waitFor('close');
    this.sink.end();
    await closed;
    if (this.failure) throw this.failure;
  }

  private ctx() {
    return this.target === '-' ? { file: '<stdout>' } : { file: this.target };
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

function sameSchema(a: arrow.Schema, b: arrow.Schema): boolean {
  return a === b || arrow.util.compareSchemas(a, b);
}

function describeSchema(s: arrow.Schema): string {
  return `(${s.fields.map((f) => `${f.name}: ${String(f.type)}`).join(', ')})`;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------------
// Reader

/** An open IPC stream: the schema is known before the first batch is read. */
export interface IpcStreamInput {
  readonly schema: arrow.Schema;
  /** The source as errors name it: the path, '<stdin>', or the name given. */
  readonly source: string;
  /** The record batches, once (single pass). Zero-row batches in the stream are kept. */
  readonly batches: AsyncIterable<arrow.RecordBatch>;
  /** Bytes read from the source so far. */
  readonly bytesRead: number;
  /** Stops reading and releases the source (also done when `batches` is exhausted or broken out of). */
  close(): Promise<void>;
}

export type IpcSource = string | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

export interface OpenIpcOptions {
  /** The name errors give the source (default: the path, '<stdin>' for '-', '<stream>' otherwise). */
  name?: string;
  /** For '-': the stream to read (default process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

/**
 * Opens an Arrow IPC stream ('-' = stdin, a path, or a readable stream) and reads its schema. Errors:
 * InputNotFoundError (no such file), IoError (read failures), CorruptDataError (empty input, not an
 * Arrow IPC stream, truncated), UsageError ('-' while stdin is a terminal). The Arrow IPC *file* format is accepted too (Arrow reads it whole).
 */
export async function openIpcStream(source: IpcSource, opts: OpenIpcOptions = {}): Promise<IpcStreamInput> {
  let name: string;
  let byteSource: AsyncIterable<Uint8Array>;
  let release: () => Promise<void> = async () => undefined;
  if (source === '-') {
    name = opts.name ?? '<stdin>';
    const stdin = opts.stdin ?? process.stdin;
    if ((stdin as { isTTY?: boolean }).isTTY) {
      throw new UsageError('stdin is a terminal: pipe an Arrow IPC stream in, or give a file', { file: name });
    }
    byteSource = stdin as AsyncIterable<Uint8Array>;
  } else if (typeof source === 'string') {
    name = opts.name ?? source;
    let fh;
    try {
      fh = await fsOpen(source, 'r');
      const st = await fh.stat();
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    } catch (e) {
      await fh?.close().catch(() => undefined);
      const code = (e as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
        throw new InputNotFoundError(code === 'EISDIR' ? 'is a directory, not a file' : 'no such file', { file: name }, { cause: e });
      }
      throw new IoError(`cannot open: ${errMessage(e)}`, { file: name }, { cause: e });
    }
    const stream = fh.createReadStream({ highWaterMark: 1024 * 1024 });
    byteSource = stream;
    release = async () => {
      if (!stream.destroyed) {
        await new Promise<void>((res) => {
          stream.once('close', () => res());
          stream.destroy();
        });
      }
    };
  } else {
    name = opts.name ?? '<stream>';
    byteSource = source as AsyncIterable<Uint8Array>;
  }

  const counted = new CountingSource(byteSource, name);
  let reader: arrow.RecordBatchReader;
  try {
    await counted.checkHeader();
    reader = await arrow.RecordBatchReader.from(counted as AsyncIterable<Uint8Array>);
    await reader.open();
  } catch (e) {
    await release();
    throw readError(e, name);
  }
  if (!reader.schema) {
    await release();
    throw new CorruptDataError('not an Arrow IPC stream: no schema message', { file: name });
  }

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await reader.cancel();
    } catch {
      // best effort
    }
    await release();
  };

  async function* batches(): AsyncGenerator<arrow.RecordBatch> {
    try {
      for (;;) {
        let r: IteratorResult<arrow.RecordBatch>;
        try {
          r = await (reader.next() as Promise<IteratorResult<arrow.RecordBatch>>);
        } catch (e) {
          throw readError(e, name);
        }
        if (r.done) return;
        // Arrow yields a placeholder batch for a stream with a schema and no batches.
        if (r.value instanceof _InternalEmptyPlaceholderRecordBatch) continue;
        yield r.value;
      }
    } finally {
      await close();
    }
  }

  return {
    schema: reader.schema,
    source: name,
    batches: batches(),
    get bytesRead() {
      return counted.bytes;
    },
    close,
  };
}

/** The record batches of an Arrow IPC stream ('-' = stdin). See openIpcStream for the errors. */
export async function* readIpcStream(source: IpcSource, opts: OpenIpcOptions = {}): AsyncGenerator<arrow.RecordBatch> {
  const input = await openIpcStream(source, opts);
  yield* input.batches;
}

/** Largest metadata (flatbuffer) length accepted in the first message: a schema is far smaller. */
const MAX_FIRST_METADATA = 64 * 1024 * 1024;
const ARROW_MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1", the IPC file format

/** An async byte source that counts bytes and lets the first 8 bytes be checked before Arrow sees them. */
class CountingSource implements AsyncIterable<Uint8Array> {
  bytes = 0;
  private readonly it: AsyncIterator<Uint8Array | string>;
  private head: Uint8Array[] = [];

  constructor(
    src: AsyncIterable<Uint8Array | string>,
    private readonly name: string,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async pull(): Promise<Uint8Array | null> {
    const r = await this.it.next();
    if (r.done) return null;
    const v = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.bytes += v.byteLength;
    return v;
  }

  /** Reads until 8 bytes are buffered and checks they can start an Arrow IPC stream (or file). */
  async checkHeader(): Promise<void> {
    let have = 0;
    while (have < 8) {
      const c = await this.pull();
      if (c === null) break;
      this.head.push(c);
      have += c.byteLength;
    }
    const h = new Uint8Array(Math.min(have, 8));
    let p = 0;
    for (const c of this.head) {
      if (p >= h.length) break;
      const n = Math.min(c.byteLength, h.length - p);
      h.set(c.subarray(0, n), p);
      p += n;
    }
    if (have === 0) throw new CorruptDataError('empty input: expected an Arrow IPC stream', { file: this.name });
    if (ARROW_MAGIC.every((b, i) => h[i] === b)) return; // IPC file format: let Arrow read it
    if (have < 8) throw new CorruptDataError(`not an Arrow IPC stream: only ${have} bytes`, { file: this.name });
    const dv = new DataView(h.buffer);
    const first = dv.getInt32(0, true);
    // Current format: continuation token 0xFFFFFFFF then the metadata length; pre-1.0 (legacy): the length.
    const len = first === -1 ? dv.getInt32(4, true) : first;
    if (len <= 0 || len > MAX_FIRST_METADATA || len % 8 !== 0) {
      throw new CorruptDataError(`not an Arrow IPC stream (starts with ${hex(h)}${looksLike(h)})`, { file: this.name });
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      const head = this.head;
      this.head = [];
      for (const c of head) yield c;
      for (;;) {
        const c = await this.pull();
        if (c === null) return;
        yield c;
      }
    } finally {
      await this.it.return?.();
    }
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

function looksLike(h: Uint8Array): string {
  const text = String.fromCharCode(...h);
  if (text.startsWith('root')) return '; this looks like a ROOT file';
  if (text.startsWith('PAR1')) return '; this looks like a Parquet file';
  if (/^[\x09\x0a\x0d\x20-\x7e]{8}$/.test(text)) return `; this looks like text: "${text}"`;
  return '';
}

function readError(e: unknown, name: string): HepMlError {
  if (e instanceof HepMlError) {
    if (e.context.file === undefined) e.context.file = name;
    return e;
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new IoError(`read failed: ${errMessage(e)}`, { file: name }, { cause: e });
  }
  return new CorruptDataError(`not a valid Arrow IPC stream: ${errMessage(e)}`, { file: name }, { cause: e });
}
