/**
 * src/root/http*.ts: the HTTP(S) byte source against a fault-injecting node:http server on 127.0.0.1
 * (test/helpers/http-fault-server.ts): multi-range on/off and every way a server answers one, retries
 * (503, 429, dropped connections, bodies cut short), stalls, 404/403, redirect chains, servers that ignore
 * Range, bearer-token discovery and --header precedence (checked on the Authorization header the server
 * receives). Plus the pure parts: multipart parsing, coalescing and request packing.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorruptDataError, InputNotFoundError, IoError, NotRootFileError } from '../../src/errors.js';
import { HttpSource, type HttpOptions } from '../../src/root/http.js';
import { credentialsFollowRedirect, discoverBearerToken, isLoopbackHost, tokenAllowed } from '../../src/root/http-auth.js';
import { multipartBoundary, parseContentRange, parseMultipart } from '../../src/root/http-multipart.js';
import { coalesceRemote, MULTI_RANGE_COALESCE, packRequests, rangeHeader, READV_CHUNK, SINGLE_RANGE_COALESCE, splitUnits } from '../../src/root/http-plan.js';
import { openSource } from '../../src/root/source.js';
import { FaultServer } from '../helpers/http-fault-server.js';
import { REPO_ROOT } from '../helpers/truth.js';

const FILE = '/data.root';
const DATA = new Uint8Array(randomBytes(600_000));
DATA.set([0x72, 0x6f, 0x6f, 0x74], 0);
const FAST: HttpOptions = { retryBaseMs: 1, timeoutMs: 3000, connectTimeoutMs: 3000, tokenDiscovery: false };

/** `n` scattered ranges (pos, len) inside DATA, deterministic. */
function scattered(n: number, maxLen = 3000, seed = 1): [number, number][] {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: n }, () => {
    const len = 1 + Math.floor(rnd() * maxLen);
    return [Math.floor(rnd() * (DATA.length - len)), len] as [number, number];
  });
}

function assertBytes(got: Uint8Array[], ranges: [number, number][]): void {
  assert.equal(got.length, ranges.length);
  ranges.forEach(([p, l], i) => {
    assert.equal(got[i]!.length, l, `range ${i} length`);
    assert.ok(Buffer.from(got[i]!).equals(Buffer.from(DATA.subarray(p, p + l))), `range ${i} (${p}+${l}) bytes differ`);
  });
}

async function elapsed<T>(p: Promise<T>): Promise<[T | Error, number]> {
  const t0 = Date.now();
  try {
    return [await p, Date.now() - t0];
  } catch (e) {
    return [e as Error, Date.now() - t0];
  }
}

let srv: FaultServer;
const sources: HttpSource[] = [];
async function open(path = FILE, http: HttpOptions = {}, headers?: Record<string, string>): Promise<HttpSource> {
  const s = await HttpSource.open(`${srv.url}${path}`, { headers, http: { ...FAST, ...http } });
  sources.push(s);
  return s;
}

before(async () => {
  srv = await FaultServer.start();
});
after(async () => {
  for (const s of sources) await s.close();
  await srv.close();
});
beforeEach(() => {
  srv.files.clear();
  srv.files.set(FILE, DATA);
  srv.statuses.clear();
  srv.redirects.clear();
  srv.faults.length = 0;
  srv.multipart = 'yes';
  srv.ranges = true;
  srv.eofBug = true;
  srv.handler = undefined;
  srv.log.length = 0;
  srv.maxInflight = 0;
  srv.delayMs = 0;
});

// ---------------------------------------------------------------------------------------------------
// pure parts

