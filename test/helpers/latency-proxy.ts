/**
 * A delaying TCP proxy on loopback, for tests and benchmarks of remote reading: it listens on 127.0.0.1
 * (or ::1), forwards every connection to a loopback target port, and holds each chunk for `oneWayMs` in
 * each direction (10 ms each way = 20 ms round trip). It counts connections and bytes each way, and parses
 * the client's HTTP/1.x request heads (request line, Range header) to count requests and ranges; TLS
 * traffic is forwarded and counted but cannot be parsed.
 *
 *   const proxy = await startLatencyProxy({ targetPort: 8080, oneWayMs: 10 });
 *   fetch(proxy.url + '/file.root', ...)          // http://127.0.0.1:PORT
 *   const before = proxy.snapshot(); ...; const used = proxy.since(before);
 *   await proxy.close();
 *
 * startLatencyProxyThread() runs the same proxy in a worker thread, with the same controls made async:
 * use it when the code under test keeps the main thread busy (a CPU-bound consumer), which would otherwise
 * hold up the proxy's forwarding and timers and distort the latency it adds.
 *
 * Model: a chunk read from one side is written to the other side `oneWayMs` later (order kept, no
 * bandwidth limit). A new connection first costs one round trip (TCP's handshake): the client's first
 * bytes leave no earlier than 2 × oneWayMs after it connected. Both can be changed while running
 * (`proxy.oneWayMs = 0`). Only loopback targets are accepted.
 */
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface LatencyProxyOptions {
  /** The port to forward to, on `targetHost`. */
  targetPort: number;
  /** 127.0.0.1 (default), ::1 or localhost: loopback only. */
  targetHost?: string;
  /** Where to listen: 127.0.0.1 (default) or ::1. Port 0 (default) = a free port. */
  host?: string;
  port?: number;
  /** Delay of each direction in milliseconds (default 0). */
  oneWayMs?: number;
  /** Charge one round trip when a connection opens (default true). */
  handshakeRtt?: boolean;
}

/** One HTTP request seen going to the server. */
export interface SeenRequest {
  /** Connection number (1-based, in accept order). */
  connection: number;
  method: string;
  target: string;
  /** The Range header as sent, if any. */
  range?: string;
  /** Number of ranges in the Range header (0 without one). */
  ranges: number;
  /** ms since the proxy started. */
  at: number;
  /** When it arrived, in ms since the epoch with sub-ms resolution (performance.timeOrigin + now): comparable across threads. */
  epochMs: number;
}

export interface ProxyCounters {
  connections: number;
  /** Bytes client → server (requests). */
  bytesUp: number;
  /** Bytes server → client (responses, headers included). */
  bytesDown: number;
  /** HTTP requests parsed from the client's bytes. */
  requests: number;
  /** Sum of the ranges of those requests (a request without Range counts 0). */
  ranges: number;
  /** Requests with more than one range (multipart/byteranges). */
  multiRangeRequests: number;
}

export interface LatencyProxy {
  /** http://127.0.0.1:PORT (no trailing slash) */
  readonly url: string;
  readonly port: number;
  /** Delay of each direction (ms); may be changed at any time (applies to chunks read from then on). */
  oneWayMs: number;
  handshakeRtt: boolean;
  /** Every HTTP request seen so far (cleared by reset()). */
  readonly requests: SeenRequest[];
  /** The counters now (a copy). */
  snapshot(): ProxyCounters;
  /** Counters since an earlier snapshot. */
  since(before: ProxyCounters): ProxyCounters;
  /** Zeroes the counters and forgets the requests (open connections stay open). */
  reset(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function isLoopback(host: string): boolean {
  if (LOOPBACK.has(host)) return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Queue of chunks on their way from one socket to another, each released at its due time. */
class DelayLine {
  private readonly q: { due: number; chunk: Buffer | null }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private queued = 0;
  private waitingDrain = false;
  private ended = false;
  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
  ) {
    to.on('drain', () => {
      this.waitingDrain = false;
      this.pump();
    });
  }
  push(due: number, chunk: Buffer | null): void {
    this.q.push({ due, chunk });
    if (chunk) {
      this.queued += chunk.length;
      if (this.queued > 8 << 20) this.from.pause(); // bounded memory: the sender waits, as TCP would
    }
    this.pump();
  }
  private pump(): void {
    if (this.timer || this.waitingDrain || this.ended) return;
    const now = performance.now();
    while (this.q.length) {
      const head = this.q[0]!;
      if (head.due > now + 0.5) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, Math.max(0, Math.ceil(head.due - now)));
        return;
      }
      this.q.shift();
      if (!head.chunk) {
        this.ended = true;
        this.to.end();
        return;
      }
      this.queued -= head.chunk.length;
      if (this.queued < 2 << 20 && this.from.isPaused()) this.from.resume();
      if (!this.to.write(head.chunk)) {
        this.waitingDrain = true;
        return;
      }
    }
  }
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.q.length = 0;
    this.ended = true;
  }
}

