/**
 * Gathering rows from several chunks (ColumnData of one type) into a new column, on typed arrays: no
 * per-row JS objects. A pick is (chunk, row). Fixed-size columns of a primitive type (HLF_input,
 * GRU_input, masks, encoded labels) take a fast path: one typed-array copy per row. Lists and strings go
 * through range copies (offsets rebuilt, child ranges copied).
 */
import { type ColumnData, type ColumnType, type DType, type NumericArray, allocTyped } from '../root/columns.js';

/** Below this many values per row a plain loop beats subarray() + set(). */
const SET_MIN = 24;

/** The leaf dtype and values per row of a (possibly nested) fixed-size column of a primitive type. */
function flatFixed(t: ColumnType): { dtype: DType; width: number } | null {
  let w = 1;
  let c = t;
  while (c.kind === 'fixed') {
    w *= c.size;
    c = c.child;
  }
  return c.kind === 'primitive' ? { dtype: c.dtype, width: w } : null;
}

function leafValues(c: ColumnData): NumericArray {
  let x = c;
  while (x.kind === 'fixed') x = x.child;
  return (x as Extract<ColumnData, { kind: 'primitive' }>).values;
}

function rewrap(t: ColumnType, values: NumericArray): ColumnData {
  if (t.kind === 'primitive') return { kind: 'primitive', dtype: t.dtype, values };
  if (t.kind === 'fixed') return { kind: 'fixed', size: t.size, child: rewrap(t.child, values) };
  throw new Error('rewrap: not a fixed column of a primitive type');
}

/**
 * Rows picks[start .. start+n) of `chunks`: row i of the result is row rowIdx[start+i] of chunk
 * chunks[chunkIdx[start+i]]. All chunks must have type `type`.
 */
export function gatherColumn(type: ColumnType, chunks: ColumnData[], chunkIdx: Int32Array, rowIdx: Int32Array, start: number, n: number): ColumnData {
  const flat = flatFixed(type);
  if (flat) {
    const w = flat.width;
    const srcs = chunks.map(leafValues) as Uint8Array[]; // any typed array: only set()/[] are used
    const out = allocTyped(flat.dtype, n * w) as Uint8Array;
    if (w >= SET_MIN) {
      for (let i = 0; i < n; i++) {
        const r = rowIdx[start + i]! * w;
        out.set(srcs[chunkIdx[start + i]!]!.subarray(r, r + w), i * w);
      }
    } else if (w === 1) {
      for (let i = 0; i < n; i++) out[i] = srcs[chunkIdx[start + i]!]![rowIdx[start + i]!]!;
    } else {
      for (let i = 0, o = 0; i < n; i++) {
        const src = srcs[chunkIdx[start + i]!]!;
        const r = rowIdx[start + i]! * w;
        for (let j = 0; j < w; j++) out[o++] = src[r + j]!;
      }
    }
    return rewrap(type, out as unknown as NumericArray);
  }
  const ci = chunkIdx.subarray(start, start + n);
  const begin = new Float64Array(n);
  const len = new Float64Array(n).fill(1);
  for (let i = 0; i < n; i++) begin[i] = rowIdx[start + i]!;
  return gatherRanges(type, chunks, ci, begin, len);
}

/** Concatenates the row ranges [begin[i], begin[i] + len[i]) of chunks[ci[i]], in order. */
function gatherRanges(type: ColumnType, chunks: ColumnData[], ci: Int32Array, begin: Float64Array, len: Float64Array): ColumnData {
  const m = ci.length;
  switch (type.kind) {
    case 'primitive': {
      let total = 0;
      for (let i = 0; i < m; i++) total += len[i]!;
      const out = allocTyped(type.dtype, total) as Uint8Array;
      const srcs = chunks.map((c) => (c as Extract<ColumnData, { kind: 'primitive' }>).values as Uint8Array);
      let o = 0;
      for (let i = 0; i < m; i++) {
        const src = srcs[ci[i]!]!;
        const b = begin[i]!;
        const l = len[i]!;
        if (l >= SET_MIN) out.set(src.subarray(b, b + l), o);
        else for (let j = 0; j < l; j++) out[o + j] = src[b + j]!;
        o += l;
      }
      return { kind: 'primitive', dtype: type.dtype, values: out as unknown as NumericArray };
    }
    case 'fixed': {
      const s = type.size;
      const b2 = new Float64Array(m);
      const l2 = new Float64Array(m);
      for (let i = 0; i < m; i++) {
        b2[i] = begin[i]! * s;
        l2[i] = len[i]! * s;
      }
      const children = chunks.map((c) => (c as Extract<ColumnData, { kind: 'fixed' }>).child);
      return { kind: 'fixed', size: s, child: gatherRanges(type.child, children, ci, b2, l2) };
    }
    case 'list':
    case 'utf8': {
      let rows = 0;
      for (let i = 0; i < m; i++) rows += len[i]!;
      const offsets = new Int32Array(rows + 1);
      const b2 = new Float64Array(m);
      const l2 = new Float64Array(m);
      let r = 0;
      let base = 0;
      for (let i = 0; i < m; i++) {
        const off = (chunks[ci[i]!] as { offsets: Int32Array }).offsets;
        const b = begin[i]!;
        const l = len[i]!;
        const o0 = off[b]!;
        for (let j = 1; j <= l; j++) offsets[r + j] = base + off[b + j]! - o0;
        r += l;
        b2[i] = o0;
        l2[i] = off[b + l]! - o0;
        base += l2[i]!;
      }
      if (type.kind === 'utf8') {
        const bytes = new Uint8Array(base);
        let o = 0;
        for (let i = 0; i < m; i++) {
          const src = (chunks[ci[i]!] as Extract<ColumnData, { kind: 'utf8' }>).bytes;
          bytes.set(src.subarray(b2[i]!, b2[i]! + l2[i]!), o);
          o += l2[i]!;
        }
        return { kind: 'utf8', offsets, bytes };
      }
      const children = chunks.map((c) => (c as Extract<ColumnData, { kind: 'list' }>).child);
      return { kind: 'list', offsets, child: gatherRanges(type.child, children, ci, b2, l2) };
    }
  }
}

/** Bytes held by a column's buffers (values, offsets, string bytes). */
export function columnBytes(c: ColumnData): number {
  switch (c.kind) {
    case 'primitive':
      return c.values.byteLength;
    case 'fixed':
      return columnBytes(c.child);
    case 'list':
      return c.offsets.byteLength + columnBytes(c.child);
    case 'utf8':
      return c.offsets.byteLength + c.bytes.byteLength;
  }
}