describe('http-multipart', () => {
  test('Content-Range and boundary parsing', () => {
    assert.deepEqual(parseContentRange('bytes 0-99/1234'), { start: 0, end: 99, total: 1234 });
    assert.deepEqual(parseContentRange('Bytes 5-5/*'), { start: 5, end: 5, total: undefined });
    assert.equal(parseContentRange('bytes 10-5/100'), undefined);
    assert.equal(parseContentRange('bytes */100'), undefined);
    assert.equal(multipartBoundary('multipart/byteranges; boundary=123456'), '123456');
    assert.equal(multipartBoundary('Multipart/ByteRanges;boundary="EOS MULTI"'), 'EOS MULTI');
    assert.equal(multipartBoundary('text/plain'), undefined);
    assert.equal(multipartBoundary(undefined), undefined);
  });

  const xrd = (parts: [number, number][], total = 1000, crlf = '\r\n') =>
    Buffer.concat([
      Buffer.from(crlf),
      ...parts.flatMap(([a, b]) => [
        Buffer.from(`--123456${crlf}Content-type: text/plain; charset=UTF-8${crlf}Content-range: bytes ${a}-${b}/${total}${crlf}${crlf}`),
        Buffer.alloc(b - a + 1, a % 251),
        Buffer.from(crlf),
      ]),
      Buffer.from(`--123456--${crlf}`),
    ]);

  test('XrdHttp-style bodies, any order, LF line ends', () => {
    for (const crlf of ['\r\n', '\n']) {
      const parts = parseMultipart(xrd([[100, 199], [0, 9], [5, 14]], 1000, crlf), '123456');
      assert.deepEqual(parts.map((p) => [p.start, p.end, p.total, p.data.length]), [[100, 199, 1000, 100], [0, 9, 1000, 10], [5, 14, 1000, 10]]);
      assert.ok(parts[0]!.data.every((v) => v === 100));
    }
    // data that contains the boundary text is still read by length
    const tricky = Buffer.from('--123456\r\nContent-Range: bytes 0-11/12\r\n\r\n--123456--xx\r\n--123456--\r\n');
    assert.equal(Buffer.from(parseMultipart(tricky, '123456')[0]!.data).toString(), '--123456--xx');
  });

  test('truncated or garbled bodies throw', () => {
    const good = xrd([[0, 99], [200, 299]]);
    for (const cut of [good.length - 5, good.length - 20, 150, 60, 3]) {
      assert.throws(() => parseMultipart(good.subarray(0, cut), '123456'), /truncated|no boundary|garbage/, `cut at ${cut}`);
    }
    const garbled = Buffer.concat([good.subarray(0, 150), Buffer.from('HTTP/1.1 500 Internal Server Error\r\n\r\n'), good.subarray(150)]);
    assert.throws(() => parseMultipart(garbled, '123456'));
    assert.throws(() => parseMultipart(Buffer.from('--123456\r\nContent-Type: x\r\n\r\nabc\r\n--123456--'), '123456'), /without Content-Range/);
    assert.throws(() => parseMultipart(Buffer.from('no boundary here'), '123456'), /no boundary/);
  });
});