/** Incremental parser of HTTP/1.x request heads in the client's byte stream. */
class RequestSniffer {
  private buf = '';
  private skip = 0;
  private dead = false;
  constructor(private readonly onRequest: (method: string, target: string, range: string | undefined) => void) {}
  feed(chunk: Buffer): void {
    if (this.dead) return;
    let s = chunk.toString('latin1');
    if (this.skip) {
      const n = Math.min(this.skip, s.length);
      this.skip -= n;
      s = s.slice(n);
    }
    this.buf += s;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > 1 << 16) this.dead = true; // not HTTP (TLS, or garbage): stop parsing
        return;
      }
      const head = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 4);
      const lines = head.split('\r\n');
      const m = /^([A-Z]+) (\S+) HTTP\/\d\.\d$/.exec(lines[0] ?? '');
      if (!m) {
        this.dead = true;
        return;
      }
      let range: string | undefined;
      let length = 0;
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i < 0) continue;
        const name = l.slice(0, i).trim().toLowerCase();
        const value = l.slice(i + 1).trim();
        if (name === 'range') range = value;
        else if (name === 'content-length') length = Number(value) || 0;
      }
      this.onRequest(m[1]!, m[2]!, range);
      if (length) {
        const n = Math.min(length, this.buf.length);
        this.buf = this.buf.slice(n);
        this.skip = length - n;
        if (this.skip) return;
      }
    }
  }
}

const zero = (): ProxyCounters => ({ connections: 0, bytesUp: 0, bytesDown: 0, requests: 0, ranges: 0, multiRangeRequests: 0 });

