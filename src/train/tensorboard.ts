/**
 * TensorBoard event files, written without TensorFlow or a protobuf runtime, so that
 * `tensorboard --logdir DIR` shows the training curves of `hep-ml train`.
 *
 * An event file is a TFRecord file (framing as in ../convert/tfrecord-example.ts: uint64le length | masked
 * crc32c of the length | payload | masked crc32c of the payload) whose records are serialized
 * `tensorflow.Event` messages. The messages used, with the field numbers of tensorflow/core/util/event.proto,
 * tensorflow/core/framework/summary.proto, tensor.proto, tensor_shape.proto and types.proto (the same as
 * tensorboard/compat/proto/*; test/fixtures/tensorflow/{event,summary}.proto have the text):
 *
 *   Event            { double wall_time = 1; int64 step = 2;
 *                      oneof what { string file_version = 3; bytes graph_def = 4; Summary summary = 5; ... } }
 *   Summary          { repeated Value value = 1; }
 *   Summary.Value    { string node_name = 7; string tag = 1; SummaryMetadata metadata = 9;
 *                      oneof value { float simple_value = 2; ...; TensorProto tensor = 8; } }
 *   SummaryMetadata  { PluginData plugin_data = 1; string display_name = 2; string summary_description = 3;
 *                      DataClass data_class = 4; }          PluginData { string plugin_name = 1; bytes content = 2; }
 *   TensorProto      { DataType dtype = 1; TensorShapeProto tensor_shape = 2; ...; repeated bytes string_val = 8; }
 *   DataType DT_STRING = 7;  DataClass DATA_CLASS_TENSOR = 2.
 *
 * What is written:
 *  - the first record of every file: Event{wall_time, file_version: "brain.Event:2"} (as TensorFlow's and
 *    TensorBoard's writers do);
 *  - a scalar: Event{wall_time, step, summary{value{tag, simple_value}}}, the legacy form that TensorBoard's
 *    data_compat.migrate_value turns into a scalars-plugin value (float32, so the value is rounded to float32);
 *  - a text: Event{wall_time, step, summary{value{tag, metadata{plugin_data{plugin_name: "text"}, data_class:
 *    DATA_CLASS_TENSOR}, tensor{dtype: DT_STRING, tensor_shape{} (rank 0), string_val: [utf8]}}}}, what
 *    tensorboard.plugins.text.summary_v2.text_pb writes, plus the data class that TensorBoard's
 *    dataclass_compat would give it (TextPluginData{version: 0} serializes to no bytes, so content is empty).
 * Proto3 rules: fields with default values (wall_time 0, step 0) are left out; a oneof member is always written.
 *
 * File names are those of TensorBoard's Python EventFileWriter:
 * `events.out.tfevents.<10-digit unix seconds>.<hostname>.<pid>.<counter><suffix>`. A new file is created by
 * every `EventFileWriter.open` (never an existing one: creation is exclusive, and the counter moves on if the
 * name is taken), so a resumed run gets a file of its own next to the old ones and TensorBoard, which reads every
 * event file of a directory, shows both; the caller continues the steps (see `lastEventStep`).
 */
