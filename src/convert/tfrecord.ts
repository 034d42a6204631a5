/**
 * TFRecord files of tf.train.Example records, in and out: the convert stage's TensorFlow format.
 *
 * Writing (openTfRecordWriter → BatchSink): each row of a batch becomes one Example (one feature per
 * column, keys = column names, in column order; types as in tfrecord-example.ts), framed as a TFRecord.
 * Records are encoded straight into large chunks (4 MiB, one allocation per chunk, sizes computed first),
 * which go to the file or stdout with backpressure: write() waits while two chunks are still unconsumed
 * by the stream (write callbacks rather than 'drain', so gzip in the threadpool overlaps with encoding). `gzip` gives TensorFlow's "GZIP" compression:
 * the whole file is one gzip stream of the framed records, what `tf.data.TFRecordDataset(...,
 * compression_type='GZIP')` and `tf.io.TFRecordWriter(..., 'GZIP')` read and write. A file target is
 * written under a temporary name in the same directory and renamed by close(); abort() and process exit
 * remove it (trackTemp). '-' writes to stdout; an aborted '-' stream gets a record header with a wrong CRC
 * appended, so readers fail instead of taking the records so far for the whole output.
 *
 * Reading: readTfRecords yields the record payloads after checking both masked CRC32Cs; any framing
 * problem is a CorruptDataError naming the file, the record (0-based) and its byte offset (in the
 * decompressed stream for gzip input, which is detected by its magic). openTfRecordSource decodes the
 * Examples into ColumnBatches, either into given fields (e.g. the writer's schema from a manifest) or into
 * a schema inferred from the first batch of records.
 *
 * What the Example format cannot carry: nested variable-length structure. A list<list<T>> (or a list
 * inside a fixed) is written flattened, row-major, like every other column, and can be read back only as
 * the flat list<T>; the reader refuses such types in `fields` (UnsupportedError) rather than guess.
 */
import { type ReadStream, type WriteStream } from 'node:fs';
import { open as fsOpen, rename, unlink } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import { BrokenPipeError, openTempOutput, untrackTemp } from '../columnar/ipc.js';
import {
  type ColumnBatch,
  type ColumnData,
  type ColumnType,
  type DType,
  type NumericArray,
  DTYPE_BYTES,
  allocTyped,
  formatColumnType,
} from '../root/columns.js';
import { CorruptDataError, HepMlError, InputNotFoundError, IoError, SchemaMismatchError, UnsupportedError, UsageError } from '../errors.js';
import {
  ExampleEncoder,
  FRAME_HEADER,
  KIND_BYTES,
  KIND_FLOAT,
  KIND_INT64,
  type KindCode,
  ScannedExample,
  WireError,
  countValues,
  decodeFloats,
  decodeInts,
  featureKindOf,
  forEachBytes,
  intRangeFailure,
  keyString,
  maskCrc,
  readU32,
  scanExample,
} from './tfrecord-example.js';
import type { BatchSink, BatchSource, Field } from './types.js';

export {
  ExampleEncoder,
  decodeExample,
  encodeExample,
  frameRecord,
  maskCrc,
  maskedCrc32c,
  unmaskCrc,
  type DecodedFeature,
  type FeatureKind,
} from './tfrecord-example.js';

// ---------------------------------------------------------------------------------------------------
// Paths

/** `x.tfrecord`, `x.tfrecords`, `x.tfr`, optionally `.gz`, and TensorFlow's shard names (`x.tfrecord-00001-of-00010`). */
export function isTfRecordPath(path: string): boolean {
  return /\.(tfrecords?|tfr)(-\d+-of-\d+)?(\.gz)?$/i.test(path);
}

// ---------------------------------------------------------------------------------------------------
// Writer

export interface TfRecordWriteOptions {
  /** TensorFlow's GZIP compression: the file is one gzip stream (default false). */
  gzip?: boolean;
  /** zlib level 0–9 (default 6). */
  gzipLevel?: number;
  /** The stream that target '-' writes to (default process.stdout); tests pass a PassThrough. */
  stdout?: NodeJS.WritableStream;
  /** For '-': end() the stream at close (default false: stdout stays open). Files are always closed. */
  end?: boolean;
}

/** Records are encoded into chunks of this size (a bigger record gets a chunk of its own). */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** At most this many chunks handed to the output stream and not yet consumed by it. */
const MAX_IN_FLIGHT = 2;
/** A chunk with less room than this left is not reused for the next batch. */
const MIN_REUSE = 64 * 1024;
/**
 * Appended by abort() to a '-' stream: a record header declaring 2^64−1 bytes with a wrong length CRC,
 * then "ABORTED!". TensorFlow reports "corrupted record", hep-ml a CorruptDataError.
 */
const POISON = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, ...Buffer.from('ABORTED!')]);

type Sink = NodeJS.WritableStream & {
  destroyed?: boolean;
  writableEnded?: boolean;
  writableLength?: number;
  destroy?: (e?: Error) => void;
};

/**
 * Opens a TFRecord writer for batches of `fields` on a path or '-' (stdout). Errors: IoError (cannot
 * create the file), UsageError (bad gzipLevel), SchemaMismatchError (duplicate column names).
 */
export async function openTfRecordWriter(target: string, fields: Field[], opts: TfRecordWriteOptions = {}): Promise<BatchSink> {
  const level = opts.gzipLevel ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`gzip level must be an integer 0–9, got ${level}`);
  const encoder = new ExampleEncoder(fields);
  if (target === '-') {
    return new TfRecordSink('-', encoder, (opts.stdout ?? process.stdout) as Sink, undefined, opts.end ?? false, opts.gzip ? level : -1);
  }
  const { final, temp, stream } = await openTempOutput(target);
  return new TfRecordSink(final, encoder, stream as unknown as Sink, temp, true, opts.gzip ? level : -1);
}

