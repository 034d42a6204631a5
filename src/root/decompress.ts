/**
 * Native-speed decompression of ROOT's compressed buffers (key payloads and baskets).
 *
 * ROOT compresses an object of `objlen` bytes as a sequence of blocks (at most 0xffffff bytes in and out
 * each). Every block starts with a 9-byte header:
 *
 *   bytes 0-1  algorithm: "ZL" zlib, "CS" old ROOT deflate, "XZ" xz/LZMA, "L4" LZ4, "ZS" zstd
 *   byte  2    method (8 = deflate for ZL/CS, 0 for XZ, 1 for ZS, the LZ4 major version for L4)
 *   bytes 3-5  compressed size of the block, excluding these 9 bytes (little-endian)
 *   bytes 6-8  uncompressed size of the block (little-endian)
 *
 * followed by the compressed data:
 *   ZL  a zlib stream (2-byte zlib header, raw deflate, adler32)      → node:zlib inflateSync
 *   CS  raw deflate, no header or checksum                           → node:zlib inflateRawSync
 *   XZ  an xz stream (liblzma easy encoder, CRC32 check)               → @napi-rs/lzma (lzma-rs), sync
 *   L4  8-byte xxHash64 (seed 0) of the rest, stored big-endian, then one LZ4 *block* (not a frame)
 *                                                                     → hand-written decoder below,
 *                                                                       checksum with xxhash-wasm
 *   ZS  a zstd frame (with content size, without content checksum)    → zstddec (WASM)
 *
 * The library choices are measured in docs/decisions.md ("Decompression codecs"; bench/codecs.ts).
 * zstddec and xxhash-wasm are WebAssembly and need `await initCodecs()` once before LZ4 or ZSTD data is
 * decoded; everything else is synchronous and ready at import. @napi-rs/lzma's native binary is loaded on
 * the first XZ block, so a platform without it can still read every other codec.
 *
 * Integrity: ZL (adler32), XZ (CRC32) and L4 (xxHash64) blocks carry checksums and are verified. CS and ZS
 * blocks as ROOT writes them carry none, so damage that still decodes to the right length cannot be seen
 * (ROOT cannot see it either). Every size is checked, and nothing is ever returned short or padded.
 */
import { createRequire } from 'node:module';
import { inflateRawSync, inflateSync } from 'node:zlib';
import xxhashWasm from 'xxhash-wasm';
import { ZSTDDecoder } from 'zstddec';
import { CorruptDataError, UnsupportedError, type ErrorContext } from '../errors.js';

/** The compression algorithm of one block, from its 9-byte header. */
export type Codec = 'ZLIB' | 'LZMA' | 'LZ4' | 'ZSTD' | 'OLD';

/** Size of ROOT's per-block compression header. */
export const BLOCK_HEADER_SIZE = 9;
/** Size of the xxHash64 checksum that starts every LZ4 block's data. */
export const LZ4_CHECKSUM_SIZE = 8;
/** Largest compressed or uncompressed size one block can have (3-byte size fields). */
export const MAX_BLOCK_SIZE = 0xffffff;

const Z = 0x5a, L = 0x4c, C = 0x43, S = 0x53, X = 0x58, FOUR = 0x34;

/** The codec of the block header at `offset`, or undefined when the bytes there are not a ROOT block header. */
export function blockCodec(buf: Uint8Array, offset = 0): Codec | undefined {
  if (offset < 0 || offset + 3 > buf.length) return undefined;
  const a = buf[offset]!, b = buf[offset + 1]!, m = buf[offset + 2]!;
  if (a === Z && b === L && m === 8) return 'ZLIB';
  if (a === L && b === FOUR) return 'LZ4'; // ROOT accepts any LZ4 version byte here
  if (a === Z && b === S && m === 1) return 'ZSTD';
  if (a === X && b === Z && m === 0) return 'LZMA';
  if (a === C && b === S && m === 8) return 'OLD';
  return undefined;
}

export interface BlockHeader {
  codec: Codec;
  /** Bytes of compressed data after the 9-byte header (for LZ4 including the 8-byte checksum). */
  compressedSize: number;
  uncompressedSize: number;
}