import { mkdir, open as fsOpen, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { FRAME_HEADER, FRAME_OVERHEAD, frameRecord, maskedCrc32c, readU32 } from '../convert/tfrecord-example.js';
import { CorruptDataError, IoError } from '../errors.js';

/** The file_version of the first record of every event file. */
export const EVENT_FILE_VERSION = 'brain.Event:2';

/** The part of every event file's name before the timestamp. */
export const EVENT_FILE_PREFIX = 'events.out.tfevents.';

/** Options of {@link EventFileWriter.open}. */
export interface EventFileWriterOptions {
  /** Appended to the file name (TensorBoard's `filename_suffix`), e.g. '.v2'. Must not contain '/' or '\\'. */
  filenameSuffix?: string;
  /** The clock, in milliseconds since the Unix epoch (default Date.now). Wall times are written in seconds. */
  now?: () => number;
  /** The host name in the file name (default os.hostname()). */
  hostname?: string;
  /** fsync the file at every flush (default false). */
  fsync?: boolean;
}

/** One decoded Event (see {@link decodeEventFile}). */
export interface DecodedEvent {
  /** Seconds since the Unix epoch. */
  wallTime: number;
  /** The step; exact when it is a safe integer (int64 beyond ±2^53 loses precision). */
  step: number;
  /** Set on the file_version event (the first of a file). */
  fileVersion?: string;
  /** The simple_value values of the event's summary, in order. */
  scalars: { tag: string; value: number }[];
  /** The rank-0 DT_STRING tensor values of the event's summary (text summaries), in order. */
  texts: { tag: string; value: string }[];
}

/** Options of {@link decodeEventFile}. */
export interface DecodeEventFileOptions {
  /**
   * Ignore a truncated last record, as TensorBoard does for a file that is being written or whose writer died
   * mid-record (default false: a truncated record is a CorruptDataError). A CRC mismatch always throws.
   */
  allowTruncatedTail?: boolean;
  /** The name errors give the input (default 'event file'). */
  name?: string;
}

/** Per-process counter in file names (TensorBoard's _global_uid). */
let fileCounter = 0;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Appends TensorBoard events to a new event file in a log directory. Summaries are buffered in memory and
 * written by {@link flush} (whole records at a time, so between flushes the file is always a valid TFRecord
 * file) and by {@link close}. Not safe for several processes on one file, which never happens: each writer
 * creates its own file.
 */
export class EventFileWriter {
  /** The event file's path. */
  readonly path: string;
  private pending: Buffer[] = [];
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    path: string,
    private readonly handle: FileHandle,
    private readonly now: () => number,
    private readonly fsync: boolean,
  ) {
    this.path = path;
  }

  /**
   * Creates `logdir` (recursively) and a new event file in it, and writes (and flushes) its file_version
   * record. Errors: IoError when the directory or file cannot be created.
   */
  static async open(logdir: string, options: EventFileWriterOptions = {}): Promise<EventFileWriter> {
    const suffix = options.filenameSuffix ?? '';
    if (/[/\\]/.test(suffix)) throw new TypeError(`filenameSuffix must not contain a path separator: '${suffix}'`);
    const now = options.now ?? Date.now;
    const host = (options.hostname ?? safeHostname()).replace(/[/\\]/g, '_');
    try {
      await mkdir(logdir, { recursive: true });
    } catch (e) {
      throw new IoError(`cannot create the TensorBoard log directory: ${errMessage(e)}`, { file: logdir }, { cause: e });
    }
    const seconds = Math.max(0, Math.floor(now() / 1000));
    let handle: FileHandle | undefined;
    let path = '';
    for (let attempt = 0; handle === undefined; attempt++) {
      path = join(logdir, `${EVENT_FILE_PREFIX}${String(seconds).padStart(10, '0')}.${host}.${process.pid}.${fileCounter++}${suffix}`);
      try {
        handle = await fsOpen(path, 'ax'); // append, and fail when the file exists
      } catch (e) {
        if ((e as { code?: unknown }).code === 'EEXIST' && attempt < 1000) continue;
        throw new IoError(`cannot create the event file: ${errMessage(e)}`, { file: path }, { cause: e });
      }
    }
    const w = new EventFileWriter(path, handle, now, options.fsync ?? false);
    w.pending.push(frameRecord(encodeFileVersionEvent(now() / 1000)));
    try {
      await w.flush();
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    return w;
  }

  /**
   * Buffers a scalar (`simple_value`, float32) at `step`. `wallTime` is in seconds (default: now).
   * Throws TypeError/RangeError on an empty tag or a step that is not an integer in the int64 range.
   */
  scalar(tag: string, value: number, step: number | bigint, wallTime?: number): void {
    this.scalars({ [tag]: value }, step, wallTime);
  }

  /**
   * Buffers several scalars in one event (one Summary with a value per entry, in insertion order), e.g.
   * `{ loss, accuracy, val_loss }` at the end of an epoch. TensorBoard shows them as separate series.
   * No values: nothing is written.
   */
  scalars(values: Record<string, number> | Iterable<readonly [string, number]>, step: number | bigint, wallTime?: number): void {
    this.checkOpen();
    const entries = Symbol.iterator in values ? [...(values as Iterable<readonly [string, number]>)] : Object.entries(values);
    if (entries.length === 0) return;
    const summary = new ProtoWriter();
    for (const [tag, value] of entries) {
      checkTag(tag);
      if (typeof value !== 'number') throw new TypeError(`scalar '${tag}': value must be a number, got ${typeof value}`);
      const v = new ProtoWriter();
      v.string(1, tag);
      v.float(2, value);
      summary.message(1, v);
    }
    this.pushEvent(summary, step, wallTime);
  }

  /**
   * Buffers a text summary (TensorBoard's text plugin; the string is shown as Markdown) at `step`, e.g. the
   * run's parameters. `wallTime` is in seconds (default: now).
   */
  text(tag: string, value: string, step: number | bigint, wallTime?: number): void {
    this.checkOpen();
    checkTag(tag);
    const plugin = new ProtoWriter();
    plugin.string(1, 'text'); // plugin_name; content = TextPluginData{version: 0} = no bytes
    const metadata = new ProtoWriter();
    metadata.message(1, plugin);
    metadata.varint(4, 2); // data_class = DATA_CLASS_TENSOR
    const tensor = new ProtoWriter();
    tensor.varint(1, 7); // dtype = DT_STRING
    tensor.message(2, new ProtoWriter()); // tensor_shape {} : rank 0
    tensor.bytes(8, utf8.encode(value)); // string_val
    const v = new ProtoWriter();
    v.string(1, tag);
    v.message(8, tensor);
    v.message(9, metadata);
    const summary = new ProtoWriter();
    summary.message(1, v);
    this.pushEvent(summary, step, wallTime);
  }

  /** Number of records buffered and not yet written. */
  get pendingRecords(): number {
    return this.pending.length;
  }

  /**
   * Appends the buffered records to the file (fsync when opened with `fsync: true`). Flushes are
   * serialized: one that starts while another is writing waits for it. Errors: IoError.
   */
  flush(): Promise<void> {
    const run = this.writing.then(() => this.writePending());
    // A failed flush must not poison later ones (their own records are still pending and retried).
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Flushes and closes the file. Further summaries throw; calling close again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return this.writing;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      this.writing = this.writing.then(() => this.handle.close()).catch(() => undefined);
      await this.writing;
    }
  }

  private async writePending(): Promise<void> {
    if (this.pending.length === 0) return;
    const records = this.pending;
    this.pending = [];
    const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
    let off = 0;
    try {
      while (off < buf.length) {
        const { bytesWritten } = await this.handle.write(buf, off, buf.length - off, null);
        off += bytesWritten;
      }
      if (this.fsync) await this.handle.sync();
    } catch (e) {
      // Keep what was not written at all for a later flush. A partly written record cannot be taken back.
      if (off === 0) this.pending = records.concat(this.pending);
      throw new IoError(`cannot write the event file: ${errMessage(e)}`, { file: this.path }, { cause: e });
    }
  }

  private pushEvent(summary: ProtoWriter, step: number | bigint, wallTime: number | undefined): void {
    const s = toInt64(step);
    const t = wallTime ?? this.now() / 1000;
    if (typeof t !== 'number' || !Number.isFinite(t)) throw new TypeError(`wallTime must be a finite number of seconds, got ${String(t)}`);
    const ev = new ProtoWriter();
    ev.double(1, t);
    ev.int64(2, s);
    ev.message(5, summary);
    this.pending.push(frameRecord(ev.finish()));
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`the event file writer of ${this.path} is closed`);
  }
}

