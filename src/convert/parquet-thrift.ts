/**
 * A generic Thrift *compact protocol* codec, just enough for Parquet footers: decode() turns the bytes
 * into a tree that keeps every field (ids, wire types, order), encode() writes such a tree back. An
 * unmodified tree encodes to the same bytes it was decoded from (booleans inside lists excepted, which
 * are normalised to 1/2 as every current writer emits them), so code can edit a few fields of a
 * FileMetaData (src/convert/parquet-footer.ts) without a schema for the rest, including fields added to
 * the format after this was written.
 *
 * Values: booleans as boolean; i8, i16, i32 and double as number; i64 as number when it is a safe
 * integer, otherwise bigint (file offsets and row counts are always safe); binary/string as the raw
 * bytes; struct, list/set and map as the objects below.
 */

/** Compact protocol wire types (as they appear in field headers and list/map headers). */
export const TType = {
  STOP: 0,
  TRUE: 1,
  FALSE: 2,
  I8: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
  UUID: 13,
} as const;

export type TValue = boolean | number | bigint | Uint8Array | TStruct | TList | TMap;

export interface TField {
  id: number;
  /** Wire type; for a boolean field TRUE or FALSE (the value is in the type), else as in TType. */
  type: number;
  value: TValue;
}
export interface TStruct {
  kind: 'struct';
  fields: TField[];
}
export interface TList {
  kind: 'list';
  /** LIST or SET */
  type: number;
  elemType: number;
  items: TValue[];
}
export interface TMap {
  kind: 'map';
  keyType: number;
  valueType: number;
  entries: [TValue, TValue][];
}

export class ThriftError extends Error {}

/** Nesting deeper than this is garbage, not a Parquet footer (guards the recursion). */
const MAX_DEPTH = 64;

// ---------------------------------------------------------------------------------------------------
// Decoding

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.b.length) throw new ThriftError(`unexpected end of data at byte ${this.pos}`);
    return this.b[this.pos++]!;
  }

  /** Unsigned LEB128 varint, as a number when exact, else a bigint. */
  varint(): number | bigint {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      if (shift < 49) {
        result += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) return result;
        shift += 7;
        continue;
      }
      // Beyond 49 bits: finish in BigInt.
      let big = BigInt(result) + (BigInt(byte & 0x7f) << BigInt(shift));
      while (byte & 0x80) {
        shift += 7;
        if (shift > 63) throw new ThriftError(`varint longer than 64 bits at byte ${this.pos}`);
        const b2 = this.byte();
        big += BigInt(b2 & 0x7f) << BigInt(shift);
        if ((b2 & 0x80) === 0) break;
      }
      return big;
    }
  }

  /** A zigzag varint of at most 32 bits. */
  zigzag32(): number {
    const v = this.varint();
    if (typeof v !== 'number' || v > 0xffffffff) throw new ThriftError(`32-bit integer out of range at byte ${this.pos}`);
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  /** A zigzag varint of at most 64 bits: a number when safe, else a bigint. */
  zigzag64(): number | bigint {
    const v = this.varint();
    if (typeof v === 'number') {
      if (v <= Number.MAX_SAFE_INTEGER) return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
    }
    const big = BigInt(v);
    const r = (big >> 1n) ^ -(big & 1n);
    const n = Number(r);
    return Number.isSafeInteger(n) ? n : BigInt.asIntN(64, r);
  }

  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.b.length) throw new ThriftError(`binary of ${n} bytes runs past the end at byte ${this.pos}`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  size(): number {
    const n = this.varint();
    if (typeof n !== 'number' || n > this.b.length) throw new ThriftError(`implausible size ${String(n)} at byte ${this.pos}`);
    return n;
  }
}