describe('http-plan', () => {
  test('coalescing keeps the bytes read within the slack, and every range inside its group', () => {
    for (const [opts, limit] of [
      [MULTI_RANGE_COALESCE, 1.05],
      [SINGLE_RANGE_COALESCE, 1.2],
    ] as const) {
      for (const seed of [1, 2, 3]) {
        const ranges = scattered(2000, 2000, seed);
        const groups = coalesceRemote(ranges, opts);
        let read = 0;
        let wanted = 0;
        const seen = new Set<number>();
        for (const g of groups) {
          read += g.end - g.start;
          wanted += g.wanted;
          for (const m of g.members) {
            seen.add(m);
            assert.ok(ranges[m]![0] >= g.start && ranges[m]![0] + ranges[m]![1] <= g.end);
          }
          // the tiny-gap rule aside, the unwanted bytes stay within the slack
          assert.ok(g.end - g.start - g.wanted <= opts.slack * g.wanted + opts.tinyGap * g.members.length);
        }
        assert.equal(seen.size, ranges.length);
        assert.ok(read <= wanted * limit + opts.tinyGap * groups.length, `${read} read for ${wanted} wanted`);
      }
    }
    // large gaps are never read through
    assert.equal(coalesceRemote([[0, 100], [100 + 2 * 1024 * 1024, 100]], SINGLE_RANGE_COALESCE).length, 2);
    // adjacent and overlapping ranges always merge; zero-length ranges are left out
    assert.deepEqual(coalesceRemote([[10, 10], [0, 10], [5, 20], [40, 0]], MULTI_RANGE_COALESCE).map((g) => [g.start, g.end, g.members]), [[0, 25, [1, 2, 0]]]);
  });

  test('splitting and packing respect every cap', () => {
    assert.deepEqual(splitUnits([{ start: 0, end: 25 }], 10), [[{ start: 0, end: 9 }, { start: 9, end: 18 }, { start: 18, end: 25 }]]);
    const units = Array.from({ length: 5000 }, (_, i) => ({ start: i * 1_000_000_000, end: i * 1_000_000_000 + 1 + (i % 7) * 100_000 }));
    const o = { maxRanges: 256, maxHeaderBytes: 8192, maxChunks: 1000, targetBytes: 32 * 1024 * 1024 };
    const reqs = packRequests(units, o);
    assert.deepEqual(reqs.flat(), units);
    for (const r of reqs) {
      assert.ok(r.length <= o.maxRanges);
      assert.ok(rangeHeader(r).length <= o.maxHeaderBytes, `header ${rangeHeader(r).length}`);
      assert.ok(r.reduce((s, u) => s + Math.ceil((u.end - u.start) / READV_CHUNK), 0) <= o.maxChunks);
    }
    // byte target: large reads spread over several requests
    const big = Array.from({ length: 40 }, (_, i) => ({ start: i * 2_000_000, end: i * 2_000_000 + 1_000_000 }));
    assert.equal(packRequests(big, { ...o, targetBytes: 4_000_000 }).length, 10);
  });
});

describe('http-auth', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hepml-token-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('WLCG discovery order: BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u$UID, /tmp/bt_u$UID', () => {
    const uid = process.geteuid?.() ?? 0;
    const xdg = join(dir, 'xdg');
    const tmp = join(dir, 'tmp');
    writeFileSync(join(dir, 'file-token'), '  tok-file\n');
    mkdirSync(xdg);
    mkdirSync(tmp);
    writeFileSync(join(xdg, `bt_u${uid}`), 'tok-xdg\n');
    writeFileSync(join(tmp, `bt_u${uid}`), 'tok-tmp');
    const d = (env: NodeJS.ProcessEnv) => discoverBearerToken({ env, uid, tmpDir: tmp });
    assert.deepEqual(d({ BEARER_TOKEN: ' tok-env ', BEARER_TOKEN_FILE: join(dir, 'file-token'), XDG_RUNTIME_DIR: xdg }), { token: 'tok-env', source: '$BEARER_TOKEN' });
    assert.deepEqual(d({ BEARER_TOKEN_FILE: join(dir, 'file-token'), XDG_RUNTIME_DIR: xdg }), { token: 'tok-file', source: join(dir, 'file-token') });
    assert.deepEqual(d({ XDG_RUNTIME_DIR: xdg }), { token: 'tok-xdg', source: join(xdg, `bt_u${uid}`) });
    assert.deepEqual(d({}), { token: 'tok-tmp', source: join(tmp, `bt_u${uid}`) });
    // a missing file moves on; an empty BEARER_TOKEN counts as unset
    assert.deepEqual(d({ BEARER_TOKEN: '', BEARER_TOKEN_FILE: join(dir, 'nope'), XDG_RUNTIME_DIR: join(dir, 'nowhere') }), { token: 'tok-tmp', source: join(tmp, `bt_u${uid}`) });
    // a default-place file of another user is ignored
    assert.equal(discoverBearerToken({ env: {}, uid: uid + 1, tmpDir: tmp }), undefined);
    // a token with a line break inside is refused (it would break the header)
    writeFileSync(join(dir, 'bad'), 'abc\ndef');
    assert.throws(() => d({ BEARER_TOKEN_FILE: join(dir, 'bad') }), IoError);
    if (uid !== 0) {
      writeFileSync(join(dir, 'unreadable'), 'x');
      chmodSync(join(dir, 'unreadable'), 0);
      assert.throws(() => d({ BEARER_TOKEN_FILE: join(dir, 'unreadable') }), IoError);
    }
  });

  test('where credentials may go', () => {
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('[::1]') && isLoopbackHost('localhost') && isLoopbackHost('127.3.2.1'));
    assert.ok(!isLoopbackHost('eospublic.cern.ch') && !isLoopbackHost('128.0.0.1'));
    assert.ok(tokenAllowed(new URL('https://eospublic.cern.ch/x')));
    assert.ok(tokenAllowed(new URL('http://127.0.0.1:1094/x')));
    assert.ok(!tokenAllowed(new URL('http://eospublic.cern.ch:8080/x')));
    const u = (s: string) => new URL(s);
    assert.ok(credentialsFollowRedirect(u('https://redirector.cern.ch/f'), u('https://dataserver.cern.ch:1095/f')));
    assert.ok(credentialsFollowRedirect(u('http://127.0.0.1:1/f'), u('http://127.0.0.1:2/f')));
    assert.ok(!credentialsFollowRedirect(u('https://redirector.cern.ch/f'), u('http://dataserver.cern.ch/f')));
  });
});

