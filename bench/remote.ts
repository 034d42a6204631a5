/**
 * Remote-reading benchmark: nano_tt_v15.root served by a real XRootD server (XrdHttp, plain HTTP on
 * 127.0.0.1, test/helpers/xrootd.ts) through a delaying loopback proxy (test/helpers/latency-proxy.ts),
 * with 0 and 20 ms added round-trip time. For 5 branches and for every readable branch:
 *
 *  - hep-ml: RootFile.open(url) + TreeReader.batches() over all entries (the path of `hep-ml ingest`,
 *    default 100 MB steps);
 *  - jsroot, in the same run: its own HTTP client (`openFile(url)` from jsroot/io, xhr2), then
 *    `treeProcess` with a TSelector copying every value out (as bench/ingest.ts does);
 *
 * reporting seconds (median of a few runs after one uncounted warm-up run, which also opens the
 * connections), speedup, and, from the proxy's counters, HTTP requests, ranges and bytes, split into open
 * (file + tree metadata) and data, against the bytes needed (Σ fBasketBytes of the selected baskets).
 * A last section reads all branches at 20 ms in small steps with and without read-ahead, with a consumer
 * that spends CPU time on each batch.
 *
 * Prints one JSON document on stdout; progress on stderr. Skips (JSON note, exit 0) when the xrootd
 * packages (bash .ci/install-xrootd.sh) or the file are missing. Env: HEPML_TESTDATA, BENCH_RUNS (timed
 * runs per measurement, default 5; jsroot all-branches at most 3).
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import os from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openFile } from 'jsroot/io';
import { treeProcess } from 'jsroot/tree';
import { copyingSelector } from './lib.js';
import { RootFile } from '../src/root/file.js';
import { parseStepSize, TreeReader } from '../src/root/reader.js';
import { basketsFor } from '../src/root/basket.js';
import { quietly } from '../src/root/jsroot.js';
import { selectBranches } from '../src/ingest/index.js';
import type { ColumnBatch } from '../src/root/columns.js';
import type { BranchInfo, Tree } from '../src/root/tree.js';
import { startXrootd, xrootdUnavailableReason, type XrootdServer } from '../test/helpers/xrootd.js';
import { startLatencyProxyThread, type LatencyProxyThread as LatencyProxy, type ProxyCounters } from '../test/helpers/latency-proxy.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const testdata = resolve(process.env.HEPML_TESTDATA ?? join(repo, '..', 'shared', 'testdata'));
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
const FILE = 'nano_tt_v15.root';
const TREE = 'Events';
const FIVE = ['nMuon', 'Muon_pt', 'Muon_eta', 'Muon_phi', 'Muon_mass'];
/** For the read-ahead section: a file whose branches have many baskets (nano_tt_v15 has one per branch). */
const RA_FILE = 'uproot-demo-double32.root';
const RA_TREE = 'T';
const RTTS = [0, 20];
const log = (s: string) => process.stderr.write(`${s}\n`);

function out(doc: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ bench: 'remote', node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, ...doc }, null, 2) + '\n');
}