function readValue(r: Reader, type: number, depth: number): TValue {
  switch (type) {
    case TType.TRUE:
    case TType.FALSE:
      // Inside a list/set/map a boolean is one byte (1 = true).
      return r.byte() === TType.TRUE;
    case TType.I8: {
      const b = r.byte();
      return b > 127 ? b - 256 : b;
    }
    case TType.I16:
    case TType.I32:
      return r.zigzag32();
    case TType.I64:
      return r.zigzag64();
    case TType.DOUBLE: {
      const bytes = r.bytes(8);
      return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
    }
    case TType.BINARY:
      return r.bytes(r.size());
    case TType.UUID:
      return r.bytes(16);
    case TType.LIST:
    case TType.SET:
      return readList(r, type, depth + 1);
    case TType.MAP:
      return readMap(r, depth + 1);
    case TType.STRUCT:
      return readStruct(r, depth + 1);
    default:
      throw new ThriftError(`unknown compact type ${type} at byte ${r.pos}`);
  }
}

function readStruct(r: Reader, depth: number): TStruct {
  if (depth > MAX_DEPTH) throw new ThriftError('structures nested too deeply');
  const fields: TField[] = [];
  let lastId = 0;
  for (;;) {
    const h = r.byte();
    const type = h & 0x0f;
    if (type === TType.STOP) return { kind: 'struct', fields };
    const delta = h >> 4;
    const id = delta === 0 ? r.zigzag32() : lastId + delta;
    lastId = id;
    if (type === TType.TRUE || type === TType.FALSE) {
      fields.push({ id, type, value: type === TType.TRUE });
    } else {
      fields.push({ id, type, value: readValue(r, type, depth) });
    }
  }
}

function readList(r: Reader, type: number, depth: number): TList {
  if (depth > MAX_DEPTH) throw new ThriftError('structures nested too deeply');
  const h = r.byte();
  const elemType = h & 0x0f;
  const n = h >> 4 === 0x0f ? r.size() : h >> 4;
  const items: TValue[] = new Array(n);
  for (let i = 0; i < n; i++) items[i] = readValue(r, elemType, depth);
  return { kind: 'list', type, elemType, items };
}

function readMap(r: Reader, depth: number): TMap {
  if (depth > MAX_DEPTH) throw new ThriftError('structures nested too deeply');
  const n = r.size();
  if (n === 0) return { kind: 'map', keyType: 0, valueType: 0, entries: [] };
  const kv = r.byte();
  const keyType = kv >> 4;
  const valueType = kv & 0x0f;
  const entries: [TValue, TValue][] = new Array(n);
  for (let i = 0; i < n; i++) entries[i] = [readValue(r, keyType, depth), readValue(r, valueType, depth)];
  return { kind: 'map', keyType, valueType, entries };
}

/** Decodes one struct from the start of `bytes`; `end` is where it stopped. ThriftError on bad input. */
export function decodeStruct(bytes: Uint8Array): { value: TStruct; end: number } {
  const r = new Reader(bytes);
  const value = readStruct(r, 0);
  return { value, end: r.pos };
}

