/**
 * Remote reading against a real XRootD server (Debian's xrootd with XrdHttp, on 127.0.0.1 only), started by
 * scripts/xrootd-test-server.sh through test/helpers/xrootd.ts.
 *
 * - plain fetch: HEAD, single Range, multi-range (what the server answers is recorded as a diagnostic),
 *   404, lower-case `range` header, HTTPS with the server's self-signed CA (NODE_EXTRA_CA_CERTS in a child);
 * - hep-ml's reader over HTTP: EVERY readable branch of every truth file's trees, read through
 *   RootFile.open(url) (HttpSource) and compared with a local read of the same file (sha256 of every array),
 *   once with multi-range requests and once with one range per request (in three steps);
 * - HttpSource edge cases (missing file, non-ROOT file, empty file, directory, a 302 redirector in front,
 *   a SIGSTOPped server);
 * - faults through the CLI (`hep-ml ingest URL -o FILE`): 404, 403 (a file the server's user cannot read),
 *   HTTPS with and without the CA, a loopback proxy that drops the first connection and/or answers 503 once
 *   (the ingest must equal the local one), and a server frozen (SIGSTOP) or killed (SIGKILL) in the middle of
 *   the read (XRootD's throttle plugin slows it to 1 MiB/s): exit 9 within the timeout, no output, no .part.
 *
 * Skipped (with a loud warning) when the xrootd packages are missing: bash .ci/install-xrootd.sh.
 * HEPML_REQUIRE_XROOTD=1 turns the skip into a failure (for CI machines that must run it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RootFile } from '../../src/root/file.js';
import { HttpSource, type HttpStats } from '../../src/root/http.js';
import { TreeReader } from '../../src/root/reader.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { InputNotFoundError, IoError, NotRootFileError } from '../../src/errors.js';
import { fromRecordBatch, openIpcStream } from '../../src/columnar/index.js';
import type { BranchInfo } from '../../src/root/tree.js';
import { REPO_ROOT, hasTestdata, loadTruth, rootFilesWithoutTruth, testdataDir, truthFiles } from '../helpers/truth.js';
import { opensslAvailable, startXrootd, xrootdUnavailableReason, type XrootdServer } from '../helpers/xrootd.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { columnHash, sha } from '../helpers/column-hash.js';

const testdata = testdataDir();
const why = xrootdUnavailableReason() ?? (hasTestdata(testdata) ? undefined : `HEPML_TESTDATA not found: ${testdata}`);
const required = process.env.HEPML_REQUIRE_XROOTD === '1';
if (why) {
  const msg = `\n*** XRootD integration tests ${required ? 'CANNOT RUN' : 'are SKIPPED'}: ${why} ***\n`;
  console.warn(msg);
  if (required) test('XRootD integration tests (HEPML_REQUIRE_XROOTD=1)', () => assert.fail(msg));
}
const skip = why ? `XRootD test server unavailable: ${why}` : false;

/** Files whose exact bytes the fetch tests check. */
const SAMPLE = ['uproot-HZZ.root', 'nanoAOD_2015_CMS_Open_Data_ttbar.root'];
/** Any single request taking longer than this is a hang (XrdHttp 5.5.3 can hang on some multi-ranges). */
const REQUEST_TIMEOUT_MS = 10_000;

const TEXT_FILE = 'not-root.txt';


