/**
 * The one batch type every stage speaks: an Arrow RecordBatch whose columns are the reader's
 * ColumnData (src/root/columns.ts) wrapped without copying.
 *
 *   ColumnType                Arrow type
 *   bool                      Bool (bit-packed; the only conversion that copies)
 *   int8..int64, uint8..64    Int8..Int64, Uint8..Uint64 (64-bit as BigInt64Array/BigUint64Array)
 *   float32, float64          Float32, Float64
 *   fixed<n, T>               FixedSizeList(n, Field('item', T, nullable))
 *   list<T>                   List(Field('item', T, nullable))
 *   utf8                      Utf8
 *
 * Nullability: every field, top-level and `item`, is declared nullable = true, although hep-ml never
 * writes a validity bitmap (null_count is always 0). That is Arrow's default everywhere: pyarrow's
 * `pa.list_(t)`, `pa.field(name, t)` and `pa.schema([(name, t)])`, Arrow C++'s `list_()`, polars and
 * DuckDB's Arrow export all produce nullable fields and nullable `item` children, and Arrow C++/pyarrow
 * compare the child field's nullability in type equality. Declaring non-nullable would make our
 * `list<float>` unequal to theirs (schema unification, `concat_tables`, Parquet dataset merges fail).
 *
 * Arrow JS conventions this module follows (apache-arrow 21.2; see fromArrowData): a sliced Data keeps
 * its primitive `values` and list `valueOffsets` already sliced (index 0 = logical row 0), list children
 * unsliced (offsets are absolute), FixedSizeList children sliced, and bools addressed by bit
 * `offset + i`.
 */
import * as arrow from 'apache-arrow';
import { endianness } from 'node:os';
import {
  type ColumnBatch,
  type ColumnData,
  type ColumnType,
  type DType,
  type NumericArray,
  allocTyped,
  columnRows,
  columnType,
  formatColumnType,
} from '../root/columns.js';
import { SchemaMismatchError, UnsupportedError } from '../errors.js';

/** The name of the single child field of List and FixedSizeList (the Arrow/pyarrow convention). */
export const LIST_ITEM_NAME = 'item';

// ---------------------------------------------------------------------------------------------------
// Types

/** The Arrow type of a column type. */
export function arrowType(t: ColumnType): arrow.DataType {
  switch (t.kind) {
    case 'primitive':
      return primitiveArrowType(t.dtype);
    case 'fixed':
      if (!Number.isInteger(t.size) || t.size < 1) {
        throw new UnsupportedError(`fixed-size arrays of size ${t.size} are not supported`);
      }
      return new arrow.FixedSizeList(t.size, new arrow.Field(LIST_ITEM_NAME, arrowType(t.child), true));
    case 'list':
      return new arrow.List(new arrow.Field(LIST_ITEM_NAME, arrowType(t.child), true));
    case 'utf8':
      return new arrow.Utf8();
  }
}

function primitiveArrowType(d: DType): arrow.DataType {
  switch (d) {
    case 'bool':
      return new arrow.Bool();
    case 'int8':
      return new arrow.Int8();
    case 'uint8':
      return new arrow.Uint8();
    case 'int16':
      return new arrow.Int16();
    case 'uint16':
      return new arrow.Uint16();
    case 'int32':
      return new arrow.Int32();
    case 'uint32':
      return new arrow.Uint32();
    case 'int64':
      return new arrow.Int64();
    case 'uint64':
      return new arrow.Uint64();
    case 'float32':
      return new arrow.Float32();
    case 'float64':
      return new arrow.Float64();
  }
}

/**
 * The column type of an Arrow type; UnsupportedError for Arrow types hep-ml has no column type for
 * (Float16, LargeList, Dictionary, Struct, timestamps, ...).
 */
export function columnTypeFromArrow(t: arrow.DataType): ColumnType {
  switch (t.typeId) {
    case arrow.Type.Bool:
      return { kind: 'primitive', dtype: 'bool' };
    case arrow.Type.Int: {
      const it = t as arrow.Int;
      const dtype = `${it.isSigned ? 'int' : 'uint'}${it.bitWidth}` as DType;
      return { kind: 'primitive', dtype };
    }
    case arrow.Type.Float: {
      const p = (t as arrow.Float).precision;
      if (p === arrow.Precision.SINGLE) return { kind: 'primitive', dtype: 'float32' };
      if (p === arrow.Precision.DOUBLE) return { kind: 'primitive', dtype: 'float64' };
      break;
    }
    case arrow.Type.FixedSizeList: {
      const f = t as arrow.FixedSizeList;
      return { kind: 'fixed', size: f.listSize, child: columnTypeFromArrow(f.valueType) };
    }
    case arrow.Type.List:
      return { kind: 'list', child: columnTypeFromArrow((t as arrow.List).valueType) };
    case arrow.Type.Utf8:
      return { kind: 'utf8' };
  }
  throw new UnsupportedError(`Arrow type ${String(t)} has no hep-ml column type`);
}

