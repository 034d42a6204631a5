/**
 * HTTP(S) byte source: Range requests with fetch (Node 20's undici), coalesced and issued a few at a
 * time. Servers that ignore Range are detected (200 instead of 206) rather than silently misread.
 * The header is always spelled `Range`: XRootD's XrdHttp 5.5 ignores a lower-case `range`.
 */
import { CorruptDataError, InputNotFoundError, IoError, NotRootFileError } from '../errors.js';
import { coalesceRanges, type ByteSource, type SourceOptions } from './source.js';

const CONCURRENCY = 4;
/** Per-request timeout (ms): a stalled server becomes an error instead of a hang. */
const TIMEOUT_MS = Number(process.env.HEPML_HTTP_TIMEOUT_MS ?? 60_000);

function describeFailure(e: unknown): string {
  const err = e as Error & { cause?: { message?: string; code?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  return err?.cause?.message ?? err?.cause?.code ?? err?.message ?? String(e);
}

async function request(url: string, range: string, name: string): Promise<{ res: Response; body: Uint8Array }> {
  try {
    const res = await fetch(url, { headers: { Range: range }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.status !== 206) {
      // do not download a whole file (or an error page) we are not going to use
      const head = res.status === 200 ? new Uint8Array(await readPrefix(res, 256)) : new Uint8Array(0);
      return { res, body: head };
    }
    return { res, body: new Uint8Array(await res.arrayBuffer()) };
  } catch (e) {
    throw new IoError(`request failed: ${describeFailure(e)}`, { file: name }, { cause: e });
  }
}

async function readPrefix(res: Response, n: number): Promise<ArrayBuffer> {
  const reader = res.body?.getReader();
  if (!reader) return new ArrayBuffer(0);
  const { value } = await reader.read();
  await reader.cancel().catch(() => {});
  return (value ?? new Uint8Array(0)).slice(0, n).buffer;
}

function statusError(status: number, url: string, body: Uint8Array, what: string): Error {
  if (status === 404) return new InputNotFoundError('no such file on the server (HTTP 404)', { file: url });
  if (status === 401 || status === 403) return new IoError(`access denied (HTTP ${status}): check your token or certificate`, { file: url });
  if (status === 200) {
    const text = new TextDecoder().decode(body).trimStart().toLowerCase();
    if (text.startsWith('<!doctype') || text.startsWith('<html') || text.startsWith('<?xml')) {
      return new InputNotFoundError('is a directory, not a ROOT file (the server answered with an HTML listing)', { file: url });
    }
    return new IoError(`server does not support byte ranges (HTTP 200 to a Range request for ${what})`, { file: url });
  }
  return new IoError(`HTTP ${status} for ${what}`, { file: url });
}

export class HttpSource implements ByteSource {
  readonly stats = { requests: 0, bytes: 0 };
  private constructor(
    readonly name: string,
    /** Where requests go: the URL after the server's redirects. */
    private readonly target: string,
    readonly size: number,
  ) {}

  static async open(url: string, _opts: SourceOptions = {}): Promise<HttpSource> {
    const { res, body } = await request(url, 'bytes=0-0', url);
    if (res.status === 416) {
      const m = /\*\/(\d+)/.exec(res.headers.get('content-range') ?? '');
      if (m && Number(m[1]) === 0) throw new NotRootFileError('not a ROOT file (empty)', { file: url });
    }
    if (res.status !== 206) throw statusError(res.status, url, body, 'bytes 0..1');
    const m = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
    if (!m) throw new IoError('server sent no usable Content-Range header', { file: url });
    return new HttpSource(url, res.redirected ? res.url : url, Number(m[1]));
  }

  async read(pos: number, len: number): Promise<Uint8Array> {
    if (pos < 0 || len < 0 || pos + len > this.size) {
      throw new CorruptDataError(
        `needs bytes ${pos}..${pos + len} but the file has ${this.size} bytes (truncated or corrupt file)`,
        { file: this.name },
      );
    }
    if (len === 0) return new Uint8Array(0);
    const { res, body } = await request(this.target, `bytes=${pos}-${pos + len - 1}`, this.name);
    this.stats.requests++;
    this.stats.bytes += body.length;
    if (res.status !== 206) throw statusError(res.status, this.name, body, `bytes ${pos}..${pos + len}`);
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
