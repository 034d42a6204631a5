/**
 * Remote reading against a real XRootD server (Debian's xrootd with XrdHttp, on 127.0.0.1 only), started by
 * scripts/xrootd-test-server.sh through test/helpers/xrootd.ts.
 *
 * - plain fetch: HEAD, single Range, multi-range (what the server answers is recorded as a diagnostic),
 *   404, lower-case `range` header, HTTPS with the server's self-signed CA (NODE_EXTRA_CA_CERTS in a child);
 * - hep-ml's reader over HTTP: every truth file's trees, a few branches each, read through
 *   RootFile.open(url) (HttpSource) and compared with a local read of the same file (sha256 of every array);
 * - HttpSource edge cases (missing file, non-ROOT file, empty file, directory, a 302 redirector in front).
 *
 * Skipped (with a loud warning) when the xrootd packages are missing: bash .ci/install-xrootd.sh.
 * HEPML_REQUIRE_XROOTD=1 turns the skip into a failure (for CI machines that must run it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RootFile } from '../../src/root/file.js';
import { HttpSource } from '../../src/root/http.js';
import { TreeReader } from '../../src/root/reader.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { InputNotFoundError, IoError, NotRootFileError } from '../../src/errors.js';
import type { BranchInfo } from '../../src/root/tree.js';
import { REPO_ROOT, hasTestdata, loadTruth, rootFilesWithoutTruth, testdataDir, truthFiles } from '../helpers/truth.js';
import { opensslAvailable, startXrootd, xrootdUnavailableReason, type XrootdServer } from '../helpers/xrootd.js';

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
/** Branches compared per tree (spread over the tree's branch list). */
const BRANCHES_PER_TREE = 6;
/** Any single request taking longer than this is a hang (XrdHttp 5.5.3 can hang on some multi-ranges). */
const REQUEST_TIMEOUT_MS = 10_000;

const TEXT_FILE = 'not-root.txt';

function sha(b: Uint8Array | ArrayBufferView): string {
  return createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');
}

/** A structural fingerprint of a column: kinds, dtypes and the sha256 of every array. */
function columnHash(c: ColumnData): string {
  switch (c.kind) {
    case 'primitive':
      return `${c.dtype}[${c.values.length}]:${sha(c.values)}`;
    case 'fixed':
      return `fixed${c.size}(${columnHash(c.child)})`;
    case 'list':
      return `list[${c.offsets.length}]:${sha(c.offsets)}(${columnHash(c.child)})`;
    case 'utf8':
      return `utf8[${c.offsets.length}]:${sha(c.offsets)}:${sha(c.bytes)}`;
  }
}

async function readColumns(f: RootFile, tree: string, names: string[]): Promise<Map<string, string>> {
  const t = await f.tree(tree);
  const picked = names.map((n) => t.branch(n)).filter((b): b is BranchInfo => b !== undefined && b.type !== undefined);
  const parts = new Map<string, ColumnData[]>();
  const reader = new TreeReader(t, picked);
  for await (const batch of reader.batches(0, t.entries, Math.max(1, t.entries))) {
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

  test('hep-ml reader over HTTP: every truth file, a few branches per tree, identical to the local read', async (t) => {
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
        remote = await withTimeout(RootFile.open(`${http!.url}/${name}`), `open ${name}`);
        local = await RootFile.open(rootFile);
        assert.equal(remote.size, local.size, `${name}: size`);
        for (const tt of truth.trees) {
          const treeName = `${tt.tree};${tt.cycle}`;
          const lt = await local.tree(treeName);
          const readable = Object.keys(tt.branches).filter((n) => lt.branch(n)?.type !== undefined);
          if (readable.length === 0) continue;
          const step = Math.max(1, Math.ceil(readable.length / BRANCHES_PER_TREE));
          const picked = readable.filter((_, i) => i % step === 0).slice(0, BRANCHES_PER_TREE);
          const [lc, rc] = [await readColumns(local, treeName, picked), await withTimeout(readColumns(remote, treeName, picked), `read ${name} ${treeName}`)];
          for (const b of picked) {
            const l = lc.get(b);
            const r = rc.get(b);
            if (l === undefined) continue; // not readable locally either
            if (r !== l) failures.push(`${name} ${treeName} ${b}: remote ${r ?? '(missing)'} != local ${l}`);
            else branchesCompared++;
          }
        }
        requests += remote.source.stats.requests;
        bytes += remote.source.stats.bytes;
        t.diagnostic(`${name}: ${remote.source.stats.requests} requests, ${remote.source.stats.bytes} bytes of ${remote.size}`);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      } finally {
        await remote?.close();
        await local?.close();
      }
    }
    t.diagnostic(`${files.length} files, ${branchesCompared} branches identical over HTTP; ${requests} requests, ${bytes} bytes, ${Date.now() - t0} ms`);
    assert.deepEqual(failures, []);
    assert.ok(branchesCompared > files.length, `only ${branchesCompared} branches compared`);
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

  test('a frozen server (SIGSTOP): does a read time out? (recorded, not asserted)', async (t) => {
    const name = SAMPLE[0]!;
    const src = await HttpSource.open(`${http!.url}/${name}`);
    process.kill(http!.pid, 'SIGSTOP');
    const t0 = Date.now();
    let outcome: string;
    try {
      outcome = await withTimeout(
        src.read(0, 4).then(
          () => 'completed',
          (e: Error) => `${e.constructor.name}: ${e.message}`,
        ),
        'read',
        2_000,
      );
    } catch (e) {
      outcome = `still waiting after ${Date.now() - t0} ms: HttpSource has no request timeout`;
    } finally {
      process.kill(http!.pid, 'SIGCONT');
    }
    t.diagnostic(`HttpSource.read with the server stopped: ${outcome}`);
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