/** A schema of nullable fields (see the module comment), with optional string metadata. */
export function makeSchema(
  fields: { name: string; type: ColumnType }[],
  metadata?: Record<string, string>,
): arrow.Schema {
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw new SchemaMismatchError(`duplicate column name '${f.name}'`);
    seen.add(f.name);
  }
  return new arrow.Schema(
    fields.map((f) => new arrow.Field(f.name, arrowType(f.type), true)),
    metadata ? new Map(Object.entries(metadata)) : undefined,
  );
}

/** The column types of a schema's fields (UnsupportedError for fields hep-ml cannot represent). */
export function schemaFields(schema: arrow.Schema): { name: string; type: ColumnType }[] {
  return schema.fields.map((f) => ({ name: f.name, type: columnTypeFromArrow(f.type) }));
}

// ---------------------------------------------------------------------------------------------------
// Bool bit packing

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Packs 0/1 bytes (any nonzero byte counts as true) into an LSB-first bitmap. The result is padded to a
 * multiple of 8 bytes, so that Arrow's IPC writer (truncateBitmap) does not copy it a second time.
 *
 * Four bytes at a time: normalise each byte to 0/1, then one multiply by 0x00204081 moves byte i's bit
 * (at 8i) to bit 21 + i with no carries (the 16 partial products 8i + 7k are distinct).
 */
export function packBools(src: Uint8Array): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(((n + 63) >> 6) << 3);
  const full = n >> 3; // output bytes made of 8 whole input bytes
  if (LITTLE_ENDIAN && full > 0) {
    const words = (src.byteOffset & 3) === 0 ? new Uint32Array(src.buffer, src.byteOffset, full * 2) : new Uint32Array(src.slice(0, full * 8).buffer);
    for (let i = 0, w = 0; i < full; i++, w += 2) {
      let lo = words[w]!;
      let hi = words[w + 1]!;
      lo = ((((lo & 0x7f7f7f7f) + 0x7f7f7f7f) | lo) & 0x80808080) >>> 7;
      hi = ((((hi & 0x7f7f7f7f) + 0x7f7f7f7f) | hi) & 0x80808080) >>> 7;
      out[i] = ((Math.imul(lo, 0x00204081) >>> 21) & 0xf) | ((Math.imul(hi, 0x00204081) >>> 17) & 0xf0);
    }
  } else {
    for (let i = 0; i < full; i++) {
      let b = 0;
      for (let k = 0; k < 8; k++) if (src[i * 8 + k] !== 0) b |= 1 << k;
      out[i] = b;
    }
  }
  for (let j = full * 8; j < n; j++) if (src[j] !== 0) out[j >> 3]! |= 1 << (j & 7);
  return out;
}