async function readColumns(f: RootFile, tree: string, names: string[], steps = 1): Promise<Map<string, string>> {
  const t = await f.tree(tree);
  const picked = names.map((n) => t.branch(n)).filter((b): b is BranchInfo => b !== undefined && b.type !== undefined);
  const parts = new Map<string, ColumnData[]>();
  const reader = new TreeReader(t, picked);
  for await (const batch of reader.batches(0, t.entries, Math.max(1, Math.ceil(t.entries / steps)))) {
    for (const c of batch.columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  return new Map([...parts].map(([k, v]) => [k, columnHash(concatColumns(v))]));
}

/** fetch with a timeout (a hung server fails the test instead of stalling it). */
function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

function withTimeout<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms (hang)`)), ms);
    }),
  ]);
}

/** Parses a multipart/byteranges body (boundary from Content-Type; part headers case-insensitive). */
function parseMultipart(body: Uint8Array, contentType: string): { start: number; end: number; total: number; data: Uint8Array; headers: string }[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  assert.ok(m, `no boundary in Content-Type ${contentType}`);
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`, 'latin1');
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const parts: { start: number; end: number; total: number; data: Uint8Array; headers: string }[] = [];
  let pos = buf.indexOf(boundary);
  while (pos >= 0) {
    pos += boundary.length;
    if (buf.subarray(pos, pos + 2).toString('latin1') === '--') break; // closing boundary
    const headerEnd = buf.indexOf('\r\n\r\n', pos, 'latin1');
    assert.ok(headerEnd > 0, 'multipart part without a header end');
    const headers = buf.subarray(pos, headerEnd).toString('latin1');
    const cr = /^content-range:\s*bytes\s+(\d+)-(\d+)\/(\d+)/im.exec(headers);
    assert.ok(cr, `multipart part without Content-Range: ${JSON.stringify(headers)}`);
    const start = Number(cr[1]);
    const end = Number(cr[2]);
    const dataStart = headerEnd + 4;
    const data = buf.subarray(dataStart, dataStart + (end - start + 1));
    parts.push({ start, end, total: Number(cr[3]), data, headers: headers.trim() });
    pos = buf.indexOf(boundary, dataStart + data.length);
  }
  return parts;
}

function headerDump(res: Response): string {
  return [`${res.status} ${res.statusText}`, ...[...res.headers].map(([k, v]) => `${k}: ${v}`)].join(' | ');
}