class TfRecordSink implements BatchSink {
  private state: 'open' | 'closed' | 'aborted' = 'open';
  private busy = false;
  private failure: Error | null = null;
  private readonly waiters = new Set<(e: Error) => void>();
  /** What records are written into: the gzip stream, or the destination itself. */
  private readonly out: Sink;
  private readonly gzip: Gzip | null;
  private outBytes = 0;
  private rows = 0;
  private chunk: Buffer | null = null;
  private chunkPos = 0;
  private readonly onError = (e: unknown) => this.fail(this.wrapError(e));
  private readonly onDestClose = () => {
    if (this.state === 'open' && !this.closing) this.fail(new BrokenPipeError('output stream was closed before the TFRecord output ended', this.ctx()));
  };
  private closing = false;

  constructor(
    /** '-' or the absolute final path. */
    readonly target: string,
    private readonly encoder: ExampleEncoder,
    private readonly dest: Sink,
    private readonly tempPath: string | undefined,
    private readonly endDest: boolean,
    gzipLevel: number,
  ) {
    dest.on('error', this.onError);
    dest.on('close', this.onDestClose);
    if (gzipLevel >= 0) {
      const gz = createGzip({ level: gzipLevel, chunkSize: 256 * 1024, writableHighWaterMark: 2 * CHUNK_BYTES } as never);
      gz.on('error', this.onError);
      gz.on('data', (c: Buffer) => {
        this.outBytes += c.length;
      });
      gz.pipe(dest as NodeJS.WritableStream, { end: endDest });
      this.gzip = gz;
      this.out = gz as unknown as Sink;
    } else {
      this.gzip = null;
      this.out = dest;
    }
  }

