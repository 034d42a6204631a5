/**
 * A minimal, read-only ZIP reader for Keras 3 `.keras` archives: the central directory, stored (method 0)
 * and deflated (method 8) entries, CRC-32 checked on every read. No zip64, no encryption, no multi-disk
 * archives: those are reported as UnsupportedError; anything inconsistent as CorruptDataError.
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { CorruptDataError, UnsupportedError } from '../../errors.js';

/** One entry of the central directory. */
export interface ZipEntry {
  /** Path inside the archive, '/'-separated (directories end with '/'). */
  name: string;
  /** 0 stored, 8 deflate (others cannot be read). */
  method: number;
  /** General purpose bit flags. */
  flags: number;
  /** CRC-32 of the uncompressed bytes, as recorded in the central directory. */
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local file header. */
  localHeaderOffset: number;
}

/** An opened archive: the entries of its central directory and their contents. */
export interface ZipArchive {
  /** The label used in error messages (usually the file path). */
  readonly file: string;
  /** Entries in central-directory order. */
  readonly entries: readonly ZipEntry[];
  /** The entry with this exact name, or undefined. */
  entry(name: string): ZipEntry | undefined;
  /** The uncompressed, CRC-checked bytes of an entry (CorruptDataError if it is missing). */
  read(name: string): Uint8Array;
  /** An entry decoded as UTF-8. */
  readText(name: string): string;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;

/** True if the bytes start with a ZIP local file header (`PK\x03\x04`). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

type Crc32 = (data: Uint8Array) => number;
let crcImpl: Crc32 | undefined;

/** CRC-32 (IEEE) of `data`: node:zlib's crc32 where this Node has it (≥ 20.15), else @node-rs/crc32. */
export function crc32(data: Uint8Array): number {
  if (!crcImpl) {
    const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    if (typeof native === 'function') {
      crcImpl = (d) => native(d) >>> 0;
    } else {
      const req = createRequire(import.meta.url);
      const mod = req('@node-rs/crc32') as { crc32: (d: Uint8Array) => number };
      crcImpl = (d) => mod.crc32(d) >>> 0;
    }
  }
  return crcImpl(data);
}

const utf8 = new TextDecoder('utf-8');

/**
 * Parses the central directory of a ZIP archive held in memory. `file` names the archive in error messages.
 * Entry contents are read (and checked) lazily by `read`.
 */
export function openZip(bytes: Uint8Array, file: string): ZipArchive {
  const ctx = { file };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  if (n < EOCD_SIZE) throw new CorruptDataError(`not a complete ZIP archive (${n} bytes)`, ctx);

  // End of central directory: the last signature within the final 22 + 65535 bytes whose comment ends the file.
  let eocd = -1;
  for (let p = n - EOCD_SIZE; p >= Math.max(0, n - EOCD_SIZE - 0xffff); p--) {
    if (dv.getUint32(p, true) === SIG_EOCD && p + EOCD_SIZE + dv.getUint16(p + 20, true) === n) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    throw new CorruptDataError('ZIP end-of-central-directory record not found (truncated or not a ZIP archive)', ctx);
  }
  const disk = dv.getUint16(eocd + 4, true);
  const cdDisk = dv.getUint16(eocd + 6, true);
  const entriesOnDisk = dv.getUint16(eocd + 8, true);
  const total = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOffset = dv.getUint32(eocd + 16, true);
  if (
    (eocd >= 20 && dv.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR) ||
    total === 0xffff ||
    cdSize === 0xffffffff ||
    cdOffset === 0xffffffff
  ) {
    throw new UnsupportedError('ZIP64 archives are not supported (the archive is over 4 GiB or has over 65535 entries)', ctx);
  }
  if (disk !== 0 || cdDisk !== 0 || entriesOnDisk !== total) {
    throw new UnsupportedError('multi-disk (split) ZIP archives are not supported', ctx);
  }
  if (cdOffset + cdSize > eocd) {
    throw new CorruptDataError(
      `ZIP central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${eocd} (truncated?)`,
      ctx,
    );
  }

  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < total; i++) {
    if (p + CENTRAL_SIZE > cdOffset + cdSize || dv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new CorruptDataError(`ZIP central directory entry ${i} of ${total} is malformed (at byte ${p})`, ctx);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    const compressedSize = dv.getUint32(p + 20, true);
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const localHeaderOffset = dv.getUint32(p + 42, true);
    const end = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) {
      throw new CorruptDataError(`ZIP central directory entry ${i} of ${total} runs past the directory`, ctx);
    }
    // Names are UTF-8 (flag bit 11) in every archive Keras writes; CP437 names decode the same for ASCII.
    const name = utf8.decode(bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen));
    if (compressedSize === 0xffffffff || size === 0xffffffff || localHeaderOffset === 0xffffffff) {
      throw new UnsupportedError(`ZIP entry '${name}': ZIP64 sizes are not supported`, ctx);
    }
    if (byName.has(name)) throw new CorruptDataError(`ZIP archive has two entries named '${name}'`, ctx);
    const e: ZipEntry = { name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset };
    entries.push(e);
    byName.set(name, e);
    p = end;
  }

  const read = (name: string): Uint8Array => {
    const e = byName.get(name);
    if (!e) throw new CorruptDataError(`ZIP archive has no entry '${name}'`, ctx);
    const what = `ZIP entry '${name}'`;
    if (e.flags & 0x1) throw new UnsupportedError(`${what} is encrypted`, ctx);
    const lh = e.localHeaderOffset;
    if (lh + LOCAL_SIZE > n || dv.getUint32(lh, true) !== SIG_LOCAL) {
      throw new CorruptDataError(`${what}: no local file header at byte ${lh} (truncated or corrupt archive)`, ctx);
    }
    const start = lh + LOCAL_SIZE + dv.getUint16(lh + 26, true) + dv.getUint16(lh + 28, true);
    if (start + e.compressedSize > n) {
      throw new CorruptDataError(`${what}: ${e.compressedSize} bytes at ${start} run past the end of the file (truncated)`, ctx);
    }
    const raw = bytes.subarray(start, start + e.compressedSize);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) {
        throw new CorruptDataError(`${what}: stored entry with ${e.compressedSize} bytes on disk but size ${e.size}`, ctx);
      }
      out = raw;
    } else if (e.method === 8) {
      try {
        out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
      } catch (err) {
        throw new CorruptDataError(`${what}: deflate data is corrupt (${(err as Error).message})`, ctx, { cause: err });
      }
      if (out.length !== e.size) {
        throw new CorruptDataError(`${what}: inflates to ${out.length} bytes, the directory says ${e.size}`, ctx);
      }
    } else {
      throw new UnsupportedError(`${what}: compression method ${e.method} is not supported (only stored and deflate)`, ctx);
    }
    const c = crc32(out);
    if (c !== e.crc32) {
      throw new CorruptDataError(
        `${what}: CRC-32 mismatch (computed ${c.toString(16).padStart(8, '0')}, recorded ${e.crc32.toString(16).padStart(8, '0')})`,
        ctx,
      );
    }
    return out;
  };

  return {
    file,
    entries,
    entry: (name) => byName.get(name),
    read,
    readText: (name) => utf8.decode(read(name)),
  };
}