/**
 * Decodes an event file (or the bytes of one, e.g. read between flushes): every record's two CRCs are checked
 * and every Event is decoded. Unknown fields and other summary kinds are skipped (their events appear with
 * empty `scalars`/`texts`). Errors: CorruptDataError naming the record and its byte offset.
 */
export function decodeEventFile(bytes: Uint8Array, options: DecodeEventFileOptions = {}): DecodedEvent[] {
  const name = options.name ?? 'event file';
  const out: DecodedEvent[] = [];
  let p = 0;
  for (let i = 0; p < bytes.length; i++) {
    const where = `${name}: record ${i} at byte ${p}`;
    const left = bytes.length - p;
    if (left < FRAME_HEADER) {
      if (options.allowTruncatedTail) break;
      throw new CorruptDataError(`${where}: truncated record header (${left} of ${FRAME_HEADER} bytes)`);
    }
    if (readU32(bytes, p + 8) !== maskedCrc32c(bytes.subarray(p, p + 8))) throw new CorruptDataError(`${where}: length CRC mismatch`);
    const len = readU32(bytes, p) + readU32(bytes, p + 4) * 0x100000000;
    if (left < len + FRAME_OVERHEAD) {
      if (options.allowTruncatedTail) break;
      throw new CorruptDataError(`${where}: truncated record (${left} bytes left for a ${len + FRAME_OVERHEAD}-byte record)`);
    }
    const payload = bytes.subarray(p + FRAME_HEADER, p + FRAME_HEADER + len);
    if (readU32(bytes, p + FRAME_HEADER + len) !== maskedCrc32c(payload)) throw new CorruptDataError(`${where}: data CRC mismatch`);
    try {
      out.push(decodeEvent(payload));
    } catch (e) {
      if (e instanceof WireError) throw new CorruptDataError(`${where}: not a valid Event: ${e.message}`);
      throw e;
    }
    p += len + FRAME_OVERHEAD;
  }
  return out;
}