const src = join(testdata, 'root', FILE);
const why = xrootdUnavailableReason() ?? (existsSync(src) ? undefined : `${src} not found (set HEPML_TESTDATA)`);
if (why) {
  log(`\n*** bench remote SKIPPED: ${why} ***\n`);
  out({ skipped: why });
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------------
// one pass of each reader; each returns its timings and the proxy counters of its open and data phases

interface Pass {
  seconds: number;
  openSeconds: number;
  /** proxy counters of the whole pass, and of its data phase (after the open) */
  total: ProxyCounters;
  data: ProxyCounters;
  /** what hep-ml's ByteSource says it did during the data phase */
  source?: { requests: number; bytes: number };
  entries: number;
}

/** Touches every batch as a consumer would (and keeps the optimiser honest). */
function consume(b: ColumnBatch): number {
  let n = 0;
  for (const c of b.columns) {
    const d = c.data;
    n += d.kind === 'list' || d.kind === 'utf8' ? d.offsets.length : d.kind === 'primitive' ? d.values.length : 1;
  }
  return n;
}

/** Keeps the CPU busy for `ms` (a consumer doing real work on a batch: converting, writing, training). */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

async function hepmlPass(
  proxy: LatencyProxy,
  url: string,
  names: string[] | undefined,
  opts: { step?: number; readAhead?: boolean; workMs?: number; tree?: string } = {},
): Promise<Pass> {
  const c0 = await proxy.snapshot();
  const t0 = performance.now();
  const f = await RootFile.open(url);
  try {
    const tree = await f.tree(opts.tree ?? TREE);
    const t1 = performance.now();
    const c1 = await proxy.snapshot();
    const t1b = performance.now();
    const s0 = { ...f.source.stats };
    const branches = selectBranches(tree, names);
    const reader = new TreeReader(tree, branches, opts.readAhead === undefined ? {} : { readAhead: opts.readAhead });
    const step = opts.step ?? reader.stepEntries(parseStepSize('100 MB'));
    let n = 0;
    for await (const b of reader.batches(0, tree.entries, step)) {
      n += b.entryStop - b.entryStart;
      consume(b);
      if (opts.workMs) busy(opts.workMs);
    }
    const t2 = performance.now();
    if (n !== tree.entries) throw new Error(`hep-ml read ${n} of ${tree.entries} entries`);
    return {
      seconds: (t1 - t0 + t2 - t1b) / 1000,
      openSeconds: (t1 - t0) / 1000,
      total: await proxy.since(c0),
      data: await proxy.since(c1),
      source: { requests: f.source.stats.requests - s0.requests, bytes: f.source.stats.bytes - s0.bytes },
      entries: n,
    };
  } finally {
    await f.close();
  }
}

async function jsrootPass(proxy: LatencyProxy, url: string, names: string[]): Promise<Pass> {
  const c0 = await proxy.snapshot();
  const t0 = performance.now();
  return quietly(async () => {
    const file = await openFile(url);
    const tree = (await file.readObject(TREE)) as { fEntries: number };
    const t1 = performance.now();
    const c1 = await proxy.snapshot();
    const t1b = performance.now();
    const { sel, processed } = copyingSelector(names);
    const entries = Number(tree.fEntries);
    const res = await treeProcess(tree as never, sel, { firstentry: 0, numentries: entries });
    const t2 = performance.now();
    const n = processed();
    if (n !== entries) throw new Error(`jsroot processed ${n} of ${entries} entries (${res === null ? 'treeProcess gave null: an I/O failure' : 'incomplete'})`);
    return { seconds: (t1 - t0 + t2 - t1b) / 1000, openSeconds: (t1 - t0) / 1000, total: await proxy.since(c0), data: await proxy.since(c1), entries };
  });
}

interface Measured {
  /** medians over the timed runs */
  seconds: number;
  open_seconds: number;
  data_seconds: number;
  runs: number;
  /** the uncounted first run (new connections, cold caches) */
  first_run_seconds: number;
  /** from the proxy, for one run (the last) */
  requests: { open: number; data: number; data_ranges: number; data_multi_range: number; new_connections: number };
  bytes_transferred: { open: number; data: number; up: number };
  source?: { requests: number; bytes: number };
}

async function measure(runs: number, pass: () => Promise<Pass>): Promise<Measured> {
  const first = await pass();
  const all: Pass[] = [];
  for (let i = 0; i < runs; i++) all.push(await pass());
  const med = (f: (p: Pass) => number) => {
    const v = all.map(f).sort((a, b) => a - b);
    return +v[Math.floor(v.length / 2)]!.toFixed(4);
  };
  const last = all.at(-1)!;
  return {
    seconds: med((p) => p.seconds),
    open_seconds: med((p) => p.openSeconds),
    data_seconds: med((p) => p.seconds - p.openSeconds),
    runs: all.length,
    first_run_seconds: +first.seconds.toFixed(4),
    requests: {
      open: last.total.requests - last.data.requests,
      data: last.data.requests,
      data_ranges: last.data.ranges,
      data_multi_range: last.data.multiRangeRequests,
      new_connections: last.total.connections,
    },
    bytes_transferred: { open: last.total.bytesDown - last.data.bytesDown, data: last.data.bytesDown, up: last.total.bytesUp },
    ...(last.source ? { source: last.source } : {}),
  };
}

// ------------------------------------------------------------------------------------------------------

const t00 = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'hepml-bench-remote-'));
chmodSync(dir, 0o755);
copyFileSync(src, join(dir, FILE));
chmodSync(join(dir, FILE), 0o644);
const raSrc = join(testdata, 'root', RA_FILE);
if (existsSync(raSrc)) {
  copyFileSync(raSrc, join(dir, RA_FILE));
  chmodSync(join(dir, RA_FILE), 0o644);
}
let srv: XrootdServer | undefined;
const proxies: LatencyProxy[] = [];
try {
  srv = await startXrootd(dir);
  const port = Number(new URL(srv.url).port);
  log(`xrootd at ${srv.url} (${srv.log})`);

  // what the selections need, from the local file
  const local = await RootFile.open(src);
  const ltree = await local.tree(TREE);
  const selections: { label: string; names: string[] | undefined; branches: BranchInfo[] }[] = [
    { label: '5 branches', names: FIVE, branches: selectBranches(ltree, FIVE) },
    { label: 'all readable branches', names: undefined, branches: selectBranches(ltree, undefined) },
  ];
  const needed = (t: Tree, bs: BranchInfo[]) => {
    let bytes = 0;
    let baskets = 0;
    for (const b of bs) {
      for (const loc of basketsFor(b, 0, t.entries)) {
        if (loc.embedded) continue;
        bytes += loc.bytes;
        baskets++;
      }
    }
    return { bytes, baskets, zip_bytes: bs.reduce((s, b) => s + b.zipBytes, 0), tot_bytes: bs.reduce((s, b) => s + b.totBytes, 0) };
  };
  const entries = ltree.entries;
  const fileSize = local.source.size;
  const viaJsroot = selections[1]!.branches.filter((b) => b.plan?.kind === 'jsroot').length;
  await local.close();

  // the requests each reader makes to open the file and its tree (the Range headers, in order)
  const openRequests: Record<string, string[]> = {};
  {
    const p = await startLatencyProxyThread({ targetPort: port });
    proxies.push(p);
    const url = `${p.url}/${FILE}`;
    const f = await RootFile.open(url);
    await f.tree(TREE);
    await f.close();
    openRequests.hepml = (await p.requests()).map((r) => r.range ?? `${r.method} (no Range)`);
    await p.reset();
    await quietly(async () => (await openFile(url)).readObject(TREE));
    openRequests.jsroot = (await p.requests()).map((r) => r.range ?? `${r.method} (no Range)`);
  }

  const results: Record<string, unknown>[] = [];
  for (const rtt of RTTS) {
    const proxy = await startLatencyProxyThread({ targetPort: port, oneWayMs: rtt / 2 });
    proxies.push(proxy);
    const url = `${proxy.url}/${FILE}`;
    for (const sel of selections) {
      const need = needed(ltree, sel.branches);
      const names = sel.branches.map((b) => b.name);
      log(`rtt ${rtt} ms, ${sel.label}: hep-ml ...`);
      const ours = await measure(RUNS, () => hepmlPass(proxy, url, sel.names));
      const jsRuns = sel.names ? RUNS : Math.min(RUNS, 3);
      log(`rtt ${rtt} ms, ${sel.label}: jsroot (${jsRuns} runs) ...`);
      let js: Measured | { error: string };
      try {
        js = await measure(jsRuns, () => jsrootPass(proxy, url, names));
      } catch (e) {
        log(`jsroot failed: ${(e as Error).message}`);
        js = { error: (e as Error).message };
      }
      results.push({
        rtt_ms: rtt,
        selection: sel.label,
        branches: names.length,
        bytes_needed: need.bytes,
        zip_bytes: need.zip_bytes,
        baskets_needed: need.baskets,
        hepml: {
          ...ours,
          fetched_over_needed: +(ours.source!.bytes / need.bytes).toFixed(3),
          transferred_over_needed: +(ours.bytes_transferred.data / need.bytes).toFixed(3),
        },
        jsroot: 'error' in js ? js : { ...js, transferred_over_needed: +(js.bytes_transferred.data / need.bytes).toFixed(3) },
        speedup: 'error' in js ? null : +(js.seconds / ours.seconds).toFixed(2),
        speedup_data_only: 'error' in js ? null : +(js.data_seconds / ours.data_seconds).toFixed(2),
      });
    }
  }

  // read-ahead at 20 ms: a file with many baskets per branch, all branches in 8 steps, with a consumer that
  // is idle or busy (CPU) for 25 ms per batch
  const readAhead: Record<string, unknown>[] = [];
  if (existsSync(join(dir, RA_FILE))) {
    const raProxy = proxies.at(-1)!;
    const raRtt = RTTS.at(-1)!;
    const raUrl = `${raProxy.url}/${RA_FILE}`;
    const raLocal = await RootFile.open(raSrc);
    const raTree = await raLocal.tree(RA_TREE);
    const raEntries = raTree.entries;
    const raNeed = needed(raTree, selectBranches(raTree, undefined));
    await raLocal.close();
    const step = Math.ceil(raEntries / 8);
    for (const workMs of [0, 25]) {
      const row: Record<string, unknown> = {
        file: RA_FILE,
        rtt_ms: raRtt,
        entries: raEntries,
        baskets: raNeed.baskets,
        bytes_needed: raNeed.bytes,
        step_entries: step,
        steps: Math.ceil(raEntries / step),
        consumer_ms_per_batch: workMs,
      };
      for (const on of [false, true]) {
        log(`read-ahead ${on ? 'on' : 'off'}, consumer ${workMs} ms/batch ...`);
        const m = await measure(RUNS, () => hepmlPass(raProxy, raUrl, undefined, { step, readAhead: on, workMs, tree: RA_TREE }));
        row[on ? 'read_ahead' : 'no_read_ahead'] = {
          seconds: m.seconds,
          data_seconds: m.data_seconds,
          data_requests: m.requests.data,
          data_bytes: m.bytes_transferred.data,
        };
      }
      const a = row.no_read_ahead as { data_seconds: number };
      const b = row.read_ahead as { data_seconds: number };
      row.data_seconds_saved = +(a.data_seconds - b.data_seconds).toFixed(4);
      readAhead.push(row);
    }
  } else readAhead.push({ skipped: `${raSrc} not found` });

  const at20 = results.filter((r) => r.rtt_ms === 20);
  out({
    file: FILE,
    file_bytes: fileSize,
    entries,
    server: 'XRootD 5.5.3 XrdHttp, plain HTTP on 127.0.0.1, through a loopback proxy (in a worker thread) delaying each direction by rtt/2 (a new connection costs one extra rtt)',
    branches_read_through_jsroot: viaJsroot,
    note:
      'seconds = open + read of all entries, median of the timed runs after one uncounted run; open = RootFile.open + tree (hep-ml) or openFile + readObject (jsroot); ' +
      'requests and bytes from the proxy (HTTP requests parsed from the client stream, bytes = server→client including HTTP headers) for one run; ' +
      'bytes_needed = Σ fBasketBytes of the selected branches\' baskets (zip_bytes = Σ fZipBytes, without the key headers); fetched_over_needed = payload bytes hep-ml\'s ByteSource fetched for the data / bytes_needed; ' +
      'transferred_over_needed = data bytes on the wire (HTTP headers and multipart framing included) / bytes_needed',
    open_requests: openRequests,
    results,
    read_ahead: readAhead,
    targets: {
      'speedup_vs_jsroot_at_20ms>=5': at20.map((r) => ({ selection: r.selection, speedup: r.speedup, met: r.speedup !== null && (r.speedup as number) >= 5 })),
      'fetched_over_needed<=1.2': results.map((r) => {
        const v = (r.hepml as { fetched_over_needed: number }).fetched_over_needed;
        return { rtt_ms: r.rtt_ms, selection: r.selection, value: v, met: v <= 1.2 };
      }),
    },
    bench_seconds: +((performance.now() - t00) / 1000).toFixed(1),
  });
} finally {
  for (const p of proxies) await p.close();
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
}
