/**
 * test/helpers/latency-proxy.ts: the delaying loopback TCP proxy used by bench/remote.ts and the read-ahead
 * tests. A node:http server on 127.0.0.1 behind the proxy: the added delay (lower bounds only, so that a
 * slow machine cannot fail them), bytes intact and in order, counters, HTTP request parsing, loopback only,
 * and the worker-thread variant.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startLatencyProxy, startLatencyProxyThread } from '../helpers/latency-proxy.js';

const BIG = Buffer.alloc(3 * 1024 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 2654435761) >>> 24;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let server: Server;
let port = 0;
before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.setHeader('content-length', BIG.length);
      res.end(BIG);
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.end(`${req.method} ${req.url} range=${req.headers.range ?? ''} body=${body}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

describe('latency proxy', () => {
  test('adds the delay each way (and one round trip for a new connection); counts requests, ranges and bytes', async () => {
    const proxy = await startLatencyProxy({ targetPort: port, oneWayMs: 30 });
    try {
      const get = (path: string, headers: Record<string, string> = {}) => fetch(`${proxy.url}${path}`, { headers }).then((r) => r.text());
      const [a, first] = await timed(() => get('/a', { Range: 'bytes=0-9,20-29,40-49' }));
      assert.equal(a, 'GET /a range=bytes=0-9,20-29,40-49 body=');
      assert.ok(first >= 4 * 30 - 3, `first request on a new connection: ${first.toFixed(1)} ms ≥ 2 round trips`);
      const [b, second] = await timed(() => get('/b', { Range: 'bytes=5-6' }));
      assert.equal(b, 'GET /b range=bytes=5-6 body=');
      assert.ok(second >= 2 * 30 - 3, `a request: ${second.toFixed(1)} ms ≥ 1 round trip`);
      const c = proxy.snapshot();
      assert.equal(c.requests, 2);
      assert.equal(c.ranges, 4);
      assert.equal(c.multiRangeRequests, 1);
      assert.ok(c.connections >= 1);
      assert.ok(c.bytesDown > a.length + b.length, 'response bytes, headers included');
      assert.ok(c.bytesUp > 0);
      assert.deepEqual(
        proxy.requests.map((r) => [r.method, r.target, r.range, r.ranges]),
        [
          ['GET', '/a', 'bytes=0-9,20-29,40-49', 3],
          ['GET', '/b', 'bytes=5-6', 1],
        ],
      );
      assert.ok(proxy.requests[1]!.at >= proxy.requests[0]!.at);
      // a request with a body is parsed past its body
      const posted = await fetch(`${proxy.url}/p`, { method: 'POST', body: 'GET /fake HTTP/1.1\r\n\r\n' }).then((r) => r.text());
      assert.equal(posted, 'POST /p range= body=GET /fake HTTP/1.1\r\n\r\n');
      assert.equal(proxy.snapshot().requests, 3, 'a request line inside a body is not a request');
      // since() and reset()
      const before = proxy.snapshot();
      proxy.oneWayMs = 0;
      const [, fast] = await timed(() => get('/c'));
      assert.ok(fast < 60, `no delay: ${fast.toFixed(1)} ms`);
      assert.equal(proxy.since(before).requests, 1);
      proxy.reset();
      assert.equal(proxy.snapshot().requests, 0);
      assert.equal(proxy.requests.length, 0);
    } finally {
      await proxy.close();
    }
  });

  test('large bodies arrive intact and in order', async () => {
    const proxy = await startLatencyProxy({ targetPort: port, oneWayMs: 2 });
    try {
      const body = new Uint8Array(await (await fetch(`${proxy.url}/big`)).arrayBuffer());
      assert.equal(body.length, BIG.length);
      assert.equal(sha(body), sha(BIG));
      assert.ok(proxy.snapshot().bytesDown > BIG.length);
    } finally {
      await proxy.close();
    }
  });

  test('only loopback addresses', async () => {
    await assert.rejects(startLatencyProxy({ targetPort: port, targetHost: '192.0.2.1' }), /not a loopback address/);
    await assert.rejects(startLatencyProxy({ targetPort: port, host: '0.0.0.0' }), /not a loopback address/);
    await assert.rejects(startLatencyProxyThread({ targetPort: port, targetHost: 'example.org' }), /not a loopback address/);
    await assert.rejects(startLatencyProxy({ targetPort: 0 }), /bad target port/);
  });

  test('in a worker thread: same behaviour, not held up by a busy main thread', async () => {
    const proxy = await startLatencyProxyThread({ targetPort: port, oneWayMs: 20 });
    try {
      const [text, ms] = await timed(() => fetch(`${proxy.url}/t`, { headers: { Range: 'bytes=1-2,4-5' } }).then((r) => r.text()));
      assert.equal(text, 'GET /t range=bytes=1-2,4-5 body=');
      assert.ok(ms >= 4 * 20 - 3, `${ms.toFixed(1)} ms`);
      const c = await proxy.snapshot();
      assert.equal(c.requests, 1);
      assert.equal(c.multiRangeRequests, 1);
      // a request sent just before the main thread gets busy reaches the proxy while it is busy
      const pending = fetch(`${proxy.url}/u`).then((r) => r.text());
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      const busyEnd = performance.timeOrigin + performance.now() + 150;
      while (performance.timeOrigin + performance.now() < busyEnd);
      assert.equal(await pending, 'GET /u range= body=');
      const seen = await proxy.requests();
      assert.equal(seen.length, 2);
      assert.ok(seen[1]!.epochMs < busyEnd, 'the proxy thread saw the request during the busy period');
      await proxy.setOneWayMs(0);
      assert.equal((await proxy.since(c)).requests, 1);
      await proxy.reset();
      assert.equal((await proxy.snapshot()).requests, 0);
    } finally {
      await proxy.close();
    }
  });
});
