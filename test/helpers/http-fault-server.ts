/**
 * A small HTTP file server on 127.0.0.1 for tests of the HTTP byte source, with faults on demand:
 *
 *   const srv = await FaultServer.start();
 *   srv.files.set('/f.root', bytes);
 *   srv.multipart = 'first-only';         // how multi-range requests are answered
 *   srv.faults.push('503', 'drop');       // the next requests fail this way, one fault per request
 *   srv.redirects.set('/r', { status: 302, location: '/f.root' });
 *   ... new URL(srv.url + '/f.root') ...
 *   srv.log                               // every request: path, raw header names and values, Range, Authorization
 *   await srv.close();
 *
 * Ranges crossing the end of the file are answered as XrdHttp 5.5.3 does by default (`eofBug`): a 206
 * announcing the full requested length, then the connection closes without a body.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** close the connection without an answer */
  | 'drop'
  /** never answer (until the server is closed) */
  | 'stall'
  /** 503 Service Unavailable (Retry-After: 0) */
  | '503'
  /** 500 */
  | '500'
  /** 429 Too Many Requests (Retry-After: 0) */
  | '429'
  /** the headers and half of the body, then the connection closes */
  | 'cut-body'
  /** the headers, then nothing (a server that freezes in the middle of an answer) */
  | 'stall-body'
  /** a 206 whose body (and Content-Length) is shorter than its Content-Range says */
  | 'short-body';

export type MultipartMode =
  /** multipart/byteranges, parts in request order (XrdHttp style: leading CRLF, `Content-range`) */
  | 'yes'
  /** parts in reverse order, quoted boundary, bare LF line ends */
  | 'shuffled-lf'
  /** one 206 with the first range only (many simple servers) */
  | 'first-only'
  /** one 206 with a single range from the first to the last byte asked (ranges merged) */
  | 'merge'
  /** 200 with the whole file to a multi-range request (single ranges work) */
  | 'ignore'
  /** 416 to a multi-range request */
  | 'refuse'
  /** multipart with an HTTP 500 written into the body after the first part (XrdHttp past its readv limit) */
  | 'garbled';

export interface LoggedRequest {
  method: string;
  path: string;
  /** Header names and values exactly as sent (case preserved). */
  rawHeaders: string[];
  range: string | undefined;
  authorization: string | undefined;
  /** Number of ranges in the Range header. */
  ranges: number;
}

export interface Redirect {
  status: number;
  location: string;
}

const BOUNDARY = 'hepml-test-boundary';

function parseRanges(h: string, size: number): [number, number][] | undefined {
  const m = /^bytes=(.+)$/.exec(h.trim());
  if (!m) return undefined;
  const out: [number, number][] = [];
  for (const spec of m[1]!.split(',')) {
    const r = /^\s*(\d*)-(\d*)\s*$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return undefined;
    if (r[1] === '') out.push([Math.max(0, size - Number(r[2])), size - 1]);
    else out.push([Number(r[1]), r[2] === '' ? size - 1 : Number(r[2])]);
  }
  return out;
}