// ---------------------------------------------------------------------------------------------------
// against the fault server

describe('HttpSource: reading', () => {
  test('open: size from the first request, which also serves the head; Range spelled `Range`', async () => {
    const s = await open();
    assert.equal(s.size, DATA.length);
    assert.equal(s.stats.requests, 1);
    assertBytes([await s.read(0, 4), await s.read(100, 300)], [[0, 4], [100, 300]]);
    assert.equal(s.stats.requests, 1, 'the head is cached');
    assertBytes([await s.read(500_000, 1000)], [[500_000, 1000]]);
    assert.equal(s.stats.requests, 2);
    for (const r of srv.log) {
      const names = r.rawHeaders.filter((_, i) => i % 2 === 0);
      assert.ok(names.includes('Range'), `header names sent: ${names.join(', ')}`);
      assert.ok(!names.includes('range'));
    }
    await assert.rejects(s.read(DATA.length - 10, 11), CorruptDataError);
    await assert.rejects(s.read(-1, 2), CorruptDataError);
  });

  test('multi-range: scattered ranges in few requests, every byte right', async () => {
    const s = await open();
    const ranges = scattered(3000, 200);
    assertBytes(await s.readMany(ranges), ranges);
    assert.equal(s.multiRange, 'yes');
    assert.ok(s.stats.multiRangeRequests >= 1);
    const multi = srv.log.filter((r) => r.ranges > 1);
    assert.ok(multi.length >= 1);
    for (const r of multi) {
      assert.ok(r.ranges <= 256, `${r.ranges} ranges in one request`);
      assert.ok(r.range!.length <= 8192, `Range header of ${r.range!.length} bytes`);
    }
    assert.ok(s.stats.requests < 40, `${s.stats.requests} requests`);
  });

  test('maxRanges caps ranges per request; maxRanges 1 sends single ranges only', async () => {
    let s = await open(FILE, { maxRanges: 10 });
    const ranges = scattered(300, 50, 7);
    assertBytes(await s.readMany(ranges), ranges);
    assert.ok(srv.log.every((r) => r.ranges <= 10));
    srv.log.length = 0;
    s = await open(FILE, { maxRanges: 1 });
    assertBytes(await s.readMany(ranges), ranges);
    assert.ok(srv.log.every((r) => r.ranges === 1));
    assert.equal(s.multiRange, 'no');
  });

  for (const mode of ['shuffled-lf', 'first-only', 'merge', 'ignore', 'refuse', 'garbled'] as const) {
    test(`multi-range answered '${mode}': the bytes are right, and the source adapts`, async () => {
      srv.multipart = mode;
      const s = await open();
      const ranges = scattered(400, 500, 3);
      assertBytes(await s.readMany(ranges), ranges);
      const expected = mode === 'shuffled-lf' ? 'yes' : mode === 'garbled' ? undefined : 'no';
      if (expected) assert.equal(s.multiRange, expected);
      // remembered: the next read sends no multi-range request when the server does not do multipart
      const before = srv.log.length;
      const more = scattered(200, 500, 4);
      assertBytes(await s.readMany(more), more);
      if (expected === 'no') assert.ok(srv.log.slice(before).every((r) => r.ranges === 1), 'single ranges only after the fallback');
      if (mode === 'ignore') {
        // the whole file was never downloaded
        assert.ok(s.stats.bytes < DATA.length, `${s.stats.bytes} bytes received`);
      }
    });
  }

  test('bounded concurrency', async () => {
    const s = await open(FILE, { maxRanges: 1, concurrency: 3 });
    srv.maxInflight = 0;
    srv.delayMs = 5;
    const ranges = scattered(200, 100, 9).map(([p, l]) => [Math.floor(p / 5000) * 5000, l] as [number, number]);
    assertBytes(await s.readMany(ranges), ranges);
    assert.ok(srv.maxInflight <= 3, `${srv.maxInflight} requests at once`);
    assert.ok(srv.maxInflight >= 2, 'requests do run in parallel');
  });

  test('a server that ignores Range: a small file is downloaded whole, once', async () => {
    srv.ranges = false;
    const s = await open();
    const ranges = scattered(50, 1000);
    assertBytes(await s.readMany(ranges), ranges);
    assert.equal(s.size, DATA.length);
    assert.ok(s.stats.requests <= 2, `${s.stats.requests} requests`);
  });

  test('an HTML answer to a Range request is a directory listing', async () => {
    srv.handler = (req, res) => {
      if (!req.url?.startsWith('/dir')) return false;
      res.writeHead(200, { 'Content-Length': '60' });
      res.end('<!DOCTYPE html><html><body>listing of /dir</body></html>....'.slice(0, 60));
      return true;
    };
    await assert.rejects(open('/dir/'), InputNotFoundError);
  });

  test('small and empty files (XrdHttp announces the bytes past EOF and closes)', async () => {
    srv.files.set('/tiny.root', DATA.subarray(0, 100));
    srv.files.set('/empty.root', new Uint8Array(0));
    const s = await open('/tiny.root');
    assert.equal(s.size, 100);
    assertBytes([await s.read(0, 100)], [[0, 100]]);
    await assert.rejects(open('/empty.root'), NotRootFileError);
    srv.eofBug = false;
    await assert.rejects(open('/empty.root'), NotRootFileError);
    const t = await open('/tiny.root');
    assert.equal(t.size, 100);
  });

  test('a 206 shorter than its Content-Range: CorruptDataError', async () => {
    const s = await open();
    srv.faults.push('short-body');
    await assert.rejects(s.read(300_000, 5000), (e: Error) => e instanceof CorruptDataError && /short read/.test(e.message));
  });

  test('a closed source refuses reads', async () => {
    const s = await open();
    await s.close();
    await assert.rejects(s.read(0, 4), IoError);
  });

  test('openSource routes http:// URLs here, with the options', async () => {
    const s = await openSource(`${srv.url}${FILE}`, { http: FAST });
    sources.push(s as HttpSource);
    assert.ok(s instanceof HttpSource);
    assert.equal(s.size, DATA.length);
  });
});