/** Unpacks `n` bits starting at bit `bitOffset` of an LSB-first bitmap into 0/1 bytes. */
export function unpackBools(bits: Uint8Array, bitOffset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let j = 0;
  if ((bitOffset & 7) === 0 && LITTLE_ENDIAN) {
    const base = bitOffset >> 3;
    const full = n >> 3;
    const out32 = new Uint32Array(out.buffer, 0, full * 2);
    for (let i = 0, w = 0; i < full; i++, w += 2) {
      const b = bits[base + i]!;
      // spread 4 bits to the low bit of 4 bytes: bit i lands at 8i (partial products i + 7k distinct)
      out32[w] = Math.imul(b & 0xf, 0x00204081) & 0x01010101;
      out32[w + 1] = Math.imul(b >>> 4, 0x00204081) & 0x01010101;
    }
    j = full * 8;
  }
  for (; j < n; j++) {
    const bit = bitOffset + j;
    out[j] = (bits[bit >> 3]! >> (bit & 7)) & 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// ColumnData -> Arrow Data

/**
 * Wraps a column as Arrow Data. Numeric values, list offsets, utf8 offsets and bytes are used as they are
 * (no copy: the Data's buffers are the column's typed arrays); bools are bit-packed (one copy, 1/8 the
 * size). Cheap structural checks only (O(1) per nesting level); SchemaMismatchError when they fail.
 */
export function toArrowData(col: ColumnData): arrow.Data {
  switch (col.kind) {
    case 'primitive': {
      const type = primitiveArrowType(col.dtype);
      checkValuesArray(col.dtype, col.values);
      const n = col.values.length;
      if (col.dtype === 'bool') {
        return arrow.makeData({ type: type as arrow.Bool, length: n, nullCount: 0, data: packBools(col.values as Uint8Array) });
      }
      return arrow.makeData({ type: type as arrow.Int, length: n, nullCount: 0, data: col.values as arrow.Int['TArray'] });
    }
    case 'fixed': {
      const child = toArrowData(col.child);
      if (!Number.isInteger(col.size) || col.size < 1) {
        throw new UnsupportedError(`fixed-size arrays of size ${col.size} are not supported`);
      }
      if (child.length % col.size !== 0) {
        throw new SchemaMismatchError(`fixed<${col.size}> column has ${child.length} child values, not a multiple of ${col.size}`);
      }
      const type = new arrow.FixedSizeList(col.size, new arrow.Field(LIST_ITEM_NAME, child.type, true));
      return arrow.makeData({ type, length: child.length / col.size, nullCount: 0, child });
    }
    case 'list': {
      const child = toArrowData(col.child);
      checkOffsets('list', col.offsets, child.length);
      const type = new arrow.List(new arrow.Field(LIST_ITEM_NAME, child.type, true));
      return arrow.makeData({ type, length: col.offsets.length - 1, nullCount: 0, valueOffsets: col.offsets, child });
    }
    case 'utf8': {
      checkOffsets('utf8', col.offsets, col.bytes.length);
      return arrow.makeData({
        type: new arrow.Utf8(),
        length: col.offsets.length - 1,
        nullCount: 0,
        valueOffsets: col.offsets,
        data: col.bytes,
      });
    }
  }
}

const ARRAY_CTOR: Record<DType, Function> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};

function checkValuesArray(dtype: DType, values: NumericArray): void {
  // Arrow would otherwise reinterpret (or, for 64-bit, throw deep inside) a wrongly typed array.
  if (!(values instanceof (ARRAY_CTOR[dtype] as new () => NumericArray))) {
    throw new SchemaMismatchError(`${dtype} column holds a ${values.constructor.name}`);
  }
}

function checkOffsets(kind: string, offsets: Int32Array, childLength: number): void {
  if (!(offsets instanceof Int32Array) || offsets.length < 1) {
    throw new SchemaMismatchError(`${kind} column needs an Int32Array of at least one offset`);
  }
  const first = offsets[0]!;
  const last = offsets[offsets.length - 1]!;
  if (first < 0 || last < first || last > childLength) {
    throw new SchemaMismatchError(`${kind} column offsets [${first}, ..., ${last}] do not fit its ${childLength} child values`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Arrow Data -> ColumnData

/**
 * The inverse of toArrowData: a ColumnData view of Arrow Data (typically one column of a batch read from
 * an IPC stream). Numeric values, offsets and utf8 bytes are views into the Data's buffers (no copy)
 * unless the Data is a slice whose list offsets do not start at 0 (then the offsets are rebased, a copy);
 * bools are unpacked to 0/1 bytes.
 *
 * `type`, when given, is the column type the caller expects: SchemaMismatchError if the Data differs.
 * UnsupportedError for Arrow types without a column type and for Data with nulls (hep-ml columns have
 * no validity bitmap).
 */
export function fromArrowData(data: arrow.Data, type?: ColumnType): ColumnData {
  const actual = columnTypeFromArrow(data.type);
  if (type !== undefined && formatColumnType(type) !== formatColumnType(actual)) {
    throw new SchemaMismatchError(`expected a ${formatColumnType(type)} column, got ${formatColumnType(actual)}`);
  }
  return convert(data, actual);
}

function convert(data: arrow.Data, t: ColumnType): ColumnData {
  const n = data.length;
  if (n === 0) return emptyColumn(t);
  if (data.nullCount > 0) {
    throw new UnsupportedError(`${formatColumnType(t)} column has ${data.nullCount} null values; hep-ml columns cannot hold nulls`);
  }
  switch (t.kind) {
    case 'primitive': {
      if (t.dtype === 'bool') {
        return { kind: 'primitive', dtype: 'bool', values: unpackBools(data.values as Uint8Array, data.offset, n) };
      }
      // Arrow JS keeps a sliced primitive's values already sliced: values[i] is row i.
      return { kind: 'primitive', dtype: t.dtype, values: (data.values as NumericArray).subarray(0, n) };
    }
    case 'fixed': {
      // Arrow JS slices FixedSizeList children along with the parent.
      let child = data.children[0] as arrow.Data;
      const childRows = n * t.size;
      if (child.length !== childRows) child = child.slice(0, childRows);
      return { kind: 'fixed', size: t.size, child: convert(child, t.child) };
    }
    case 'list': {
      // valueOffsets is sliced with the parent (n+1 entries); the child is not: offsets are absolute.
      const [offsets, begin, end] = rebase(data.valueOffsets as Int32Array, n);
      let child = data.children[0] as arrow.Data;
      if (begin !== 0 || child.length !== end) child = child.slice(begin, end - begin);
      return { kind: 'list', offsets, child: convert(child, t.child) };
    }
    case 'utf8': {
      const [offsets, begin, end] = rebase(data.valueOffsets as Int32Array, n);
      return { kind: 'utf8', offsets, bytes: (data.values as Uint8Array).subarray(begin, end) };
    }
  }
}

function rebase(valueOffsets: Int32Array, n: number): [Int32Array, number, number] {
  const begin = valueOffsets[0]!;
  const end = valueOffsets[n]!;
  if (begin === 0) return [valueOffsets.subarray(0, n + 1), 0, end];
  const out = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) out[i] = valueOffsets[i]! - begin;
  return [out, begin, end];
}

/** A zero-row column of a type (list/utf8 get their single 0 offset). */
export function emptyColumn(t: ColumnType): ColumnData {
  switch (t.kind) {
    case 'primitive':
      return { kind: 'primitive', dtype: t.dtype, values: allocTyped(t.dtype, 0) };
    case 'fixed':
      return { kind: 'fixed', size: t.size, child: emptyColumn(t.child) };
    case 'list':
      return { kind: 'list', offsets: new Int32Array(1), child: emptyColumn(t.child) };
    case 'utf8':
      return { kind: 'utf8', offsets: new Int32Array(1), bytes: new Uint8Array(0) };
  }
}

// ---------------------------------------------------------------------------------------------------
// Batches

/**
 * Wraps a ColumnBatch as a RecordBatch of `schema`. The columns must match the schema's fields in order,
 * name and type, and all have entryStop - entryStart rows; SchemaMismatchError otherwise.
 */
export function toRecordBatch(schema: arrow.Schema, batch: ColumnBatch): arrow.RecordBatch {
  const fields = schema.fields;
  const cols = batch.columns;
  if (cols.length !== fields.length) {
    throw new SchemaMismatchError(
      `batch has ${cols.length} columns (${cols.map((c) => c.name).join(', ')}), schema has ${fields.length} (${fields.map((f) => f.name).join(', ')})`,
    );
  }
  const rows = batch.entryStop - batch.entryStart;
  const expected = fieldTypes(schema);
  const children = new Array<arrow.Data>(cols.length);
  for (let i = 0; i < cols.length; i++) {
    const col = cols[i]!;
    const field = fields[i]!;
    if (col.name !== field.name) {
      throw new SchemaMismatchError(`column ${i} is '${col.name}', schema expects '${field.name}'`);
    }
    const got = formatColumnType(columnType(col.data));
    if (got !== expected[i]) {
      throw new SchemaMismatchError(`column '${col.name}' is ${got}, schema expects ${expected[i]}`);
    }
    const n = columnRows(col.data);
    if (n !== rows) {
      throw new SchemaMismatchError(
        `column '${col.name}' has ${n} rows, the batch covers entries [${batch.entryStart}, ${batch.entryStop}) = ${rows} rows`,
      );
    }
    children[i] = toArrowData(col.data);
  }
  const data = arrow.makeData({ type: new arrow.Struct(fields), length: rows, nullCount: 0, children });
  return new arrow.RecordBatch(schema, data);
}

const fieldTypeCache = new WeakMap<arrow.Schema, string[]>();
function fieldTypes(schema: arrow.Schema): string[] {
  let t = fieldTypeCache.get(schema);
  if (!t) {
    t = schema.fields.map((f) => formatColumnType(columnTypeFromArrow(f.type)));
    fieldTypeCache.set(schema, t);
  }
  return t;
}

/** The columns of a RecordBatch as ColumnData (see fromArrowData), covering [entryStart, entryStart + rows). */
export function fromRecordBatch(rb: arrow.RecordBatch, entryStart = 0): ColumnBatch {
  const fields = rb.schema.fields;
  const columns = fields.map((f, i) => {
    const child = rb.data.children[i] as arrow.Data;
    try {
      return { name: f.name, data: fromArrowData(child) };
    } catch (e) {
      if (e instanceof SchemaMismatchError || e instanceof UnsupportedError) {
        const Ctor = e.constructor as typeof SchemaMismatchError;
        throw new Ctor(`column '${f.name}': ${e.message}`, e.context, { cause: e });
      }
      throw e;
    }
  });
  return { entryStart, entryStop: entryStart + rb.numRows, columns };
}