/** Starts the proxy; see the module comment. */
export async function startLatencyProxy(opts: LatencyProxyOptions): Promise<LatencyProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(targetHost)) throw new Error(`latency proxy: target ${targetHost} is not a loopback address`);
  if (!isLoopback(host)) throw new Error(`latency proxy: listen address ${host} is not a loopback address`);
  if (!Number.isInteger(opts.targetPort) || opts.targetPort <= 0 || opts.targetPort > 65535) {
    throw new Error(`latency proxy: bad target port ${opts.targetPort}`);
  }
  const t0 = performance.now();
  let counters = zero();
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let connectionNo = 0;

  const proxy = {
    oneWayMs: opts.oneWayMs ?? 0,
    handshakeRtt: opts.handshakeRtt ?? true,
  };

  const server: Server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const conn = ++connectionNo;
    counters.connections++;
    const accepted = performance.now();
    // the delays in force when the connection opened decide when it is "established"
    const established = proxy.handshakeRtt ? accepted + 2 * proxy.oneWayMs : accepted;
    const upstream = connect({ host: targetHost, port: opts.targetPort, noDelay: true, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    const up = new DelayLine(client, upstream);
    const down = new DelayLine(upstream, client);
    const sniffer = new RequestSniffer((method, target, range) => {
      const ranges = range ? range.replace(/^\s*\w+=/, '').split(',').filter((r) => r.trim()).length : 0;
      counters.requests++;
      counters.ranges += ranges;
      if (ranges > 1) counters.multiRangeRequests++;
      const now = performance.now();
      requests.push({ connection: conn, method, target, range, ranges, at: now - t0, epochMs: performance.timeOrigin + now });
    });
    client.on('data', (chunk: Buffer) => {
      counters.bytesUp += chunk.length;
      sniffer.feed(chunk);
      up.push(Math.max(performance.now(), established) + proxy.oneWayMs, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      counters.bytesDown += chunk.length;
      down.push(performance.now() + proxy.oneWayMs, chunk);
    });
    client.on('end', () => up.push(Math.max(performance.now(), established) + proxy.oneWayMs, null));
    upstream.on('end', () => down.push(performance.now() + proxy.oneWayMs, null));
    const kill = () => {
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('error', kill);
    upstream.on('error', kill);
    // an orderly close travels with the data (the 'end' markers above); an error closes both at once
    client.on('close', (hadError) => {
      sockets.delete(client);
      if (hadError) kill();
    });
    upstream.on('close', (hadError) => {
      sockets.delete(upstream);
      if (hadError) kill();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('latency proxy: no address');
  const port = addr.port;
  const url = host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;

  return {
    url,
    port,
    get oneWayMs() {
      return proxy.oneWayMs;
    },
    set oneWayMs(v: number) {
      if (!(v >= 0)) throw new Error(`latency proxy: bad delay ${v}`);
      proxy.oneWayMs = v;
    },
    get handshakeRtt() {
      return proxy.handshakeRtt;
    },
    set handshakeRtt(v: boolean) {
      proxy.handshakeRtt = v;
    },
    requests,
    snapshot: () => ({ ...counters }),
    since(before: ProxyCounters): ProxyCounters {
      const now = counters;
      return {
        connections: now.connections - before.connections,
        bytesUp: now.bytesUp - before.bytesUp,
        bytesDown: now.bytesDown - before.bytesDown,
        requests: now.requests - before.requests,
        ranges: now.ranges - before.ranges,
        multiRangeRequests: now.multiRangeRequests - before.multiRangeRequests,
      };
    },
    reset(): void {
      counters = zero();
      requests.length = 0;
    },
    close(): Promise<void> {
      for (const s of sockets) s.destroy();
      sockets.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------------------------------------
// the same proxy in a worker thread

/** A proxy running in a worker thread: its event loop is not held up by a busy main thread. */
export interface LatencyProxyThread {
  readonly url: string;
  readonly port: number;
  snapshot(): Promise<ProxyCounters>;
  since(before: ProxyCounters): Promise<ProxyCounters>;
  requests(): Promise<SeenRequest[]>;
  reset(): Promise<void>;
  setOneWayMs(ms: number): Promise<void>;
  close(): Promise<void>;
}

type Op = 'snapshot' | 'since' | 'requests' | 'reset' | 'setOneWayMs' | 'close';

/** Starts the proxy in a worker thread (this module, loaded again there); see startLatencyProxy. */
export async function startLatencyProxyThread(opts: LatencyProxyOptions): Promise<LatencyProxyThread> {
  // validate here too, so that mistakes are thrown where the caller can see them
  const targetHost = opts.targetHost ?? '127.0.0.1';
  if (!isLoopback(targetHost)) throw new Error(`latency proxy: target ${targetHost} is not a loopback address`);
  if (!isLoopback(opts.host ?? '127.0.0.1')) throw new Error(`latency proxy: listen address ${opts.host} is not a loopback address`);
  // The worker loads this TypeScript module again, through tsx (workers do not inherit the main thread's
  // module hooks); the module's last lines start the proxy there.
  const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(import.meta.url)}); })
    .catch((e) => require('node:worker_threads').parentPort.postMessage({ error: String(e && e.stack || e) }));`;
  const worker = new Worker(boot, { eval: true, workerData: { latencyProxy: opts } });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failed: Error | undefined;
  const ready = new Promise<{ url: string; port: number }>((resolve, reject) => {
    worker.on('message', (m: { ready?: { url: string; port: number }; error?: string; id?: number; result?: unknown }) => {
      if (m.ready) return resolve(m.ready);
      if (m.id === undefined) return reject(new Error(m.error ?? 'latency proxy thread: bad message'));
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    });
    worker.on('error', (e) => {
      failed = e;
      reject(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  });
  const { url, port } = await ready;
  const call = <T>(op: Op, arg?: unknown): Promise<T> => {
    if (failed) return Promise.reject(failed);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, op, arg });
    });
  };
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    snapshot: () => call<ProxyCounters>('snapshot'),
    since: (before) => call<ProxyCounters>('since', before),
    requests: () => call<SeenRequest[]>('requests'),
    reset: () => call<void>('reset'),
    setOneWayMs: (ms) => call<void>('setOneWayMs', ms),
    close(): Promise<void> {
      closed ??= call<void>('close')
        .catch(() => {})
        .then(() => worker.terminate())
        .then(() => {});
      return closed;
    },
  };
}

if (!isMainThread && parentPort && (workerData as { latencyProxy?: LatencyProxyOptions } | undefined)?.latencyProxy) {
  const port = parentPort;
  startLatencyProxy((workerData as { latencyProxy: LatencyProxyOptions }).latencyProxy).then(
    (proxy) => {
      port.on('message', async (m: { id: number; op: Op; arg?: unknown }) => {
        try {
          let result: unknown;
          switch (m.op) {
            case 'snapshot':
              result = proxy.snapshot();
              break;
            case 'since':
              result = proxy.since(m.arg as ProxyCounters);
              break;
            case 'requests':
              result = proxy.requests.slice();
              break;
            case 'reset':
              proxy.reset();
              break;
            case 'setOneWayMs':
              proxy.oneWayMs = m.arg as number;
              break;
            case 'close':
              await proxy.close();
              break;
          }
          port.postMessage({ id: m.id, result });
        } catch (e) {
          port.postMessage({ id: m.id, error: (e as Error).message });
        }
      });
      port.postMessage({ ready: { url: proxy.url, port: proxy.port } });
    },
    (e: Error) => port.postMessage({ error: e.message }),
  );
}
