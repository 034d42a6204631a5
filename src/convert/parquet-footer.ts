/**
 * The Parquet footer, read in JS, and single-row-group "mini files" built from it.
 *
 * Why: parquet-wasm 0.8.0 has two ways to read. Its async `ParquetFile.fromFile(blob)` reads byte
 * ranges (it works on `fs.openAsBlob`), but it `.unwrap()`s decoding errors inside a spawned task: a
 * corrupt page is a wasm panic thrown from a microtask, an uncaught exception that kills the process
 * while the read's promise never settles. Its sync `readParquet(bytes)` returns errors properly (a JS
 * exception), but wants the whole file as one Uint8Array, copied into wasm memory on every call (the
 * 4 GiB wasm32 ceiling; io-eval §1.3 saw a 1.2 GB file abort).
 *
 * So this module reads the footer itself (a Thrift compact struct, src/convert/parquet-thrift.ts) and,
 * for row group i, builds a small, valid Parquet file holding only that row group: `PAR1`, the row
 * group's column chunks (read with positional reads straight into place), a FileMetaData with that
 * one row group (every page offset shifted to the new position; page index, bloom filter and
 * ordinal references dropped), the footer length and `PAR1`. The sync reader then decodes it, with
 * memory proportional to one row group and errors that can be caught.
 */
import type { FileHandle } from 'node:fs/promises';
import {
  type TList,
  type TStruct,
  TType,
  ThriftError,
  decodeStruct,
  encodeStruct,
  getBinary,
  getField,
  getInt,
  getList,
  getStruct,
  withField,
} from './parquet-thrift.js';

export const PARQUET_MAGIC = Uint8Array.from([0x50, 0x41, 0x52, 0x31]); // "PAR1"
const ENCRYPTED_MAGIC = Uint8Array.from([0x50, 0x41, 0x52, 0x45]); // "PARE"

/** The footer could not be read or is not what the format says: the caller reports it as corrupt. */
export class FooterError extends Error {}
/** A valid file using a feature this reader does not support (encryption, external column chunks). */
export class FooterUnsupportedError extends Error {}

/** One contiguous byte range of the source file and where it goes in the mini file. */
export interface CopyRange {
  /** Offset in the source file. */
  from: number;
  /** Offset in the mini file. */
  to: number;
  length: number;
}

export interface RowGroupPlan {
  index: number;
  rows: number;
  /** Size of the mini file in bytes. */
  size: number;
  /** What to copy from the source into the mini file (coalesced, in file order). */
  copies: CopyRange[];
  /** The mini file's footer (Thrift FileMetaData), length and magic: its last bytes. */
  tail: Uint8Array;
  /** Compressed bytes of the row group's column chunks. */
  chunkBytes: number;
  /** Uncompressed bytes of the row group's column chunks (the sum of total_uncompressed_size). */
  uncompressedBytes: number;
}

