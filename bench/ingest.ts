/**
 * Ingest benchmark: hep-ml's bulk reader against, in the same run,
 *  (a) jsroot's per-entry reading (treeProcess, values copied into columns as an ETL would), and
 *  (b) for ZLIB files, node:zlib inflating just the same baskets (the decompression limit).
 * Prints one JSON document on stdout. Env: BENCH_SECONDS (min seconds per measurement, default 1.5),
 * HEPML_TESTDATA (default ../shared/testdata).
 */
import { join, resolve, dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import os from 'node:os';
import { treeProcess } from 'jsroot/tree';
import { copyingSelector } from './lib.js';
import { RootFile } from '../src/root/file.js';
import { TreeReader } from '../src/root/reader.js';
import { basketsFor } from '../src/root/basket.js';
import { quietly } from '../src/root/jsroot.js';
import type { BranchInfo, Tree } from '../src/root/tree.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const testdata = resolve(process.env.HEPML_TESTDATA ?? join(repo, '..', 'shared', 'testdata'));
const minSeconds = Number(process.env.BENCH_SECONDS ?? 1.5);
const log = (s: string) => process.stderr.write(`${s}\n`);

/**
 * Median seconds of repeated runs of fn (at least `minRuns`, until minSeconds have passed), after a
 * warm-up of a third of that time (JIT compilation, allocator growth) that is not counted.
 */
async function time(fn: () => Promise<unknown>, minRuns = 3, maxRuns = 5000): Promise<{ median: number; runs: number }> {
  const t: number[] = [];
  if (minRuns > 1) {
    const w = performance.now();
    while (performance.now() - w < (minSeconds * 1000) / 3) await fn();
  }
  const start = performance.now();
  while (t.length < minRuns || (performance.now() - start < minSeconds * 1000 && t.length < maxRuns)) {
    const a = performance.now();
    await fn();
    t.push((performance.now() - a) / 1000);
  }
  t.sort((x, y) => x - y);
  return { median: t[Math.floor(t.length / 2)]!, runs: t.length };
}

/** jsroot per-entry read of the branches; every value is copied out (the target object is reused). */
async function jsrootPass(tree: Tree, branches: BranchInfo[]): Promise<number> {
  const { sel, processed } = copyingSelector(branches.map((b) => b.js));
  await quietly(() => treeProcess(tree.js, sel, { firstentry: 0, numentries: tree.entries }));
  const n = processed();
  if (n !== tree.entries) throw new Error(`jsroot processed ${n} of ${tree.entries}`);
  return n;
}

/** Raw compressed ZLIB blocks of the branches' baskets, for the inflate-only limit. */
async function zlibBlocks(tree: Tree, branches: BranchInfo[]): Promise<{ blocks: Uint8Array[]; sizes: number[]; bytes: number } | undefined> {
  const blocks: Uint8Array[] = [];
  const sizes: number[] = [];
  let out = 0;
  for (const b of branches) {
    for (const loc of basketsFor(b, 0, tree.entries)) {
      if (loc.embedded) continue;
      const raw = await tree.file.source.read(loc.seek, loc.bytes);
      const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const objlen = v.getInt32(6);
      const keylen = v.getInt16(14);
      if (objlen <= loc.bytes - keylen) continue;
      let p = keylen;
      while (p + 9 <= raw.length) {
        if (raw[p] !== 0x5a || raw[p + 1] !== 0x4c) return undefined; // not ZLIB
        const c = raw[p + 3]! | (raw[p + 4]! << 8) | (raw[p + 5]! << 16);
        const u = raw[p + 6]! | (raw[p + 7]! << 8) | (raw[p + 8]! << 16);
        out += u;
        sizes.push(u);
        blocks.push(raw.subarray(p + 9, p + 9 + c));
        p += 9 + c;
      }
    }
  }
  return { blocks, sizes, bytes: out };
}

interface Case {
  label: string;
  file: string;
  tree: string;
  branches?: string[];
  jsrootMinRuns?: number;
}

const cases: Case[] = [
  { label: 'HZZ-zlib, all branches', file: 'uproot-HZZ-zlib.root', tree: 'events' },
  { label: 'nano_tt_v15, all branches', file: 'nano_tt_v15.root', tree: 'Events', jsrootMinRuns: 1 },
  { label: 'nano_tt_v15, 5 branches', file: 'nano_tt_v15.root', tree: 'Events', branches: ['nMuon', 'Muon_pt', 'Muon_eta', 'Muon_phi', 'Muon_mass'] },
  { label: 'pfnano (LZMA), all branches', file: 'pfnano.root', tree: 'Events', jsrootMinRuns: 1 },
];

const results: Record<string, unknown>[] = [];
for (const c of cases) {
  const path = join(testdata, 'root', c.file);
  if (!existsSync(path)) {
    log(`SKIP ${c.label}: ${path} not found`);
    results.push({ case: c.label, skipped: `${path} not found` });
    continue;
  }
  log(`${c.label} ...`);
  const tOpen = performance.now();
  const f = await RootFile.open(path);
  const tree = await f.tree(c.tree);
  const openSeconds = (performance.now() - tOpen) / 1000;
  const branches = c.branches ? c.branches.map((n) => tree.branch(n)!) : tree.readable();
  const unzipped = branches.reduce((s, b) => s + b.totBytes, 0);
  const zipped = branches.reduce((s, b) => s + b.zipBytes, 0);
  const ours = await time(async () => {
    const r = new TreeReader(tree, branches);
    await r.read(0, tree.entries);
  });
  const js = await time(() => jsrootPass(tree, branches), c.jsrootMinRuns ?? 3, c.jsrootMinRuns ?? 5000);
  const z = await zlibBlocks(tree, branches);
  const inflate = z
    ? await time(async () => {
        // the fastest use of node:zlib: one output chunk of the known size per block
        for (let i = 0; i < z.blocks.length; i++) inflateSync(z.blocks[i]!, { chunkSize: Math.max(64, z.sizes[i]! + 1) });
      })
    : undefined;
  const rate = (s: number) => ({
    seconds: +s.toFixed(5),
    events_per_s: Math.round(tree.entries / s),
    mb_per_s_uncompressed: +(unzipped / 1e6 / s).toFixed(2),
    mb_per_s_compressed: +(zipped / 1e6 / s).toFixed(2),
  });
  results.push({
    case: c.label,
    file: c.file,
    entries: tree.entries,
    branches: branches.length,
    uncompressed_mb: +(unzipped / 1e6).toFixed(3),
    compressed_mb: +(zipped / 1e6).toFixed(3),
    open_seconds: +openSeconds.toFixed(3),
    hepml: { ...rate(ours.median), runs: ours.runs },
    jsroot_per_entry: { ...rate(js.median), runs: js.runs },
    speedup_vs_jsroot: +(js.median / ours.median).toFixed(1),
    ...(inflate
      ? {
          inflate_only: { ...rate(inflate.median), runs: inflate.runs },
          fraction_of_inflate_limit: +(inflate.median / ours.median).toFixed(2),
        }
      : {}),
  });
  await f.close();
}

process.stdout.write(
  JSON.stringify(
    {
      bench: 'ingest',
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => +x.toFixed(2)),
      note: 'seconds = median of repeated full reads of all entries (file already open, after an uncounted warm-up); jsroot = treeProcess with values copied out; inflate_only = node:zlib inflateSync (one output chunk of the known size) of the same baskets, already in memory',
      results,
    },
    null,
    2,
  ) + '\n',
);