/** True for the names TensorBoard reads as event files (they contain 'tfevents'). */
export function isEventFileName(name: string): boolean {
  return name.includes('tfevents');
}

/**
 * The largest step of any event in the event files of `logdir` (undefined when there are none, or the
 * directory does not exist), for resuming a run: the new writer continues at the next step. A truncated last
 * record (a writer that died mid-write) is ignored; a CRC mismatch is a CorruptDataError.
 * Only summary events count (the file_version event carries no step).
 */
export async function lastEventStep(logdir: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = await readdir(logdir);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new IoError(`cannot list the TensorBoard log directory: ${errMessage(e)}`, { file: logdir }, { cause: e });
  }
  let last: number | undefined;
  for (const n of names.filter(isEventFileName).sort()) {
    const path = join(logdir, n);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      if ((e as { code?: unknown }).code === 'EISDIR') continue;
      throw new IoError(`cannot read the event file: ${errMessage(e)}`, { file: path }, { cause: e });
    }
    for (const ev of decodeEventFile(bytes, { allowTruncatedTail: true, name: path })) {
      if (ev.fileVersion !== undefined) continue;
      if (last === undefined || ev.step > last) last = ev.step;
    }
  }
  return last;
}

// ---------------------------------------------------------------------------------------------------
// Protobuf encoding (the few wire forms needed)

/** A growable buffer of one message's fields. */
class ProtoWriter {
  private buf = new Uint8Array(64);
  private n = 0;

