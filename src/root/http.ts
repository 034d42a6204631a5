/**
 * HTTP(S) byte source: Range requests with fetch (Node 20's undici), coalesced and issued a few at a
 * time. Servers that ignore Range are detected (200 instead of 206) rather than silently misread.
 */
import { CorruptDataError, InputNotFoundError, IoError } from '../errors.js';
import { coalesceRanges, type ByteSource } from './source.js';

const CONCURRENCY = 4;

export class HttpSource implements ByteSource {
  readonly stats = { requests: 0, bytes: 0 };
  private constructor(
    readonly name: string,
    readonly size: number,
  ) {}

  static async open(url: string): Promise<HttpSource> {
    let res: Response;
    try {
      res = await fetch(url, { headers: { Range: 'bytes=0-0' } });
    } catch (e) {
      throw new IoError(`cannot connect: ${(e as Error).cause ?? (e as Error).message}`, { file: url });
    }
    await res.arrayBuffer();
    if (res.status === 404) throw new InputNotFoundError('no such file on the server (HTTP 404)', { file: url });
    if (res.status !== 206) {
      throw new IoError(`server does not support byte ranges (HTTP ${res.status} to a Range request)`, { file: url });
    }
    const m = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
    if (!m) throw new IoError('server sent no usable Content-Range header', { file: url });
    return new HttpSource(url, Number(m[1]));
  }

  async read(pos: number, len: number): Promise<Uint8Array> {
    if (pos < 0 || len < 0 || pos + len > this.size) {
      throw new CorruptDataError(
        `needs bytes ${pos}..${pos + len} but the file has ${this.size} bytes (truncated or corrupt file)`,
        { file: this.name },
      );
    }
    if (len === 0) return new Uint8Array(0);
    let res: Response;
    try {
      res = await fetch(this.name, { headers: { Range: `bytes=${pos}-${pos + len - 1}` } });
    } catch (e) {
      throw new IoError(`request failed: ${(e as Error).cause ?? (e as Error).message}`, { file: this.name });
    }
    const body = new Uint8Array(await res.arrayBuffer());
    this.stats.requests++;
    this.stats.bytes += body.length;
    if (res.status !== 206) throw new IoError(`HTTP ${res.status} for bytes ${pos}..${pos + len}`, { file: this.name });
    if (body.length !== len) {
      throw new IoError(`short read: asked ${len} bytes at ${pos}, got ${body.length}`, { file: this.name });
    }
    return body;
  }

  async readMany(ranges: readonly (readonly [number, number])[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(ranges.length);
    const groups = coalesceRanges(ranges, 256 * 1024, 16 * 1024 * 1024);
    let next = 0;
    const worker = async () => {
      while (next < groups.length) {
        const g = groups[next++]!;
        const buf = await this.read(g.start, g.end - g.start);
        for (const i of g.members) {
          const [pos, len] = ranges[i]!;
          out[i] = buf.subarray(pos - g.start, pos - g.start + len);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, groups.length) }, worker));
    return out;
  }

  async close(): Promise<void> {}
}
