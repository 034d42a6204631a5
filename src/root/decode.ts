/**
 * Decoding big-endian basket bytes into native typed arrays. Hot path: bulk copies plus in-place
 * byte swaps on aligned typed-array views; no per-value allocation.
 */
import { CorruptDataError, type ErrorContext } from '../errors.js';
import { allocTyped, typedView, type NumericArray } from './columns.js';
import type { RawBasket } from './basket.js';
import type { ValueCodec } from './tree.js';

/**
 * Decodes `n` values starting at `src[pos]` into `out[outIndex..]`; returns the position after them.
 * For plain values `src` must hold n*bytes bytes from pos.
 */
export function decodeValues(codec: ValueCodec, src: Uint8Array, pos: number, n: number, out: NumericArray, outIndex: number): number {
  if (n === 0) return pos;
  switch (codec.kind) {
    case 'plain':
      return decodePlain(codec.bytes, src, pos, n, out, outIndex);
    case 'packed':
      return decodePacked(codec, src, pos, n, out as Float32Array | Float64Array, outIndex);
    case 'bits':
      throw new Error('bits values are decoded per entry');
  }
}

function decodePlain(bytes: number, src: Uint8Array, pos: number, n: number, out: NumericArray, outIndex: number, inPlace = false): number {
  const len = n * bytes;
  if (!inPlace) new Uint8Array(out.buffer, out.byteOffset + outIndex * bytes, len).set(src.subarray(pos, pos + len));
  switch (bytes) {
    case 1:
      break;
    case 2: {
      const u = new Uint16Array(out.buffer, out.byteOffset + outIndex * 2, n);
      for (let i = 0; i < n; i++) {
        const x = u[i]!;
        u[i] = (x >>> 8) | ((x & 0xff) << 8);
      }
      break;
    }
    case 4: {
      const u = new Uint32Array(out.buffer, out.byteOffset + outIndex * 4, n);
      for (let i = 0; i < n; i++) {
        const x = u[i]!;
        u[i] = (x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
      }
      break;
    }
    case 8: {
      const u = new Uint32Array(out.buffer, out.byteOffset + outIndex * 8, n * 2);
      for (let i = 0; i < 2 * n; i += 2) {
        const a = u[i]!;
        const b = u[i + 1]!;
        u[i] = (b << 24) | ((b & 0xff00) << 8) | ((b >>> 8) & 0xff00) | (b >>> 24);
        u[i + 1] = (a << 24) | ((a & 0xff00) << 8) | ((a >>> 8) & 0xff00) | (a >>> 24);
      }
      break;
    }
    default:
      throw new Error(`unsupported value size ${bytes}`);
  }
  return pos + len;
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

function decodePacked(
  codec: Extract<ValueCodec, { kind: 'packed' }>,
  src: Uint8Array,
  pos: number,
  n: number,
  out: Float32Array | Float64Array,
  outIndex: number,
): number {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (codec.mode === 'float') {
    for (let i = 0; i < n; i++, pos += 4) out[outIndex + i] = v.getFloat32(pos);
  } else if (codec.mode === 'factor') {
    const { factor, xmin } = codec;
    for (let i = 0; i < n; i++, pos += 4) out[outIndex + i] = v.getUint32(pos) / factor + xmin;
  } else {
    const nbits = codec.nbits;
    const mask = (1 << (nbits + 1)) - 1;
    const sign = 1 << (nbits + 1);
    for (let i = 0; i < n; i++, pos += 3) {
      const exp = src[pos]!;
      const man = v.getUint16(pos + 1);
      i32[0] = (exp << 23) | ((man & mask) << (23 - nbits));
      out[outIndex + i] = man & sign ? -f32[0]! : f32[0]!;
    }
  }
  return pos;
}

/** Number of fBits values in src[start, end): 4 bytes each, plus 2 when kIsReferenced (bit 4) is set. */
export function countBits(src: Uint8Array, start: number, end: number, ctx: ErrorContext): number {
  let n = 0;
  let p = start;
  while (p < end) {
    const referenced = src[p + 3]! & 0x10;
    p += referenced ? 6 : 4;
    n++;
  }
  if (p !== end) throw new CorruptDataError('fBits values do not fill their entry', ctx);
  return n;
}

export function decodeBits(src: Uint8Array, start: number, end: number, out: Uint32Array, outIndex: number): number {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  let p = start;
  let i = outIndex;
  while (p < end) {
    const x = v.getUint32(p);
    out[i++] = x;
    p += x & 0x10 ? 6 : 4;
  }
  return i;
}

/** Reads a ROOT string length prefix at pos: [length, position of the first byte]. */
export function stringLength(src: Uint8Array, pos: number): [number, number] {
  const n = src[pos]!;
  if (n !== 255) return [n, pos + 1];
  const len = ((src[pos + 1]! << 24) | (src[pos + 2]! << 16) | (src[pos + 3]! << 8) | src[pos + 4]!) >>> 0;
  return [len, pos + 5];
}

/**
 * All values of a basket whose data is nothing but plain values (scalars, fixed arrays, `X[n]` leaves,
 * collection members), in native byte order; computed once per basket and cached on it.
 * A decompressed basket that is suitably aligned is byte-swapped in place (no copy); otherwise the
 * values are copied once into a fresh array.
 */
export function nativeValues(rb: RawBasket, codec: Extract<ValueCodec, { kind: 'plain' }>): NumericArray {
  if (rb.native) return rb.native;
  const n = Math.floor(rb.data.length / codec.bytes);
  let out: NumericArray;
  if (rb.owned && rb.data.byteOffset % codec.bytes === 0) {
    out = typedView(codec.dtype, rb.data.buffer, rb.data.byteOffset, n);
    decodePlain(codec.bytes, rb.data, 0, n, out, 0, true);
  } else {
    out = allocTyped(codec.dtype, n);
    decodePlain(codec.bytes, rb.data, 0, n, out, 0);
  }
  rb.native = out;
  return out;
}
