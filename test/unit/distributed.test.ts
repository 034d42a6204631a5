/**
 * The distributed-training core of `hep-ml train --workers N` (src/train/distributed): binary frames, the
 * Unix-socket/TCP transport, the ring all-reduce, the parameter-server strategies' update rules, and the
 * replica helpers (flat weights, checksums, gradient capture). Everything runs in this one process: rings of
 * N ranks are N listeners and N connections over Unix sockets (or TCP loopback).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { encodeFrame, f32, FrameDecoder, FRAME_MAGIC, type Frame } from '../../src/train/distributed/frame.js';
import { connect, ConnClosedError, formatAddress, listen, parseAddress, type Address, type Conn, type Listener } from '../../src/train/distributed/transport.js';
import { Ring, RingError } from '../../src/train/distributed/allreduce.js';
import {
  AsyncWorkerRule,
  DEFAULT_ELASTIC_LR,
  DEFAULT_MOMENTUM,
  DEFAULT_RHO,
  DEFAULT_WINDOW,
  ParameterServer,
  STRATEGIES,
  strategyParams,
  type LocalModel,
  type PsClient,
  type Strategy,
  type StrategyParams,
} from '../../src/train/distributed/strategies.js';
import { checksum, flatWeights, GradientCapture, setFlatWeights } from '../../src/train/distributed/replica.js';
import { PROTOCOL_VERSION, type DoneMsg, type EpochMsg } from '../../src/train/distributed/protocol.js';

const dir = mkdtempSync(join(tmpdir(), 'hepml-dist-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let sockNo = 0;
const sockAddr = (): Address => ({ kind: 'unix', path: join(dir, `s${sockNo++}.sock`) });

// ---------------------------------------------------------------------------------------------------
// helpers

const concat = (bufs: Buffer[]) => Buffer.concat(bufs);
const bytesOf = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const sameBytes = (a: ArrayBufferView, b: ArrayBufferView) => bytesOf(a).equals(bytesOf(b));
const sha = (v: ArrayBufferView) => createHash('sha256').update(bytesOf(v)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects when `p` has not settled within `ms` (a hang guard, not a timing assertion). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms (hung)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Settles as {ok, value} / {ok: false, error}. */
async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Decodes a whole byte string, asserting nothing is left over. */
function decodeAll(b: Buffer): Frame[] {
  const d = new FrameDecoder();
  const fs = d.push(b);
  assert.equal(d.pending, 0);
  return fs;
}

function assertAligned(f: Frame): void {
  for (const p of f.parts) assert.equal(p.byteOffset % 8, 0, `part at byte offset ${p.byteOffset} is not 8-byte aligned`);
}

function assertFrame(f: Frame, head: Frame['head'], parts: ArrayBufferView[]): void {
  assert.deepEqual(f.head, head);
  assert.equal(f.parts.length, parts.length);
  parts.forEach((p, i) => {
    assert.equal(f.parts[i]!.byteLength, p.byteLength, `part ${i} length`);
    assert.ok(sameBytes(f.parts[i]!, p), `part ${i} bytes`);
  });
  assertAligned(f);
}

const u8 = (...xs: number[]) => Uint8Array.from(xs);

