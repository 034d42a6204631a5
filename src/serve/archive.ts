/**
 * Model archives for upload: a tar (optionally gzip-compressed: `tar czf model.tgz -C model .`) or ZIP
 * (`cd model && zip -r ../model.zip .`) of a model directory. Only regular files are taken; every path is
 * checked (no absolute paths, no `..`, no links, devices or other special entries) and the total unpacked size
 * is bounded before anything is written. A single top-level directory holding everything is stripped.
 */
import { gunzipSync } from 'node:zlib';
import { openZip, isZip } from '../train/keras/zip.js';

export class ArchiveError extends Error {}

export interface ArchiveFile {
  path: string;
  data: Uint8Array;
}

function checkPath(p: string): string {
  const clean = p.replace(/^\.\//, '').replace(/\/+$/, '');
  if (clean === '' || clean === '.') return '';
  if (clean.startsWith('/') || /^[A-Za-z]:/.test(clean) || clean.includes('\\') || clean.includes('\0')) throw new ArchiveError(`unsafe path in the archive: ${JSON.stringify(p)}`);
  for (const part of clean.split('/')) {
    if (part === '..' || part === '') throw new ArchiveError(`unsafe path in the archive: ${JSON.stringify(p)}`);
  }
  return clean;
}

function readTar(buf: Uint8Array, maxBytes: number): ArchiveFile[] {
  const files: ArchiveFile[] = [];
  const text = (o: number, n: number) => {
    let end = o;
    while (end < o + n && buf[end] !== 0) end++;
    return Buffer.from(buf.subarray(o, end)).toString('utf8');
  };
  let total = 0;
  let longName: string | undefined;
  for (let off = 0; off + 512 <= buf.length; ) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break; // end of archive
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    const stored = parseInt(text(off + 148, 8).trim() || '0', 8);
    if (stored !== sum) throw new ArchiveError(`not a tar archive (header checksum mismatch at byte ${off})`);
    const size = parseInt(text(off + 124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new ArchiveError(`bad entry size at byte ${off}`);
    const type = String.fromCharCode(header[156]! || 0x30);
    const prefix = text(off + 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${text(off, 100)}` : text(off, 100));
    longName = undefined;
    const dataAt = off + 512;
    if (dataAt + size > buf.length) throw new ArchiveError(`truncated archive: entry ${JSON.stringify(name)} needs ${size} bytes`);
    const data = buf.subarray(dataAt, dataAt + size);
    off = dataAt + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = Buffer.from(data).toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (type === 'x' || type === 'g') continue; // pax headers (mtime etc.): ignored
    if (type === '5') {
      checkPath(name);
      continue;
    }
    if (type !== '0' && type !== '7') throw new ArchiveError(`archive entry ${JSON.stringify(name)} is not a regular file (tar type '${type}')`);
    name = checkPath(name);
    total += size;
    if (total > maxBytes) throw new ArchiveError(`the archive unpacks to more than ${maxBytes} bytes`);
    if (name) files.push({ path: name, data });
  }
  return files;
}

/** The files of a tar, tar.gz or ZIP archive of a model directory, paths relative to the model directory. */
export function unpackArchive(body: Uint8Array, maxBytes: number): ArchiveFile[] {
  let files: ArchiveFile[];
  if (isZip(body)) {
    let zip;
    try {
      zip = openZip(body, 'upload');
    } catch (e) {
      throw new ArchiveError(`not a readable ZIP archive: ${(e as Error).message}`);
    }
    let total = 0;
    files = [];
    for (const e of zip.entries) {
      if (e.name.endsWith('/')) {
        checkPath(e.name);
        continue;
      }
      const path = checkPath(e.name);
      total += e.size;
      if (total > maxBytes) throw new ArchiveError(`the archive unpacks to more than ${maxBytes} bytes`);
      try {
        files.push({ path, data: zip.read(e.name) });
      } catch (err) {
        throw new ArchiveError(`cannot read ${e.name} from the ZIP archive: ${(err as Error).message}`);
      }
    }
  } else {
    let tar = body;
    if (body[0] === 0x1f && body[1] === 0x8b) {
      try {
        tar = gunzipSync(body, { maxOutputLength: maxBytes + 1024 * 1024 });
      } catch (e) {
        throw new ArchiveError(`not a readable gzip stream (or it unpacks to more than ${maxBytes} bytes): ${(e as Error).message}`);
      }
    }
    files = readTar(tar, maxBytes);
  }
  if (files.length === 0) throw new ArchiveError('the archive holds no files (a tar, tar.gz or ZIP of a model directory is expected)');
  // strip one top-level directory that holds everything
  const top = files[0]!.path.split('/')[0]!;
  if (files.every((f) => f.path.startsWith(`${top}/`))) files = files.map((f) => ({ path: f.path.slice(top.length + 1), data: f.data }));
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new ArchiveError(`the archive holds ${f.path} twice`);
    seen.add(f.path);
  }
  return files;
}
