/**
 * The reader's output: plain typed arrays and offsets, no per-value JS objects. The shape mirrors
 * Arrow's physical layout so that src/columnar can wrap it without copying:
 *
 *   primitive  one value per row (bool as 0/1 bytes; 64-bit as BigInt64Array/BigUint64Array)
 *   fixed      FixedSizeList: `size` child rows per row (Char_t[3], Float_t[4][5] → fixed(4, fixed(5, ...)))
 *   list       List: offsets (length rows+1, starting at 0) into the child rows
 *   utf8       strings: offsets (length rows+1) into UTF-8 bytes
 *
 * A column's row count is implicit: primitive → values.length, fixed → child rows / size,
 * list/utf8 → offsets.length - 1.
 */
export type DType =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float32'
  | 'float64';

export type TypedArrayOf<D extends DType> = D extends 'bool' | 'uint8'
  ? Uint8Array
  : D extends 'int8'
    ? Int8Array
    : D extends 'int16'
      ? Int16Array
      : D extends 'uint16'
        ? Uint16Array
        : D extends 'int32'
          ? Int32Array
          : D extends 'uint32'
            ? Uint32Array
            : D extends 'int64'
              ? BigInt64Array
              : D extends 'uint64'
                ? BigUint64Array
                : D extends 'float32'
                  ? Float32Array
                  : Float64Array;

export type NumericArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export type ColumnData =
  | { kind: 'primitive'; dtype: DType; values: NumericArray }
  | { kind: 'fixed'; size: number; child: ColumnData }
  | { kind: 'list'; offsets: Int32Array; child: ColumnData }
  | { kind: 'utf8'; offsets: Int32Array; bytes: Uint8Array };

/** The logical type of a column, without data: what `ls` prints and what a schema is built from. */
export type ColumnType =
  | { kind: 'primitive'; dtype: DType }
  | { kind: 'fixed'; size: number; child: ColumnType }
  | { kind: 'list'; child: ColumnType }
  | { kind: 'utf8' };

export const DTYPE_BYTES: Record<DType, number> = {
  bool: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float32: 4,
  float64: 8,
};

/** A typed array of `dtype` over `n` values of `buffer` from `byteOffset` (which must be aligned). */
export function typedView(dtype: DType, buffer: ArrayBufferLike, byteOffset: number, n: number): NumericArray {
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return new Uint8Array(buffer, byteOffset, n);
    case 'int8':
      return new Int8Array(buffer, byteOffset, n);
    case 'int16':
      return new Int16Array(buffer, byteOffset, n);
    case 'uint16':
      return new Uint16Array(buffer, byteOffset, n);
    case 'int32':
      return new Int32Array(buffer, byteOffset, n);
    case 'uint32':
      return new Uint32Array(buffer, byteOffset, n);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, n);
    case 'uint64':
      return new BigUint64Array(buffer, byteOffset, n);
    case 'float32':
      return new Float32Array(buffer, byteOffset, n);
    case 'float64':
      return new Float64Array(buffer, byteOffset, n);
  }
}

export function allocTyped(dtype: DType, n: number): NumericArray {
  return typedView(dtype, new ArrayBuffer(n * DTYPE_BYTES[dtype]), 0, n);
}

export function columnRows(c: ColumnData): number {
  switch (c.kind) {
    case 'primitive':
      return c.values.length;
    case 'fixed':
      return columnRows(c.child) / c.size;
    case 'list':
    case 'utf8':
      return c.offsets.length - 1;
  }
}

export function columnType(c: ColumnData): ColumnType {
  switch (c.kind) {
    case 'primitive':
      return { kind: 'primitive', dtype: c.dtype };
    case 'fixed':
      return { kind: 'fixed', size: c.size, child: columnType(c.child) };
    case 'list':
      return { kind: 'list', child: columnType(c.child) };
    case 'utf8':
      return { kind: 'utf8' };
  }
}

/** `float32`, `list<float32>`, `fixed<3, int32>`, `list<list<int32>>`, `utf8`. */
export function formatColumnType(t: ColumnType): string {
  switch (t.kind) {
    case 'primitive':
      return t.dtype;
    case 'fixed':
      return `fixed<${t.size}, ${formatColumnType(t.child)}>`;
    case 'list':
      return `list<${formatColumnType(t.child)}>`;
    case 'utf8':
      return 'utf8';
  }
}

export function sameColumnType(a: ColumnType, b: ColumnType): boolean {
  return formatColumnType(a) === formatColumnType(b);
}

/** A set of equally long columns covering entries [entryStart, entryStop) of one tree. */
export interface ColumnBatch {
  entryStart: number;
  entryStop: number;
  columns: { name: string; data: ColumnData }[];
}

/** Concatenates columns of the same type row-wise (used to join batches). */
export function concatColumns(parts: ColumnData[]): ColumnData {
  if (parts.length === 0) throw new Error('concatColumns: nothing to concatenate');
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  switch (first.kind) {
    case 'primitive': {
      const n = parts.reduce((s, p) => s + (p as typeof first).values.length, 0);
      const out = allocTyped(first.dtype, n);
      let o = 0;
      for (const p of parts as (typeof first)[]) {
        (out as Uint8Array).set(p.values as Uint8Array, o);
        o += p.values.length;
      }
      return { kind: 'primitive', dtype: first.dtype, values: out };
    }
    case 'fixed':
      return { kind: 'fixed', size: first.size, child: concatColumns(parts.map((p) => (p as typeof first).child)) };
    case 'list':
    case 'utf8': {
      const rows = parts.reduce((s, p) => s + (p as { offsets: Int32Array }).offsets.length - 1, 0);
      const offsets = new Int32Array(rows + 1);
      let r = 0;
      let base = 0;
      for (const p of parts as { offsets: Int32Array }[]) {
        const o = p.offsets;
        for (let i = 1; i < o.length; i++) offsets[r + i] = base + o[i]! - o[0]!;
        r += o.length - 1;
        base = offsets[r]!;
      }
      if (first.kind === 'utf8') {
        const bytes = new Uint8Array(base);
        let at = 0;
        for (const p of parts as (typeof first)[]) {
          const chunk = p.bytes.subarray(p.offsets[0]!, p.offsets[p.offsets.length - 1]!);
          bytes.set(chunk, at);
          at += chunk.length;
        }
        return { kind: 'utf8', offsets, bytes };
      }
      const children = (parts as Extract<ColumnData, { kind: 'list' }>[]).map((p) => sliceRows(p.child, p.offsets[0]!, p.offsets[p.offsets.length - 1]!));
      return { kind: 'list', offsets, child: concatColumns(children) };
    }
  }
}

/** Rows [start, stop) of a column; values are views where the layout allows. */
export function sliceRows(c: ColumnData, start: number, stop: number): ColumnData {
  switch (c.kind) {
    case 'primitive':
      return { kind: 'primitive', dtype: c.dtype, values: c.values.subarray(start, stop) as NumericArray };
    case 'fixed':
      return { kind: 'fixed', size: c.size, child: sliceRows(c.child, start * c.size, stop * c.size) };
    case 'list':
    case 'utf8': {
      const o = c.offsets.subarray(start, stop + 1);
      const offsets = new Int32Array(o.length);
      for (let i = 0; i < o.length; i++) offsets[i] = o[i]! - o[0]!;
      if (c.kind === 'utf8') return { kind: 'utf8', offsets, bytes: c.bytes.subarray(o[0]!, o[o.length - 1]!) };
      return { kind: 'list', offsets, child: sliceRows(c.child, o[0]!, o[o.length - 1]!) };
    }
  }
}