export class FaultServer {
  readonly files = new Map<string, Uint8Array>();
  /** path → status for error answers (404 for unknown paths anyway) */
  readonly statuses = new Map<string, number>();
  readonly redirects = new Map<string, Redirect>();
  /** Applied to the next requests, one per request, in order. */
  readonly faults: Fault[] = [];
  multipart: MultipartMode = 'yes';
  /** false: Range is ignored, every GET is 200 with the whole file. */
  ranges = true;
  eofBug = true;
  /** Answer every request this much later (to see requests overlap). */
  delayMs = 0;
  /** Custom handler tried first; return true when it answered. */
  handler: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  readonly log: LoggedRequest[] = [];
  inflight = 0;
  maxInflight = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  static async start(host = '127.0.0.1'): Promise<FaultServer> {
    let self: FaultServer | undefined;
    const server = createServer((req, res) => self!.serve(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, resolve);
    });
    self = new FaultServer(server, host, (server.address() as AddressInfo).port);
    server.on('connection', (s) => {
      self!.sockets.add(s);
      s.on('close', () => self!.sockets.delete(s));
    });
    return self;
  }

  /** Requests whose path is `path` (all when omitted). */
  requests(path?: string): LoggedRequest[] {
    return path === undefined ? this.log : this.log.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const range = req.headers.range;
    this.log.push({
      method: req.method ?? '',
      path,
      rawHeaders: [...req.rawHeaders],
      range,
      authorization: req.headers.authorization,
      ranges: range ? range.split(',').length : 0,
    });
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        this.inflight--;
      }
    };
    res.on('close', done);
    res.on('finish', done);
    if (this.delayMs > 0) setTimeout(() => this.answer(req, res, path), this.delayMs);
    else this.answer(req, res, path);
  }

  private answer(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (this.handler?.(req, res)) return;
    const fault = this.faults.shift();
    if (fault === 'drop') return void req.socket.destroy();
    if (fault === 'stall') return;
    if (fault === '503' || fault === '500' || fault === '429') {
      const status = Number(fault);
      res.writeHead(status, { 'Content-Type': 'text/plain', ...(status !== 500 ? { 'Retry-After': '0' } : {}) });
      return void res.end(`injected ${status}\n`);
    }
    const redirect = this.redirects.get(path);
    if (redirect) {
      res.writeHead(redirect.status, { Location: redirect.location, 'Content-Length': '0' });
      return void res.end();
    }
    const status = this.statuses.get(path);
    if (status) {
      res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' });
      return void res.end(`Unable to open ${path}; injected ${status}\n`);
    }
    const data = this.files.get(path);
    if (!data) {
      res.writeHead(404, { 'Content-Type': 'text/plain', Connection: 'close' });
      return void res.end(`Unable to open ${path}; no such file or directory\n`);
    }
    const size = data.length;
    // like XrdHttp 5.5.3: only the header spelled `Range` counts
    const rawRange = req.rawHeaders.find((_, i) => i % 2 === 1 && req.rawHeaders[i - 1] === 'Range');
    const ranges = this.ranges && rawRange ? parseRanges(rawRange, size) : undefined;
    if (!ranges) {
      res.writeHead(200, { 'Content-Length': String(size) });
      return void res.end(data);
    }
    const body = (a: number, b: number) => data.subarray(a, b + 1);
    if (ranges.length === 1 || this.multipart === 'first-only') {
      const [a, b] = ranges[0]!;
      if (b >= size) {
        if (this.eofBug) {
          res.writeHead(206, { 'Content-Length': String(b - a + 1), 'Content-Range': `bytes ${a}-${b}/${size}` });
          res.flushHeaders();
          return void setTimeout(() => req.socket.destroy(), 5);
        }
        if (a >= size) {
          res.writeHead(416, { 'Content-Range': `bytes */${size}` });
          return void res.end();
        }
      }
      const end = Math.min(b, size - 1);
      const chunk = body(a, end);
      if (fault === 'short-body') {
        const half = chunk.subarray(0, Math.floor(chunk.length / 2));
        res.writeHead(206, { 'Content-Length': String(half.length), 'Content-Range': `bytes ${a}-${end}/${size}` });
        return void res.end(half);
      }
      res.writeHead(206, { 'Content-Length': String(chunk.length), 'Content-Range': `bytes ${a}-${end}/${size}` });
      if (fault === 'cut-body') {
        res.write(chunk.subarray(0, Math.floor(chunk.length / 2)));
        return void setTimeout(() => req.socket.destroy(), 5);
      }
      if (fault === 'stall-body') {
        res.write(chunk.subarray(0, Math.floor(chunk.length / 2)));
        return;
      }
      return void res.end(chunk);
    }
    switch (this.multipart) {
      case 'ignore':
        res.writeHead(200, { 'Content-Length': String(size) });
        return void res.end(data);
      case 'refuse':
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        return void res.end();
      case 'merge': {
        const a = Math.min(...ranges.map((r) => r[0]));
        const b = Math.min(size - 1, Math.max(...ranges.map((r) => r[1])));
        res.writeHead(206, { 'Content-Length': String(b - a + 1), 'Content-Range': `bytes ${a}-${b}/${size}` });
        return void res.end(body(a, b));
      }
      default: {
        const lf = this.multipart === 'shuffled-lf';
        const nl = lf ? '\n' : '\r\n';
        const order = lf ? [...ranges].reverse() : ranges;
        const chunks: Buffer[] = [];
        if (!lf) chunks.push(Buffer.from(nl));
        order.forEach(([a, b], k) => {
          const end = Math.min(b, size - 1);
          chunks.push(Buffer.from(`--${BOUNDARY}${nl}Content-type: application/octet-stream${nl}${lf ? 'CONTENT-RANGE' : 'Content-range'}: bytes ${a}-${end}/${size}${nl}${nl}`, 'latin1'));
          chunks.push(Buffer.from(body(a, end)));
          chunks.push(Buffer.from(nl));
          if (this.multipart === 'garbled' && k === 0) chunks.push(Buffer.from('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 26\r\n\r\nRead vector is too long\r\n\r\n'));
        });
        chunks.push(Buffer.from(`--${BOUNDARY}--${nl}`));
        const all = Buffer.concat(chunks);
        res.writeHead(206, {
          'Content-Type': lf ? `multipart/byteranges; boundary="${BOUNDARY}"` : `multipart/byteranges; boundary=${BOUNDARY}`,
          'Content-Length': String(all.length),
        });
        if (fault === 'cut-body') {
          res.write(all.subarray(0, Math.floor(all.length / 2)));
          return void setTimeout(() => req.socket.destroy(), 5);
        }
        return void res.end(all);
      }
    }
  }
}
