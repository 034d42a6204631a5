/**
 * tf.train.Example on the wire, without protobuf runtime: a size-first encoder that writes one record per
 * row of a ColumnBatch straight from its typed arrays, and a scanner/decoder that reads packed lists
 * straight into typed arrays. No per-value JS objects on either path.
 *
 * Messages (tensorflow/core/example/{example,feature}.proto; test/fixtures/tensorflow/ has the text):
 *
 *   Example      { Features features = 1; }
 *   Features     { map<string, Feature> feature = 1; }       // on the wire: repeated MapEntry{key=1, value=2}
 *   Feature      { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *   BytesList    { repeated bytes value = 1; }
 *   FloatList    { repeated float value = 1 [packed = true]; }
 *   Int64List    { repeated int64 value = 1 [packed = true]; }
 *
 * Column → Feature (the map entries follow the column order):
 *   float32/float64, fixed/list of them (any nesting, row-major)   → float_list (float64 cast to float32)
 *   bool, int8..int64, uint8..uint64, fixed/list of them            → int64_list (two's complement varints,
 *                                                                     as protobuf writes int64; uint64 ≥ 2^63
 *                                                                     reads back as a negative int64)
 *   utf8 → bytes_list with one entry; list/fixed of utf8 → one entry per string.
 * An empty list is written as a Feature whose list message is empty (kind set, no values), as protobuf does.
 *
 * TFRecord framing of one record: uint64le length | uint32le masked_crc32c(length) | data | uint32le
 * masked_crc32c(data), mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 mod 2^32.
 */
import { crc32c } from '@node-rs/crc32';
import { endianness } from 'node:os';
import type { ColumnBatch, ColumnData, ColumnType, DType, NumericArray } from '../root/columns.js';
import { columnType, formatColumnType } from '../root/columns.js';
import { CorruptDataError, SchemaMismatchError } from '../errors.js';
import type { Field } from './types.js';

// ---------------------------------------------------------------------------------------------------
// CRC and framing

/** Bytes of framing around each record's payload: 8 (length) + 4 (length CRC) + 4 (data CRC). */
export const FRAME_OVERHEAD = 16;
export const FRAME_HEADER = 12;

const MASK_DELTA = 0xa282ead8;

/** TensorFlow's crc32c::Mask: rotate right by 15 bits, add 0xa282ead8. */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

/** The inverse of maskCrc. */
export function unmaskCrc(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc(crc32c(bytes));
}

/** Writes the 12-byte frame header for a payload of `len` bytes at out[pos]; returns pos + 12. */
function writeFrameHeader(out: Uint8Array, pos: number, len: number): number {
  out[pos] = len & 0xff;
  out[pos + 1] = (len >>> 8) & 0xff;
  out[pos + 2] = (len >>> 16) & 0xff;
  out[pos + 3] = (len >>> 24) & 0xff;
  const hi = Math.floor(len / 0x100000000);
  out[pos + 4] = hi & 0xff;
  out[pos + 5] = (hi >>> 8) & 0xff;
  out[pos + 6] = (hi >>> 16) & 0xff;
  out[pos + 7] = (hi >>> 24) & 0xff;
  writeU32(out, pos + 8, maskedCrc32c(out.subarray(pos, pos + 8)));
  return pos + FRAME_HEADER;
}

function writeU32(out: Uint8Array, pos: number, v: number): void {
  out[pos] = v & 0xff;
  out[pos + 1] = (v >>> 8) & 0xff;
  out[pos + 2] = (v >>> 16) & 0xff;
  out[pos + 3] = (v >>> 24) & 0xff;
}

export function readU32(b: Uint8Array, pos: number): number {
  return (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16) | (b[pos + 3]! << 24)) >>> 0;
}

/** One framed TFRecord around `payload` (a copy). */
export function frameRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + FRAME_OVERHEAD);
  writeFrameHeader(out, 0, payload.length);
  out.set(payload, FRAME_HEADER);
  writeU32(out, FRAME_HEADER + payload.length, maskedCrc32c(payload));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Varints

