/**
 * Byte sources: where ROOT bytes come from. A source reads absolute byte ranges; the ROOT layer never
 * knows whether they come from a local file or a remote server.
 */
import { readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CorruptDataError, InputNotFoundError, IoError, UnsupportedError, UsageError } from '../errors.js';
import type { HttpOptions } from './http.js';

export interface ByteSource {
  /** Path or URL, as the user gave it: used in every message. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Reads exactly `len` bytes at `pos`; a range past the end of the file is a CorruptDataError (truncated file). */
  read(pos: number, len: number): Promise<Uint8Array>;
  /** Reads several ranges; implementations coalesce neighbours into fewer requests. */
  readMany(ranges: readonly (readonly [number, number])[]): Promise<Uint8Array[]>;
  close(): Promise<void>;
  /** Requests made and bytes transferred so far. */
  readonly stats: { requests: number; bytes: number };
}

/** Ranges closer than this are read as one (the gap is read and dropped). */
const COALESCE_GAP = 64 * 1024;
/** Never make a single coalesced read larger than this. */
const MAX_COALESCED = 64 * 1024 * 1024;

export interface Coalesced {
  start: number;
  end: number;
  members: number[];
}

/** Groups ranges (pos, len) into larger contiguous reads; returns groups in file order. */
export function coalesceRanges(ranges: readonly (readonly [number, number])[], gap = COALESCE_GAP, max = MAX_COALESCED): Coalesced[] {
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a]![0] - ranges[b]![0]);
  const groups: Coalesced[] = [];
  let cur: Coalesced | undefined;
  for (const i of order) {
    const [pos, len] = ranges[i]!;
    const end = pos + len;
    if (cur && pos <= cur.end + gap && Math.max(end, cur.end) - cur.start <= max) {
      cur.end = Math.max(cur.end, end);
      cur.members.push(i);
    } else {
      cur = { start: pos, end, members: [i] };
      groups.push(cur);
    }
  }
  return groups;
}

export class LocalFileSource implements ByteSource {
  readonly stats = { requests: 0, bytes: 0 };
  private constructor(
    readonly name: string,
    readonly size: number,
    private fh: FileHandle | undefined,
  ) {}

  static async open(path: string): Promise<LocalFileSource> {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputNotFoundError('no such file', { file: path });
      if (code === 'EACCES') throw new IoError('permission denied', { file: path });
      throw new IoError(`cannot stat: ${(e as Error).message}`, { file: path });
    }
    if (st.isDirectory()) throw new InputNotFoundError('is a directory, not a ROOT file', { file: path });
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw new IoError('permission denied', { file: path });
      throw new IoError(`cannot open: ${(e as Error).message}`, { file: path });
    }
    return new LocalFileSource(path, st.size, fh);
  }

  private handle(): FileHandle {
    if (!this.fh) throw new IoError('file already closed', { file: this.name });
    return this.fh;
  }

  async read(pos: number, len: number): Promise<Uint8Array> {
    if (pos < 0 || len < 0 || pos + len > this.size) {
      throw new CorruptDataError(
        `needs bytes ${pos}..${pos + len} but the file has ${this.size} bytes (truncated or corrupt file)`,
        { file: this.name },
      );
    }
    const out = new Uint8Array(len);
    const fd = this.handle().fd;
    let done = 0;
    while (done < len) {
      // Local reads are synchronous: a page-cache read costs less than the thread-pool round trip, and
      // the reader needs the bytes before it can do anything else.
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, out, done, len - done, pos + done);
      } catch (e) {
        throw new IoError(`read failed at byte ${pos + done}: ${(e as Error).message}`, { file: this.name }, { cause: e });
      }
      if (bytesRead === 0) throw new CorruptDataError(`unexpected end of file at byte ${pos + done}`, { file: this.name });
      done += bytesRead;
    }
    this.stats.requests++;
    this.stats.bytes += len;
    return out;
  }

  async readMany(ranges: readonly (readonly [number, number])[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(ranges.length);
    for (const g of coalesceRanges(ranges)) {
      const buf = await this.read(g.start, g.end - g.start);
      for (const i of g.members) {
        const [pos, len] = ranges[i]!;
        out[i] = buf.subarray(pos - g.start, pos - g.start + len);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/** How remote inputs are reached; local files ignore these. */
export interface SourceOptions {
  /** Extra HTTP headers for every request (`--header 'Name: value'`), e.g. an Authorization header. */
  headers?: Record<string, string>;
  /**
   * Map `root://host[:port]//path` URLs to the server's HTTPS interface on this port
   * (`https://host:PORT/path`). Without it, root:// URLs are refused with an explanation.
   */
  xrootdHttpPort?: number;
  /** HTTP client tuning (concurrency, timeouts, retries, ranges per request); defaults come from HEPML_HTTP_* variables. */
  http?: HttpOptions;
}

/**
 * `root://host[:port]//path` → `https://host:httpPort/path` (XRootD servers serve the same namespace over
 * HTTP(S) through XrdHttp, usually on port 443, 1094 or 8443 depending on the site).
 */
export function mapXrootdUrl(location: string, httpPort: number): string {
  const m = /^root:\/\/([^/:]+)(?::\d+)?\/(\/?.*)$/i.exec(location);
  if (!m) throw new UsageError(`cannot map '${location}' to HTTPS: expected root://host[:port]//path`);
  const path = m[2]!.startsWith('/') ? m[2]! : `/${m[2]!}`;
  return `https://${m[1]}:${httpPort}${path}`;
}

/** Opens a local path, a `file://` URL, or an `http(s)://` URL (or a `root://` URL mapped to HTTPS). */
export async function openSource(location: string, opts: SourceOptions = {}): Promise<ByteSource> {
  if (/^root:\/\//i.test(location)) {
    if (!opts.xrootdHttpPort) {
      throw new UnsupportedError(
        "the root:// (XRootD binary) protocol is not supported; use the server's HTTP(S) interface (https://host:port/path), or pass --xrootd-http-port PORT to map root://host//path to https://host:PORT/path",
        { file: location },
      );
    }
    location = mapXrootdUrl(location, opts.xrootdHttpPort);
  }
  if (/^https?:\/\//i.test(location)) {
    const { HttpSource } = await import('./http.js');
    return HttpSource.open(location, opts);
  }
  const path = location.startsWith('file://') ? fileURLToPath(location) : location;
  return LocalFileSource.open(path);
}