// ---------------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private buf = new Uint8Array(1024);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b & 0xff;
  }

  varint(v: number | bigint): void {
    if (typeof v === 'number' && v <= Number.MAX_SAFE_INTEGER) {
      this.ensure(10);
      while (v >= 0x80) {
        this.buf[this.pos++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buf[this.pos++] = v;
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (b >= 0x80n) {
      this.buf[this.pos++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.pos++] = Number(b);
  }

  zigzag(v: number | bigint): void {
    if (typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) <= 2 ** 51) {
      this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
      return;
    }
    const b = BigInt.asIntN(64, BigInt(v));
    this.varint(BigInt.asUintN(64, (b << 1n) ^ (b >> 63n)));
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function writeValue(w: Writer, type: number, v: TValue): void {
  switch (type) {
    case TType.TRUE:
    case TType.FALSE:
      w.byte(v ? TType.TRUE : TType.FALSE);
      return;
    case TType.I8:
      w.byte(v as number);
      return;
    case TType.I16:
    case TType.I32:
    case TType.I64:
      w.zigzag(v as number | bigint);
      return;
    case TType.DOUBLE: {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v as number, true);
      w.bytes(b);
      return;
    }
    case TType.BINARY:
      w.varint((v as Uint8Array).length);
      w.bytes(v as Uint8Array);
      return;
    case TType.UUID:
      w.bytes(v as Uint8Array);
      return;
    case TType.LIST:
    case TType.SET: {
      const l = v as TList;
      const n = l.items.length;
      if (n < 15) w.byte((n << 4) | l.elemType);
      else {
        w.byte(0xf0 | l.elemType);
        w.varint(n);
      }
      for (const item of l.items) writeValue(w, l.elemType, item);
      return;
    }
    case TType.MAP: {
      const m = v as TMap;
      w.varint(m.entries.length);
      if (m.entries.length === 0) return;
      w.byte((m.keyType << 4) | m.valueType);
      for (const [k, val] of m.entries) {
        writeValue(w, m.keyType, k);
        writeValue(w, m.valueType, val);
      }
      return;
    }
    case TType.STRUCT:
      writeStruct(w, v as TStruct);
      return;
    default:
      throw new ThriftError(`cannot encode compact type ${type}`);
  }
}

function writeStruct(w: Writer, s: TStruct): void {
  let lastId = 0;
  for (const f of s.fields) {
    const type = f.type === TType.TRUE || f.type === TType.FALSE ? (f.value ? TType.TRUE : TType.FALSE) : f.type;
    const delta = f.id - lastId;
    if (delta > 0 && delta <= 15) w.byte((delta << 4) | type);
    else {
      w.byte(type);
      w.zigzag(f.id);
    }
    lastId = f.id;
    if (type !== TType.TRUE && type !== TType.FALSE) writeValue(w, type, f.value);
  }
  w.byte(TType.STOP);
}

export function encodeStruct(s: TStruct): Uint8Array {
  const w = new Writer();
  writeStruct(w, s);
  return w.result();
}

// ---------------------------------------------------------------------------------------------------
// Helpers for editing trees

export function getField(s: TStruct, id: number): TField | undefined {
  return s.fields.find((f) => f.id === id);
}

/** A field's value as a number (i8..i64 fields); undefined when absent. ThriftError when not an integer. */
export function getInt(s: TStruct, id: number): number | undefined {
  const f = getField(s, id);
  if (f === undefined) return undefined;
  if (typeof f.value === 'number') return f.value;
  if (typeof f.value === 'bigint') throw new ThriftError(`field ${id}: ${f.value} is beyond 2^53`);
  throw new ThriftError(`field ${id} is not an integer`);
}

export function getStruct(s: TStruct, id: number): TStruct | undefined {
  const f = getField(s, id);
  if (f === undefined) return undefined;
  if (typeof f.value !== 'object' || !('kind' in f.value) || f.value.kind !== 'struct') throw new ThriftError(`field ${id} is not a struct`);
  return f.value;
}

export function getList(s: TStruct, id: number): TList | undefined {
  const f = getField(s, id);
  if (f === undefined) return undefined;
  if (typeof f.value !== 'object' || !('kind' in f.value) || f.value.kind !== 'list') throw new ThriftError(`field ${id} is not a list`);
  return f.value;
}

export function getBinary(s: TStruct, id: number): Uint8Array | undefined {
  const f = getField(s, id);
  if (f === undefined) return undefined;
  if (!(f.value instanceof Uint8Array)) throw new ThriftError(`field ${id} is not binary`);
  return f.value;
}

/** A copy of `s` with field `id` set (replaced in place, or inserted in id order), or removed if value is undefined. */
export function withField(s: TStruct, id: number, type: number, value: TValue | undefined): TStruct {
  const fields = s.fields.filter((f) => f.id !== id);
  if (value !== undefined) {
    const at = fields.findIndex((f) => f.id > id);
    const field = { id, type, value };
    if (at < 0) fields.push(field);
    else fields.splice(at, 0, field);
  }
  return { kind: 'struct', fields };
}