/** Parses the 9-byte block header at `offset`; undefined when it is not one or is cut short. */
export function readBlockHeader(buf: Uint8Array, offset = 0): BlockHeader | undefined {
  const codec = blockCodec(buf, offset);
  if (!codec || offset + BLOCK_HEADER_SIZE > buf.length) return undefined;
  return {
    codec,
    compressedSize: buf[offset + 3]! | (buf[offset + 4]! << 8) | (buf[offset + 5]! << 16),
    uncompressedSize: buf[offset + 6]! | (buf[offset + 7]! << 8) | (buf[offset + 8]! << 16),
  };
}

/**
 * ROOT's rule (TKey::ReadObj, TBasket::ReadBasketBuffers): a payload of `payloadLength` bytes
 * (fNbytes - fKeylen) holding an object of `objlen` bytes is compressed iff objlen > payloadLength;
 * otherwise the object is stored as is.
 */
export function isCompressed(payloadLength: number, objlen: number): boolean {
  return objlen > payloadLength;
}

/**
 * The object bytes of a key or basket payload: the payload itself when it is stored uncompressed (copied
 * into `out` when one is given), else `rootUnzip(payload, objlen, ctx, out)`.
 */
export function unzipPayload(payload: Uint8Array, objlen: number, ctx?: ErrorContext, out?: Uint8Array): Uint8Array {
  if (isCompressed(payload.length, objlen)) return rootUnzip(payload, objlen, ctx, out);
  // Like ROOT, take the first objlen bytes of a stored payload (it is never shorter here).
  const obj = payload.length === objlen ? payload : payload.subarray(0, objlen);
  if (!out) return obj;
  checkOut(out, objlen);
  out.set(obj);
  return out.length === objlen ? out : out.subarray(0, objlen);
}

// ---------------------------------------------------------------------------------------------------
// Decoders that need asynchronous (WebAssembly) initialisation
// ---------------------------------------------------------------------------------------------------
type H64Raw = (input: Uint8Array, seed?: bigint) => bigint;
let h64Raw: H64Raw | undefined;
let zstd: ZSTDDecoder | undefined;
let initPromise: Promise<void> | undefined;

/**
 * Instantiates the WebAssembly decoders (xxHash64 for LZ4 checksums, zstd). Call and await once before
 * reading; later calls return the same promise. Needed for LZ4 and ZSTD only.
 */
export function initCodecs(): Promise<void> {
  initPromise ??= (async () => {
    const decoder = new ZSTDDecoder();
    const [api] = await Promise.all([xxhashWasm(), decoder.init()]);
    h64Raw = api.h64Raw;
    zstd = decoder;
  })();
  return initPromise;
}

/** True once `initCodecs()` has completed. */
export function codecsReady(): boolean {
  return h64Raw !== undefined && zstd !== undefined;
}

function notInitialised(codec: Codec): Error {
  return new Error(`${codec} decompression needs its WebAssembly decoder: call and await initCodecs() before reading`);
}

function isZstdFrame(src: Uint8Array): boolean {
  return src.length >= 6 && src[0] === 0x28 && src[1] === 0xb5 && src[2] === 0x2f && src[3] === 0xfd;
}