  private ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }
  private rawVarint(v: bigint | number): void {
    this.ensure(10);
    if (typeof v === 'number' && v < 0x80000000) {
      while (v > 0x7f) {
        this.buf[this.n++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.n++] = v;
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b > 0x7fn) {
      this.buf[this.n++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.n++] = Number(b);
  }
  private key(field: number, wireType: number): void {
    this.rawVarint(field * 8 + wireType);
  }
  /** A varint field (enum, int32 ≥ 0, bool); left out when 0. */
  varint(field: number, v: number): void {
    if (v === 0) return;
    this.key(field, 0);
    this.rawVarint(v);
  }
  /** An int64 field (negative values as 10-byte two's complement varints); left out when 0. */
  int64(field: number, v: bigint): void {
    if (v === 0n) return;
    this.key(field, 0);
    this.rawVarint(v);
  }
  /** A double field; left out when 0 (+0). */
  double(field: number, v: number): void {
    if (v === 0 && !Object.is(v, -0)) return;
    this.key(field, 1);
    this.ensure(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat64(this.n, v, true);
    this.n += 8;
  }
  /** A float field, always written (it is a oneof member here). */
  float(field: number, v: number): void {
    this.key(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.n, v, true);
    this.n += 4;
  }
  /** A bytes field, always written. */
  bytes(field: number, b: Uint8Array): void {
    this.key(field, 2);
    this.rawVarint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  /** A string field, always written. */
  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }
  /** A sub-message field, always written (an empty message marks the field as set). */
  message(field: number, m: ProtoWriter): void {
    this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

function encodeFileVersionEvent(wallTime: number): Uint8Array {
  const ev = new ProtoWriter();
  ev.double(1, wallTime);
  ev.string(3, EVENT_FILE_VERSION);
  return ev.finish();
}

function toInt64(step: number | bigint): bigint {
  if (typeof step === 'number') {
    if (!Number.isSafeInteger(step)) throw new RangeError(`step must be a safe integer (or a bigint), got ${step}`);
    return BigInt(step);
  }
  if (typeof step !== 'bigint') throw new TypeError(`step must be a number or a bigint, got ${typeof step}`);
  if (step < INT64_MIN || step > INT64_MAX) throw new RangeError(`step ${step} is outside the int64 range`);
  return step;
}

function checkTag(tag: string): void {
  if (typeof tag !== 'string' || tag.length === 0) throw new TypeError('a summary tag must be a non-empty string');
}

// ---------------------------------------------------------------------------------------------------
// Protobuf decoding

class WireError extends Error {}

class Reader {
  constructor(
    readonly b: Uint8Array,
    public p: number,
    readonly end: number,
  ) {}
  get more(): boolean {
    return this.p < this.end;
  }
  /** A varint as a bigint (up to 64 bits). */
  varint64(): bigint {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (this.p >= this.end) throw new WireError('truncated varint');
      if (shift > 63n) throw new WireError('varint longer than 10 bytes');
      const x = this.b[this.p++]!;
      v |= BigInt(x & 0x7f) << shift;
      if (x < 0x80) return BigInt.asUintN(64, v);
    }
  }
  /** A varint that must fit a safe integer (keys, lengths, enums). */
  varint(): number {
    let v = 0;
    for (let mul = 1; ; mul *= 128) {
      if (this.p >= this.end) throw new WireError('truncated varint');
      const x = this.b[this.p++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) break;
      if (mul > 2 ** 42) throw new WireError('varint too large for a length, key or enum');
    }
    return v;
  }
  /** A length-delimited field's bounds. */
  sub(): Reader {
    const n = this.varint();
    if (n > this.end - this.p) throw new WireError(`length ${n} runs past the end of its message`);
    const r = new Reader(this.b, this.p, this.p + n);
    this.p += n;
    return r;
  }
  fixed(n: 4 | 8): DataView {
    if (this.end - this.p < n) throw new WireError(`truncated fixed${n * 8}`);
    const dv = new DataView(this.b.buffer, this.b.byteOffset + this.p, n);
    this.p += n;
    return dv;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint64();
    else if (wireType === 1) this.fixed(8);
    else if (wireType === 2) this.sub();
    else if (wireType === 5) this.fixed(4);
    else throw new WireError(`unsupported wire type ${wireType}`);
  }
  text(): string {
    const r = this.sub();
    return utf8Decoder.decode(r.b.subarray(r.p, r.end));
  }
}

function decodeEvent(payload: Uint8Array): DecodedEvent {
  const ev: DecodedEvent = { wallTime: 0, step: 0, scalars: [], texts: [] };
  const r = new Reader(payload, 0, payload.length);
  while (r.more) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wt = key & 7;
    if (field === 1 && wt === 1) ev.wallTime = r.fixed(8).getFloat64(0, true);
    else if (field === 2 && wt === 0) ev.step = Number(BigInt.asIntN(64, r.varint64()));
    else if (field === 3 && wt === 2) ev.fileVersion = r.text();
    else if (field === 5 && wt === 2) decodeSummary(r.sub(), ev);
    else r.skip(wt);
  }
  return ev;
}

function decodeSummary(r: Reader, ev: DecodedEvent): void {
  while (r.more) {
    const key = r.varint();
    if (key === 0x0a) decodeValue(r.sub(), ev);
    else r.skip(key & 7);
  }
}

function decodeValue(r: Reader, ev: DecodedEvent): void {
  let tag = '';
  let simple: number | undefined;
  let text: string | undefined;
  while (r.more) {
    const key = r.varint();
    if (key === 0x0a) tag = r.text();
    else if (key === 0x15) {
      simple = r.fixed(4).getFloat32(0, true);
      text = undefined; // oneof: the last member wins
    } else if (key === 0x42) {
      text = decodeStringScalar(r.sub());
      simple = undefined;
    } else r.skip(key & 7);
  }
  if (simple !== undefined) ev.scalars.push({ tag, value: simple });
  else if (text !== undefined) ev.texts.push({ tag, value: text });
}

/** The value of a rank-0 DT_STRING TensorProto, or undefined for any other tensor. */
function decodeStringScalar(r: Reader): string | undefined {
  let dtype = 0;
  let rank = 0;
  let value: string | undefined;
  let count = 0;
  while (r.more) {
    const key = r.varint();
    if (key === 0x08) dtype = r.varint();
    else if (key === 0x12) {
      const s = r.sub();
      while (s.more) {
        const k = s.varint();
        if (k === 0x12) rank++;
        s.skip(k & 7);
      }
    } else if (key === 0x42) {
      value = r.text();
      count++;
    } else r.skip(key & 7);
  }
  return dtype === 7 && rank === 0 && count === 1 ? value : undefined;
}

// ---------------------------------------------------------------------------------------------------

function safeHostname(): string {
  try {
    return osHostname() || 'localhost';
  } catch {
    return 'localhost';
  }
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
