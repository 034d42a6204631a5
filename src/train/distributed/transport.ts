/**
 * The transport of distributed training: one interface (listen / connect → Conn moving Frames), two
 * implementations picked by the address:
 *
 *   unix:/path/to.sock   local IPC over a Unix domain socket (the default for workers on this machine)
 *   HOST:PORT            TCP (multi-host; Nagle off so small control frames are not delayed)
 *
 * A Conn delivers frames in order, either to a handler (`onFrame`) or to `recv()`; both report the peer going
 * away (closed socket, reset, write after close) as a ConnClosedError.
 */
import net from 'node:net';
import { unlink } from 'node:fs/promises';
import { encodeFrame, FrameDecoder, type Frame, type FrameHead } from './frame.js';

export type Address = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export class ConnClosedError extends Error {
  constructor(
    readonly peer: string,
    reason?: string,
  ) {
    super(`connection to ${peer} closed${reason ? `: ${reason}` : ''}`);
    this.name = 'ConnClosedError';
  }
}

/** Parses `unix:/path`, `HOST:PORT`, `[IPv6]:PORT`, `tcp://HOST:PORT` or `:PORT` (all interfaces). */
export function parseAddress(s: string): Address {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path) throw new Error(`'${s}': a unix address needs a path (unix:/tmp/x.sock)`);
    return { kind: 'unix', path };
  }
  const t = s.startsWith('tcp://') ? s.slice(6) : s;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(t);
  if (!m) throw new Error(`'${s}' is not an address (HOST:PORT, [IPv6]:PORT or unix:/path)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`'${s}': port ${port} is out of range`);
  return { kind: 'tcp', host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** One peer connection. */
export class Conn {
  private readonly decoder = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private waiters: { resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  private handler?: (f: Frame) => void;
  private interceptor?: (f: Frame) => boolean;
  private closeHandlers: ((e: ConnClosedError) => void)[] = [];
  private closedWith?: ConnClosedError;
  /** Bytes written and read (payload + framing), for bandwidth figures. */
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    readonly socket: net.Socket,
    readonly peer: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        this.fail((e as Error).message);
        socket.destroy();
        return;
      }
      for (const f of frames) this.deliver(f);
    });
    socket.on('error', (e) => this.fail(e.message));
    socket.on('close', () => this.fail());
  }

  /**
   * Sends a frame; resolves once the socket has written it out (so the parts may be reused afterwards —
   * Node writes Buffers without copying them), rejects when the peer is gone.
   */
  send<H extends FrameHead>(head: H, parts: ArrayBufferView[] = []): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const bufs = encodeFrame(head, parts);
    return new Promise((resolve, reject) => {
      this.socket.cork();
      bufs.forEach((b, i) => {
        this.bytesOut += b.length;
        if (i < bufs.length - 1) this.socket.write(b);
        else this.socket.write(b, (err) => (err ? reject(this.closedWith ?? new ConnClosedError(this.peer, err.message)) : resolve()));
      });
      this.socket.uncork();
    });
  }

  /** Sends without waiting (control messages); a failure shows up as the connection's close. */
  post<H extends FrameHead>(head: H, parts: ArrayBufferView[] = []): void {
    this.send(head, parts).catch(() => undefined);
  }

  /** The next frame (when no handler is set). */
  recv(): Promise<Frame> {
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Receives a frame of type `t` (anything else is a protocol error). */
  async expect(t: string): Promise<Frame> {
    const f = await this.recv();
    if (f.head.t !== t) throw new Error(`protocol: expected '${t}' from ${this.peer}, got '${f.head.t}'`);
    return f;
  }

  /** Frames `h` returns true for are consumed on arrival; the others still go to recv() (or onFrame). */
  intercept(h: (f: Frame) => boolean): void {
    this.interceptor = h;
  }

  /** Routes every frame (queued ones first) to `h` instead of recv(). */
  onFrame(h: (f: Frame) => void): void {
    this.handler = h;
    for (const f of this.queue.splice(0)) h(f);
  }

  onClose(h: (e: ConnClosedError) => void): void {
    if (this.closedWith) queueMicrotask(() => h(this.closedWith!));
    else this.closeHandlers.push(h);
  }

  offClose(h: (e: ConnClosedError) => void): void {
    this.closeHandlers = this.closeHandlers.filter((x) => x !== h);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon?.();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private deliver(f: Frame): void {
    if (this.interceptor?.(f)) return;
    if (this.handler) this.handler(f);
    else {
      const w = this.waiters.shift();
      if (w) w.resolve(f);
      else this.queue.push(f);
    }
  }

  private fail(reason?: string): void {
    if (this.closedWith) return;
    this.closedWith = new ConnClosedError(this.peer, reason);
    for (const w of this.waiters.splice(0)) w.reject(this.closedWith);
    for (const h of this.closeHandlers.splice(0)) h(this.closedWith);
  }
}

export interface Listener {
  /** The address peers connect to (the bound port for HOST:0). */
  address: Address;
  close(): Promise<void>;
}

function tune(s: net.Socket): void {
  s.setNoDelay(true); // no-op on Unix sockets
}

/** Listens at `addr`; `onConn` gets every accepted connection. */
export async function listen(addr: Address, onConn: (c: Conn) => void): Promise<Listener> {
  const server = net.createServer((s) => {
    tune(s);
    const peer = addr.kind === 'unix' ? `${formatAddress(addr)} (peer)` : `${s.remoteAddress}:${s.remotePort}`;
    onConn(new Conn(s, peer));
  });
  if (addr.kind === 'unix') await unlink(addr.path).catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (addr.kind === 'unix') server.listen(addr.path, () => resolve());
    else server.listen(addr.port, addr.host, () => resolve());
  });
  server.on('error', () => undefined);
  const bound = server.address();
  const address: Address = addr.kind === 'unix' || !bound || typeof bound === 'string' ? addr : { kind: 'tcp', host: addr.host, port: bound.port };
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (addr.kind === 'unix') unlink(addr.path).catch(() => undefined);
      }),
  };
}

/** Connects to `addr`, retrying refused/absent endpoints until `timeoutMs` (peers may still be starting). */
export async function connect(addr: Address, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Conn> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  const name = formatAddress(addr);
  for (let attempt = 0; ; attempt++) {
    try {
      const s = await new Promise<net.Socket>((resolve, reject) => {
        const sock = addr.kind === 'unix' ? net.connect(addr.path) : net.connect(addr.port, addr.host);
        sock.once('connect', () => {
          sock.off('error', reject);
          resolve(sock);
        });
        sock.once('error', reject);
      });
      tune(s);
      return new Conn(s, name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const retry = code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'EAI_AGAIN' || code === 'ENOTFOUND';
      if (!retry || Date.now() > deadline || o.signal?.aborted) {
        throw new ConnClosedError(name, `cannot connect (${code ?? (e as Error).message})`);
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
    }
  }
}