/** The content size a zstd frame header declares, or -1 when it declares none (ROOT always writes it). */
function zstdFrameContentSize(src: Uint8Array): number {
  const fhd = src[4]!;
  const fcsFlag = fhd >>> 6, single = (fhd >>> 5) & 1, dictFlag = fhd & 3;
  const fcsSize = fcsFlag === 0 ? single : 1 << fcsFlag;
  if (fcsSize === 0) return -1;
  const p = 5 + (single ? 0 : 1) + (dictFlag === 3 ? 4 : dictFlag);
  if (p + fcsSize > src.length) return -1;
  if (fcsSize === 1) return src[p]!;
  if (fcsSize === 2) return (src[p]! | (src[p + 1]! << 8)) + 256;
  const lo = (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
  if (fcsSize === 4) return lo;
  const hi = (src[p + 4]! | (src[p + 5]! << 8) | (src[p + 6]! << 16) | (src[p + 7]! << 24)) >>> 0;
  return hi * 4294967296 + lo;
}

/**
 * Decompresses one zstd frame (without ROOT's 9-byte header). Synchronous; needs `initCodecs()` first.
 * `expectedSize`, when given, must match the frame's content; otherwise the frame's declared content size
 * is used. Throws on any decoder error or size mismatch. This is the decoder hep-ml hands to jsroot.
 */
export function zstdDecompress(src: Uint8Array, expectedSize?: number): Uint8Array {
  if (!zstd) throw notInitialised('ZSTD');
  if (!isZstdFrame(src)) throw new Error(`not a zstd frame (starts with 0x${hex(src, 0, 4)})`);
  const declared = zstdFrameContentSize(src);
  const size = expectedSize ?? declared;
  if (size < 0) throw new Error('the zstd frame does not declare its content size');
  if (declared >= 0 && declared !== size) throw new Error(`zstd frame declares ${declared} bytes of content, expected ${size}`);
  if (size > 0x7fffffff) throw new Error(`zstd frame declares an implausible ${size} bytes of content`);
  if (size === 0) return new Uint8Array(0);
  // zstddec returns an empty array when ZSTD_decompress reports an error.
  const res = zstd.decode(src, size);
  if (res.length !== size) throw new Error(`zstd decoder produced ${res.length} bytes, expected ${size}${res.length === 0 ? ' (decoder error: data corrupt or truncated)' : ''}`);
  return res;
}

// ---------------------------------------------------------------------------------------------------
// XZ: @napi-rs/lzma (Rust lzma-rs via N-API), loaded on first use
// ---------------------------------------------------------------------------------------------------
type NapiLzma = typeof import('@napi-rs/lzma');
let xzDecompressSync: ((input: Uint8Array) => Uint8Array) | undefined;

function xzDecoder(ctx: ErrorContext | undefined): (input: Uint8Array) => Uint8Array {
  if (!xzDecompressSync) {
    try {
      const mod = createRequire(import.meta.url)('@napi-rs/lzma') as NapiLzma;
      xzDecompressSync = mod.xz.decompressSync;
    } catch (e) {
      throw new UnsupportedError(
        `XZ/LZMA-compressed data needs the native decoder @napi-rs/lzma, which failed to load on ${process.platform}-${process.arch}: ${firstLine(e)}`,
        ctx ?? {},
        { cause: e },
      );
    }
  }
  return xzDecompressSync;
}

// ---------------------------------------------------------------------------------------------------
// LZ4 block format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md), bounds-checked
// ---------------------------------------------------------------------------------------------------
/** Runs up to this long are copied byte by byte; longer ones with set/copyWithin (bench/codecs.ts). */
const LZ4_LITERAL_LOOP = 32, LZ4_MATCH_LOOP = 32;

/**
 * Decodes one LZ4 block (no checksum, no frame) from `src` into `dst` and returns the number of bytes
 * written. Throws an Error saying what is wrong when the block is malformed or does not fit in `dst`; it
 * never reads or writes out of bounds.
 */
export function lz4DecodeBlock(src: Uint8Array, dst: Uint8Array): number {
  const iend = src.length, oend = dst.length;
  let ip = 0, op = 0;
  if (iend === 0) throw new Error('empty LZ4 block');
  for (;;) {
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b = 255;
      while (b === 255) {
        if (ip >= iend) throw new Error(`literal length runs past the end of the block (${iend} bytes)`);
        b = src[ip++]!;
        lit += b;
      }
    }
    if (lit !== 0) {
      if (ip + lit > iend) throw new Error(`literal run of ${lit} bytes at byte ${ip} runs past the end of the block (${iend} bytes)`);
      if (op + lit > oend) throw new Error(`decoded data overflows the expected ${oend} bytes (literal run of ${lit} at output byte ${op})`);
      if (lit > LZ4_LITERAL_LOOP) {
        dst.set(src.subarray(ip, ip + lit), op);
        ip += lit;
        op += lit;
      } else {
        const e = ip + lit;
        while (ip < e) dst[op++] = src[ip++]!;
      }
    }
    if (ip >= iend) break; // the last sequence has literals only
    if (ip + 2 > iend) throw new Error(`match offset cut off at byte ${ip} of ${iend}`);
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new Error(`match offset ${offset} at byte ${ip - 2} points outside the ${op} bytes decoded so far`);
    let mlen = token & 15;
    if (mlen === 15) {
      let b = 255;
      while (b === 255) {
        if (ip >= iend) throw new Error(`match length runs past the end of the block (${iend} bytes)`);
        b = src[ip++]!;
        mlen += b;
      }
    }
    mlen += 4;
    if (op + mlen > oend) throw new Error(`decoded data overflows the expected ${oend} bytes (match of ${mlen} at output byte ${op})`);
    const mp = op - offset;
    const e = op + mlen;
    if (mlen <= LZ4_MATCH_LOOP) {
      let q = mp;
      while (op < e) dst[op++] = dst[q++]!;
    } else {
      // Each copyWithin is at most as long as the distance to its source, so it never overlaps; when the
      // match overlaps itself (offset < length) the repeated pattern doubles with every step.
      while (op < e) {
        const n = Math.min(op - mp, e - op);
        dst.copyWithin(op, mp, mp + n);
        op += n;
      }
    }
  }
  return op;
}