/** Runs a small ESM script in a child node (with tsx, so that it can import src/*.ts) and returns its stdout. */
function runChild(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 45_000, maxBuffer: 1 << 22 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('XRootD (XrdHttp) on 127.0.0.1', { skip }, () => {
  let data = '';
  let http: XrootdServer | undefined;
  let https: XrootdServer | undefined;
  const files = skip ? [] : truthFiles(testdata);
  const others = skip ? [] : rootFilesWithoutTruth(testdata);

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'hepml-xrd-data-'));
    chmodSync(data, 0o755); // the server runs as an unprivileged user (hepml-xrd when we are root)
    for (const f of [...files.map((x) => x.rootFile), ...others]) symlinkSync(f, join(data, basename(f)));
    writeFileSync(join(data, TEXT_FILE), 'this is not a ROOT file; it is long enough to pass the size check ......\n');
    writeFileSync(join(data, 'empty.root'), '');
    mkdirSync(join(data, 'sub'));
    chmodSync(join(data, 'sub'), 0o755);
    const t0 = Date.now();
    [http, https] = await Promise.all([startXrootd(data), opensslAvailable() ? startXrootd(data, { tls: true }) : undefined]);
    console.error(`xrootd up in ${Date.now() - t0} ms: ${http.url} (pid ${http.pid})${https ? `, ${https.url} (pid ${https.pid})` : ''}`);
  });

  after(async () => {
    await Promise.allSettled([http?.stop(), https?.stop()]);
    if (data) rmSync(data, { recursive: true, force: true });
  });

  test('HEAD: 200 and the file size', async (t) => {
    for (const name of SAMPLE) {
      const res = await get(`${http!.url}/${name}`, { method: 'HEAD' });
      t.diagnostic(`HEAD ${name}: ${headerDump(res)}`);
      assert.equal(res.status, 200);
      assert.equal(Number(res.headers.get('content-length')), statSync(join(testdata, 'root', name)).size);
    }
  });

  test('single Range request: 206 with the exact bytes of the local file', async (t) => {
    for (const name of SAMPLE) {
      const local = readFileSync(join(testdata, 'root', name));
      for (const [a, b] of [
        [0, 0],
        [0, 99],
        [1000, 1999],
        [local.length - 100, local.length - 1],
      ] as const) {
        const res = await get(`${http!.url}/${name}`, { headers: { Range: `bytes=${a}-${b}` } });
        const body = new Uint8Array(await res.arrayBuffer());
        assert.equal(res.status, 206, `${name} bytes=${a}-${b}: ${headerDump(res)}`);
        assert.equal(res.headers.get('content-range'), `bytes ${a}-${b}/${local.length}`);
        assert.equal(sha(body), sha(local.subarray(a, b + 1)), `${name} bytes=${a}-${b}`);
      }
      // whole file without Range
      const res = await get(`${http!.url}/${name}`);
      assert.equal(res.status, 200);
      assert.equal(sha(new Uint8Array(await res.arrayBuffer())), sha(local));
    }
    t.diagnostic('single ranges and full GETs byte-identical');
  });

  test('multi-range request (Range: bytes=0-9,100-109): record what XrdHttp answers', async (t) => {
    const name = SAMPLE[0]!;
    const local = readFileSync(join(testdata, 'root', name));
    const res = await get(`${http!.url}/${name}`, { headers: { Range: 'bytes=0-9,100-109' } });
    const body = new Uint8Array(await res.arrayBuffer());
    const ct = res.headers.get('content-type') ?? '';
    t.diagnostic(`multi-range answer: ${headerDump(res)}; body ${body.length} bytes`);
    t.diagnostic(`multi-range body: ${JSON.stringify(Buffer.from(body).toString('latin1').replace(/[^\x20-\x7e\r\n]/g, '.'))}`);
    if (res.status === 206 && /^multipart\/byteranges/i.test(ct)) {
      const parts = parseMultipart(body, ct);
      t.diagnostic(`multipart/byteranges with ${parts.length} parts; part headers: ${JSON.stringify(parts.map((p) => p.headers))}`);
      assert.deepEqual(
        parts.map((p) => [p.start, p.end, p.total]),
        [
          [0, 9, local.length],
          [100, 109, local.length],
        ],
      );
      for (const p of parts) assert.equal(sha(p.data), sha(local.subarray(p.start, p.end + 1)), `part ${p.start}-${p.end}`);
    } else if (res.status === 200) {
      t.diagnostic('server ignored the multi-range request and sent the whole file');
      assert.equal(sha(body), sha(local));
    } else {
      assert.fail(`unexpected answer to a multi-range request: ${headerDump(res)}`);
    }
    // More ranges, unsorted and overlapping: still one part per range, in request order?
    const ranges: [number, number][] = [
      [5000, 5099],
      [10, 19],
      [15, 24],
      [local.length - 10, local.length - 1],
    ];
    const res2 = await get(`${http!.url}/${name}`, { headers: { Range: `bytes=${ranges.map(([a, b]) => `${a}-${b}`).join(',')}` } });
    const body2 = new Uint8Array(await res2.arrayBuffer());
    if (res2.status === 206 && /^multipart\/byteranges/i.test(res2.headers.get('content-type') ?? '')) {
      const parts = parseMultipart(body2, res2.headers.get('content-type')!);
      t.diagnostic(`unsorted/overlapping 4-range request: parts ${JSON.stringify(parts.map((p) => `${p.start}-${p.end}`))}`);
      for (const p of parts) assert.equal(sha(p.data), sha(local.subarray(p.start, p.end + 1)), `part ${p.start}-${p.end}`);
      assert.equal(parts.length, ranges.length);
    } else {
      t.diagnostic(`unsorted/overlapping 4-range request: ${headerDump(res2)}`);
    }
  });

  test('header case: `Range` is honoured; lower-case `range` is recorded (XrdHttp 5.5.3 ignores it)', async (t) => {
    const name = SAMPLE[0]!;
    const res = await get(`${http!.url}/${name}`, { headers: { range: 'bytes=0-9' } });
    const body = new Uint8Array(await res.arrayBuffer());
    t.diagnostic(`lower-case "range: bytes=0-9" → ${res.status}, ${body.length} bytes (${res.status === 200 ? 'IGNORED: whole file' : 'honoured'})`);
    assert.ok(res.status === 200 || res.status === 206);
  });

  test('missing file: 404 (GET and HEAD), and InputNotFoundError from the reader', async (t) => {
    const res = await get(`${http!.url}/no-such-file.root`, { headers: { Range: 'bytes=0-0' } });
    const text = await res.text();
    t.diagnostic(`GET missing: ${headerDump(res)}; body ${JSON.stringify(text)}`);
    assert.equal(res.status, 404);
    const head = await get(`${http!.url}/no-such-file.root`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    await assert.rejects(RootFile.open(`${http!.url}/no-such-file.root`), InputNotFoundError);
    // the server closes the connection after an error (Connection: Close); the next request must still work
    const again = await get(`${http!.url}/${SAMPLE[0]}`, { headers: { Range: 'bytes=0-3' } });
    assert.equal(Buffer.from(await again.arrayBuffer()).toString('latin1'), 'root');
  });

  test('HTTPS with the self-signed CA (NODE_EXTRA_CA_CERTS in a child process); refused without it', async (t) => {
    if (!https) return t.skip('openssl not installed');
    assert.match(https.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    // without the CA: certificate verification must fail
    await assert.rejects(get(`${https.url}/${SAMPLE[0]}`, { headers: { Range: 'bytes=0-3' } }), (e: Error) => {
      t.diagnostic(`without the CA: ${e.message}: ${String((e as { cause?: unknown }).cause)}`);
      return true;
    });
    const name = SAMPLE[0]!;
    const local = readFileSync(join(testdata, 'root', name));
    const script = join(data, '..', `${basename(data)}-https-child.mts`);
    const fileTs = pathToFileURL(join(REPO_ROOT, 'src', 'root', 'file.ts')).href;
    const readerTs = pathToFileURL(join(REPO_ROOT, 'src', 'root', 'reader.ts')).href;
    writeFileSync(
      script,
      `import { createHash } from 'node:crypto';
import { RootFile } from ${JSON.stringify(fileTs)};
import { TreeReader } from ${JSON.stringify(readerTs)};
const url = process.env.XRD_URL + '/' + ${JSON.stringify(name)};
const sha = (a) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
const res = await fetch(url, { headers: { Range: 'bytes=100-1099' } });
const body = new Uint8Array(await res.arrayBuffer());
const f = await RootFile.open(url);
const t = await f.tree('events');
const b = t.branch('Muon_Px');
let hash = '';
for await (const batch of new TreeReader(t, [b]).batches(0, t.entries, t.entries)) {
  const c = batch.columns[0].data;
  hash = sha(c.offsets) + ':' + sha(c.child.values);
}
console.log(JSON.stringify({ status: res.status, range: res.headers.get('content-range'), sha: sha(body), entries: t.entries, hash, stats: f.source.stats }));
await f.close();
`,
    );
    try {
      const r = await runChild(script, { XRD_URL: https.url, NODE_EXTRA_CA_CERTS: https.ca! });
      assert.equal(r.code, 0, `child failed:\n${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        status: number;
        range: string;
        sha: string;
        entries: number;
        hash: string;
        stats: { requests: number; bytes: number };
      };
      t.diagnostic(`https child: ${JSON.stringify(out)}`);
      assert.equal(out.status, 206);
      assert.equal(out.range, `bytes 100-1099/${local.length}`);
      assert.equal(out.sha, sha(local.subarray(100, 1100)));
      // the same column read locally
      const lf = await RootFile.open(join(testdata, 'root', name));
      try {
        const cols = await readColumns(lf, 'events', ['Muon_Px']);
        const h = cols.get('Muon_Px')!;
        const m = /^list\[\d+\]:([0-9a-f]+)\(float32\[\d+\]:([0-9a-f]+)\)$/.exec(h);
        assert.ok(m, h);
        assert.equal(out.hash, `${m[1]}:${m[2]}`);
      } finally {
        await lf.close();
      }
    } finally {
      rmSync(script, { force: true });
    }
  });

  for (const mode of [
    { label: 'multi-range requests, one step', http: {}, steps: 1 },
    { label: 'one range per request, three steps', http: { maxRanges: 1 }, steps: 3 },
  ]) test(`hep-ml reader over HTTP: every readable branch of every truth file, identical to the local read (${mode.label})`, async (t) => {
    const failures: string[] = [];
    let branchesCompared = 0;
    let requests = 0;
    let bytes = 0;
    const t0 = Date.now();
    for (const { rootFile, truthPath } of files) {
      const name = basename(rootFile);
      const truth = loadTruth(truthPath);
      let remote: RootFile | undefined;
      let local: RootFile | undefined;
      try {
        remote = await withTimeout(RootFile.open(`${http!.url}/${name}`, { http: mode.http }), `open ${name}`);
        local = await RootFile.open(rootFile);
        assert.equal(remote.size, local.size, `${name}: size`);
        for (const tt of truth.trees) {
          const treeName = `${tt.tree};${tt.cycle}`;
          const lt = await local.tree(treeName);
          // every branch the reader can read (the bulk path and the jsroot path alike)
          const readable = lt.branches.filter((b) => b.type !== undefined && b.plan !== undefined).map((b) => b.name);
          if (readable.length === 0) continue;
          const [lc, rc] = [
            await readColumns(local, treeName, readable),
            await withTimeout(readColumns(remote, treeName, readable, mode.steps), `read ${name} ${treeName}`, 60_000),
          ];
          for (const b of readable) {
            const l = lc.get(b);
            const r = rc.get(b);
            if (l === undefined) {
              failures.push(`${name} ${treeName} ${b}: no local column`);
              continue;
            }
            if (r !== l) failures.push(`${name} ${treeName} ${b}: remote ${r ?? '(missing)'} != local ${l}`);
            else branchesCompared++;
          }
        }
        const st = remote.source.stats as HttpStats;
        requests += st.requests;
        bytes += st.bytes;
        t.diagnostic(`${name}: ${st.requests} requests (${st.multiRangeRequests} multi-range), ${st.bytes} bytes of ${remote.size}`);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      } finally {
        await remote?.close();
        await local?.close();
      }
    }
    t.diagnostic(`${files.length} files, ${branchesCompared} branches identical over HTTP; ${requests} requests, ${bytes} bytes, ${Date.now() - t0} ms`);
    assert.deepEqual(failures, []);
    assert.ok(branchesCompared > files.length * 5, `only ${branchesCompared} branches compared`);
  });

  test('files without truth: same keys and trees over HTTP as locally', async (t) => {
    const failures: string[] = [];
    for (const path of others) {
      const name = basename(path);
      const summarize = async (f: RootFile) => {
        const keys = (await f.keys()).map((k) => `${k.path};${k.cycle} ${k.className} ${k.nbytes}`);
        const trees: string[] = [];
        for (const k of await f.treeKeys()) {
          try {
            const tr = await f.tree(`${k.path};${k.cycle}`);
            trees.push(`${tr.name};${tr.cycle} ${tr.entries} entries, ${tr.branches.length} branches`);
          } catch (e) {
            trees.push(`${k.path};${k.cycle}: ${(e as Error).constructor.name}: ${(e as Error).message.replace(/\S*:\/\/\S*|\/\S+/g, '<file>')}`);
          }
        }
        return { keys, trees };
      };
      const settle = async (loc: string) => {
        let f: RootFile | undefined;
        try {
          f = await withTimeout(RootFile.open(loc), `open ${loc}`);
          return await summarize(f);
        } catch (e) {
          return { error: `${(e as Error).constructor.name}: ${(e as Error).message.replace(loc, '<file>')}` };
        } finally {
          await f?.close();
        }
      };
      const [r, l] = [await settle(`${http!.url}/${name}`), await settle(path)];
      t.diagnostic(`${name}: ${'error' in l ? l.error : `${l.keys.length} keys, ${l.trees.length} trees`}`);
      try {
        assert.deepEqual(r, l);
      } catch {
        failures.push(`${name}: remote ${JSON.stringify(r).slice(0, 300)} != local ${JSON.stringify(l).slice(0, 300)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('HttpSource edge cases against XrdHttp', async (t) => {
    // not a ROOT file
    await assert.rejects(RootFile.open(`${http!.url}/${TEXT_FILE}`), NotRootFileError);
    // a directory: XrdHttp answers a ranged GET with 200 and an HTML listing
    const dirRes = await get(`${http!.url}/sub`, { headers: { Range: 'bytes=0-0' } });
    t.diagnostic(`ranged GET on a directory: ${headerDump(dirRes)}; body starts ${JSON.stringify((await dirRes.text()).slice(0, 60))}`);
    await assert.rejects(HttpSource.open(`${http!.url}/sub`), (e: Error) => {
      t.diagnostic(`HttpSource.open(directory): ${e.constructor.name}: ${e.message}`);
      return e instanceof IoError || e instanceof InputNotFoundError;
    });
    // an empty file: 'bytes=0-0' is past EOF; XrdHttp 5.5.3 announces Content-Length: 1 and closes without a body
    const emptyErr = await withTimeout(
      HttpSource.open(`${http!.url}/empty.root`).then(
        (s) => `opened, size ${s.size}`,
        (e: Error) => e,
      ),
      'HttpSource.open(empty file)',
      15_000,
    );
    t.diagnostic(
      `HttpSource.open(empty file): ${typeof emptyErr === 'string' ? emptyErr : `${emptyErr.constructor.name}: ${emptyErr.message}`}` +
        (emptyErr instanceof Error && !(emptyErr instanceof IoError) && !(emptyErr instanceof NotRootFileError)
          ? ' (NOT a HepMlError: the body read is outside HttpSource.open’s try)'
          : ''),
    );
    assert.ok(emptyErr instanceof Error || typeof emptyErr === 'string');
  });

  test('HttpSource through a 302 redirector (like an XrdHttp manager) in front of the data server', async (t) => {
    let redirects = 0;
    const server: Server = createServer((req, res) => {
      redirects++;
      res.writeHead(302, { Location: `${http!.url}${req.url}`, 'Content-Length': '0' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const name = SAMPLE[0]!;
      const remote = await withTimeout(RootFile.open(`http://127.0.0.1:${port}/${name}`), 'open through redirector');
      const local = await RootFile.open(join(testdata, 'root', name));
      try {
        const [r, l] = [await readColumns(remote, 'events', ['Muon_Px', 'NJet']), await readColumns(local, 'events', ['Muon_Px', 'NJet'])];
        assert.deepEqual([...r], [...l]);
        t.diagnostic(`through the redirector: ${remote.source.stats.requests} data requests, ${redirects} redirects (each request is redirected again)`);
      } finally {
        await remote.close();
        await local.close();
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a frozen server (SIGSTOP): a read fails with IoError within about two idle timeouts', async (t) => {
    const name = SAMPLE[1]!;
    const src = await HttpSource.open(`${http!.url}/${name}`, { http: { timeoutMs: 500, retryBaseMs: 10, tokenDiscovery: false } });
    process.kill(http!.pid, 'SIGSTOP');
    // signal delivery is asynchronous: wait until every thread of the server is stopped, or a request sent
    // right away can still be answered (seen once in CI: 'completed' after 2 ms)
    const frozen = await allThreadsStopped(http!.pid, 3000);
    t.diagnostic(`server threads stopped: ${frozen}`);
    const t0 = Date.now();
    let outcome: unknown;
    try {
      outcome = await withTimeout(src.read(200_000, 1000).then(() => 'completed', (e: Error) => e), 'read', 10_000);
    } finally {
      process.kill(http!.pid, 'SIGCONT');
      await src.close();
    }
    const ms = Date.now() - t0;
    t.diagnostic(`HttpSource.read with the server stopped: ${outcome instanceof Error ? `${outcome.constructor.name}: ${outcome.message}` : String(outcome)} after ${ms} ms`);
    assert.ok(outcome instanceof IoError, String(outcome));
    assert.match(outcome.message, /no answer for 500 ms/);
    assert.ok(ms < 3000, `${ms} ms`);
    // the server works again
    const res = await get(`${http!.url}/${name}`, { headers: { Range: 'bytes=0-3' } });
    assert.equal(Buffer.from(await res.arrayBuffer()).toString('latin1'), 'root');
  });

  test('the server listens on 127.0.0.1 only', async (t) => {
    const out = await new Promise<string>((resolve) =>
      execFile('ss', ['-ltnp'], (err, stdout) => resolve(err ? '' : stdout)),
    );
    if (!out) return t.skip('ss not available');
    const mine = out.split('\n').filter((l) => [http!.pid, https?.pid].some((p) => p !== undefined && l.includes(`pid=${p},`)));
    t.diagnostic(mine.join('\n'));
    assert.ok(mine.length >= 2, `no listening sockets of xrootd in ss -ltnp:\n${out}`);
    for (const l of mine) assert.match(l, /\s127\.0\.0\.1:\d+\s/, `not loopback-only: ${l}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// Faults, through the CLI: `hep-ml ingest URL -o FILE` must fail cleanly (exit != 0, no output file, no
// .part file, within the timeout) or, for a transient fault, succeed with exactly the local result.

/** Every column of an Arrow IPC file, hashed (the schema metadata names the input, so it is left out). */
async function arrowHashes(path: string): Promise<Map<string, string>> {
  const s = await openIpcStream(path);
  const cols = new Map<string, ColumnData[]>();
  for await (const rb of s.batches) {
    for (const c of fromRecordBatch(rb).columns) {
      if (!cols.has(c.name)) cols.set(c.name, []);
      cols.get(c.name)!.push(c.data);
    }
  }
  return new Map([...cols].map(([k, v]) => [k, columnHash(concatColumns(v))]));
}

describe('XRootD faults through the CLI (hep-ml ingest URL -o FILE)', { skip }, () => {
  let data = '';
  let out = '';
  let srv: XrootdServer | undefined;
  /** a second server limited to 1 MiB/s (XRootD's throttle plugin), so that a read lasts long enough to be interrupted */
  let slow: XrootdServer | undefined;
  let tls: XrootdServer | undefined;
  const SMALL = 'uproot-HZZ.root';
  const BIG = 'nano_tt_v15.root';
  const SECRET = 'no-read-permission.root';
  const local = new Map<string, Map<string, string>>();
  const env = { HEPML_HTTP_RETRY_BASE_MS: '20', HEPML_HTTP_TIMEOUT_MS: '10000', BEARER_TOKEN: '', BEARER_TOKEN_FILE: '' };

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'hepml-xrd-faults-'));
    out = mkdtempSync(join(tmpdir(), 'hepml-xrd-out-'));
    chmodSync(data, 0o755);
    for (const n of [SMALL, BIG]) symlinkSync(join(testdata, 'root', n), join(data, n));
    // a file the server's user cannot read: XrdHttp answers 403
    writeFileSync(join(data, SECRET), readFileSync(join(testdata, 'root', SMALL)));
    chmodSync(join(data, SECRET), 0o000);
    [srv, slow, tls] = await Promise.all([
      startXrootd(data),
      startXrootd(data, { extra: ['xrootd.fslib throttle default', 'throttle.throttle data 1048576'] }),
      opensslAvailable() ? startXrootd(data, { tls: true }) : undefined,
    ]);
    // the local reads everything is compared with
    for (const n of [SMALL]) {
      const o = join(out, `local-${n}.arrow`);
      const r = await runCli(['ingest', join(testdata, 'root', n), '-o', o, '--progress', 'none', '-q']);
      assert.equal(r.code, 0, r.stderr);
      local.set(n, await arrowHashes(o));
      rmSync(o);
    }
  });

  after(async () => {
    for (const s of [srv, slow, tls]) if (s) spawnSyncKill(s.pid, 'SIGCONT');
    await Promise.allSettled([srv?.stop(), slow?.stop(), tls?.stop()]);
    if (data) {
      rmSync(data, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  });

  /** Runs ingest into a fresh directory; returns the result, the files left there, and the columns when it worked. */
  async function ingest(url: string, extraEnv: Record<string, string> = {}, during?: (dir: string) => Promise<void>) {
    const dir = mkdtempSync(join(out, 'run-'));
    const o = join(dir, 'out.arrow');
    const t0 = Date.now();
    const p = runCli(['ingest', url, '-o', o, '--progress', 'none', '-q'], { env: { ...env, ...extraEnv }, timeoutMs: 60_000 });
    if (during) await during(dir);
    const r = await p;
    const ms = Date.now() - t0;
    const left = readdirSync(dir);
    const columns = r.code === 0 && left.includes('out.arrow') ? await arrowHashes(o) : undefined;
    rmSync(dir, { recursive: true, force: true });
    return { ...r, ms, left, columns };
  }

  /** Resolves when the CLI has created its temporary output (it is then reading baskets). */
  async function partFileAppears(dir: string, ms = 30_000): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (readdirSync(dir).some((n) => n.endsWith('.part'))) return Date.now();
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the CLI never started writing its output');
  }

  test('baseline: ingest over XrdHttp equals the local ingest', async () => {
    const r = await ingest(`${srv!.url}/${SMALL}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.columns, local.get(SMALL));
  });

  test('ls over XrdHttp prints what ls prints for the local file; root:// with --xrootd-http-port maps onto it', async () => {
    const localLs = await runCli(['ls', join(testdata, 'root', BIG), '--json'], { env });
    const remoteLs = await runCli(['ls', `${srv!.url}/${BIG}`, '--json'], { env });
    assert.equal(localLs.code, 0, localLs.stderr);
    assert.equal(remoteLs.code, 0, remoteLs.stderr);
    const a = JSON.parse(localLs.stdout.toString());
    const b = JSON.parse(remoteLs.stdout.toString());
    assert.equal(b.file, `${srv!.url}/${BIG}`);
    assert.deepEqual({ ...b, file: a.file }, a);
    // root://127.0.0.1//path + --xrootd-http-port → https://127.0.0.1:PORT/path: the plain-http test server
    // refuses TLS, so the point here is the mapping: the error names the https URL, not root://
    const port = new URL(srv!.url).port;
    const mapped = await runCli(['ls', `root://127.0.0.1//${BIG}`, '--xrootd-http-port', port], { env: { ...env, HEPML_HTTP_RETRIES: '0' } });
    assert.notEqual(mapped.code, 0);
    assert.match(mapped.stderr, new RegExp(`https://127\\.0\\.0\\.1:${port}/${BIG.replace('.', '\\.')}`));
    if (tls) {
      const tport = new URL(tls.url).port;
      const viaTls = await runCli(['ls', `root://127.0.0.1//${BIG}`, '--xrootd-http-port', tport, '--json'], { env: { ...env, NODE_EXTRA_CA_CERTS: tls.ca! } });
      assert.equal(viaTls.code, 0, viaTls.stderr);
      assert.deepEqual(JSON.parse(viaTls.stdout.toString()).trees, a.trees);
    }
  });

  test('HTTPS with a self-signed certificate: works with NODE_EXTRA_CA_CERTS, a clean error without', async (t) => {
    if (!tls) return t.skip('openssl not installed');
    const ok = await ingest(`${tls.url}/${SMALL}`, { NODE_EXTRA_CA_CERTS: tls.ca! });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.columns, local.get(SMALL));
    const bad = await ingest(`${tls.url}/${SMALL}`, { NODE_EXTRA_CA_CERTS: '' });
    t.diagnostic(`without the CA: exit ${bad.code}: ${bad.stderr.trim()}`);
    assert.equal(bad.code, 9);
    assert.match(bad.stderr, /NODE_EXTRA_CA_CERTS/);
    assert.deepEqual(bad.left, []);
  });

  test('404: exit 3, no output', async (t) => {
    const r = await ingest(`${srv!.url}/no-such-file.root`);
    t.diagnostic(r.stderr.trim());
    assert.equal(r.code, 3);
    assert.match(r.stderr, /HTTP 404/);
    assert.deepEqual(r.left, []);
  });

  test('403 (a file the server cannot read): exit 9 "access denied", no output', async (t) => {
    const r = await ingest(`${srv!.url}/${SECRET}`);
    t.diagnostic(r.stderr.trim());
    assert.equal(r.code, 9);
    assert.match(r.stderr, /access denied \(HTTP 403/);
    assert.deepEqual(r.left, []);
  });

  for (const faults of [['drop'], ['503'], ['drop', '503']] as const) {
    test(`transient fault (${faults.join(', then ')}) in a proxy: retried, and the ingest equals the local one`, async (t) => {
      const proxy = await startFaultProxy('127.0.0.1', Number(new URL(srv!.url).port), [...faults]);
      try {
        const r = await ingest(`${proxy.url}/${SMALL}`);
        t.diagnostic(`${proxy.connections} connections through the proxy, ${r.ms} ms`);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(proxy.pending, [], 'the faults were hit');
        assert.deepEqual(r.columns, local.get(SMALL));
      } finally {
        await proxy.close();
      }
    });
  }

  test('server frozen (SIGSTOP) in the middle of the read: exit 9 within the timeout, no output, no .part', async (t) => {
    let stoppedAt = 0;
    const r = await ingest(`${slow!.url}/${BIG}`, { HEPML_HTTP_TIMEOUT_MS: '1000' }, async (dir) => {
      await partFileAppears(dir);
      process.kill(slow!.pid, 'SIGSTOP');
      stoppedAt = Date.now();
    });
    const after = Date.now() - stoppedAt;
    process.kill(slow!.pid, 'SIGCONT');
    t.diagnostic(`exit ${r.code} ${after} ms after SIGSTOP: ${r.stderr.trim()}`);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, /no answer for 1 s/);
    assert.ok(after < 8000, `${after} ms after SIGSTOP`);
    assert.deepEqual(r.left, [], 'no output file and no .part file');
  });

  test('server killed in the middle of the read: exit 9, no output, no .part', async (t) => {
    let killedAt = 0;
    const r = await ingest(`${slow!.url}/${BIG}`, {}, async (dir) => {
      await partFileAppears(dir);
      process.kill(slow!.pid, 'SIGKILL');
      killedAt = Date.now();
    });
    const after = Date.now() - killedAt;
    t.diagnostic(`exit ${r.code} ${after} ms after SIGKILL: ${r.stderr.trim()}`);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, /connection (refused|closed)/);
    assert.ok(after < 8000, `${after} ms after SIGKILL`);
    assert.deepEqual(r.left, [], 'no output file and no .part file');
  });
});

/** Polls /proc until every thread of `pid` is in state T (stopped); false when that does not happen in time. */
async function allThreadsStopped(pid: number, timeoutMs: number): Promise<boolean | 'unknown'> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let states: string[];
    try {
      states = readdirSync(`/proc/${pid}/task`).map((tid) => {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      });
    } catch {
      return 'unknown'; // no /proc: nothing to wait on
    }
    if (states.length > 0 && states.every((st) => st === 'T' || st === 't')) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function spawnSyncKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}