/** Protobuf varint size of an unsigned 32-bit value. */
function vsize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Size of the 64-bit value hi:lo (both uint32). */
function vsize64(lo: number, hi: number): number {
  if (hi === 0) return vsize(lo);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Writes an unsigned varint < 2^32 (a JS number). */
function writeVarint(out: Uint8Array, p: number, v: number): number {
  while (v > 0x7f) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

/** Writes the 64-bit varint hi:lo (both uint32). */
function writeVarint64(out: Uint8Array, p: number, lo: number, hi: number): number {
  while (hi !== 0) {
    out[p++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    out[p++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  out[p++] = lo;
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Encoder

/** Feature kinds, numbered as the Feature.kind oneof fields. */
export const KIND_BYTES = 1;
export const KIND_FLOAT = 2;
export const KIND_INT64 = 3;
export type KindCode = typeof KIND_BYTES | typeof KIND_FLOAT | typeof KIND_INT64;
export type FeatureKind = 'float' | 'int64' | 'bytes';
export const KIND_NAMES: Record<number, FeatureKind> = { [KIND_BYTES]: 'bytes', [KIND_FLOAT]: 'float', [KIND_INT64]: 'int64' };

const LITTLE_ENDIAN = endianness() === 'LE';

/** The innermost type under any fixed/list layers. */
export function leafType(t: ColumnType): Extract<ColumnType, { kind: 'primitive' } | { kind: 'utf8' }> {
  while (t.kind === 'fixed' || t.kind === 'list') t = t.child;
  return t;
}

/** The Feature kind a column of type `t` is written as. */
export function featureKindOf(t: ColumnType): KindCode {
  const leaf = leafType(t);
  if (leaf.kind === 'utf8') return KIND_BYTES;
  return leaf.dtype === 'float32' || leaf.dtype === 'float64' ? KIND_FLOAT : KIND_INT64;
}

const enum Mode {
  F32,
  F64,
  /** int8..uint32 as JS numbers (negative → 10-byte varint) */
  INT,
  /** int64/uint64 through a Uint32Array view (lo, hi) */
  INT64,
  BOOL,
  UTF8,
}

interface ColPlan {
  readonly name: string;
  readonly type: ColumnType;
  readonly typeText: string;
  readonly key: Uint8Array;
  /** Constant part of the map entry: 1 + vsize(keyLen) + keyLen (the key field) + 1 (value tag). */
  readonly keyPart: number;
  /** Tag byte of the Feature oneof field (kind << 3 | 2). */
  readonly featureTag: number;
  readonly mode: Mode;
  // bound per batch:
  /** Per layer from the top: a list's offsets, or null for a fixed layer. */
  layerOffsets: (Int32Array | null)[];
  /** Per layer: the fixed size (unused for list layers). */
  layerSizes: number[];
  values: NumericArray | null;
  bytes: Uint8Array | null;
  u8: Uint8Array | null;
  u32: Uint32Array | null;
  strOffsets: Int32Array | null;
}

/**
 * Encodes rows of ColumnBatches with the schema `fields` as tf.train.Example payloads (optionally framed).
 * Use: bind(batch), then for each row exampleSize(row) (or recordSize) immediately followed by
 * encodeInto(row, ...) (or encodeRecordInto): the sizes computed by the first are reused by the second.
 */
export class ExampleEncoder {
  readonly fields: readonly Field[];
  private readonly cols: ColPlan[];
  private bound: ColumnBatch | null = null;
  /** The column data bound, to notice a batch object reused with new arrays. */
  private boundData: ColumnData[] = [];
  private rows = 0;
  // per-column scratch of the last sized row
  private readonly start: Int32Array;
  private readonly stop: Int32Array;
  private readonly payloadLen: Float64Array;
  private readonly listLen: Float64Array;
  private readonly featLen: Float64Array;
  private readonly entryLen: Float64Array;
  private featuresLen = 0;
  private exampleLen = 0;
  private sizedRow = -1;
  private dv: DataView | null = null;

  constructor(fields: readonly Field[]) {
    this.fields = fields;
    const enc = new TextEncoder();
    const seen = new Set<string>();
    this.cols = fields.map((f) => {
      if (seen.has(f.name)) throw new SchemaMismatchError(`duplicate column name '${f.name}': TFRecord feature keys must be unique`);
      seen.add(f.name);
      const key = enc.encode(f.name);
      const leaf = leafType(f.type);
      let mode: Mode;
      if (leaf.kind === 'utf8') mode = Mode.UTF8;
      else if (leaf.dtype === 'float32') mode = Mode.F32;
      else if (leaf.dtype === 'float64') mode = Mode.F64;
      else if (leaf.dtype === 'int64' || leaf.dtype === 'uint64') mode = Mode.INT64;
      else if (leaf.dtype === 'bool') mode = Mode.BOOL;
      else mode = Mode.INT;
      return {
        name: f.name,
        type: f.type,
        typeText: formatColumnType(f.type),
        key,
        keyPart: 1 + vsize(key.length) + key.length + 1,
        featureTag: (featureKindOf(f.type) << 3) | 2,
        mode,
        layerOffsets: [],
        layerSizes: [],
        values: null,
        bytes: null,
        u8: null,
        u32: null,
        strOffsets: null,
      };
    });
    const n = this.cols.length;
    this.start = new Int32Array(n);
    this.stop = new Int32Array(n);
    this.payloadLen = new Float64Array(n);
    this.listLen = new Float64Array(n);
    this.featLen = new Float64Array(n);
    this.entryLen = new Float64Array(n);
  }

  /** Checks `batch` against the schema and prepares its columns; returns its row count. */
  bind(batch: ColumnBatch): number {
    const cols = batch.columns;
    if (batch === this.bound && cols.length === this.boundData.length && cols.every((c, i) => c.data === this.boundData[i])) return this.rows;
    if (cols.length !== this.cols.length) {
      throw new SchemaMismatchError(
        `batch has ${cols.length} columns (${cols.map((c) => c.name).join(', ')}), the TFRecord schema ${this.cols.length} (${this.cols.map((c) => c.name).join(', ')})`,
      );
    }
    let rows = -1;
    for (let c = 0; c < cols.length; c++) {
      const plan = this.cols[c]!;
      const col = cols[c]!;
      if (col.name !== plan.name) throw new SchemaMismatchError(`batch column ${c} is '${col.name}', the TFRecord schema has '${plan.name}' there`);
      const t = formatColumnType(columnType(col.data));
      if (t !== plan.typeText) throw new SchemaMismatchError(`column '${col.name}' is ${t} in this batch, ${plan.typeText} in the TFRecord schema`);
      const r = rowsOf(col.data);
      if (rows === -1) rows = r;
      else if (r !== rows) throw new SchemaMismatchError(`column '${col.name}' has ${r} rows, column '${cols[0]!.name}' ${rows}`);
      plan.layerOffsets = [];
      plan.layerSizes = [];
      let d: ColumnData = col.data;
      while (d.kind === 'fixed' || d.kind === 'list') {
        if (d.kind === 'fixed') {
          plan.layerOffsets.push(null);
          plan.layerSizes.push(d.size);
        } else {
          plan.layerOffsets.push(d.offsets);
          plan.layerSizes.push(0);
        }
        d = d.child;
      }
      if (d.kind === 'utf8') {
        plan.strOffsets = d.offsets;
        plan.bytes = d.bytes;
        plan.values = null;
      } else {
        plan.values = d.values;
        plan.strOffsets = null;
        plan.bytes = null;
        const v = d.values;
        plan.u8 = plan.mode === Mode.F32 ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : null;
        plan.u32 = plan.mode === Mode.INT64 ? new Uint32Array(v.buffer, v.byteOffset, v.length * 2) : null;
      }
    }
    this.bound = batch;
    this.boundData = cols.map((c) => c.data);
    // A batch without columns has no arrays to count: its entry range says how many rows.
    this.rows = rows === -1 ? Math.max(0, batch.entryStop - batch.entryStart) : rows;
    this.sizedRow = -1;
    return this.rows;
  }

  /** Size in bytes of row `row`'s Example payload (caches the per-column sizes for encodeInto). */
  exampleSize(row: number): number {
    if (row < 0 || row >= this.rows) throw new RangeError(`row ${row} outside the bound batch (${this.rows} rows)`);
    const cols = this.cols;
    let features = 0;
    for (let c = 0; c < cols.length; c++) {
      const plan = cols[c]!;
      let s = row;
      let e = row + 1;
      const lo = plan.layerOffsets;
      for (let l = 0; l < lo.length; l++) {
        const off = lo[l];
        if (off) {
          s = off[s]!;
          e = off[e]!;
        } else {
          const k = plan.layerSizes[l]!;
          s *= k;
          e *= k;
        }
      }
      this.start[c] = s;
      this.stop[c] = e;
      let list = 0;
      const n = e - s;
      switch (plan.mode) {
        case Mode.F32:
        case Mode.F64:
          if (n > 0) list = 1 + vsize(4 * n) + 4 * n;
          break;
        case Mode.BOOL:
          if (n > 0) list = 1 + vsize(n) + n;
          break;
        case Mode.INT: {
          const v = plan.values as Int32Array; // any ≤32-bit integer array
          let payload = 0;
          for (let i = s; i < e; i++) {
            const x = v[i]!;
            payload += x < 0 ? 10 : vsize(x);
          }
          if (n > 0) list = 1 + vsize(payload) + payload;
          this.payloadLen[c] = payload;
          break;
        }
        case Mode.INT64: {
          const u = plan.u32!;
          let payload = 0;
          for (let i = 2 * s, end = 2 * e; i < end; i += 2) payload += vsize64(u[i]!, u[i + 1]!);
          if (n > 0) list = 1 + vsize(payload) + payload;
          this.payloadLen[c] = payload;
          break;
        }
        case Mode.UTF8: {
          const so = plan.strOffsets!;
          for (let i = s; i < e; i++) {
            const len = so[i + 1]! - so[i]!;
            list += 1 + vsize(len) + len;
          }
          break;
        }
      }
      const feat = 1 + vsize(list) + list;
      const entry = plan.keyPart + vsize(feat) + feat;
      this.listLen[c] = list;
      this.featLen[c] = feat;
      this.entryLen[c] = entry;
      features += 1 + vsize(entry) + entry;
    }
    this.featuresLen = features;
    this.exampleLen = 1 + vsize(features) + features;
    this.sizedRow = row;
    return this.exampleLen;
  }

  /** Size of row `row` as a framed TFRecord. */
  recordSize(row: number): number {
    return this.exampleSize(row) + FRAME_OVERHEAD;
  }

  /** Writes row `row`'s Example at out[pos..]; returns the end position. Sizes the row first if needed. */
  encodeInto(row: number, out: Uint8Array, pos: number): number {
    if (row !== this.sizedRow) this.exampleSize(row);
    if (pos + this.exampleLen > out.length) throw new RangeError(`encodeInto: needs ${this.exampleLen} bytes at ${pos}, buffer has ${out.length}`);
    let p = pos;
    out[p++] = 0x0a; // Example.features
    p = writeVarint(out, p, this.featuresLen);
    const cols = this.cols;
    for (let c = 0; c < cols.length; c++) {
      const plan = cols[c]!;
      const s = this.start[c]!;
      const e = this.stop[c]!;
      const n = e - s;
      const list = this.listLen[c]!;
      out[p++] = 0x0a; // Features.feature (map entry)
      p = writeVarint(out, p, this.entryLen[c]!);
      out[p++] = 0x0a; // MapEntry.key
      p = writeVarint(out, p, plan.key.length);
      out.set(plan.key, p);
      p += plan.key.length;
      out[p++] = 0x12; // MapEntry.value
      p = writeVarint(out, p, this.featLen[c]!);
      out[p++] = plan.featureTag; // Feature.{bytes,float,int64}_list
      p = writeVarint(out, p, list);
      if (list === 0) continue;
      switch (plan.mode) {
        case Mode.F32: {
          out[p++] = 0x0a; // packed value
          p = writeVarint(out, p, 4 * n);
          if (LITTLE_ENDIAN) {
            out.set(plan.u8!.subarray(4 * s, 4 * e), p);
            p += 4 * n;
          } else {
            const dv = this.viewOf(out);
            const v = plan.values as Float32Array;
            for (let i = s; i < e; i++, p += 4) dv.setFloat32(p, v[i]!, true);
          }
          break;
        }
        case Mode.F64: {
          out[p++] = 0x0a;
          p = writeVarint(out, p, 4 * n);
          const dv = this.viewOf(out);
          const v = plan.values as Float64Array;
          for (let i = s; i < e; i++, p += 4) dv.setFloat32(p, v[i]!, true);
          break;
        }
        case Mode.BOOL: {
          out[p++] = 0x0a;
          p = writeVarint(out, p, n);
          const v = plan.values as Uint8Array;
          for (let i = s; i < e; i++) out[p++] = v[i] ? 1 : 0;
          break;
        }
        case Mode.INT: {
          out[p++] = 0x0a;
          p = writeVarint(out, p, this.payloadLen[c]!);
          const v = plan.values as Int32Array;
          for (let i = s; i < e; i++) {
            const x = v[i]!;
            p = x < 0 ? writeVarint64(out, p, x >>> 0, 0xffffffff) : writeVarint(out, p, x);
          }
          break;
        }
        case Mode.INT64: {
          out[p++] = 0x0a;
          p = writeVarint(out, p, this.payloadLen[c]!);
          const u = plan.u32!;
          for (let i = 2 * s, end = 2 * e; i < end; i += 2) p = writeVarint64(out, p, u[i]!, u[i + 1]!);
          break;
        }
        case Mode.UTF8: {
          const so = plan.strOffsets!;
          const b = plan.bytes!;
          for (let i = s; i < e; i++) {
            const a = so[i]!;
            const z = so[i + 1]!;
            out[p++] = 0x0a; // BytesList.value
            p = writeVarint(out, p, z - a);
            out.set(b.subarray(a, z), p);
            p += z - a;
          }
          break;
        }
      }
    }
    if (p !== pos + this.exampleLen) throw new Error(`ExampleEncoder: wrote ${p - pos} bytes, sized ${this.exampleLen} (bug)`);
    return p;
  }

  /** Writes row `row` as a framed TFRecord (header, Example, data CRC) at out[pos..]; returns the end. */
  encodeRecordInto(row: number, out: Uint8Array, pos: number): number {
    if (row !== this.sizedRow) this.exampleSize(row);
    const len = this.exampleLen;
    if (pos + len + FRAME_OVERHEAD > out.length) throw new RangeError(`encodeRecordInto: needs ${len + FRAME_OVERHEAD} bytes at ${pos}, buffer has ${out.length}`);
    const dataStart = writeFrameHeader(out, pos, len);
    const end = this.encodeInto(row, out, dataStart);
    writeU32(out, end, maskedCrc32c(out.subarray(dataStart, end)));
    return end + 4;
  }

  private viewOf(out: Uint8Array): DataView {
    const dv = this.dv;
    if (dv && dv.buffer === out.buffer && dv.byteOffset === out.byteOffset && dv.byteLength === out.byteLength) return dv;
    return (this.dv = new DataView(out.buffer, out.byteOffset, out.byteLength));
  }
}

function rowsOf(d: ColumnData): number {
  switch (d.kind) {
    case 'primitive':
      return d.values.length;
    case 'fixed':
      return d.size === 0 ? 0 : rowsOf(d.child) / d.size;
    case 'list':
    case 'utf8':
      return d.offsets.length - 1;
  }
}

const encoderCache = new WeakMap<ColumnBatch, ExampleEncoder>();

/**
 * Row `row` of `batch` as one serialized tf.train.Example (no framing). Convenient, not the hot path: the
 * writer uses an ExampleEncoder directly and writes many records into one buffer. Pass `encoder` to reuse
 * one across calls (it is bound to `batch` once).
 */
export function encodeExample(batch: ColumnBatch, row: number, encoder?: ExampleEncoder): Uint8Array {
  let enc = encoder ?? encoderCache.get(batch);
  if (!enc) {
    enc = new ExampleEncoder(batch.columns.map((c) => ({ name: c.name, type: columnType(c.data) })));
    encoderCache.set(batch, enc);
  }
  enc.bind(batch);
  const out = new Uint8Array(enc.exampleSize(row));
  enc.encodeInto(row, out, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Scanner: where each feature of an Example lies, without decoding values

/**
 * The features of one Example as found on the wire, struct-of-arrays: for feature i, its key is
 * bytes[keyStart[i], keyEnd[i]), its kind a KindCode (0 when the Feature has no kind set), and its list
 * message bytes[listStart[i], listEnd[i]). Reused across records.
 */
export class ScannedExample {
  count = 0;
  bytes: Uint8Array = new Uint8Array(0);
  keyStart = new Int32Array(16);
  keyEnd = new Int32Array(16);
  kind = new Uint8Array(16);
  listStart = new Int32Array(16);
  listEnd = new Int32Array(16);

  push(ks: number, ke: number, kind: number, ls: number, le: number): void {
    const i = this.count++;
    if (i === this.kind.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.keyStart = grow(this.keyStart);
      this.keyEnd = grow(this.keyEnd);
      this.kind = grow(this.kind);
      this.listStart = grow(this.listStart);
      this.listEnd = grow(this.listEnd);
    }
    this.keyStart[i] = ks;
    this.keyEnd[i] = ke;
    this.kind[i] = kind;
    this.listStart[i] = ls;
    this.listEnd[i] = le;
  }
}

/** Thrown by the scanner and list decoders on bytes that are not a valid Example; callers add context. */
export class WireError extends Error {}

/** A cursor over a protobuf message: varints and skipping, with bounds checks. */
class Cursor {
  p = 0;
  constructor(
    public b: Uint8Array,
    start: number,
    public end: number,
  ) {
    this.p = start;
  }
  /** A varint that must fit in 32 bits unsigned (tags and lengths). */
  u32(): number {
    const b = this.b;
    let v = 0;
    let shift = 0;
    for (;;) {
      if (this.p >= this.end) throw new WireError('truncated varint');
      const x = b[this.p++]!;
      if (shift < 28) v |= (x & 0x7f) << shift;
      else if (shift === 28) {
        if (x & 0x70) throw new WireError('length or tag varint larger than 32 bits');
        v |= (x & 0x0f) << 28;
      } else if (x & 0x7f) throw new WireError('length or tag varint larger than 32 bits');
      if (x < 0x80) return v >>> 0;
      shift += 7;
      if (shift > 63) throw new WireError('varint longer than 10 bytes');
    }
  }
  len(): number {
    const n = this.u32();
    if (n > this.end - this.p) throw new WireError(`length ${n} runs past the end of its message (${this.end - this.p} bytes left)`);
    return n;
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        for (;;) {
          if (this.p >= this.end) throw new WireError('truncated varint');
          if (this.b[this.p++]! < 0x80) break;
        }
        return;
      case 1:
        if (this.end - this.p < 8) throw new WireError('truncated fixed64');
        this.p += 8;
        return;
      case 2: {
        const n = this.len(); // (not `this.p += this.len()`: that reads p before len() advances it)
        this.p += n;
        return;
      }
      case 5:
        if (this.end - this.p < 4) throw new WireError('truncated fixed32');
        this.p += 4;
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }
}

/**
 * Finds the features of the serialized Example `bytes` (unknown fields skipped). Throws WireError on
 * malformed input, and on a Feature that sets its list twice (valid protobuf that no TensorFlow writer
 * produces).
 */
export function scanExample(bytes: Uint8Array, out: ScannedExample): void {
  out.count = 0;
  out.bytes = bytes;
  const c = new Cursor(bytes, 0, bytes.length);
  while (c.p < c.end) {
    const tag = c.u32();
    if (tag === 0x0a) {
      const n = c.len();
      scanFeatures(bytes, c.p, c.p + n, out);
      c.p += n;
    } else c.skip(tag & 7);
  }
}

function scanFeatures(bytes: Uint8Array, start: number, end: number, out: ScannedExample): void {
  const c = new Cursor(bytes, start, end);
  while (c.p < c.end) {
    const tag = c.u32();
    if (tag !== 0x0a) {
      c.skip(tag & 7);
      continue;
    }
    const entryEnd = c.len() + c.p;
    let ks = 0;
    let ke = 0;
    let kind = 0;
    let ls = 0;
    let le = 0;
    const e = new Cursor(bytes, c.p, entryEnd);
    while (e.p < e.end) {
      const t = e.u32();
      if (t === 0x0a) {
        const n = e.len();
        ks = e.p;
        ke = e.p + n;
        e.p += n;
      } else if (t === 0x12) {
        const n = e.len();
        // Feature: the oneof
        const f = new Cursor(bytes, e.p, e.p + n);
        kind = 0;
        while (f.p < f.end) {
          const ft = f.u32();
          const field = ft >>> 3;
          if ((ft & 7) === 2 && field >= 1 && field <= 3) {
            const m = f.len();
            if (kind === field) throw new WireError('a Feature whose list is split over several fields (not supported)');
            kind = field;
            ls = f.p;
            le = f.p + m;
            f.p += m;
          } else f.skip(ft & 7);
        }
        e.p += n;
      } else e.skip(t & 7);
    }
    out.push(ks, ke, kind, ls, le);
    c.p = entryEnd;
  }
}

/** Number of values in the list message bytes[start, end) of kind `kind`. */
export function countValues(bytes: Uint8Array, kind: number, start: number, end: number): number {
  const c = new Cursor(bytes, start, end);
  let n = 0;
  while (c.p < c.end) {
    const tag = c.u32();
    if (tag >>> 3 !== 1) {
      c.skip(tag & 7);
      continue;
    }
    const wt = tag & 7;
    if (kind === KIND_FLOAT) {
      if (wt === 2) {
        const len = c.len();
        if (len % 4 !== 0) throw new WireError(`packed float list of ${len} bytes (not a multiple of 4)`);
        n += len / 4;
        c.p += len;
      } else if (wt === 5) {
        c.skip(5);
        n++;
      } else throw new WireError(`float list value with wire type ${wt}`);
    } else if (kind === KIND_INT64) {
      if (wt === 2) {
        const len = c.len();
        const z = c.p + len;
        if (len > 0 && bytes[z - 1]! >= 0x80) throw new WireError('packed int64 list ends inside a varint');
        for (let i = c.p; i < z; i++) if (bytes[i]! < 0x80) n++;
        c.p = z;
      } else if (wt === 0) {
        c.skip(0);
        n++;
      } else throw new WireError(`int64 list value with wire type ${wt}`);
    } else if (kind === KIND_BYTES) {
      if (wt !== 2) throw new WireError(`bytes list value with wire type ${wt}`);
      c.skip(2);
      n++;
    } else {
      c.skip(wt);
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------
// List decoders (into preallocated typed arrays)

let f32Scratch = new Float32Array(1024);
const f32One = new Float32Array(1);
const u8One = new Uint8Array(f32One.buffer);

/**
 * Decodes a float list message into out[at..] (a Float32Array or Float64Array with room for every value);
 * returns the number of values written.
 */
export function decodeFloats(bytes: Uint8Array, start: number, end: number, out: Float32Array | Float64Array, at: number): number {
  const c = new Cursor(bytes, start, end);
  let k = at;
  while (c.p < c.end) {
    const tag = c.u32();
    if (tag === 0x0a) {
      const len = c.len();
      const n = len >>> 2;
      const src = bytes.subarray(c.p, c.p + 4 * n);
      if (out instanceof Float32Array && LITTLE_ENDIAN) {
        new Uint8Array(out.buffer, out.byteOffset + 4 * k, 4 * n).set(src);
      } else {
        let f: Float32Array;
        if (LITTLE_ENDIAN && (src.byteOffset & 3) === 0) f = new Float32Array(src.buffer, src.byteOffset, n);
        else {
          if (f32Scratch.length < n) f32Scratch = new Float32Array(Math.max(n, 2 * f32Scratch.length));
          f = f32Scratch;
          if (LITTLE_ENDIAN) new Uint8Array(f.buffer, 0, 4 * n).set(src);
          else {
            const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
            for (let i = 0; i < n; i++) f[i] = dv.getFloat32(4 * i, true);
          }
        }
        for (let i = 0; i < n; i++) out[k + i] = f[i]!;
      }
      k += n;
      c.p += len;
    } else if (tag === 0x0d) {
      if (c.end - c.p < 4) throw new WireError('truncated fixed32');
      if (LITTLE_ENDIAN) {
        u8One[0] = bytes[c.p]!;
        u8One[1] = bytes[c.p + 1]!;
        u8One[2] = bytes[c.p + 2]!;
        u8One[3] = bytes[c.p + 3]!;
      } else {
        u8One[3] = bytes[c.p]!;
        u8One[2] = bytes[c.p + 1]!;
        u8One[1] = bytes[c.p + 2]!;
        u8One[0] = bytes[c.p + 3]!;
      }
      out[k++] = f32One[0]!;
      c.p += 4;
    } else c.skip(tag & 7);
  }
  return k - at;
}

/** Where decodeInts writes: the 64-bit pairs of an int64/uint64 array, or one number per value. */
export const enum IntTarget {
  /** out is an Int32Array view over a BigInt64Array/BigUint64Array: (lo, hi) per value */
  PAIRS,
  NUMBER,
  BOOL,
}

/** Set by decodeInts when a value does not fit the target dtype: the value as a decimal string. */
export let intRangeFailure = '';

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/**
 * Decodes an int64 list message into out[at..] for `dtype`; returns the number of values, or -1 when a
 * value does not fit `dtype` (intRangeFailure then holds it). bool: any non-zero value is 1.
 */
export function decodeInts(
  bytes: Uint8Array,
  start: number,
  end: number,
  dtype: DType,
  out: Int32Array | NumericArray,
  at: number,
): number {
  const target = dtype === 'int64' || dtype === 'uint64' ? IntTarget.PAIRS : dtype === 'bool' ? IntTarget.BOOL : IntTarget.NUMBER;
  const range = INT_RANGE[dtype];
  const min = range ? range[0] : 0;
  const max = range ? range[1] : 0;
  const o = out as Int32Array;
  const c = new Cursor(bytes, start, end);
  let k = at;
  while (c.p < c.end) {
    const tag = c.u32();
    let z: number;
    if (tag === 0x0a) {
      const len = c.len();
      z = c.p + len;
    } else if (tag === 0x08) {
      z = -1; // one value
    } else {
      c.skip(tag & 7);
      continue;
    }
    let p = c.p;
    const limit = z === -1 ? c.end : z;
    do {
      // one varint → lo, hi
      let lo = 0;
      let hi = 0;
      let x = 0;
      let shift = 0;
      for (;;) {
        if (p >= limit) throw new WireError('truncated varint in int64 list');
        x = bytes[p++]!;
        if (shift < 28) lo |= (x & 0x7f) << shift;
        else if (shift === 28) {
          lo |= (x & 0x0f) << 28;
          hi = (x & 0x7f) >>> 4;
        } else if (shift < 63) hi |= (x & 0x7f) << (shift - 32);
        else {
          if (x > 1) throw new WireError('int64 varint overflows 64 bits');
          hi |= x << 31;
        }
        if (x < 0x80) break;
        shift += 7;
        if (shift > 63) throw new WireError('varint longer than 10 bytes');
      }
      lo >>>= 0;
      hi >>>= 0;
      if (target === IntTarget.PAIRS) {
        o[2 * k] = lo;
        o[2 * k + 1] = hi;
      } else if (target === IntTarget.BOOL) {
        o[k] = lo !== 0 || hi !== 0 ? 1 : 0;
      } else {
        // the value as a double when it is within ±2^53, else out of every ≤32-bit range anyway
        let v: number;
        if (hi === 0) v = lo;
        else if (hi === 0xffffffff) v = (lo | 0) < 0 ? lo | 0 : lo - 0x100000000;
        else v = NaN;
        if (!(v >= min && v <= max)) {
          intRangeFailure = `${BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo))} does not fit ${dtype}`;
          return -1;
        }
        o[k] = v;
      }
      k++;
    } while (z !== -1 && p < z);
    c.p = p;
  }
  return k - at;
}

// ---------------------------------------------------------------------------------------------------
// decodeExample: the whole message as a Map (tests, tools, the first records of an input)

export interface DecodedFeature {
  kind: FeatureKind;
  values: Float32Array | BigInt64Array | Uint8Array[];
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** Decodes one key of a ScannedExample as a string. */
export function keyString(s: ScannedExample, i: number): string {
  return utf8Decoder.decode(s.bytes.subarray(s.keyStart[i]!, s.keyEnd[i]!));
}

/**
 * Decodes a serialized tf.train.Example. Keys in wire order (a repeated key: the last one wins, as
 * protobuf maps do); floats as a Float32Array, int64s as a BigInt64Array (copies), bytes as views into
 * `bytes`. A Feature with no kind set is left out. Malformed input → CorruptDataError.
 */
export function decodeExample(bytes: Uint8Array): Map<string, DecodedFeature> {
  const s = new ScannedExample();
  const out = new Map<string, DecodedFeature>();
  try {
    scanExample(bytes, s);
    for (let i = 0; i < s.count; i++) {
      const kind = s.kind[i]!;
      const key = keyString(s, i);
      out.delete(key);
      if (kind === 0) continue;
      const ls = s.listStart[i]!;
      const le = s.listEnd[i]!;
      const n = countValues(bytes, kind, ls, le);
      if (kind === KIND_FLOAT) {
        const v = new Float32Array(n);
        decodeFloats(bytes, ls, le, v, 0);
        out.set(key, { kind: 'float', values: v });
      } else if (kind === KIND_INT64) {
        const v = new BigInt64Array(n);
        decodeInts(bytes, ls, le, 'int64', new Int32Array(v.buffer), 0);
        out.set(key, { kind: 'int64', values: v });
      } else {
        const v: Uint8Array[] = [];
        const c = new Cursor(bytes, ls, le);
        while (c.p < c.end) {
          const tag = c.u32();
          if (tag === 0x0a) {
            const len = c.len();
            v.push(bytes.subarray(c.p, c.p + len));
            c.p += len;
          } else c.skip(tag & 7);
        }
        out.set(key, { kind: 'bytes', values: v });
      }
    }
  } catch (e) {
    if (e instanceof WireError) throw new CorruptDataError(`not a valid tf.train.Example: ${e.message}`, {}, { cause: e });
    throw e;
  }
  return out;
}

/** Decodes every string value of a bytes list message into (offsets, bytes) growing arrays. */
export function forEachBytes(bytes: Uint8Array, start: number, end: number, fn: (s: number, e: number) => void): void {
  const c = new Cursor(bytes, start, end);
  while (c.p < c.end) {
    const tag = c.u32();
    if (tag === 0x0a) {
      const len = c.len();
      fn(c.p, c.p + len);
      c.p += len;
    } else c.skip(tag & 7);
  }
}