  async write(batch: ColumnBatch): Promise<void> {
    this.enter();
    try {
      const enc = this.encoder;
      const n = enc.bind(batch);
      let chunk = this.chunk;
      let start = this.chunkPos; // first byte of this chunk not yet handed to the stream
      let pos = start;
      for (let row = 0; row < n; row++) {
        const size = enc.recordSize(row);
        if (!chunk || pos + size > chunk.length) {
          if (chunk && pos > start) await this.emit(chunk.subarray(start, pos));
          chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, size));
          start = pos = 0;
          this.chunk = chunk;
          this.chunkPos = 0;
        }
        pos = enc.encodeRecordInto(row, chunk, pos);
      }
      if (chunk && pos > start) await this.emit(chunk.subarray(start, pos));
      // Keep the rest of the chunk for the next batch (the bytes handed out are never written again).
      if (chunk && chunk.length - pos >= MIN_REUSE) {
        this.chunk = chunk;
        this.chunkPos = pos;
      } else {
        this.chunk = null;
        this.chunkPos = 0;
      }
      this.rows += n;
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<{ bytes: number; rows: number }> {
    this.enter();
    this.closing = true;
    try {
      this.chunk = null;
      if (this.tempPath) {
        // The destination is a file: end the chain and wait for the file to be closed.
        const closed = this.waitFor(this.dest, 'close');
        (this.gzip ?? this.dest).end();
        await closed;
        if (this.failure) throw this.failure;
        await rename(this.tempPath, this.target).catch((e: unknown) => {
          throw new IoError(`cannot rename ${this.tempPath} to the output: ${errMessage(e)}`, { file: this.target }, { cause: e });
        });
        untrackTemp(this.tempPath);
      } else {
        if (this.gzip) {
          const ended = this.waitFor(this.gzip as unknown as Sink, 'end');
          this.gzip.end();
          await ended;
        }
        if (this.endDest) {
          if (!this.gzip) {
            const finished = this.waitFor(this.dest, 'finish');
            this.dest.end();
            await finished;
          } else if (!(this.dest as { writableFinished?: boolean }).writableFinished) {
            await this.waitFor(this.dest, 'finish');
          }
        } else {
          await this.flushDest();
        }
      }
      if (!this.gzip) this.outBytes = this.outBytesPlain;
      this.state = 'closed';
      this.detach();
      return { bytes: this.outBytes, rows: this.rows };
    } catch (e) {
      this.busy = false;
      this.closing = false;
      await this.abort();
      throw e;
    } finally {
      this.busy = false;
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.chunk = null;
    const gz = this.gzip;
    if (this.tempPath) {
      gz?.unpipe();
      gz?.destroy();
      const stream = this.dest as unknown as WriteStream;
      if (!stream.destroyed) {
        await new Promise<void>((res) => {
          stream.once('close', () => res());
          stream.destroy();
        });
      }
      await unlink(this.tempPath).catch(() => undefined);
      untrackTemp(this.tempPath);
    } else if (!this.failure && !this.dest.destroyed && !this.dest.writableEnded) {
      try {
        if (gz && !gz.destroyed && !gz.writableEnded) {
          // Wait for the poison to come out of the compressor, but not forever: the consumer may be stuck.
          let timer: NodeJS.Timeout | undefined;
          const ended = new Promise<void>((res) => {
            gz.once('end', res);
            gz.once('error', () => res());
            gz.once('close', () => res());
            timer = setTimeout(res, 2000);
            timer.unref();
          });
          gz.write(POISON);
          gz.end();
          await ended;
          clearTimeout(timer);
        } else if (!gz) {
          this.dest.write(POISON);
          if (this.endDest) this.dest.end();
        }
      } catch {
        // the stream is going away anyway
      }
    } else {
      gz?.destroy();
    }
    this.detach();
  }

  // -------------------------------------------------------------------------------------------------

  private outBytesPlain = 0;

  /** Write callbacks not yet called, oldest first: each resolves when its chunk was taken in. */
  private readonly inFlight: { done: boolean; wake: (() => void) | null }[] = [];

  /**
   * Hands one chunk to the stream, then waits until at most MAX_IN_FLIGHT - 1 earlier chunks are still
   * pending. Waiting for each write's callback rather than for 'drain' keeps the next chunk queued while
   * this one is encoded: 'drain' comes only once the stream's buffer is empty, which leaves gzip (in the
   * threadpool) idle while the main thread encodes. A write's callback comes when the stream has consumed
   * the chunk (fs: written; zlib: compressed and its output accepted downstream; a pipe: flushed), so the
   * bytes in flight stay bounded by MAX_IN_FLIGHT chunks.
   */
  private async emit(bytes: Buffer): Promise<void> {
    this.checkWritable();
    this.outBytesPlain += bytes.length;
    const entry: { done: boolean; wake: (() => void) | null } = { done: false, wake: null };
    this.inFlight.push(entry);
    this.out.write(bytes, (err?: Error | null) => {
      if (err) this.fail(this.wrapError(err));
      entry.done = true;
      while (this.inFlight.length > 0 && this.inFlight[0]!.done) this.inFlight.shift();
      entry.wake?.();
    });
    while (this.inFlight.length >= MAX_IN_FLIGHT) {
      const oldest = this.inFlight[0]!;
      await new Promise<void>((res, rej) => {
        const onFail = (e: Error) => {
          oldest.wake = null;
          rej(e);
        };
        this.waiters.add(onFail);
        oldest.wake = () => {
          this.waiters.delete(onFail);
          res();
        };
        if (this.failure) onFail(this.failure);
      });
    }
    if (this.failure) throw this.failure;
  }

  private enter(): void {
    if (this.state !== 'open') throw new Error(`TFRecord writer: already ${this.state}`);
    if (this.busy) throw new Error('TFRecord writer: a write is already pending (await each write)');
    if (this.failure) throw this.failure;
    this.busy = true;
  }

  private checkWritable(): void {
    if (this.failure) throw this.failure;
    if (this.dest.destroyed || this.dest.writableEnded) {
      throw this.fail(new BrokenPipeError('output stream was closed before the TFRecord output ended', this.ctx()));
    }
  }

  private fail(e: Error): Error {
    this.failure ??= e;
    for (const w of [...this.waiters]) w(this.failure);
    return this.failure;
  }

  /** Resolves on `event` of `s`; rejects when any stream of the chain fails first. */
  private waitFor(s: Sink, event: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((res, rej) => {
      const done = (err?: Error) => {
        s.removeListener(event, onEvent);
        this.waiters.delete(onFail);
        if (err) rej(err);
        else res();
      };
      const onEvent = () => done();
      const onFail = (e: Error) => done(e);
      s.on(event, onEvent);
      this.waiters.add(onFail);
    });
  }

  /** For '-': resolves once everything written so far has been flushed by the stream. */
  private async flushDest(): Promise<void> {
    if ((this.dest.writableLength ?? 0) === 0) return;
    this.checkWritable();
    await new Promise<void>((res, rej) => {
      const onFail = (e: Error) => rej(e);
      this.waiters.add(onFail);
      this.dest.write(new Uint8Array(0), (err?: Error | null) => {
        this.waiters.delete(onFail);
        if (err) rej(this.failure ?? this.wrapError(err));
        else res();
      });
    });
  }

  private detach(): void {
    this.dest.off('error', this.onError);
    this.dest.off('close', this.onDestClose);
    if (this.gzip) this.gzip.unpipe(this.dest as NodeJS.WritableStream);
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

// ---------------------------------------------------------------------------------------------------
// Reading: frames

export interface ReadTfRecordsOptions {
  /** The name errors give the input (default: the path, '<stdin>' for '-', '<stream>' otherwise). */
  name?: string;
  /** true: gunzip; false: plain; 'auto' (default): gzip when the input starts with the gzip magic 1f 8b. */
  gzip?: boolean | 'auto';
  /** Check both CRCs of every record (default true). */
  verify?: boolean;
  /** For '-': the stream to read (default process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

/**
 * The record payloads of a TFRecord file ('-' = stdin, a path, or a readable stream), in order. Each is a
 * view into a buffer that is not reused. Errors: InputNotFoundError, IoError, CorruptDataError (bad length
 * or data CRC, truncated record, bad gzip data), naming the record index and byte offset.
 */
export async function* readTfRecords(source: string | NodeJS.ReadableStream, opts: ReadTfRecordsOptions = {}): AsyncGenerator<Uint8Array> {
  const input = await openInput(source, opts);
  try {
    for await (const g of recordGroups(input, opts.verify ?? true)) yield* g.records;
  } finally {
    await input.release();
  }
}

interface Input {
  readonly name: string;
  readonly gzip: boolean;
  /** Bytes of the (plain) file when known up front, for early truncation errors. */
  readonly size: number | undefined;
  readonly chunks: AsyncIterator<Uint8Array | string>;
  release(): Promise<void>;
}

interface RecordGroup {
  /** Index of records[0] in the file. */
  first: number;
  records: Uint8Array[];
  /** Byte offset of each record's frame (in the decompressed stream for gzip). */
  offsets: number[];
}

async function openInput(source: string | NodeJS.ReadableStream, opts: ReadTfRecordsOptions): Promise<Input> {
  let name: string;
  let raw: NodeJS.ReadableStream;
  let size: number | undefined;
  if (source === '-') {
    name = opts.name ?? '<stdin>';
    const stdin = opts.stdin ?? process.stdin;
    if ((stdin as { isTTY?: boolean }).isTTY) throw new UsageError('stdin is a terminal: pipe a TFRecord file in, or give a path', { file: name });
    raw = stdin;
  } else if (typeof source === 'string') {
    name = opts.name ?? source;
    let fh;
    try {
      fh = await fsOpen(source, 'r');
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
    raw = fh.createReadStream({ highWaterMark: 1024 * 1024 });
  } else {
    name = opts.name ?? '<stream>';
    raw = source;
  }
  const destroyRaw = async () => {
    const s = raw as ReadStream;
    if (typeof s.destroy === 'function' && !s.destroyed && source !== '-' && typeof source === 'string') {
      await new Promise<void>((res) => {
        s.once('close', () => res());
        s.destroy();
      });
    }
  };

  // Peek at the first 12 bytes (a frame header) to tell gzip from plain.
  const rawIt = (raw as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let have = 0;
  try {
    while (have < FRAME_HEADER) {
      const r = await rawIt.next();
      if (r.done) break;
      const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      head.push(c);
      have += c.length;
    }
  } catch (e) {
    await destroyRaw();
    throw readError(e, name, 0, 0);
  }
  const first = concatHead(head, Math.min(have, FRAME_HEADER));
  let gzip: boolean;
  if (opts.gzip === true || opts.gzip === false) gzip = opts.gzip;
  else gzip = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b && !(first.length >= FRAME_HEADER && headerCrcOk(first, 0));

  async function* replay(): AsyncGenerator<Uint8Array | string> {
    for (const c of head) yield c;
    for (;;) {
      const r = await rawIt.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (!gzip) {
    return { name, gzip, size, chunks: replay(), release: destroyRaw };
  }
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const replayed = Readable.from(replay(), { objectMode: false });
  pipeline(replayed, gunzip, () => undefined); // errors reach the gunzip stream, whose iterator rejects
  return {
    name,
    gzip,
    size: undefined,
    chunks: (gunzip as AsyncIterable<Uint8Array>)[Symbol.asyncIterator](),
    release: async () => {
      replayed.destroy();
      gunzip.destroy();
      await destroyRaw();
    },
  };
}

function concatHead(chunks: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let p = 0;
  for (const c of chunks) {
    if (p >= n) break;
    const k = Math.min(c.length, n - p);
    out.set(c.subarray(0, k), p);
    p += k;
  }
  return out;
}

function headerCrcOk(b: Uint8Array, p: number): boolean {
  return maskCrc(crc32c(b.subarray(p, p + 8))) === readU32(b, p + 8);
}

/** Largest record payload this reader accepts (a Buffer's practical limit). */
const MAX_RECORD = 0x7fffffff;
/** At most this many records per group (a group is yielded whole). */
const MAX_GROUP = 4096;
const EMPTY = new Uint8Array(0);

/** Frames of the input, grouped by the chunk they were found in; CRCs checked when `verify`. */
async function* recordGroups(input: Input, verify: boolean): AsyncGenerator<RecordGroup> {
  const { name } = input;
  const where = (index: number, offset: number) =>
    `record ${index} at byte ${offset}${input.gzip ? ' of the decompressed stream' : ''}`;
  let cur: Uint8Array = EMPTY;
  let pos = 0;
  let curEnd = 0; // stream offset of the end of cur
  let index = 0;
  let eof = false;

  const pull = async (): Promise<Uint8Array | null> => {
    if (eof) return null;
    let r: IteratorResult<Uint8Array | string>;
    try {
      r = await input.chunks.next();
    } catch (e) {
      throw readError(e, name, index, curEnd - cur.length + pos);
    }
    if (r.done) {
      eof = true;
      return null;
    }
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  };
  /** n bytes from the current position (a view when they lie in one chunk); fewer at end of input. */
  const take = async (n: number): Promise<Uint8Array> => {
    if (cur.length - pos >= n) {
      const v = cur.subarray(pos, pos + n);
      pos += n;
      return v;
    }
    const out = new Uint8Array(n);
    let got = cur.length - pos;
    out.set(cur.subarray(pos));
    pos = cur.length;
    while (got < n) {
      const c = await pull();
      if (!c) return out.subarray(0, got);
      cur = c;
      curEnd += c.length;
      const k = Math.min(n - got, c.length);
      out.set(c.subarray(0, k), got);
      got += k;
      pos = k;
    }
    return out;
  };
  /** The payload length of the frame header at b[p], checked. */
  const lengthOf = (b: Uint8Array, p: number, offset: number): number => {
    if (verify && !headerCrcOk(b, p)) {
      const hint = index === 0 && b[p] === 0x1f && b[p + 1] === 0x8b ? ' (the input starts like gzip data: read it with gzip)' : '';
      throw new CorruptDataError(
        `${where(index, offset)}: corrupted record header: length CRC mismatch (stored 0x${hex8(readU32(b, p + 8))}, computed 0x${hex8(maskCrc(crc32c(b.subarray(p, p + 8))))})${hint}`,
        { file: name },
      );
    }
    const lo = readU32(b, p);
    const hi = readU32(b, p + 4);
    if (hi !== 0 || lo > MAX_RECORD) {
      const len = (BigInt(hi) << 32n) | BigInt(lo);
      if (verify) throw new UnsupportedError(`${where(index, offset)}: record of ${len} bytes (this reader takes at most ${MAX_RECORD})`, { file: name });
      throw new CorruptDataError(`${where(index, offset)}: implausible record length ${len}`, { file: name });
    }
    if (input.size !== undefined && offset + lo + 16 > input.size) {
      throw new CorruptDataError(
        `${where(index, offset)}: truncated record: the header declares ${lo} bytes of data, the file ends ${input.size - offset - FRAME_HEADER} bytes after the header`,
        { file: name },
      );
    }
    return lo;
  };
  const checkData = (payload: Uint8Array, stored: number, offset: number) => {
    if (!verify) return;
    const computed = maskCrc(crc32c(payload));
    if (computed !== stored) {
      throw new CorruptDataError(
        `${where(index, offset)}: corrupted record: data CRC mismatch (stored 0x${hex8(stored)}, computed 0x${hex8(computed)}, ${payload.length} bytes of data)`,
        { file: name },
      );
    }
  };

  for (;;) {
    // Fast path: every whole record in the current chunk, as views.
    const records: Uint8Array[] = [];
    const offsets: number[] = [];
    const first = index;
    const base = curEnd - cur.length;
    let problem: unknown = null;
    try {
      while (cur.length - pos >= FRAME_HEADER && records.length < MAX_GROUP) {
        const offset = base + pos;
        const len = lengthOf(cur, pos, offset);
        if (cur.length - pos - FRAME_HEADER < len + 4) break;
        const payload = cur.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + len);
        checkData(payload, readU32(cur, pos + FRAME_HEADER + len), offset);
        records.push(payload);
        offsets.push(offset);
        index++;
        pos += FRAME_HEADER + len + 4;
      }
    } catch (e) {
      problem = e;
    }
    // The good records before a bad one are delivered first.
    if (records.length > 0) yield { first, records, offsets };
    if (problem) throw problem;
    if (records.length > 0) continue;
    if (cur.length - pos === 0) {
      const c = await pull();
      if (!c) return;
      cur = c;
      curEnd += c.length;
      pos = 0;
      continue;
    }
    // Slow path: a record that straddles chunks (copied once into a buffer of its own).
    const offset = curEnd - cur.length + pos;
    const header = await take(FRAME_HEADER);
    if (header.length === 0) return;
    if (header.length < FRAME_HEADER) {
      throw new CorruptDataError(`${where(index, offset)}: truncated record: the input ends ${header.length} bytes into the 12-byte record header`, { file: name });
    }
    const len = lengthOf(header, 0, offset);
    const body = await take(len + 4);
    if (body.length < len + 4) {
      throw new CorruptDataError(
        `${where(index, offset)}: truncated record: the header declares ${len} bytes of data, the input ends ${body.length} bytes after the header`,
        { file: name },
      );
    }
    const payload = body.subarray(0, len);
    checkData(payload, readU32(body, len), offset);
    index++;
    yield { first, records: [payload], offsets: [offset] };
  }
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}

function readError(e: unknown, name: string, index: number, offset: number): HepMlError {
  if (e instanceof HepMlError) {
    if (e.context.file === undefined) e.context.file = name;
    return e;
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new CorruptDataError(
      `bad gzip data (${errMessage(e)}) while reading record ${index} at byte ${offset} of the decompressed stream`,
      { file: name },
      { cause: e },
    );
  }
  return new IoError(`read failed: ${errMessage(e)}`, { file: name }, { cause: e });
}

// ---------------------------------------------------------------------------------------------------
// Reading: Examples → ColumnBatches

export interface TfRecordSourceOptions {
  /** The name errors give the input (default: the path; '<stdin>' for '-'). */
  name?: string;
  /**
   * The schema to decode into (e.g. the writer's, from a manifest): columns in this order, each feature
   * checked against its type. Without it the schema is inferred from the first batch of records.
   */
  fields?: Field[];
  /** Rows per batch (default 1024); also how many records inference looks at. */
  batchRows?: number;
  gzip?: boolean | 'auto';
  verify?: boolean;
  stdin?: NodeJS.ReadableStream;
}

/** How a column type maps onto the flat values of one feature. */
interface Shape {
  /** The outermost layer is a list (variable number of values per row). */
  list: boolean;
  /** Sizes of the fixed layers (under the list, if any), outer to inner. */
  fixed: number[];
  /** Values per row (scalar/fixed) or per list item (list): the product of `fixed`. */
  per: number;
  /** Leaf dtype, or null for utf8. */
  dtype: DType | null;
  kind: KindCode;
}

function shapeOf(f: Field, name: string): Shape {
  let t: ColumnType = f.type;
  let list = false;
  if (t.kind === 'list') {
    list = true;
    t = t.child;
  }
  const fixed: number[] = [];
  while (t.kind === 'fixed') {
    fixed.push(t.size);
    t = t.child;
  }
  if (t.kind === 'list') {
    throw new UnsupportedError(
      `column '${f.name}' is ${formatColumnType(f.type)}: a tf.train.Example holds it flattened (values only, row-major), so its inner list lengths cannot be read back; read it as list<${formatColumnType(leafTypeOf(t))}> or store the lengths in a column of their own`,
      { file: name },
    );
  }
  const per = fixed.reduce((a, b) => a * b, 1);
  if (list && per === 0) throw new UnsupportedError(`column '${f.name}' is ${formatColumnType(f.type)}: a list of empty items cannot be read back from a flat feature`, { file: name });
  return { list, fixed, per, dtype: t.kind === 'utf8' ? null : t.dtype, kind: featureKindOf(f.type) };
}

function leafTypeOf(t: ColumnType): ColumnType {
  while (t.kind === 'fixed' || t.kind === 'list') t = t.child;
  return t;
}

/** Initial allocation of a fixed-size column per batch (grown as needed). */
const INITIAL_BYTES = 64 * 1024 * 1024;

const LIST_NAMES: Record<number, string> = { [KIND_BYTES]: 'bytes_list', [KIND_FLOAT]: 'float_list', [KIND_INT64]: 'int64_list', 0: 'Feature with no list set' };

/** Accumulates one column of a batch from the features of successive records. */
class ColumnBuilder {
  readonly key: Uint8Array;
  readonly typeText: string;
  private rows = 0;
  private nValues = 0;
  private values: NumericArray | null = null;
  private pairs: Int32Array | null = null;
  private listOffsets: Int32Array | null = null;
  private strOffsets: Int32Array | null = null;
  private strBytes: Uint8Array | null = null;
  private nBytes = 0;
  /** Values per row seen in the previous batch, to size list columns. */
  private avgPerRow = 8;

  constructor(
    readonly field: Field,
    readonly shape: Shape,
    /** Appended to expectations in messages, e.g. ", inferred from records 0–1023". */
    readonly origin: string,
  ) {
    this.key = new TextEncoder().encode(field.name);
    this.typeText = formatColumnType(field.type);
  }

  begin(capRows: number): void {
    const s = this.shape;
    this.rows = 0;
    this.nValues = 0;
    this.nBytes = 0;
    // Fixed-size columns: room for the whole batch, up to 64 MiB to start with (a small input should not
    // cost batchRows × a 60 kB row); lists: sized from the previous batch. Both grow by doubling.
    const rowBytes = Math.max(1, s.per * (s.dtype === null ? 8 : DTYPE_BYTES[s.dtype]));
    const cap = s.list ? Math.max(16, Math.ceil(capRows * this.avgPerRow)) : Math.min(capRows, Math.max(16, Math.floor(INITIAL_BYTES / rowBytes))) * s.per;
    this.listOffsets = s.list ? new Int32Array(capRows + 1) : null;
    if (s.dtype === null) {
      this.strOffsets = new Int32Array(cap + 1);
      this.strBytes = new Uint8Array(Math.max(64, cap * 8));
      this.values = null;
    } else {
      this.setValues(allocTyped(s.dtype, cap));
    }
  }

  /** What a record must hold for this column, for messages. */
  expectation(): string {
    const s = this.shape;
    const what = s.kind === KIND_FLOAT ? 'float' : s.kind === KIND_INT64 ? 'int64' : 'bytes';
    const count = s.list ? (s.per === 1 ? 'any number of' : `a multiple of ${s.per}`) : `exactly ${s.per}`;
    return `${LIST_NAMES[s.kind]} with ${count} ${what} value${!s.list && s.per === 1 ? '' : 's'} (${this.typeText}${this.origin})`;
  }

  /** Null when a feature of `kind` with `count` values fits, else what is wrong. */
  check(kind: number, count: number): string | null {
    const s = this.shape;
    if (kind !== s.kind && !(count === 0 && (s.list || s.per === 0))) {
      return `is a ${LIST_NAMES[kind]}${kind ? ` of ${count} values` : ''}, expected a ${this.expectation()}`;
    }
    if (s.list ? count % s.per !== 0 : count !== s.per) {
      return `has ${count} value${count === 1 ? '' : 's'}, expected a ${this.expectation()}`;
    }
    return null;
  }

  /** Appends one row from the list message bytes[ls, le) holding `count` values (checked). Null or an error. */
  append(bytes: Uint8Array, kind: number, ls: number, le: number, count: number): string | null {
    const s = this.shape;
    if (s.dtype === null) {
      const need = this.nValues + count + 1;
      if (need > this.strOffsets!.length) this.strOffsets = growI32(this.strOffsets!, need);
      if (count > 0) {
        forEachBytes(bytes, ls, le, this.pushString);
      }
    } else if (count > 0) {
      if (this.nValues + count > this.values!.length) this.setValues(growTyped(this.values!, s.dtype, this.nValues + count));
      if (kind === KIND_FLOAT) {
        decodeFloats(bytes, ls, le, this.values as Float32Array | Float64Array, this.nValues);
      } else {
        const k = decodeInts(bytes, ls, le, s.dtype, this.pairs ?? this.values!, this.nValues);
        if (k < 0) return `value ${intRangeFailure} (${this.typeText})`;
      }
      this.nValues += count;
    }
    this.rows++;
    if (this.listOffsets) {
      if (this.rows >= this.listOffsets.length) this.listOffsets = growI32(this.listOffsets, this.rows + 1);
      this.listOffsets[this.rows] = this.nValues / s.per;
    }
    return null;
  }

  private readonly pushString = (a: number, z: number): void => {
    const len = z - a;
    if (this.nBytes + len > this.strBytes!.length) {
      const grown = new Uint8Array(Math.max(2 * this.strBytes!.length, this.nBytes + len));
      grown.set(this.strBytes!.subarray(0, this.nBytes));
      this.strBytes = grown;
    }
    this.strBytes!.set(this.currentBytes!.subarray(a, z), this.nBytes);
    this.nBytes += len;
    this.nValues++;
    this.strOffsets![this.nValues] = this.nBytes;
  };
  private currentBytes: Uint8Array | null = null;

  /** For utf8 columns: the record whose strings pushString copies. */
  setRecord(bytes: Uint8Array): void {
    this.currentBytes = bytes;
  }

  finish(): ColumnData {
    const s = this.shape;
    if (this.shape.list && this.rows > 0) this.avgPerRow = Math.max(1, this.nValues / this.rows);
    let d: ColumnData =
      s.dtype === null
        ? { kind: 'utf8', offsets: this.strOffsets!.slice(0, this.nValues + 1), bytes: this.strBytes!.slice(0, this.nBytes) }
        : { kind: 'primitive', dtype: s.dtype, values: trimmed(this.values!, this.nValues) };
    for (let i = s.fixed.length - 1; i >= 0; i--) d = { kind: 'fixed', size: s.fixed[i]!, child: d };
    if (this.listOffsets) d = { kind: 'list', offsets: this.listOffsets.slice(0, this.rows + 1), child: d };
    this.values = null;
    this.pairs = null;
    this.strBytes = null;
    this.strOffsets = null;
    this.listOffsets = null;
    return d;
  }

  private setValues(v: NumericArray): void {
    this.values = v;
    this.pairs = v instanceof BigInt64Array || v instanceof BigUint64Array ? new Int32Array(v.buffer, v.byteOffset, v.length * 2) : null;
  }
}

function growI32(a: Int32Array, need: number): Int32Array {
  const b = new Int32Array(Math.max(need, 2 * a.length));
  b.set(a);
  return b;
}

function growTyped(a: NumericArray, dtype: DType, need: number): NumericArray {
  const b = allocTyped(dtype, Math.max(need, 2 * a.length));
  (b as Uint8Array).set(a as Uint8Array);
  return b;
}

/** The first n values: the array itself when exact, a view when most of it is used, else a copy. */
function trimmed(a: NumericArray, n: number): NumericArray {
  if (n === a.length) return a;
  if (n >= a.length * 0.75) return a.subarray(0, n) as NumericArray;
  return a.slice(0, n) as NumericArray;
}

/**
 * Opens a TFRecord file of tf.train.Examples as a BatchSource ('-' = stdin). With `fields`, every record
 * must have each field's key (extra keys are ignored) with a list of the right kind and length; without,
 * the schema is inferred from the first `batchRows` records (float_list → float32, int64_list → int64,
 * bytes_list → utf8 when every record has one entry, else list<utf8>; one value in each → scalar, a
 * constant k > 1 → fixed<k>, otherwise list) and every record must have exactly those keys. Errors:
 * SchemaMismatchError (naming the record, key and expectation), CorruptDataError (see readTfRecords, and
 * records that are not Examples), UnsupportedError (field types a flat feature cannot carry).
 */
export async function openTfRecordSource(path: string, opts: TfRecordSourceOptions = {}): Promise<BatchSource> {
  const batchRows = opts.batchRows ?? 1024;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new UsageError(`batchRows must be a positive integer, got ${batchRows}`);
  const displayName = opts.name ?? (path === '-' ? '<stdin>' : path);
  const shapes = opts.fields?.map((f) => shapeOf(f, displayName)); // before opening: a bad schema is the caller's error
  const input = await openInput(path, { name: displayName, gzip: opts.gzip ?? 'auto', verify: opts.verify, stdin: opts.stdin });
  const name = input.name;
  const groups = recordGroups(input, opts.verify ?? true);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await groups.return(undefined).catch(() => undefined);
    await input.release();
  };

  let fields: Field[];
  let builders: ColumnBuilder[];
  let strictKeys: boolean;
  let replay: RecordGroup | null = null;
  try {
    if (opts.fields) {
      fields = opts.fields.map((f) => ({ name: f.name, type: f.type }));
      builders = fields.map((f, i) => new ColumnBuilder(f, shapes![i]!, ''));
      strictKeys = false;
    } else {
      // Read the first batch of records and infer the schema from it.
      const records: Uint8Array[] = [];
      const offsets: number[] = [];
      while (records.length < batchRows) {
        const r = await groups.next();
        if (r.done) break;
        records.push(...r.value.records);
        offsets.push(...r.value.offsets);
      }
      // Keep the records past batchRows for the second batch (one group may overshoot).
      replay = { first: 0, records, offsets };
      fields = inferFields(records, offsets, batchRows, name, input.gzip);
      const origin = `, inferred from record${Math.min(records.length, batchRows) > 1 ? `s 0–${Math.min(records.length, batchRows) - 1}` : ' 0'}`;
      builders = fields.map((f) => new ColumnBuilder(f, shapeOf(f, name), origin));
      strictKeys = true;
    }
  } catch (e) {
    await release();
    throw e;
  }

  const scanned = new ScannedExample();
  const slot = new Int32Array(builders.length);
  const where = (i: number, offset: number) => `record ${i} at byte ${offset}${input.gzip ? ' of the decompressed stream' : ''}`;

  const decodeRecord = (bytes: Uint8Array, index: number, offset: number): void => {
    try {
      scanExample(bytes, scanned);
    } catch (e) {
      if (e instanceof WireError) throw new CorruptDataError(`${where(index, offset)}: not a valid tf.train.Example: ${e.message}`, { file: name }, { cause: e });
      throw e;
    }
    slot.fill(-1);
    let hint = 0;
    for (let f = 0; f < scanned.count; f++) {
      const c = matchKey(scanned, f, builders, hint);
      if (c < 0) {
        if (strictKeys) {
          throw new SchemaMismatchError(
            `${where(index, offset)}: feature '${keyString(scanned, f)}' is not in the schema (${builders.map((b) => b.field.name).join(', ')}${builders[0]?.origin ?? ''})`,
            { file: name },
          );
        }
        continue;
      }
      slot[c] = f;
      hint = c + 1;
    }
    for (let c = 0; c < builders.length; c++) {
      const b = builders[c]!;
      const f = slot[c]!;
      if (f < 0) throw new SchemaMismatchError(`${where(index, offset)}: feature '${b.field.name}' is missing (expected a ${b.expectation()})`, { file: name });
      const kind = scanned.kind[f]!;
      const ls = scanned.listStart[f]!;
      const le = scanned.listEnd[f]!;
      let count: number;
      try {
        count = kind === 0 ? 0 : countValues(bytes, kind, ls, le);
      } catch (e) {
        if (e instanceof WireError) throw new CorruptDataError(`${where(index, offset)}: feature '${b.field.name}': not a valid tf.train.Example: ${e.message}`, { file: name }, { cause: e });
        throw e;
      }
      const problem = b.check(kind, count);
      if (problem) throw new SchemaMismatchError(`${where(index, offset)}: feature '${b.field.name}' ${problem}`, { file: name });
      b.setRecord(bytes);
      const bad = b.append(bytes, kind, ls, le, count);
      if (bad) throw new SchemaMismatchError(`${where(index, offset)}: feature '${b.field.name}': ${bad}`, { file: name });
    }
  };

  let started = false;
  async function* batches(): AsyncGenerator<ColumnBatch> {
    if (started) throw new Error('TFRecord source: batches() can be read only once');
    started = true;
    let rows = 0;
    let entryStart = 0;
    let index = 0;
    const begin = () => {
      for (const b of builders) b.begin(batchRows);
      rows = 0;
    };
    const finish = (): ColumnBatch => {
      const batch = { entryStart, entryStop: entryStart + rows, columns: builders.map((b) => ({ name: b.field.name, data: b.finish() })) };
      entryStart += rows;
      return batch;
    };
    try {
      begin();
      const sources: AsyncIterable<RecordGroup> | Iterable<RecordGroup> = replay ? [replay] : [];
      replay = null;
      for (const src of [sources, groups]) {
        for await (const g of src as AsyncIterable<RecordGroup>) {
          const recs = g.records;
          for (let i = 0; i < recs.length; i++) {
            decodeRecord(recs[i]!, index, g.offsets[i]!);
            index++;
            if (++rows === batchRows) {
              yield finish();
              begin();
            }
          }
        }
      }
      if (rows > 0) yield finish();
    } finally {
      await release();
    }
  }

  return {
    name,
    fields,
    metadata: {},
    rows: undefined,
    batches,
    close: release,
  };
}

/** Index of the builder whose key is feature f's key (trying `hint` first), or -1. */
function matchKey(s: ScannedExample, f: number, builders: ColumnBuilder[], hint: number): number {
  const b = s.bytes;
  const ks = s.keyStart[f]!;
  const len = s.keyEnd[f]! - ks;
  const n = builders.length;
  for (let j = 0; j < n; j++) {
    const c = hint + j < n ? hint + j : hint + j - n;
    const key = builders[c]!.key;
    if (key.length !== len) continue;
    let k = 0;
    while (k < len && key[k] === b[ks + k]) k++;
    if (k === len) return c;
  }
  return -1;
}

/** The schema of the first records (see openTfRecordSource); contradictions among them are errors. */
function inferFields(records: Uint8Array[], offsets: number[], batchRows: number, name: string, gzip: boolean): Field[] {
  const n = Math.min(records.length, batchRows);
  if (n === 0) return [];
  const where = (i: number) => `record ${i} at byte ${offsets[i]}${gzip ? ' of the decompressed stream' : ''}`;
  interface Stat {
    name: string;
    kind: number;
    kindFrom: number;
    min: number;
    max: number;
    seenIn: number;
  }
  const stats: Stat[] = [];
  const byName = new Map<string, Stat>();
  const s = new ScannedExample();
  for (let r = 0; r < n; r++) {
    const bytes = records[r]!;
    try {
      scanExample(bytes, s);
    } catch (e) {
      if (e instanceof WireError) throw new CorruptDataError(`${where(r)}: not a valid tf.train.Example: ${e.message}`, { file: name }, { cause: e });
      throw e;
    }
    // the last occurrence of a key wins, as in protobuf maps
    const last = new Map<string, number>();
    for (let f = 0; f < s.count; f++) last.set(keyString(s, f), f);
    for (const [key, f] of last) {
      let st = byName.get(key);
      if (!st) {
        if (r > 0) throw new SchemaMismatchError(`${where(r)}: feature '${key}' does not appear in record 0 (inferring the schema from records 0–${n - 1})`, { file: name });
        st = { name: key, kind: 0, kindFrom: -1, min: Infinity, max: -Infinity, seenIn: 0 };
        stats.push(st);
        byName.set(key, st);
      }
      const kind = s.kind[f]!;
      let count: number;
      try {
        count = kind === 0 ? 0 : countValues(bytes, kind, s.listStart[f]!, s.listEnd[f]!);
      } catch (e) {
        if (e instanceof WireError) throw new CorruptDataError(`${where(r)}: feature '${key}': not a valid tf.train.Example: ${e.message}`, { file: name }, { cause: e });
        throw e;
      }
      if (kind !== 0 && !(count === 0 && st.kind !== 0)) {
        if (st.kind === 0) {
          st.kind = kind;
          st.kindFrom = r;
        } else if (st.kind !== kind) {
          throw new SchemaMismatchError(
            `${where(r)}: feature '${key}' is a ${LIST_NAMES[kind]}, record ${st.kindFrom} has a ${LIST_NAMES[st.kind]} (inferring the schema from records 0–${n - 1})`,
            { file: name },
          );
        }
      }
      st.min = Math.min(st.min, count);
      st.max = Math.max(st.max, count);
      st.seenIn++;
    }
    if (last.size !== stats.length) {
      const missing = stats.find((st) => !last.has(st.name))!;
      throw new SchemaMismatchError(`${where(r)}: feature '${missing.name}' is missing (record 0 has it; inferring the schema from records 0–${n - 1})`, { file: name });
    }
  }
  return stats.map((st): Field => {
    const kind = st.kind || KIND_FLOAT;
    const leaf: ColumnType = kind === KIND_BYTES ? { kind: 'utf8' } : { kind: 'primitive', dtype: kind === KIND_FLOAT ? 'float32' : 'int64' };
    let type: ColumnType;
    if (st.min === 1 && st.max === 1) type = leaf;
    else if (kind !== KIND_BYTES && st.min === st.max && st.min > 1) type = { kind: 'fixed', size: st.min, child: leaf };
    else type = { kind: 'list', child: leaf };
    return { name: st.name, type };
  });
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