describe('HttpSource: faults', () => {
  for (const fault of ['503', '429', '500', 'drop', 'cut-body'] as const) {
    test(`'${fault}' once is retried and the read succeeds`, async () => {
      const s = await open();
      srv.faults.push(fault);
      assertBytes([await s.read(200_000, 50_000)], [[200_000, 50_000]]);
      assert.equal(s.stats.retries, 1);
      // during open as well
      srv.faults.push(fault);
      const t = await open();
      assert.equal(t.size, DATA.length);
      assert.equal(t.stats.retries, 1);
    });
  }

  test('a multi-range answer cut short is retried', async () => {
    const s = await open();
    srv.faults.push('cut-body');
    const ranges = scattered(100, 2000, 5);
    assertBytes(await s.readMany(ranges), ranges);
    assert.ok(s.stats.retries >= 1);
  });

  test('a persistent 503 fails after the retries, with the status in the message', async () => {
    const s = await open(FILE, { retries: 3 });
    srv.faults.push('503', '503', '503', '503', '503');
    const before = srv.log.length;
    await assert.rejects(s.read(100_000, 10), (e: Error) => e instanceof IoError && /HTTP 503/.test(e.message) && /4 attempts/.test(e.message));
    assert.equal(srv.log.length - before, 4);
  });

  test('a stalled server: IoError within about two idle timeouts (retried once)', async () => {
    const s = await open(FILE, { timeoutMs: 300 });
    srv.faults.push('stall', 'stall', 'stall');
    const [err, ms] = await elapsed(s.read(100_000, 10));
    assert.ok(err instanceof IoError, String(err));
    assert.match(err.message, /no answer for 300 ms/);
    assert.ok(ms >= 550 && ms < 3000, `${ms} ms`);
    // stalled in the middle of the body
    srv.faults.length = 0;
    srv.faults.push('stall-body', 'stall-body');
    const [err2, ms2] = await elapsed(s.read(200_000, 50_000));
    assert.ok(err2 instanceof IoError, String(err2));
    assert.ok(ms2 < 3000, `${ms2} ms`);
    // a stall once is retried
    srv.faults.length = 0;
    srv.faults.push('stall');
    assertBytes([await s.read(300_000, 100)], [[300_000, 100]]);
  });

  test('404, 410, 403, 401: typed errors, no retries', async () => {
    srv.statuses.set('/gone.root', 410);
    srv.statuses.set('/secret.root', 403);
    srv.statuses.set('/auth.root', 401);
    await assert.rejects(open('/missing.root'), (e: Error) => e instanceof InputNotFoundError && /HTTP 404/.test(e.message));
    await assert.rejects(open('/gone.root'), InputNotFoundError);
    await assert.rejects(open('/secret.root'), (e: Error) => e instanceof IoError && /access denied \(HTTP 403/.test(e.message) && /no credentials were sent/.test(e.message));
    await assert.rejects(open('/auth.root', {}, { Authorization: 'Bearer x' }), (e: Error) => e instanceof IoError && /access denied \(HTTP 401/.test(e.message) && /--header/.test(e.message));
    assert.equal(srv.log.length, 4, 'one request each');
  });

  test('connection refused: retried, then a clean IoError', async () => {
    const dead = await FaultServer.start();
    const url = `${dead.url}${FILE}`;
    await dead.close();
    const [err, ms] = await elapsed(HttpSource.open(url, { http: { ...FAST, retries: 2 } }));
    assert.ok(err instanceof IoError, String(err));
    assert.match(err.message, /connection refused.*3 attempts/);
    assert.ok(ms < 2000);
  });
});

describe('HttpSource: redirects', () => {
  test('302 → 307 → relative Location: Range kept at every hop, the final location cached', async () => {
    srv.redirects.set('/a.root', { status: 302, location: `${srv.url}/b.root` });
    srv.redirects.set('/b.root', { status: 307, location: 'sub/../c.root' });
    srv.redirects.set('/c.root', { status: 301, location: FILE });
    const s = await open('/a.root', {}, { Authorization: 'Bearer explicit' });
    assert.equal(s.effectiveUrl, `${srv.url}${FILE}`);
    assert.deepEqual(srv.log.map((r) => r.path), ['/a.root', '/b.root', '/c.root', FILE]);
    for (const r of srv.log) {
      assert.equal(r.range, 'bytes=0-4095', `${r.path}: Range`);
      assert.equal(r.authorization, 'Bearer explicit', `${r.path}: same host, credentials kept`);
    }
    srv.log.length = 0;
    assertBytes([await s.read(400_000, 100)], [[400_000, 100]]);
    assert.deepEqual(srv.log.map((r) => r.path), [FILE], 'later reads go to the final location directly');
    assert.equal(s.stats.redirects, 3);
  });

  test('a redirect to plain http on another host drops the credentials', async () => {
    const other = await FaultServer.start('127.0.0.2').catch(() => undefined);
    if (!other) return; // 127.0.0.2 not usable here
    try {
      other.files.set(FILE, DATA);
      srv.redirects.set('/x.root', { status: 302, location: `${other.url}${FILE}` });
      const s = await open('/x.root', { tokenDiscovery: { env: { BEARER_TOKEN: 'discovered' }, tmpDir: '/nonexistent' } }, { 'X-Custom': 'kept' });
      const t = await open('/x.root', {}, { Authorization: 'Bearer secret', 'X-Custom': 'kept' });
      assert.deepEqual(srv.log.map((r) => r.authorization), ['Bearer discovered', 'Bearer secret']);
      assert.deepEqual(other.log.map((r) => r.authorization), [undefined, undefined], 'no Authorization to another host over http');
      assert.ok(other.log[0]!.rawHeaders.includes('X-Custom'));
      assert.equal(other.log[0]!.range, 'bytes=0-4095');
      // later reads go to the cached location, still without credentials
      assertBytes([await s.read(300_000, 10), await t.read(300_000, 10)], [[300_000, 10], [300_000, 10]]);
      assert.equal(other.log.length, 4);
      assert.deepEqual(other.log.map((r) => r.authorization), [undefined, undefined, undefined, undefined]);
    } finally {
      await other.close();
    }
  });

  test('a cached location that goes away: back to the original URL', async () => {
    srv.files.set('/moved.root', DATA);
    srv.redirects.set('/orig.root', { status: 302, location: '/moved.root' });
    const s = await open('/orig.root');
    assert.match(s.effectiveUrl, /\/moved\.root$/);
    srv.files.delete('/moved.root');
    srv.redirects.set('/orig.root', { status: 307, location: FILE });
    srv.log.length = 0;
    assertBytes([await s.read(123_456, 789)], [[123_456, 789]]);
    assert.deepEqual(srv.log.map((r) => r.path), ['/moved.root', '/orig.root', FILE]);
  });

  test('redirect loops end with an IoError', async () => {
    srv.redirects.set('/loop.root', { status: 302, location: '/loop.root' });
    await assert.rejects(open('/loop.root'), (e: Error) => e instanceof IoError && /more than 10 redirects/.test(e.message));
  });
});

describe('HttpSource: credentials', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hepml-token-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const uid = process.geteuid?.() ?? 0;

  const received = async (discovery: HttpOptions['tokenDiscovery'], headers?: Record<string, string>) => {
    srv.log.length = 0;
    await open(FILE, { tokenDiscovery: discovery }, headers);
    return srv.log.map((r) => r.authorization);
  };

  test('a token from each of the discovery places reaches the server', async () => {
    writeFileSync(join(dir, 'tokfile'), 'from-file\n');
    const xdg = mkdtempSync(join(dir, 'xdg-'));
    writeFileSync(join(xdg, `bt_u${uid}`), 'from-xdg\n');
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    writeFileSync(join(tmp, `bt_u${uid}`), 'from-tmp\n');
    const empty = mkdtempSync(join(dir, 'empty-'));
    assert.deepEqual(await received({ env: { BEARER_TOKEN: 'from-env' }, uid, tmpDir: empty }), ['Bearer from-env']);
    assert.deepEqual(await received({ env: { BEARER_TOKEN_FILE: join(dir, 'tokfile') }, uid, tmpDir: empty }), ['Bearer from-file']);
    assert.deepEqual(await received({ env: { XDG_RUNTIME_DIR: xdg }, uid, tmpDir: empty }), ['Bearer from-xdg']);
    assert.deepEqual(await received({ env: {}, uid, tmpDir: tmp }), ['Bearer from-tmp']);
    assert.deepEqual(await received({ env: {}, uid, tmpDir: empty }), [undefined]);
    assert.deepEqual(await received(false), [undefined]);
  });

  test('--header Authorization wins over discovery; an empty one sends none; other headers go along', async () => {
    const env = { env: { BEARER_TOKEN: 'discovered' }, uid, tmpDir: dir };
    assert.deepEqual(await received(env, { Authorization: 'Bearer explicit' }), ['Bearer explicit']);
    assert.deepEqual(await received(env, { authorization: 'Bearer lower' }), ['Bearer lower']);
    assert.deepEqual(await received(env, { Authorization: '' }), [undefined]);
    await received(env, { 'X-Site': 'T2_CH_CERN', Range: 'bytes=0-0' });
    const raw = srv.log[0]!.rawHeaders;
    assert.equal(raw[raw.indexOf('X-Site') + 1], 'T2_CH_CERN');
    assert.equal(srv.log[0]!.range, 'bytes=0-4095', 'a user Range header is ignored');
  });
});

describe('HttpSource: HTTPS with a self-signed certificate', () => {
  const opensslOk = spawnSync('openssl', ['version']).status === 0;
  let dir = '';
  let server: HttpsServer | undefined;
  let url = '';
  before(async () => {
    if (!opensslOk) return;
    dir = mkdtempSync(join(tmpdir(), 'hepml-tls-'));
    writeFileSync(
      join(dir, 'openssl.cnf'),
      '[req]\ndistinguished_name = dn\nx509_extensions = v3\nprompt = no\n[dn]\nCN = 127.0.0.1\n[v3]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, digitalSignature, keyCertSign\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n',
    );
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-config', join(dir, 'openssl.cnf')]);
    assert.equal(r.status, 0, String(r.stderr));
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(200, { 'Content-Length': String(DATA.length) }).end(DATA);
      const a = Number(m[1]);
      const b = Math.min(Number(m[2]), DATA.length - 1);
      res.writeHead(206, { 'Content-Length': String(b - a + 1), 'Content-Range': `bytes ${a}-${b}/${DATA.length}` }).end(DATA.subarray(a, b + 1));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/data.root`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('untrusted certificate: IoError naming NODE_EXTRA_CA_CERTS, not retried', async (t) => {
    if (!opensslOk) return t.skip('openssl not installed');
    const [err, ms] = await elapsed(HttpSource.open(url, { http: { ...FAST, retryBaseMs: 500 } }));
    assert.ok(err instanceof IoError, String(err));
    assert.match(err.message, /TLS failed.*NODE_EXTRA_CA_CERTS/);
    assert.doesNotMatch(err.message, /attempts/, `not retried (${ms} ms)`);
  });

  test('trusted through NODE_EXTRA_CA_CERTS (a child process): the bytes are right', async (t) => {
    if (!opensslOk) return t.skip('openssl not installed');
    const httpTs = pathToFileURL(join(REPO_ROOT, 'src', 'root', 'http.ts')).href;
    const script = `import { HttpSource } from ${JSON.stringify(httpTs)};
import { createHash } from 'node:crypto';
const s = await HttpSource.open(process.env.URL, { http: { tokenDiscovery: false } });
const [a, b] = await s.readMany([[10, 100], [500000, 5000]]);
console.log(JSON.stringify({ size: s.size, a: createHash('sha256').update(a).digest('hex'), b: createHash('sha256').update(b).digest('hex') }));
await s.close();
`;
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: REPO_ROOT,
        env: { ...process.env, URL: url, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
        timeout: 30_000,
      }, (e, out, err) => resolve({ code: e ? 1 : 0, out, err }));
      void child;
    });
    assert.equal(r.code, 0, r.err);
    const got = JSON.parse(r.out.trim().split('\n').pop()!) as { size: number; a: string; b: string };
    const sha = (u: Uint8Array) => createHash('sha256').update(u).digest('hex');
    assert.deepEqual(got, { size: DATA.length, a: sha(DATA.subarray(10, 110)), b: sha(DATA.subarray(500000, 505000)) });
  });
});