// ---------------------------------------------------------------------------------------------------
// rootUnzip
// ---------------------------------------------------------------------------------------------------
function firstLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

function checkOut(out: Uint8Array, objlen: number): void {
  if (out.length < objlen) throw new RangeError(`output buffer of ${out.length} bytes is too small for ${objlen} bytes`);
}

function hex(buf: Uint8Array, from: number, n: number): string {
  let s = '';
  for (let i = from; i < Math.min(buf.length, from + n); i++) s += buf[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * Decompresses a ROOT compressed buffer (one or more blocks with 9-byte headers) that must expand to
 * exactly `objlen` bytes. Synchronous. Returns a Uint8Array of length objlen: `out` (or its first objlen
 * bytes) when given, else a new array (which may be a view into a pooled ArrayBuffer, at an 8-byte aligned
 * offset, for small single-block ZLIB objects).
 *
 * Throws CorruptDataError (with `ctx` as its context) for an unknown or cut-off block header, a block
 * extending past the end of `src`, an LZ4 checksum mismatch, a decoder error, a block that decodes to a
 * different size than its header says, or blocks that add up to more or less than objlen. Bytes after the
 * block that completes objlen are ignored, as ROOT does. Throws a plain Error when an LZ4 or ZSTD block
 * comes before `initCodecs()` has completed, and UnsupportedError when the XZ decoder cannot be loaded.
 */
export function rootUnzip(src: Uint8Array, objlen: number, ctx?: ErrorContext, out?: Uint8Array): Uint8Array {
  if (!Number.isInteger(objlen) || objlen < 0) throw new RangeError(`invalid uncompressed length ${objlen}`);
  if (out) checkOut(out, objlen);
  // Fast path for the common case, one ZLIB block holding the whole object: return inflate's own output
  // (no second buffer, no copy). Any failure falls through to the general path and its error messages.
  if (!out && src.length >= BLOCK_HEADER_SIZE && (src[0] === 0x5a && src[1] === 0x4c)) {
    const clen = src[3]! | (src[4]! << 8) | (src[5]! << 16);
    const ulen = src[6]! | (src[7]! << 8) | (src[8]! << 16);
    if (ulen === objlen && BLOCK_HEADER_SIZE + clen <= src.length && ulen > 0) {
      try {
        const res = inflateSync(src.subarray(BLOCK_HEADER_SIZE, BLOCK_HEADER_SIZE + clen), { chunkSize: Math.max(64, ulen + 1), maxOutputLength: ulen });
        if (res.length === ulen) return new Uint8Array(res.buffer, res.byteOffset, res.length);
      } catch {
        // reported below
      }
    }
  }
  const dst = out ?? new Uint8Array(objlen);
  const context = ctx ?? {};
  const corrupt = (msg: string, cause?: unknown) =>
    new CorruptDataError(`corrupt compressed data: ${msg}`, context, cause === undefined ? undefined : { cause });
  let ip = 0, op = 0, block = 0;
  while (op < objlen) {
    const where = `block ${block} (at byte ${ip} of ${src.length})`;
    if (ip + BLOCK_HEADER_SIZE > src.length) {
      throw corrupt(`buffer ends inside the header of ${where}: decompressed ${op} of ${objlen} bytes before it`);
    }
    const codec = blockCodec(src, ip);
    if (!codec) {
      throw corrupt(`unknown compression header 0x${hex(src, ip, 3)} in ${where}; expected ZL, CS, XZ, L4 or ZS`);
    }
    const clen = src[ip + 3]! | (src[ip + 4]! << 8) | (src[ip + 5]! << 16);
    const ulen = src[ip + 6]! | (src[ip + 7]! << 8) | (src[ip + 8]! << 16);
    const begin = ip + BLOCK_HEADER_SIZE, end = begin + clen;
    if (end > src.length) {
      throw corrupt(`${codec} ${where} needs ${clen} bytes of data but only ${src.length - begin} remain (buffer truncated?)`);
    }
    if (ulen === 0) throw corrupt(`${codec} ${where} declares 0 uncompressed bytes`);
    if (op + ulen > objlen) {
      throw corrupt(`${codec} ${where} expands to ${ulen} bytes, past the expected total of ${objlen} (${op} already decompressed)`);
    }
    const body = src.subarray(begin, end);
    const target = dst.subarray(op, op + ulen);
    let got: number;
    switch (codec) {
      case 'ZLIB':
      case 'OLD': {
        let res: Uint8Array;
        try {
          // One output chunk of ulen+1 bytes: a block that expands to more than ulen fails at once.
          const opts = { chunkSize: Math.max(64, ulen + 1), maxOutputLength: ulen };
          res = codec === 'ZLIB' ? inflateSync(body, opts) : inflateRawSync(body, opts);
        } catch (e) {
          throw corrupt(`${codec} ${where}: ${firstLine(e)}`, e);
        }
        got = res.length;
        if (got === ulen) target.set(res);
        break;
      }
      case 'LZ4': {
        if (!h64Raw) throw notInitialised('LZ4');
        if (clen < LZ4_CHECKSUM_SIZE + 1) throw corrupt(`LZ4 ${where} has only ${clen} bytes, too few for its checksum and data`);
        const payload = body.subarray(LZ4_CHECKSUM_SIZE);
        // ROOT stores XXH64(payload, seed 0) in canonical (big-endian) byte order.
        const stored = new DataView(src.buffer, src.byteOffset + begin, LZ4_CHECKSUM_SIZE).getBigUint64(0, false);
        const computed = h64Raw(payload, 0n);
        if (stored !== computed) {
          throw corrupt(`LZ4 ${where}: checksum mismatch: stored xxhash64 ${stored.toString(16).padStart(16, '0')}, computed ${computed.toString(16).padStart(16, '0')}`);
        }
        try {
          got = lz4DecodeBlock(payload, target);
        } catch (e) {
          throw corrupt(`LZ4 ${where}: ${firstLine(e)}`, e);
        }
        break;
      }
      case 'ZSTD': {
        if (!zstd) throw notInitialised('ZSTD');
        let res: Uint8Array;
        try {
          res = zstdDecompress(body, ulen);
        } catch (e) {
          throw corrupt(`ZSTD ${where}: ${firstLine(e)}`, e);
        }
        got = res.length;
        target.set(res);
        break;
      }
      case 'LZMA': {
        const decode = xzDecoder(ctx);
        let res: Uint8Array;
        try {
          res = decode(body);
        } catch (e) {
          throw corrupt(`LZMA ${where}: ${firstLine(e)}`, e);
        }
        got = res.length;
        if (got === ulen) target.set(res);
        break;
      }
    }
    if (got !== ulen) throw corrupt(`${codec} ${where} decompressed to ${got} bytes, but its header says ${ulen}`);
    ip = end;
    op += ulen;
    block++;
  }
  return out && out.length !== objlen ? out.subarray(0, objlen) : dst;
}

// ---------------------------------------------------------------------------------------------------
// Naming fCompress
// ---------------------------------------------------------------------------------------------------
const ALGORITHMS = [undefined, 'ZLIB', 'LZMA', 'OLD', 'LZ4', 'ZSTD'] as const;

/**
 * A readable name for ROOT's compression setting (TFile/TTree/TBranch fCompress = algorithm * 100 + level,
 * ROOT's Compression.h): "ZLIB-1", "LZMA-9", "OLD-6", "LZ4-4", "ZSTD-5"; "none" for level 0; "inherit" for -1
 * (a branch that takes its tree's setting). Algorithm 0 (values below 100) is the writing ROOT's global default
 * algorithm: "default-N". Unknown algorithms give e.g. "unknown(612)".
 */
export function compressionName(fCompress: number): string {
  if (fCompress === -1) return 'inherit';
  if (!Number.isInteger(fCompress) || fCompress < 0) return `unknown(${fCompress})`;
  const algorithm = Math.floor(fCompress / 100), level = fCompress % 100;
  if (level === 0) return 'none';
  // Algorithm 0 is "the global default" of the ROOT that wrote the file, which has not always been ZLIB
  // (uproot-HZZ-objects.root, ROOT 6.14, says 4 and its baskets are LZ4): name it as such.
  if (algorithm === 0) return `default-${level}`;
  const name = ALGORITHMS[algorithm];
  return name ? `${name}-${level}` : `unknown(${fCompress})`;
}
