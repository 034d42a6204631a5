/**
 * A TCP proxy on 127.0.0.1 in front of a loopback server, that fails the first connections on purpose:
 *
 *   const p = await startFaultProxy('127.0.0.1', xrootdPort, ['drop', '503']);
 *   // connection 1 is closed at once, connection 2 gets "503 Service Unavailable" and is closed,
 *   // every later connection is piped to the server unchanged
 *   p.url  → http://127.0.0.1:PORT
 *   await p.close();
 *
 * It works below HTTP, so the client's bytes (header case included) reach the server as sent.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type ConnectionFault = 'drop' | '503';

export interface FaultProxy {
  url: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Faults not used yet. */
  readonly pending: ConnectionFault[];
  close(): Promise<void>;
}

export async function startFaultProxy(targetHost: string, targetPort: number, faults: ConnectionFault[]): Promise<FaultProxy> {
  if (targetHost !== '127.0.0.1' && targetHost !== '::1' && targetHost !== 'localhost') {
    throw new Error(`fault proxy: loopback targets only, not ${targetHost}`);
  }
  const pending = [...faults];
  const sockets = new Set<Socket>();
  let connections = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = createServer((client) => {
    connections++;
    track(client);
    const fault = pending.shift();
    if (fault === 'drop') {
      client.destroy();
      return;
    }
    if (fault === '503') {
      let head = '';
      client.on('data', (d) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 17\r\nRetry-After: 0\r\nConnection: close\r\n\r\ninjected 503 once');
        }
      });
      return;
    }
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    get pending() {
      return [...pending];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