/** A connected pair over `addr` (client side, server side). */
async function pair(addr: Address): Promise<{ client: Conn; server: Conn; listener: Listener; close(): Promise<void> }> {
  let gotServer!: (c: Conn) => void;
  const serverP = new Promise<Conn>((r) => (gotServer = r));
  const listener = await listen(addr, (c) => gotServer(c));
  const client = await connect(listener.address, { timeoutMs: 5000 });
  const server = await serverP;
  return {
    client,
    server,
    listener,
    close: async () => {
      client.destroy();
      server.destroy();
      await listener.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// frame.ts

describe('frame: encodeFrame / FrameDecoder', () => {
  test('a frame with no parts (and one with an empty part) round-trips', () => {
    const [f] = decodeAll(concat(encodeFrame({ t: 'hb' })));
    assertFrame(f!, { t: 'hb' }, []);
    const [g] = decodeAll(concat(encodeFrame({ t: 'x', n: 1 }, [new Uint8Array(0)])));
    assertFrame(g!, { t: 'x', n: 1 }, [new Uint8Array(0)]);
    const [h] = decodeAll(concat(encodeFrame({ t: 'y' }, [new Uint8Array(0), u8(7), new Float32Array(0)])));
    assertFrame(h!, { t: 'y' }, [new Uint8Array(0), u8(7), new Uint8Array(0)]);
  });

  test('the lead: magic, header length, part count and sizes; total length a multiple of 8', () => {
    const head = { t: 'abc' };
    const b = concat(encodeFrame(head, [u8(1), u8(1, 2, 3)]));
    assert.equal(b.readUInt32LE(0), FRAME_MAGIC);
    assert.equal(b.subarray(0, 4).toString('latin1'), 'HMLF');
    assert.equal(b.readUInt32LE(4), Buffer.byteLength(JSON.stringify(head)));
    assert.equal(b.readUInt32LE(8), 2);
    assert.equal(b.readUInt32LE(12), 1);
    assert.equal(b.readUInt32LE(16), 3);
    assert.equal(b.length % 8, 0);
  });

  test('parts of odd byte lengths (1, 3, 5) and a 1 MiB Float32Array', () => {
    const big = new Float32Array(1 << 18); // 1 MiB
    for (let i = 0; i < big.length; i++) big[i] = Math.sin(i) * 1e3;
    const parts: ArrayBufferView[] = [u8(0xff), u8(1, 2, 3), u8(9, 8, 7, 6, 5), big, u8(42)];
    const enc = encodeFrame({ t: 'odd', k: [1, 2] }, parts);
    const [f] = decodeAll(concat(enc));
    assertFrame(f!, { t: 'odd', k: [1, 2] }, parts);
    assert.ok(sameBytes(f32(f!.parts[3]), big));
  });

  test('encodeFrame does not copy the parts; parts at a nonzero byteOffset are encoded from their view', () => {
    const backing = new Float32Array([10, 11, 12, 13, 14, 15]);
    const view = backing.subarray(1, 4); // 11, 12, 13
    const enc = encodeFrame({ t: 'v' }, [view]);
    const shared = enc.find((b) => b.buffer === backing.buffer);
    assert.ok(shared, 'a part buffer shares memory with the input');
    assert.equal(shared!.byteOffset, 4);
    const [f] = decodeAll(concat(enc));
    assert.deepEqual(Array.from(f32(f!.parts[0])), [11, 12, 13]);
  });

  test('a frame fed byte by byte', () => {
    const parts: ArrayBufferView[] = [u8(1), u8(2, 3, 4), new Float32Array([1.5, -2.5, 3.25]), u8(5, 6, 7, 8, 9), new Float64Array([Math.PI, Math.E])];
    const enc = concat(encodeFrame({ t: 'bytes', s: 'x'.repeat(37) }, parts));
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < enc.length; i++) {
      const fs = d.push(enc.subarray(i, i + 1));
      if (i < enc.length - 1) assert.equal(fs.length, 0, `a frame after ${i + 1} of ${enc.length} bytes`);
      got.push(...fs);
    }
    assert.equal(got.length, 1);
    assert.equal(d.pending, 0);
    assertFrame(got[0]!, { t: 'bytes', s: 'x'.repeat(37) }, parts);
  });

  test('a small frame split at every boundary (two chunks) and at every pair of boundaries (three chunks)', () => {
    const parts = [u8(1, 2, 3), u8(4), u8(5, 6, 7, 8, 9)];
    const head = { t: 'split', q: 'é' };
    const enc = concat(encodeFrame(head, parts));
    for (let i = 0; i <= enc.length; i++) {
      const d = new FrameDecoder();
      const a = d.push(enc.subarray(0, i));
      const b = d.push(enc.subarray(i));
      assert.equal(a.length + b.length, 1, `split at ${i}`);
      assert.equal(a.length, i === enc.length ? 1 : 0);
      assertFrame((a[0] ?? b[0])!, head, parts);
      assert.equal(d.pending, 0);
    }
    for (let i = 1; i < enc.length; i++) {
      for (let j = i; j < enc.length; j++) {
        const d = new FrameDecoder();
        const fs = [...d.push(enc.subarray(0, i)), ...d.push(enc.subarray(i, j)), ...d.push(enc.subarray(j))];
        assert.equal(fs.length, 1, `split at ${i}, ${j}`);
        assertFrame(fs[0]!, head, parts);
      }
    }
  });

  test('several frames concatenated in one chunk, and split across chunks at arbitrary places', () => {
    const frames: [Frame['head'], ArrayBufferView[]][] = [
      [{ t: 'a', i: 0 }, []],
      [{ t: 'b', i: 1 }, [u8(1)]],
      [{ t: 'c', i: 2 }, [u8(1, 2, 3), new Float32Array([7, 8, 9])]],
      [{ t: 'd', i: 3 }, [new Uint8Array(0)]],
      [{ t: 'e', i: 4 }, [u8(9, 9, 9, 9, 9), new Float64Array([1 / 3])]],
    ];
    const all = concat(frames.flatMap(([h, p]) => encodeFrame(h, p)));
    const got = decodeAll(all);
    assert.equal(got.length, frames.length);
    got.forEach((f, i) => assertFrame(f, frames[i]![0], frames[i]![1]));
    // the same stream in chunks of 1..13 bytes
    for (let step = 1; step <= 13; step++) {
      const d = new FrameDecoder();
      const out: Frame[] = [];
      for (let i = 0; i < all.length; i += step) out.push(...d.push(all.subarray(i, i + step)));
      assert.equal(out.length, frames.length, `chunks of ${step}`);
      out.forEach((f, i) => assertFrame(f, frames[i]![0], frames[i]![1]));
      assert.equal(d.pending, 0);
    }
  });

  test('parts are 8-byte aligned even when the chunk starts at an odd byte offset (viewable as Float64Array)', () => {
    const f64 = new Float64Array([1.25, -2.5e300, Number.MIN_VALUE, NaN]);
    const enc = concat(encodeFrame({ t: 'f64' }, [u8(1, 2, 3), f64, u8(4)]));
    for (const shift of [0, 1, 3, 4, 7]) {
      const carrier = Buffer.alloc(enc.length + shift + 8);
      enc.copy(carrier, shift);
      const chunk = carrier.subarray(shift, shift + enc.length);
      const [f] = decodeAll(chunk);
      assertAligned(f!);
      const p = f!.parts[1]!;
      const view = new Float64Array(p.buffer, p.byteOffset, p.byteLength / 8);
      assert.ok(sameBytes(view, f64), `shift ${shift}`);
    }
  });

  test('Unicode in the JSON head (the header length is in bytes, not UTF-16 units)', () => {
    const head = { t: 'hello', host: 'höst-π-日本語', emoji: '🚀🧪', nul: 'a\u0000b', mixed: ['µ', { k: 'ü' }] };
    const parts = [u8(1, 2, 3)];
    const enc = concat(encodeFrame(head, parts));
    assert.equal(enc.readUInt32LE(4), Buffer.byteLength(JSON.stringify(head), 'utf8'));
    const [f] = decodeAll(enc);
    assertFrame(f!, head, parts);
    // byte by byte too (a multibyte character cut in two)
    const d = new FrameDecoder();
    const out: Frame[] = [];
    for (let i = 0; i < enc.length; i++) out.push(...d.push(enc.subarray(i, i + 1)));
    assert.equal(out.length, 1);
    assertFrame(out[0]!, head, parts);
  });

  test('bad magic throws; so does a lead claiming too many parts or too many bytes', () => {
    const enc = concat(encodeFrame({ t: 'x' }));
    const bad = Buffer.from(enc);
    bad.writeUInt32LE(0xdeadbeef, 0);
    assert.throws(() => new FrameDecoder().push(bad), /bad magic/);
    assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /bad magic/);
    // the magic is checked as soon as 12 bytes are there
    const d = new FrameDecoder();
    assert.deepEqual(d.push(bad.subarray(0, 11)), []);
    assert.throws(() => d.push(bad.subarray(11, 12)), /bad magic/);

    const many = Buffer.alloc(12);
    many.writeUInt32LE(FRAME_MAGIC, 0);
    many.writeUInt32LE(2, 4);
    many.writeUInt32LE(5000, 8);
    assert.throws(() => new FrameDecoder().push(many), /5000 parts/);
  });

  // align8 ((n + 7) & ~7) works in int32, so a lead whose sizes add up to 2 GiB or more wraps around instead of
  // reaching the MAX_FRAME guard: the decoder then waits for a bogus (small or negative) frame length and fails
  // later with an unrelated message (or not at all until more bytes come).
  test('a lead claiming a frame of 2 GiB or more is refused at once', {}, () => {
    for (const size of [0xffffffff, 0x80000000, 0x7ffffff9]) {
      const huge = Buffer.alloc(16);
      huge.writeUInt32LE(FRAME_MAGIC, 0);
      huge.writeUInt32LE(2, 4);
      huge.writeUInt32LE(1, 8);
      huge.writeUInt32LE(size, 12);
      assert.throws(() => new FrameDecoder().push(huge), /frame of \d+ bytes/, `part of ${size} bytes`);
    }
  });

  test('pending counts the bytes of an incomplete frame', () => {
    const a = concat(encodeFrame({ t: 'a' }, [u8(1, 2, 3)]));
    const b = concat(encodeFrame({ t: 'b' }, [new Float32Array(10)]));
    const d = new FrameDecoder();
    const fs = d.push(Buffer.concat([a, b.subarray(0, 20)]));
    assert.equal(fs.length, 1);
    assert.equal(d.pending, 20);
    const gs = d.push(b.subarray(20));
    assert.equal(gs.length, 1);
    assert.equal(gs[0]!.head.t, 'b');
    assert.equal(d.pending, 0);
  });

  test('f32: a Float32Array view of a part; bad lengths and missing parts throw', () => {
    const [f] = decodeAll(concat(encodeFrame({ t: 'x' }, [new Float32Array([1, 2, 3]), u8(1, 2, 3, 4, 5, 6)])));
    const v = f32(f!.parts[0]);
    assert.ok(v instanceof Float32Array);
    assert.deepEqual(Array.from(v), [1, 2, 3]);
    assert.equal(v.buffer, f!.parts[0]!.buffer, 'a view, not a copy');
    assert.throws(() => f32(f!.parts[1]), /float32 part of 6 bytes/);
    assert.throws(() => f32(u8(1)), /float32 part of 1 bytes/);
    assert.throws(() => f32(f!.parts[2]), /missing binary part/);
    assert.throws(() => f32(undefined), /missing binary part/);
    assert.equal(f32(new Uint8Array(0)).length, 0);
  });

  test('protocol messages (heads with nested data) ride in frames with their tensor parts', () => {
    assert.equal(PROTOCOL_VERSION, 1);
    const epoch: EpochMsg = { t: 'epoch', epoch: 3, gen: 2, index: 1, count: 4, ring: ['unix:/tmp/a.sock', '10.0.0.2:4000'], dropoutCalls: [0, 17], updates: 9 };
    const w = new Float32Array([0.5, -1, 2]);
    const [f] = decodeAll(concat(encodeFrame(epoch as unknown as Frame['head'], [w])));
    assert.deepEqual(f!.head, epoch);
    assert.deepEqual(Array.from(f32(f!.parts[0])), [0.5, -1, 2]);
    const done: DoneMsg = { t: 'done', epoch: 3, gen: 2, rows: 100, lossSum: 12.5, accSum: 80, steps: 4, checksum: checksum(w), dropoutCalls: [4] };
    const [g] = decodeAll(concat(encodeFrame(done as unknown as Frame['head'])));
    assert.deepEqual(g!.head, done);
  });
});

// ---------------------------------------------------------------------------------------------------
// transport.ts

describe('transport: addresses', () => {
  test('parseAddress', () => {
    assert.deepEqual(parseAddress('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
    assert.deepEqual(parseAddress('unix:/p'), { kind: 'unix', path: '/p' });
    assert.deepEqual(parseAddress('unix:rel/x.sock'), { kind: 'unix', path: 'rel/x.sock' });
    assert.deepEqual(parseAddress('localhost:8080'), { kind: 'tcp', host: 'localhost', port: 8080 });
    assert.deepEqual(parseAddress('10.1.2.3:0'), { kind: 'tcp', host: '10.1.2.3', port: 0 });
    assert.deepEqual(parseAddress('node-7.cluster.local:65535'), { kind: 'tcp', host: 'node-7.cluster.local', port: 65535 });
    assert.deepEqual(parseAddress('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
    assert.deepEqual(parseAddress('[fe80::1:2]:1'), { kind: 'tcp', host: 'fe80::1:2', port: 1 });
    assert.deepEqual(parseAddress('[::ffff:127.0.0.1]:80'), { kind: 'tcp', host: '::ffff:127.0.0.1', port: 80 });
    assert.deepEqual(parseAddress('tcp://h:5'), { kind: 'tcp', host: 'h', port: 5 });
    assert.deepEqual(parseAddress('tcp://[::1]:7'), { kind: 'tcp', host: '::1', port: 7 });
    assert.deepEqual(parseAddress(':7000'), { kind: 'tcp', host: '0.0.0.0', port: 7000 });
    assert.deepEqual(parseAddress('tcp://:7000'), { kind: 'tcp', host: '0.0.0.0', port: 7000 });
  });

  test('parseAddress rejects what is not an address', () => {
    for (const bad of ['', 'unix:', 'host', 'host:', 'host:abc', ':', '::1:80', '[::1]', '[::1]:', '[zz]:80', 'a:b:1', 'host:123456', 'tcp://', 'tcp://host', 'http://h:80', 'host:-1', 'host:80 ']) {
      assert.throws(() => parseAddress(bad), Error, `'${bad}' should be rejected`);
    }
    assert.throws(() => parseAddress('unix:'), /needs a path/);
    assert.throws(() => parseAddress('host:65536'), /port 65536 is out of range/);
    assert.throws(() => parseAddress('host:99999'), /out of range/);
    assert.throws(() => parseAddress('[::1]:70000'), /out of range/);
  });

  test('formatAddress, and parse ∘ format is the identity', () => {
    assert.equal(formatAddress({ kind: 'unix', path: '/tmp/a.sock' }), 'unix:/tmp/a.sock');
    assert.equal(formatAddress({ kind: 'tcp', host: '127.0.0.1', port: 80 }), '127.0.0.1:80');
    assert.equal(formatAddress({ kind: 'tcp', host: '::1', port: 9000 }), '[::1]:9000');
    assert.equal(formatAddress(parseAddress(':7000')), '0.0.0.0:7000');
    for (const s of ['unix:/tmp/a.sock', 'h:1', '10.0.0.1:65535', '[::1]:9000', '[fe80::1]:2']) assert.equal(formatAddress(parseAddress(s)), s);
    assert.equal(formatAddress(parseAddress('tcp://h:5')), 'h:5');
  });
});

describe('transport: connections', () => {
  for (const kind of ['unix', 'tcp'] as const) {
    test(`${kind}: frames both ways, in order, with parts; bytes counted`, async () => {
      const p = await pair(kind === 'unix' ? sockAddr() : parseAddress('127.0.0.1:0'));
      try {
        if (kind === 'tcp') {
          assert.equal(p.listener.address.kind, 'tcp');
          assert.ok((p.listener.address as { port: number }).port > 0, 'the bound port replaces 0');
          assert.match(p.server.peer, /^127\.0\.0\.1:\d+$/);
          assert.equal(p.client.peer, formatAddress(p.listener.address));
        } else {
          assert.deepEqual(p.listener.address, { kind: 'unix', path: (p.listener.address as { path: string }).path });
          assert.ok(existsSync((p.listener.address as { path: string }).path));
        }
        const n = 50;
        const sends: Promise<void>[] = [];
        for (let i = 0; i < n; i++) {
          sends.push(p.client.send({ t: 'c2s', i }, [new Float32Array([i, i + 0.5]), u8(i & 255)]));
          sends.push(p.server.send({ t: 's2c', i, s: 'ü'.repeat(i) }, i % 2 ? [new Float64Array([i])] : []));
        }
        for (let i = 0; i < n; i++) {
          const f = await p.server.recv();
          assert.deepEqual(f.head, { t: 'c2s', i });
          assert.deepEqual(Array.from(f32(f.parts[0])), [i, i + 0.5]);
          assert.deepEqual(Array.from(f.parts[1]!), [i & 255]);
          const g = await p.client.expect('s2c');
          assert.equal(g.head.i, i);
          assert.equal(g.head.s, 'ü'.repeat(i));
          assert.equal(g.parts.length, i % 2);
        }
        await Promise.all(sends);
        assert.ok(p.client.bytesOut > 0);
        assert.equal(p.server.bytesIn, p.client.bytesOut);
        assert.equal(p.client.bytesIn, p.server.bytesOut);
        // expect() rejects a frame of another type
        await p.client.send({ t: 'surprise' });
        await assert.rejects(p.server.expect('c2s'), /expected 'c2s'.*got 'surprise'/);
      } finally {
        await p.close();
      }
    });
  }

  test('recv() gets queued frames; onFrame() takes the queued ones first, then every new one', async () => {
    const p = await pair(sockAddr());
    try {
      const sizes = [0, 1, 2, 3, 4].map((i) => concat(encodeFrame({ t: 'q', i })).length);
      for (let i = 0; i < 5; i++) p.client.post({ t: 'q', i });
      const total = sizes.reduce((a, b) => a + b, 0);
      // wait until all five have arrived (and are queued, as nobody is receiving)
      await within(
        (async () => {
          while (p.server.bytesIn < total) await sleep(5);
        })(),
        5000,
        'five frames',
      );
      assert.deepEqual((await p.server.recv()).head, { t: 'q', i: 0 });
      const seen: number[] = [];
      let more!: () => void;
      const allSeen = new Promise<void>((r) => (more = r));
      p.server.onFrame((f) => {
        seen.push(f.head.i as number);
        if (seen.length === 6) more();
      });
      assert.deepEqual(seen, [1, 2, 3, 4], 'queued frames are handed over synchronously, in order');
      p.client.post({ t: 'q', i: 5 });
      p.client.post({ t: 'q', i: 6 });
      await within(allSeen, 5000, 'frames 5 and 6');
      assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    } finally {
      await p.close();
    }
  });

  test('a 64 MiB payload arrives intact; send() resolves only once written (the part can be reused after)', async () => {
    const p = await pair(sockAddr());
    try {
      const big = new Float32Array(16 << 20); // 64 MiB
      for (let i = 0; i < big.length; i++) big[i] = (i % 65521) - 32000.5;
      big[0] = -0;
      big[big.length - 1] = Infinity;
      const want = sha(big);
      let resolved = false;
      const sent = p.client.send({ t: 'big', n: big.length }, [big, u8(1, 2, 3)]).then(() => {
        resolved = true;
      });
      assert.equal(resolved, false);
      assert.ok(p.client.socket.writableLength > 0, 'the write is still in progress right after send()');
      const got = p.server.recv();
      await within(sent, 15_000, 'send of 64 MiB');
      assert.equal(p.client.socket.writableLength, 0, 'nothing of the frame is left in the socket buffer');
      // Node writes without copying: once send() has resolved the bytes are out, so the sender may reuse
      // the array; the receiver must still see the original values.
      big.fill(7);
      const f = await within(got, 15_000, 'recv of 64 MiB');
      assert.equal(f.head.n, 16 << 20);
      const v = f32(f.parts[0]);
      assert.equal(v.length, 16 << 20);
      assert.equal(f.parts[0]!.byteOffset % 8, 0);
      assert.ok(Object.is(v[0], -0));
      assert.equal(v[v.length - 1], Infinity);
      assert.equal(v[12345], (12345 % 65521) - 32000.5);
      assert.equal(sha(v), want, 'checksum of the received payload');
      assert.deepEqual(Array.from(f.parts[1]!), [1, 2, 3]);
    } finally {
      await p.close();
    }
  });

  test('the peer closing: frames sent before the close still arrive, then recv() rejects with ConnClosedError and onClose fires', async () => {
    const p = await pair(sockAddr());
    try {
      const closes: ConnClosedError[] = [];
      p.server.onClose((e) => closes.push(e));
      await p.client.send({ t: 'last', i: 1 });
      await p.client.send({ t: 'last', i: 2 });
      p.client.close();
      assert.equal((await p.server.recv()).head.i, 1);
      assert.equal((await p.server.recv()).head.i, 2);
      const err = await within(
        p.server.recv().then(
          () => assert.fail('recv() resolved after the peer closed'),
          (e: unknown) => e,
        ),
        5000,
        'recv after close',
      );
      assert.ok(err instanceof ConnClosedError, `got ${String(err)}`);
      assert.equal(err.name, 'ConnClosedError');
      assert.match(err.message, /connection to .* closed/);
      assert.equal(closes.length, 1);
      assert.equal(closes[0], err);
      assert.equal(p.server.closed, true);
      // after the close: recv() and send() reject at once, a late onClose still fires (once)
      await assert.rejects(p.server.recv(), ConnClosedError);
      await assert.rejects(p.server.send({ t: 'x' }), ConnClosedError);
      const late = await new Promise<ConnClosedError>((r) => p.server.onClose(r));
      assert.equal(late, err);
      assert.equal(closes.length, 1);
    } finally {
      await p.close();
    }
  });

  test('a pending recv() rejects when the peer is destroyed (TCP); offClose removes a handler', async () => {
    const p = await pair(parseAddress('127.0.0.1:0'));
    try {
      const pending = p.client.recv();
      let removedCalled = false;
      const removed = () => (removedCalled = true);
      p.client.onClose(removed);
      p.client.offClose(removed);
      const fired = new Promise<ConnClosedError>((r) => p.client.onClose(r));
      p.server.destroy();
      await within(assert.rejects(pending, ConnClosedError), 5000, 'pending recv');
      const e = await within(fired, 5000, 'onClose');
      assert.ok(e instanceof ConnClosedError);
      assert.equal(removedCalled, false);
      // sending to the gone peer rejects (now or at the latest once the socket notices)
      await within(assert.rejects(p.client.send({ t: 'x' }, [new Float32Array(4)]), ConnClosedError), 5000, 'send after close');
    } finally {
      await p.close();
    }
  });

  test('bytes that are not frames close the connection with the bad-magic reason', async () => {
    const p = await pair(sockAddr());
    try {
      const fired = new Promise<ConnClosedError>((r) => p.server.onClose(r));
      p.client.socket.write(Buffer.from('this is not a hep-ml frame at all'));
      const e = await within(fired, 5000, 'close on garbage');
      assert.match(e.message, /bad magic/);
      await assert.rejects(p.server.recv(), /bad magic/);
      // the sender sees its connection go away too
      await within(assert.rejects(p.client.recv(), ConnClosedError), 5000, 'client notices');
    } finally {
      await p.close();
    }
  });

  test('listen on a unix path replaces a stale file there, and close() removes the socket', async () => {
    const addr = sockAddr() as { kind: 'unix'; path: string };
    writeFileSync(addr.path, 'stale');
    const l = await listen(addr, (c) => c.destroy());
    assert.ok(existsSync(addr.path));
    await l.close();
    await within(
      (async () => {
        while (existsSync(addr.path)) await sleep(5);
      })(),
      5000,
      'socket file removal',
    );
  });

  test('connect() retries until a listener appears (started 300 ms later)', async () => {
    const addr = sockAddr();
    let listener: Listener | undefined;
    let server: Conn | undefined;
    const started = setTimeout(() => {
      void listen(addr, (c) => (server = c)).then((l) => (listener = l));
    }, 300);
    try {
      const c = await within(connect(addr, { timeoutMs: 10_000 }), 12_000, 'connect with retries');
      assert.ok(listener, 'connected only once the listener exists');
      await c.send({ t: 'hi' });
      await within(
        (async () => {
          while (!server) await sleep(5);
        })(),
        5000,
        'accept',
      );
      assert.deepEqual((await server!.recv()).head, { t: 'hi' });
      c.destroy();
      server!.destroy();
    } finally {
      clearTimeout(started);
      await listener?.close();
    }
  });

  test('connect() gives up with ConnClosedError after timeoutMs when nothing listens (unix and TCP)', async () => {
    const addr = sockAddr();
    const t0 = Date.now();
    const e = await within(
      connect(addr, { timeoutMs: 250 }).then(
        () => assert.fail('connected to nothing'),
        (x: unknown) => x,
      ),
      10_000,
      'connect to nothing',
    );
    assert.ok(e instanceof ConnClosedError, `got ${String(e)}`);
    assert.match(e.message, /cannot connect \(ENOENT\)/);
    assert.ok(Date.now() - t0 >= 250, 'it kept retrying until the deadline');

    // TCP: a port that was just free (listen on 0, close): ECONNREFUSED, retried, then given up
    const probe = await listen(parseAddress('127.0.0.1:0'), () => undefined);
    const port = (probe.address as { port: number }).port;
    await probe.close();
    const e2 = await within(
      connect({ kind: 'tcp', host: '127.0.0.1', port }, { timeoutMs: 150 }).then(
        () => 'connected' as const,
        (x: unknown) => x,
      ),
      10_000,
      'connect to a closed port',
    );
    if (e2 !== 'connected') {
      // (in the unlikely case another process took the port meanwhile, there is nothing to check)
      assert.ok(e2 instanceof ConnClosedError);
      assert.match(e2.message, /ECONNREFUSED/);
    }

    // an aborted signal stops retrying at the first failure
    const ac = new AbortController();
    ac.abort();
    await within(assert.rejects(connect(sockAddr(), { timeoutMs: 60_000, signal: ac.signal }), ConnClosedError), 5000, 'aborted connect');
  });
});

// ---------------------------------------------------------------------------------------------------
// allreduce.ts

interface TestRing {
  rings: Ring[];
  /** next[r], prev[r] per rank. */
  conns: (Conn | undefined)[][];
  close(): Promise<void>;
}

/** N ranks in this process: rank r listens, and connects to rank r + 1 mod N. */
async function buildRing(N: number, kind: 'unix' | 'tcp' = 'unix'): Promise<TestRing> {
  if (N === 1) return { rings: [new Ring(0, 1, undefined, undefined)], conns: [[undefined, undefined]], close: async () => undefined };
  const listeners: Listener[] = [];
  const prevs: Promise<Conn>[] = [];
  for (let r = 0; r < N; r++) {
    let got!: (c: Conn) => void;
    prevs.push(new Promise<Conn>((res) => (got = res)));
    listeners.push(await listen(kind === 'unix' ? sockAddr() : parseAddress('127.0.0.1:0'), (c) => got(c)));
  }
  const nexts = await Promise.all(listeners.map((_, r) => connect(listeners[(r + 1) % N]!.address, { timeoutMs: 5000 })));
  const prev = await within(Promise.all(prevs), 5000, 'ring accept');
  const rings = nexts.map((next, r) => new Ring(r, N, next, prev[r]));
  return {
    rings,
    conns: rings.map((g) => [g.next, g.prev]),
    close: async () => {
      for (const g of rings) {
        g.next?.destroy();
        g.prev?.destroy();
      }
      await Promise.all(listeners.map((l) => l.close()));
    },
  };
}

const allReduceAll = (t: TestRing, bufs: Float32Array[], seq: number) =>
  within(
    Promise.all(t.rings.map((g, r) => g.allReduce(bufs[r]!, seq))),
    20_000,
    `all-reduce of ${bufs[0]!.length} values on ${t.rings.length} ranks`,
  );

/** Integer-valued inputs (exact float32 sums) for rank r. */
const intInput = (r: number, n: number, salt = 0) => Float32Array.from({ length: n }, (_, i) => ((i * 7 + r * 13 + salt * 31) % 2001) - 1000 + r);

function expectedSum(bufs: Float32Array[]): Float32Array {
  const out = new Float32Array(bufs[0]!.length);
  for (let i = 0; i < out.length; i++) out[i] = bufs.reduce((a, b) => a + b[i]!, 0);
  return out;
}

describe('allreduce: Ring', () => {
  for (const N of [1, 2, 3, 4]) {
    test(`N = ${N}: exact sums for lengths 0, 1, 2, N − 1, N + 1 and 100,003; identical bits on every rank; bytes counted`, async () => {
      const t = await buildRing(N);
      try {
        let seq = 0;
        for (const n of [0, 1, 2, Math.max(N - 1, 1), N + 1, 100_003]) {
          const bufs = t.rings.map((_, r) => intInput(r, n));
          const want = expectedSum(bufs);
          const bytes0 = t.rings.map((g) => g.bytes);
          await allReduceAll(t, bufs, seq++);
          bufs.forEach((b, r) => assert.ok(sameBytes(b, want), `N=${N}, n=${n}: rank ${r} holds the exact sum`));
          // every chunk crosses the ring 2(N − 1) times in all
          const sent = t.rings.reduce((a, g, r) => a + g.bytes - bytes0[r]!, 0);
          assert.equal(sent, 8 * (N - 1) * n, `N=${N}, n=${n}: bytes sent`);
        }
        for (const g of t.rings) assert.equal(g.calls, N === 1 ? 0 : 6);
      } finally {
        await t.close();
      }
    });
  }

  test('TCP loopback ring (N = 3) sums too', async () => {
    const t = await buildRing(3, 'tcp');
    try {
      const bufs = t.rings.map((_, r) => intInput(r, 10_007));
      const want = expectedSum(bufs);
      await allReduceAll(t, bufs, 1);
      for (const b of bufs) assert.ok(sameBytes(b, want));
    } finally {
      await t.close();
    }
  });

  test('length 2 with N = 4 (two empty chunks) and length 1 with N = 4 (three empty chunks)', async () => {
    const t = await buildRing(4);
    try {
      const a = t.rings.map((_, r) => Float32Array.from([r + 1, 10 * (r + 1)]));
      await allReduceAll(t, a, 0);
      for (const b of a) assert.deepEqual(Array.from(b), [10, 100]);
      const c = t.rings.map((_, r) => Float32Array.from([2 ** r]));
      await allReduceAll(t, c, 1);
      for (const b of c) assert.deepEqual(Array.from(b), [15]);
    } finally {
      await t.close();
    }
  });

  test('non-representable sums (random floats): every rank ends with the same bits, close to the exact sum', async () => {
    const N = 4;
    const t = await buildRing(N);
    try {
      let s = 12345;
      const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const n = 30_011;
      const bufs = t.rings.map(() => Float32Array.from({ length: n }, () => rnd() * 10 ** Math.floor(rnd() * 6)));
      const exact = Array.from({ length: n }, (_, i) => bufs.reduce((a, b) => a + b[i]!, 0));
      const scale = Array.from({ length: n }, (_, i) => bufs.reduce((a, b) => a + Math.abs(b[i]!), 0));
      await allReduceAll(t, bufs, 7);
      for (let r = 1; r < N; r++) assert.ok(sameBytes(bufs[r]!, bufs[0]!), `rank ${r} has the bits of rank 0`);
      assert.equal(checksum(bufs[3]!), checksum(bufs[0]!));
      for (let i = 0; i < n; i++) {
        // N − 1 float32 additions, each off by at most 2^-24 of a partial sum
        assert.ok(Math.abs(bufs[0]![i]! - exact[i]!) <= N * 2 ** -24 * scale[i]!, `element ${i}: ${bufs[0]![i]} vs ${exact[i]}`);
      }
    } finally {
      await t.close();
    }
  });

  test('consecutive calls with increasing seq (a subarray buffer, as the worker passes)', async () => {
    const N = 3;
    const t = await buildRing(N);
    try {
      const backing = t.rings.map(() => new Float32Array(1003 + 5));
      for (let seq = 10; seq < 20; seq++) {
        const bufs = backing.map((b, r) => {
          const v = b.subarray(2, 2 + 1003);
          v.set(intInput(r, 1003, seq));
          b[0] = b[1] = b[1005] = -99;
          return v;
        });
        const want = expectedSum(bufs);
        await allReduceAll(t, bufs, seq);
        bufs.forEach((b, r) => assert.ok(sameBytes(b, want), `seq ${seq}, rank ${r}`));
        for (const b of backing) assert.deepEqual([b[0], b[1], b[1005]], [-99, -99, -99], 'outside the view is untouched');
      }
      for (const g of t.rings) assert.equal(g.calls, 10);
    } finally {
      await t.close();
    }
  });

  test('a mismatched seq throws RingError', async () => {
    const t = await buildRing(2);
    try {
      const bufs = [intInput(0, 100), intInput(1, 100)];
      const res = await within(Promise.all([settle(t.rings[0]!.allReduce(bufs[0]!, 1)), settle(t.rings[1]!.allReduce(bufs[1]!, 2))]), 10_000, 'mismatched all-reduce');
      for (const r of res) {
        assert.equal(r.ok, false);
        assert.ok(!r.ok && r.error instanceof RingError, `got ${String(!r.ok && r.error)}`);
        assert.match(String((r as { error: Error }).error.message), /out of step: expected [12]\/0, got ar [21]\/0/);
      }
    } finally {
      await t.close();
    }
  });

  test('a frame of another type in the ring throws RingError', async () => {
    const t = await buildRing(2);
    try {
      await t.rings[1]!.next!.send({ t: 'nonsense', seq: 0, s: 0 }, [new Float32Array(5)]);
      const r = await within(settle(t.rings[0]!.allReduce(new Float32Array(10), 0)), 10_000, 'stray frame');
      assert.ok(!r.ok && r.error instanceof RingError);
    } finally {
      await t.close();
    }
  });

  for (const N of [2, 3, 4]) {
    test(`N = ${N}: destroying one connection makes every rank's allReduce reject (no hang, no unhandled rejection)`, async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown) => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      const t = await buildRing(N);
      try {
        // warm-up call: the ring works
        const warm = t.rings.map((_, r) => intInput(r, 1000));
        await allReduceAll(t, warm, 0);
        // like the worker: a rank whose all-reduce fails tears down its ring connections
        const runs = t.rings.map((g, r) =>
          settle(
            g.allReduce(intInput(r, 100_003), 1).catch((e: unknown) => {
              g.next?.destroy();
              g.prev?.destroy();
              throw e;
            }),
          ),
        );
        t.rings[1]!.next!.destroy();
        const res = await within(Promise.all(runs), 10_000, `all-reduce with a broken ring (N=${N})`);
        res.forEach((r, rank) => {
          assert.equal(r.ok, false, `rank ${rank} completed an all-reduce on a broken ring`);
          const e = (r as { error: unknown }).error;
          assert.ok(e instanceof ConnClosedError || e instanceof RingError, `rank ${rank}: ${String(e)}`);
        });
        await sleep(50); // let late send() rejections surface
        assert.deepEqual(
          unhandled.map((e) => String(e)),
          [],
          'a failing all-reduce leaves no unhandled rejection (its pending send)',
        );
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await t.close();
      }
    });
  }

  test('N = 2 without teardown: destroying rank 0 → 1 rejects both ranks by itself', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const t = await buildRing(2);
    try {
      const runs = t.rings.map((g, r) => settle(g.allReduce(intInput(r, 50_000), 0)));
      t.rings[0]!.next!.destroy();
      const res = await within(Promise.all(runs), 10_000, 'broken 2-ring');
      for (const r of res) assert.equal(r.ok, false);
      await sleep(50);
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await t.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// strategies.ts

describe('strategies: parameters', () => {
  test('dist-keras defaults', () => {
    assert.deepEqual([...STRATEGIES], ['sync', 'downpour', 'adag', 'dynsgd', 'aeasgd', 'eamsgd']);
    assert.deepEqual(DEFAULT_WINDOW, { sync: 1, downpour: 5, adag: 12, dynsgd: 5, aeasgd: 32, eamsgd: 32 });
    assert.equal(DEFAULT_RHO, 5);
    assert.equal(DEFAULT_ELASTIC_LR, 0.1);
    assert.equal(DEFAULT_MOMENTUM, 0.9);
    const want: Record<Strategy, number> = { sync: 1, downpour: 5, adag: 12, dynsgd: 5, aeasgd: 32, eamsgd: 32 };
    for (const s of STRATEGIES) assert.deepEqual(strategyParams(s), { strategy: s, window: want[s], rho: 5, momentum: 0.9, elasticLr: 0.1 });
  });

  test('overrides (undefined keeps the default)', () => {
    assert.deepEqual(strategyParams('eamsgd', { window: 3, rho: 2.5, momentum: 0, elasticLr: 0.01 }), { strategy: 'eamsgd', window: 3, rho: 2.5, momentum: 0, elasticLr: 0.01 });
    assert.deepEqual(strategyParams('adag', { window: undefined, rho: 1 }), { strategy: 'adag', window: 12, rho: 1, momentum: 0.9, elasticLr: 0.1 });
  });

  test('validation errors', () => {
    for (const window of [0, -1, 1.5, NaN, Infinity]) assert.throws(() => strategyParams('downpour', { window }), (e: unknown) => e instanceof RangeError && /communication window must be a positive integer/.test(e.message), `window ${window}`);
    for (const rho of [0, -1, NaN, Infinity]) assert.throws(() => strategyParams('aeasgd', { rho }), (e: unknown) => e instanceof RangeError && /rho must be positive/.test(e.message), `rho ${rho}`);
    for (const momentum of [-0.1, 1, 1.5, NaN]) assert.throws(() => strategyParams('eamsgd', { momentum }), (e: unknown) => e instanceof RangeError && /momentum must be in \[0, 1\)/.test(e.message), `momentum ${momentum}`);
    for (const elasticLr of [0, -0.1, NaN, Infinity]) assert.throws(() => strategyParams('aeasgd', { elasticLr }), (e: unknown) => e instanceof RangeError && /elastic learning rate must be positive/.test(e.message), `elasticLr ${elasticLr}`);
  });
});

describe('strategies: ParameterServer', () => {
  test('the center is a copy of the initial weights; a commit of the wrong size throws', () => {
    const init = new Float32Array([1, 2, 3]);
    const ps = new ParameterServer('downpour', init);
    init[0] = 100;
    assert.deepEqual(Array.from(ps.center), [1, 2, 3]);
    assert.throws(() => ps.commit(new Float32Array(2), 0), (e: unknown) => e instanceof RangeError && /2 values for a model of 3/.test(e.message));
    assert.equal(ps.updates, 0);
  });

  for (const s of ['downpour', 'adag', 'aeasgd', 'eamsgd'] as const) {
    test(`${s}: C ← C + payload whatever the staleness; staleness = updates − lastUpdate`, () => {
      const ps = new ParameterServer(s, new Float32Array([1, 2, 3]));
      assert.equal(ps.commit(new Float32Array([0.5, 0, -1]), 0), 0);
      assert.equal(ps.commit(new Float32Array([0.25, 1, 1]), 0), 1);
      assert.equal(ps.commit(new Float32Array([1, 1, 1]), 0), 2);
      assert.equal(ps.commit(new Float32Array([0, 0, 0.5]), 3), 0);
      assert.equal(ps.commit(new Float32Array([0, 0, 0]), 99), 0, 'a counter from the future counts as 0');
      assert.deepEqual(Array.from(ps.center), [2.75, 4, 4.5]);
      assert.equal(ps.updates, 5);
    });
  }

  test('dynsgd: C ← C + Δ/(s + 1); two commits from the same stale pull', () => {
    const ps = new ParameterServer('dynsgd', new Float32Array([0, 10]));
    // workers A and B both pulled at u = 0
    assert.equal(ps.commit(new Float32Array([4, -4]), 0), 0); // A: s = 0, C += Δ
    assert.deepEqual(Array.from(ps.center), [4, 6]);
    assert.equal(ps.commit(new Float32Array([2, 6]), 0), 1); // B: s = 1, C += Δ/2
    assert.deepEqual(Array.from(ps.center), [5, 9]);
    // a third from the same pull: s = 2, C += Δ/3
    assert.equal(ps.commit(new Float32Array([3, 9]), 0), 2);
    assert.deepEqual(Array.from(ps.center), [6, 12]);
    // A pulled again after its commit (u = 1): s = 3 − 1 = 2
    assert.equal(ps.commit(new Float32Array([6, 3]), 1), 2);
    assert.deepEqual(Array.from(ps.center), [8, 13]);
    assert.equal(ps.updates, 4);
  });

  test('takeStats: commits, mean and max staleness since the last call', () => {
    const ps = new ParameterServer('downpour', new Float32Array(2));
    assert.deepEqual(ps.takeStats(), { commits: 0, staleness_mean: 0, staleness_max: 0 });
    const z = new Float32Array(2);
    ps.commit(z, 0); // 0
    ps.commit(z, 0); // 1
    ps.commit(z, 0); // 2
    ps.commit(z, 2); // 1
    assert.deepEqual(ps.takeStats(), { commits: 4, staleness_mean: 1, staleness_max: 2 });
    assert.deepEqual(ps.takeStats(), { commits: 0, staleness_mean: 0, staleness_max: 0 });
    ps.commit(z, 4); // 0
    ps.commit(z, 3); // 2
    assert.deepEqual(ps.takeStats(), { commits: 2, staleness_mean: 1, staleness_max: 2 });
    assert.equal(ps.updates, 6);
  });
});

// ---- AsyncWorkerRule with fakes

type Ev = { op: 'pull'; t: number; updates: number } | { op: 'commit'; t: number; payload: number[]; lastUpdate: number; staleness: number } | { op: 'train'; t: number; w: number[] };

class FakeModel implements LocalModel {
  w: Float32Array;
  sets = 0;
  constructor(n: number) {
    this.w = new Float32Array(n);
  }
  get(): Float32Array {
    return Float32Array.from(this.w);
  }
  set(w: Float32Array): void {
    this.w = Float32Array.from(w);
    this.sets++;
  }
}

/** An in-memory parameter server that records the calls (with the rule's t at the time). */
class FakePs implements PsClient {
  events: Ev[] = [];
  rule?: AsyncWorkerRule;
  constructor(readonly server: ParameterServer) {}
  async pull(): Promise<{ center: Float32Array; updates: number }> {
    await Promise.resolve();
    this.events.push({ op: 'pull', t: this.rule!.t, updates: this.server.updates });
    return { center: Float32Array.from(this.server.center), updates: this.server.updates };
  }
  async commit(payload: Float32Array, lastUpdate: number): Promise<void> {
    await Promise.resolve();
    const staleness = this.server.commit(payload, lastUpdate);
    this.events.push({ op: 'commit', t: this.rule!.t, payload: Array.from(payload), lastUpdate, staleness });
  }
}

const C0 = [1, 2, 3];
const G = [-0.1, 0.2, -0.3];
const lin = (a: number[], k: number, b: number[] = G) => a.map((x, i) => x + k * b[i]!);

function setup(strategy: Exclude<Strategy, 'sync'>, o: Partial<Omit<StrategyParams, 'strategy'>> = { window: 2 }) {
  const server = new ParameterServer(strategy, Float32Array.from(C0));
  const ps = new FakePs(server);
  const model = new FakeModel(3);
  const rule = new AsyncWorkerRule(strategyParams(strategy, o), model, ps);
  ps.rule = rule;
  /** A local "optimizer step": W ← W + G; returns the t it ran at. */
  const train = async () => {
    await Promise.resolve();
    ps.events.push({ op: 'train', t: rule.t, w: Array.from(model.w) });
    const w = model.get();
    for (let i = 0; i < w.length; i++) w[i] = w[i]! + G[i]!;
    model.set(w);
    return rule.t;
  };
  return { server, ps, model, rule, train };
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} ≠ ${expected[i]}`);
  }
}

/** The (op, t) sequence. */
const ops = (evs: Ev[]) => evs.map((e) => `${e.op}@${e.t}`);
const commitsOf = (evs: Ev[]) => evs.filter((e): e is Extract<Ev, { op: 'commit' }> => e.op === 'commit');

describe('strategies: AsyncWorkerRule', () => {
  test('sync is not a parameter-server strategy', () => {
    const ps = new FakePs(new ParameterServer('downpour', new Float32Array(1)));
    assert.throws(() => new AsyncWorkerRule(strategyParams('sync'), new FakeModel(1), ps), /not a parameter-server strategy/);
  });

  test('step() returns what train() returns; t counts from 1', async () => {
    const { rule, train } = setup('downpour');
    rule.begin(Float32Array.from(C0), 0);
    assert.equal(rule.t, 1);
    assert.equal(await rule.step(train), 1);
    assert.equal(await rule.step(async () => 'x'), 'x');
    assert.equal(rule.t, 3);
  });

  test('downpour (τ = 2): before the step at t mod τ = 0 commit W − W₀, pull, W ← C; end() commits the rest', async () => {
    const { server, ps, model, rule, train } = setup('downpour');
    rule.begin(Float32Array.from(C0), 0);
    close(model.w, C0, 'W after begin');
    for (let i = 0; i < 4; i++) await rule.step(train);
    await rule.end();
    assert.deepEqual(ops(ps.events), ['train@1', 'commit@2', 'pull@2', 'train@2', 'train@3', 'commit@4', 'pull@4', 'train@4', 'commit@5']);
    const [c1, c2, c3] = commitsOf(ps.events);
    close(c1!.payload, G, 'commit at t=2: one step (W − W₀)');
    assert.equal(c1!.lastUpdate, 0);
    close(c2!.payload, lin([0, 0, 0], 2), 'commit at t=4: steps 2, 3');
    assert.equal(c2!.lastUpdate, 1);
    close(c3!.payload, G, 'end(): step 4');
    assert.equal(c3!.lastUpdate, 2);
    // each local step starts from the freshly pulled center
    const trains = ps.events.filter((e) => e.op === 'train') as Extract<Ev, { op: 'train' }>[];
    close(trains[1]!.w, lin(C0, 1), 'W at step 2 (= C after the first commit)');
    close(trains[3]!.w, lin(C0, 3), 'W at step 4 (= C after the second commit)');
    close(server.center, lin(C0, 4), 'C: no step lost');
    close(model.w, lin(C0, 4), 'W');
    assert.equal(rule.commits, 3);
    assert.equal(rule.pulls, 2);
    // a second end() has nothing left to commit
    await rule.end();
    assert.equal(commitsOf(ps.events).length, 3);
  });

  test('adag (τ = 2): after the step at t mod τ = 0 commit (W − W₀)/τ, pull; end() commits the rest /τ', async () => {
    const { server, ps, model, rule, train } = setup('adag');
    rule.begin(Float32Array.from(C0), 0);
    for (let i = 0; i < 5; i++) await rule.step(train);
    await rule.end();
    assert.deepEqual(ops(ps.events), ['train@1', 'train@2', 'commit@2', 'pull@2', 'train@3', 'train@4', 'commit@4', 'pull@4', 'train@5', 'commit@6']);
    const cs = commitsOf(ps.events);
    close(cs[0]!.payload, G, 'commit at t=2: 2 steps / τ');
    close(cs[1]!.payload, G, 'commit at t=4: 2 steps / τ');
    close(cs[2]!.payload, lin([0, 0, 0], 0.5), 'end(): 1 step / τ');
    assert.deepEqual(
      cs.map((c) => c.lastUpdate),
      [0, 1, 2],
    );
    close(server.center, lin(C0, 2.5), 'C');
    close(model.w, lin(C0, 3), 'W (the last pull + one step)');
  });

  test('adag: end() right after a window commit commits nothing', async () => {
    const { ps, rule, train } = setup('adag');
    rule.begin(Float32Array.from(C0), 0);
    for (let i = 0; i < 4; i++) await rule.step(train);
    const n = commitsOf(ps.events).length;
    await rule.end();
    assert.equal(commitsOf(ps.events).length, n);
    assert.equal(n, 2);
  });

  test('dynsgd (τ = 2): after the step commit W − W₀ with the counter of the last pull; the PS divides by staleness + 1', async () => {
    const { server, ps, model, rule, train } = setup('dynsgd');
    rule.begin(Float32Array.from(C0), 0);
    const X = [1, 1, 1];
    await rule.step(train); // t = 1
    // another worker commits meanwhile (pulled at 0 too): this worker's next commit is 1 update stale
    server.commit(Float32Array.from(X), 0);
    for (let i = 0; i < 4; i++) await rule.step(train); // t = 2..5
    await rule.end();
    assert.deepEqual(ops(ps.events), ['train@1', 'train@2', 'commit@2', 'pull@2', 'train@3', 'train@4', 'commit@4', 'pull@4', 'train@5', 'commit@6']);
    const cs = commitsOf(ps.events);
    close(cs[0]!.payload, lin([0, 0, 0], 2), 'commit at t=2: W − W₀ (not divided by τ)');
    assert.equal(cs[0]!.lastUpdate, 0);
    assert.equal(cs[0]!.staleness, 1);
    close(cs[1]!.payload, lin([0, 0, 0], 2), 'commit at t=4');
    assert.equal(cs[1]!.lastUpdate, 2);
    assert.equal(cs[1]!.staleness, 0);
    close(cs[2]!.payload, G, 'end()');
    assert.equal(cs[2]!.lastUpdate, 3);
    // C = C0 + X + 2G/2 + 2G + G
    close(server.center, lin(lin(C0, 1, X), 4), 'C');
    close(model.w, lin(lin(C0, 1, X), 4), 'W');
    assert.deepEqual(server.takeStats(), { commits: 4, staleness_mean: 0.25, staleness_max: 1 });
  });

  test('aeasgd (τ = 2, ρ = 5, η = 0.1): before the step pull, E = ηρ(W − C), W ← W − E, commit E; end() commits nothing', async () => {
    const { server, ps, model, rule, train } = setup('aeasgd');
    rule.begin(Float32Array.from(C0), 0);
    for (let i = 0; i < 4; i++) await rule.step(train);
    await rule.end();
    assert.deepEqual(ops(ps.events), ['train@1', 'pull@2', 'commit@2', 'train@2', 'train@3', 'pull@4', 'commit@4', 'train@4']);
    const cs = commitsOf(ps.events);
    // t=2: W = C0 + G, C = C0 → E = 0.5 G, W = C0 + 0.5 G, C = C0 + 0.5 G
    close(cs[0]!.payload, lin([0, 0, 0], 0.5), 'E at t=2');
    const trains = ps.events.filter((e) => e.op === 'train') as Extract<Ev, { op: 'train' }>[];
    close(trains[1]!.w, lin(C0, 0.5), 'W at step 2 (after the elastic pull)');
    // t=4: W = C0 + 2.5 G, C = C0 + 0.5 G → E = 0.5 · 2 G = G, W = C0 + 1.5 G, C = C0 + 1.5 G
    close(cs[1]!.payload, G, 'E at t=4');
    assert.deepEqual(
      cs.map((c) => c.lastUpdate),
      [0, 1],
    );
    close(trains[3]!.w, lin(C0, 1.5), 'W at step 4');
    close(server.center, lin(C0, 1.5), 'C');
    close(model.w, lin(C0, 2.5), 'W');
    assert.equal(rule.commits, 2);
    assert.equal(rule.pulls, 2);
  });

  test('eamsgd (τ = 2, μ = 0.9, η = 0.1, ρ = 5): the elastic exchange, then momentum steps at W + r_t', async () => {
    const { server, ps, model, rule, train } = setup('eamsgd');
    rule.begin(Float32Array.from(C0), 0);
    for (let i = 0; i < 4; i++) await rule.step(train);
    await rule.end();
    assert.deepEqual(ops(ps.events), ['train@1', 'pull@2', 'commit@2', 'train@2', 'train@3', 'pull@4', 'commit@4', 'train@4']);
    // by hand, in multiples of G (train adds Δ = G whatever the weights; r starts at 0):
    //  t=1: r_t = 0, train at C0; r = −0.1; W = C0 + 0.1
    //  t=2: pull C = C0: E = 0.5 (0.1) = 0.05, W = C0 + 0.05, C = C0 + 0.05;
    //       r_t = −0.09, train at C0 − 0.04; r = −0.19; W = C0 + 0.05 + 0.19 = C0 + 0.24
    //  t=3: r_t = −0.171, train at C0 + 0.069; r = −0.271; W = C0 + 0.511
    //  t=4: pull C = C0 + 0.05: E = 0.5 (0.461) = 0.2305, W = C0 + 0.2805, C = C0 + 0.2805;
    //       r_t = −0.2439, train at C0 + 0.0366; r = −0.3439; W = C0 + 0.6244
    const trains = ps.events.filter((e) => e.op === 'train') as Extract<Ev, { op: 'train' }>[];
    close(trains[0]!.w, lin(C0, 0), 'train at t=1');
    close(trains[1]!.w, lin(C0, -0.04), 'train at t=2');
    close(trains[2]!.w, lin(C0, 0.069), 'train at t=3');
    close(trains[3]!.w, lin(C0, 0.0366), 'train at t=4');
    const cs = commitsOf(ps.events);
    close(cs[0]!.payload, lin([0, 0, 0], 0.05), 'E at t=2');
    close(cs[1]!.payload, lin([0, 0, 0], 0.2305), 'E at t=4');
    close(server.center, lin(C0, 0.2805), 'C');
    close(model.w, lin(C0, 0.6244), 'W');
  });

  test('eamsgd with μ = 0 is plain local steps scaled by η between the elastic exchanges', async () => {
    const { model, rule, train } = setup('eamsgd', { window: 100, momentum: 0, elasticLr: 0.5, rho: 1 });
    rule.begin(Float32Array.from(C0), 0);
    for (let i = 0; i < 3; i++) await rule.step(train);
    close(model.w, lin(C0, 1.5), 'W = C0 + 3 · 0.5 G');
  });

  for (const strategy of ['downpour', 'adag', 'dynsgd'] as const) {
    test(`${strategy}: begin() resets W = W₀ = C (and the counter) every epoch; end() after begin() commits nothing`, async () => {
      const { ps, model, rule, train } = setup(strategy, { window: 3 });
      rule.begin(Float32Array.from(C0), 0);
      await rule.step(train);
      await rule.end();
      const C1 = [5, 6, 7];
      rule.begin(Float32Array.from(C1), 4);
      close(model.w, C1, 'W after the second begin');
      await rule.end();
      assert.equal(commitsOf(ps.events).length, 1, 'nothing to commit right after begin()');
      await rule.step(train); // t = 2
      await rule.end();
      const last = commitsOf(ps.events).at(-1)!;
      close(last.payload, strategy === 'adag' ? lin([0, 0, 0], 1 / 3) : G, 'W − W₀ measured from the new center');
      assert.equal(last.lastUpdate, 4, 'the counter of the epoch message');
      assert.equal(rule.t, 3, 't runs on across epochs');
    });
  }

  for (const strategy of ['aeasgd', 'eamsgd'] as const) {
    test(`${strategy}: the first begin() sets W = C, later ones keep the local W`, async () => {
      const { ps, model, rule, train } = setup(strategy, { window: 10 });
      model.w = Float32Array.from([9, 9, 9]);
      rule.begin(Float32Array.from(C0), 0);
      close(model.w, C0, 'W after the first begin');
      await rule.step(train);
      const w = Array.from(model.w);
      assert.notDeepEqual(w, C0);
      rule.begin(Float32Array.from([5, 6, 7]), 3);
      close(model.w, w, 'W kept after the second begin');
      await rule.end();
      assert.equal(commitsOf(ps.events).length, 0, 'end() commits nothing for an elastic strategy');
      // the next exchange uses the counter from the epoch message
      for (let i = 0; i < 9; i++) await rule.step(train); // t = 2..10: exchange at t = 10
      const cs = commitsOf(ps.events);
      assert.equal(cs.length, 1);
      assert.equal(cs[0]!.lastUpdate, 0, 'the elastic exchange pulls first: its counter comes from that pull');
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// replica.ts

describe('replica: checksum', () => {
  test('stable, 16 hex digits, and different on every one-bit change', () => {
    const a = Float32Array.from([0, 1.5, -2, 3e-8, 1e30, NaN]);
    const c = checksum(a);
    assert.match(c, /^[0-9a-f]{16}$/);
    assert.equal(checksum(a), c);
    assert.equal(checksum(Float32Array.from(a)), c);
    const bytes = new Uint8Array(a.buffer);
    const seen = new Set<string>([c]);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      bytes[bit >> 3]! ^= 1 << (bit & 7);
      const d = checksum(a);
      assert.notEqual(d, c, `bit ${bit}`);
      seen.add(d);
      bytes[bit >> 3]! ^= 1 << (bit & 7);
    }
    assert.equal(seen.size, bytes.length * 8 + 1, 'all one-bit changes give distinct checksums');
    assert.equal(checksum(a), c);
    // -0 and 0 differ in bits
    assert.notEqual(checksum(Float32Array.from([0])), checksum(Float32Array.from([-0])));
    assert.notEqual(checksum(new Float32Array(0)), checksum(new Float32Array(1)));
  });

  test('a view hashes its own bytes only', () => {
    const big = Float32Array.from([7, 1, 2, 3, 8]);
    assert.equal(checksum(big.subarray(1, 4)), checksum(Float32Array.from([1, 2, 3])));
    assert.notEqual(checksum(big.subarray(1, 4)), checksum(big));
  });
});

describe('replica: tfjs models', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  const dense = (seed: number) => [
    tf.layers.dense({ units: 5, activation: 'tanh', inputShape: [4], kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: tf.initializers.randomNormal({ seed: seed + 1, stddev: 0.1 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }), biasInitializer: tf.initializers.randomNormal({ seed: seed + 3, stddev: 0.1 }) }),
  ];
  /** tf.sequential with two dense layers. */
  const build = (seed: number): tf.LayersModel => {
    const m = tf.sequential();
    for (const l of dense(seed)) m.add(l);
    return m;
  };
  /** The same as a functional tf.model (what buildModel makes, and what the worker primes). */
  const buildFunctional = (seed: number): tf.LayersModel => {
    const input = tf.input({ shape: [4] });
    const [d1, d2] = dense(seed);
    const out = d2!.apply(d1!.apply(input)) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  };
  const P = 4 * 5 + 5 + 5 * 3 + 3;

  const batch = () => {
    const B = 6;
    const x = tf.tensor2d(Float32Array.from({ length: B * 4 }, (_, i) => Math.sin(i * 1.7) * 2), [B, 4]);
    const y = tf.oneHot(tf.tensor1d([0, 2, 1, 1, 0, 2], 'int32'), 3).toFloat();
    return { x, y };
  };

  test('flatWeights / setFlatWeights round trip, in model.weights order; a wrong size throws', () => {
    const m = build(1);
    const flat = flatWeights(m);
    assert.equal(flat.length, P);
    const parts = m.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(Array.from(flat), parts.flat().map((v) => Math.fround(v)));
    const other = build(100);
    assert.notEqual(checksum(flatWeights(other)), checksum(flat));
    setFlatWeights(other, flat);
    assert.ok(sameBytes(flatWeights(other), flat));
    // a distinct pattern lands where flatWeights reads it back
    const pat = Float32Array.from({ length: P }, (_, i) => i * 0.25 - 3);
    setFlatWeights(other, pat);
    assert.ok(sameBytes(flatWeights(other), pat));
    const [k0, b0, k1, b1] = other.getWeights();
    assert.deepEqual(k0!.shape, [4, 5]);
    assert.equal(k0!.dataSync()[0], -3);
    assert.equal(b0!.dataSync()[0], pat[20]);
    assert.equal(k1!.dataSync()[0], pat[25]);
    assert.equal(b1!.dataSync()[2], pat[P - 1]);
    assert.throws(() => setFlatWeights(other, new Float32Array(P - 1)), (e: unknown) => e instanceof RangeError && e.message === `weights of ${P - 1} values for a model of ${P}`);
    // predictions agree after the copy
    const x = tf.ones([2, 4]);
    setFlatWeights(other, flat);
    assert.deepEqual(Array.from((other.predict(x) as tf.Tensor).dataSync()), Array.from((m.predict(x) as tf.Tensor).dataSync()));
  });

  test('GradientCapture: trainOnBatch captures the mean-loss gradient without changing the weights; SGD on it equals SGD trainOnBatch', async () => {
    const lr = 0.05;
    const m = buildFunctional(7);
    const capture = new GradientCapture();
    m.compile({ optimizer: capture, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    assert.throws(() => new GradientCapture().prime(buildFunctional(8)), /compile the model first/);
    capture.prime(m);
    assert.equal(capture.size, P);
    assert.equal(capture.flat.length, P + 3, 'room for rows, loss and accuracy');
    assert.deepEqual(capture.shapes, [[4, 5], [5], [5, 3], [3]]);
    assert.deepEqual(
      capture.names,
      m.trainableWeights.map((w) => (w.read() as tf.Variable).name),
    );

    const w0 = flatWeights(m);
    const { x, y } = batch();
    const out = await m.trainOnBatch(x, y);
    assert.ok(Array.isArray(out) && out.length === 2 && Number.isFinite(out[0]), 'loss and accuracy');
    assert.ok(sameBytes(flatWeights(m), w0), 'the capture applies nothing');
    const grad = Float32Array.from(capture.flat.subarray(0, P));
    assert.ok(grad.some((g) => g !== 0));

    // the same gradient through tf.variableGrads of the mean categorical cross-entropy
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.metrics.categoricalCrossentropy(y, m.apply(x) as tf.Tensor)) as tf.Scalar, vars);
    assert.ok(Math.abs(value.dataSync()[0]! - (out as number[])[0]!) < 1e-6, 'same loss');
    const ref = Float32Array.from(vars.flatMap((v) => Array.from(grads[v.name]!.dataSync())));
    close(grad, ref, 'captured gradient vs tf.variableGrads');
    tf.dispose([value, ...Object.values(grads)]);

    // applying the captured gradient with SGD equals a normal SGD trainOnBatch from the same weights
    const sgd = tf.train.sgd(lr);
    const ts = capture.tensors(grad);
    assert.deepEqual(
      ts.map((t) => t.name),
      capture.names,
    );
    assert.deepEqual(
      ts.map((t) => t.tensor.shape),
      capture.shapes,
    );
    sgd.applyGradients(ts);
    tf.dispose(ts.map((t) => t.tensor));
    const viaCapture = flatWeights(m);
    assert.ok(!sameBytes(viaCapture, w0), 'SGD moved the weights');

    const ref2 = buildFunctional(999);
    setFlatWeights(ref2, w0);
    ref2.compile({ optimizer: tf.train.sgd(lr), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    await ref2.trainOnBatch(x, y);
    close(viaCapture, flatWeights(ref2), 'weights: capture + SGD vs SGD trainOnBatch');
    close(viaCapture, Float32Array.from(w0, (v, i) => v - lr * grad[i]!), 'weights: W − lr·g');

    // a second step captures again (flat is overwritten in place)
    await m.trainOnBatch(x, y);
    assert.ok(sameBytes(flatWeights(m), viaCapture), 'still applies nothing');
    assert.ok(!sameBytes(capture.flat.subarray(0, P), grad), 'a new gradient at the new weights');

    // gradients for other variables than the primed ones are refused
    const bogus = [{ name: 'not-a-variable', tensor: tf.zeros([P]) }];
    assert.throws(() => capture.applyGradients(bogus), /differ from the primed ones/);
    tf.dispose([x, y, bogus[0]!.tensor]);
  });

  // prime() reads model.collectedTrainableWeights, which a compiled tf.sequential keeps on its inner model
  test('GradientCapture.prime accepts a compiled tf.sequential', {}, async () => {
    const m = build(11);
    const capture = new GradientCapture();
    m.compile({ optimizer: capture, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    capture.prime(m);
    assert.equal(capture.size, P);
    const w0 = flatWeights(m);
    const { x, y } = batch();
    await m.trainOnBatch(x, y);
    assert.ok(sameBytes(flatWeights(m), w0));
    assert.ok(capture.flat.subarray(0, P).some((g) => g !== 0));
    tf.dispose([x, y]);
  });
});