export interface ParquetFooter {
  /** The decoded FileMetaData. */
  meta: TStruct;
  fileSize: number;
  /** Total rows (FileMetaData.num_rows). */
  rows: number;
  /** Footer key-value metadata in file order (ARROW:schema included). */
  keyValue: [string, string][];
  createdBy: string | undefined;
  rowGroupRows: number[];
  /** Byte length of the footer (the Thrift FileMetaData) in the file. */
  footerLength: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Reads and decodes the footer of the Parquet file open as `fh` (of `size` bytes). */
export async function readFooter(fh: FileHandle, size: number): Promise<ParquetFooter> {
  if (size < 12) throw new FooterError(`too small to be a Parquet file (${size} bytes)`);
  const head = await readExactly(fh, 0, 4);
  const tailBytes = await readExactly(fh, size - 8, 8);
  const tailMagic = tailBytes.subarray(4, 8);
  if (equalBytes(head, ENCRYPTED_MAGIC) || equalBytes(tailMagic, ENCRYPTED_MAGIC)) {
    throw new FooterUnsupportedError('encrypted Parquet files (PARE) are not supported');
  }
  if (!equalBytes(head, PARQUET_MAGIC)) throw new FooterError('not a Parquet file (no PAR1 magic at the start)');
  if (!equalBytes(tailMagic, PARQUET_MAGIC)) {
    throw new FooterError('no PAR1 magic at the end: the file is truncated or not a complete Parquet file');
  }
  const footerLen = new DataView(tailBytes.buffer, tailBytes.byteOffset, 4).getUint32(0, true);
  if (footerLen === 0 || footerLen > size - 12) {
    throw new FooterError(`footer length ${footerLen} does not fit in a file of ${size} bytes (truncated?)`);
  }
  const footer = await readExactly(fh, size - 8 - footerLen, footerLen);
  let meta: TStruct;
  try {
    meta = decodeStruct(footer).value;
  } catch (e) {
    throw new FooterError(`corrupt footer: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    // Plaintext footer of an encrypted file: encryption_algorithm (a union struct) is set.
    if (getField(meta, 8)?.type === TType.STRUCT) {
      throw new FooterUnsupportedError('encrypted Parquet files are not supported');
    }
    const rows = getInt(meta, 3);
    if (rows === undefined || rows < 0) throw new FooterError('footer has no valid num_rows');
    if (getList(meta, 2) === undefined) throw new FooterError('footer has no schema');
    const keyValue: [string, string][] = [];
    for (const item of getList(meta, 5)?.items ?? []) {
      const kv = item as TStruct;
      const k = getBinary(kv, 1);
      if (k === undefined) continue;
      const v = getBinary(kv, 2);
      keyValue.push([utf8.decode(k), v === undefined ? '' : utf8.decode(v)]);
    }
    const cb = getBinary(meta, 6);
    const rowGroupRows = (getList(meta, 4)?.items ?? []).map((rg, i) => {
      const n = getInt(rg as TStruct, 3);
      if (n === undefined || n < 0) throw new FooterError(`row group ${i} has no valid num_rows`);
      return n;
    });
    return { meta, fileSize: size, rows, keyValue, createdBy: cb && utf8.decode(cb), rowGroupRows, footerLength: footerLen };
  } catch (e) {
    if (e instanceof ThriftError) throw new FooterError(`unexpected footer structure: ${e.message}`);
    throw e;
  }
}

/**
 * The footer with key-value entry `key` set to `value` (replacing an existing one in place), or removed
 * when `value` is undefined. Only the metadata changes: the file's byte layout (footerLength) is kept.
 */
export function withKeyValue(footer: ParquetFooter, key: string, value: string | undefined): ParquetFooter {
  const enc = new TextEncoder();
  const kvs = getList(footer.meta, 5);
  const items: TStruct[] = [];
  let done = false;
  for (const item of kvs?.items ?? []) {
    const k = getBinary(item as TStruct, 1);
    if (k !== undefined && utf8.decode(k) === key) {
      if (value !== undefined && !done) items.push(withField(item as TStruct, 2, TType.BINARY, enc.encode(value)));
      done = true;
    } else {
      items.push(item as TStruct);
    }
  }
  if (!done && value !== undefined) {
    items.push({ kind: 'struct', fields: [{ id: 1, type: TType.BINARY, value: enc.encode(key) }, { id: 2, type: TType.BINARY, value: enc.encode(value) }] });
  }
  const list: TList = { kind: 'list', type: TType.LIST, elemType: TType.STRUCT, items };
  const meta = withField(footer.meta, 5, TType.LIST, items.length > 0 ? list : undefined);
  const keyValue = footer.keyValue.filter(([k]) => k !== key);
  if (value !== undefined) keyValue.push([key, value]);
  return { ...footer, meta, keyValue };
}

/** A Parquet file with the schema and metadata of `footer` and no row groups (for reading the schema). */
export function schemaOnlyFile(footer: ParquetFooter): Uint8Array {
  let meta = withField(footer.meta, 3, TType.I64, 0);
  meta = withField(meta, 4, TType.LIST, { kind: 'list', type: TType.LIST, elemType: TType.STRUCT, items: [] });
  const tail = fileTail(encodeStruct(meta));
  const bytes = new Uint8Array(4 + tail.length);
  bytes.set(PARQUET_MAGIC, 0);
  bytes.set(tail, 4);
  return bytes;
}

/** How to build the mini file of row group `index` (see the module comment). */
export function planRowGroup(footer: ParquetFooter, index: number): RowGroupPlan {
  try {
    return plan(footer, index);
  } catch (e) {
    if (e instanceof ThriftError) throw new FooterError(`row group ${index}: unexpected footer structure: ${e.message}`);
    throw e;
  }
}

function plan(footer: ParquetFooter, index: number): RowGroupPlan {
  const rgList = getList(footer.meta, 4)!;
  const rg = rgList.items[index] as TStruct;
  const columns = getList(rg, 1);
  if (!columns) throw new FooterError(`row group ${index} has no column list`);
  const dataEnd = footer.fileSize - 8 - footer.footerLength;

  // Each column chunk's byte range in the source.
  const chunks = columns.items.map((item, c) => {
    const cc = item as TStruct;
    if (getField(cc, 1) !== undefined) {
      throw new FooterUnsupportedError(`row group ${index}, column ${c}: column chunks in another file (file_path) are not supported`);
    }
    const md = getStruct(cc, 3);
    if (!md) throw new FooterUnsupportedError(`row group ${index}, column ${c}: no column metadata (encrypted column?)`);
    const dataOff = getInt(md, 9);
    const len = getInt(md, 7);
    if (dataOff === undefined || len === undefined) throw new FooterError(`row group ${index}, column ${c}: no data page offset or size`);
    let dictOff = getInt(md, 11);
    // Some writers store 0 for "no dictionary page"; a dictionary page always precedes the data pages.
    if (dictOff !== undefined && (dictOff < 4 || dictOff >= dataOff)) dictOff = undefined;
    const start = dictOff ?? dataOff;
    if (start < 4 || len < 0 || start + len > dataEnd) {
      throw new FooterError(
        `row group ${index}, column ${c}: column chunk [${start}, ${start + len}) lies outside the data [4, ${dataEnd}) (truncated file?)`,
      );
    }
    return { c, cc, md, start, len, dataOff, dictOff, raw: getInt(md, 6) ?? len };
  });

  // Lay the chunks out in file order; coalesce source ranges that are contiguous.
  const order = [...chunks].sort((a, b) => a.start - b.start);
  const copies: CopyRange[] = [];
  const newCols: TStruct[] = new Array(chunks.length);
  let pos = 4;
  for (const ch of order) {
    const last = copies[copies.length - 1];
    if (last && last.from + last.length === ch.start && last.to + last.length === pos) last.length += ch.len;
    else copies.push({ from: ch.start, to: pos, length: ch.len });
    const delta = pos - ch.start;
    let md = withField(ch.md, 9, TType.I64, ch.dataOff + delta);
    md = withField(md, 11, TType.I64, ch.dictOff === undefined ? undefined : ch.dictOff + delta);
    md = withField(md, 10, TType.I64, undefined); // index_page_offset (unused by readers)
    md = withField(md, 14, TType.I64, undefined); // bloom_filter_offset
    md = withField(md, 15, TType.I32, undefined); // bloom_filter_length
    let cc = withField(ch.cc, 3, TType.STRUCT, md);
    const fo = getInt(ch.cc, 2) ?? 0;
    cc = withField(cc, 2, TType.I64, fo <= 0 ? 0 : Math.max(0, fo + delta)); // file_offset (deprecated, required)
    for (const id of [4, 5, 6, 7]) cc = withField(cc, id, TType.I64, undefined); // page index references
    newCols[ch.c] = cc;
    pos += ch.len;
  }
  const chunkBytes = pos - 4;

  let newRg = withField(rg, 1, TType.LIST, { ...(getField(rg, 1)!.value as TList), items: newCols });
  newRg = withField(newRg, 5, TType.I64, order.length > 0 ? 4 : undefined); // file_offset
  newRg = withField(newRg, 7, TType.I16, undefined); // ordinal
  let meta = withField(footer.meta, 3, TType.I64, footer.rowGroupRows[index]!);
  meta = withField(meta, 4, TType.LIST, { ...rgList, items: [newRg] });
  const tail = fileTail(encodeStruct(meta));
  const size = pos + tail.length;
  const uncompressedBytes = chunks.reduce((t, ch) => t + Math.max(0, ch.raw), 0);
  return { index, rows: footer.rowGroupRows[index]!, size, copies, tail, chunkBytes, uncompressedBytes };
}

/** The bytes after the data: the footer, its length, PAR1. */
function fileTail(footer: Uint8Array): Uint8Array {
  const tail = new Uint8Array(footer.length + 8);
  tail.set(footer, 0);
  new DataView(tail.buffer).setUint32(footer.length, footer.length, true);
  tail.set(PARQUET_MAGIC, footer.length + 4);
  return tail;
}

/** Reads the mini file of a planned row group from the source. */
export async function readRowGroupFile(fh: FileHandle, p: RowGroupPlan): Promise<Uint8Array> {
  const out = new Uint8Array(p.size);
  out.set(PARQUET_MAGIC, 0);
  await Promise.all(p.copies.map((c) => readInto(fh, out, c.to, c.length, c.from)));
  out.set(p.tail, p.size - p.tail.length);
  return out;
}

async function readExactly(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await readInto(fh, out, 0, length, position);
  return out;
}

async function readInto(fh: FileHandle, buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, offset + done, Math.min(length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new FooterError(`unexpected end of file at byte ${position + done} (the file shrank while being read?)`);
    done += bytesRead;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

