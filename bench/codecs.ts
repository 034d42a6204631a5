/**
 * Decompression codec benchmark on real ROOT baskets (docs/decisions.md, "Decompression codecs").
 *
 *   node --import tsx bench/codecs.ts                      # candidates installed in this repo
 *   CODEC_BENCH_MODULES=/tmp/codec-bench/node_modules node --import tsx bench/codecs.ts
 *
 * Reads the test files from $HEPML_TESTDATA/root (default ../shared/testdata relative to the repo root),
 * locates every compressed basket with jsroot, splits the payloads into ROOT's 9-byte-header blocks and
 * times each candidate decoder on them. Every output is checked byte for byte against jsroot's R__unzip
 * before it is timed. Prints one JSON document on stdout; progress and skips go to stderr.
 * Env: BENCH_SECONDS (minimum timed seconds per candidate and data set, default 1), BENCH_ONLY (codec filter).
 */
import { existsSync, openSync, readSync, closeSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { openFile, R__unzip } from 'jsroot/io';
import { internals } from 'jsroot/core';
import { lz4DecodeBlock, rootUnzip, initCodecs, zstdDecompress } from '../src/root/decompress.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const testdata = resolve(process.env.HEPML_TESTDATA ?? join(repoRoot, '..', 'shared', 'testdata'));
const modulesDir = resolve(process.env.CODEC_BENCH_MODULES ?? join(repoRoot, 'node_modules'));
const minSeconds = Number(process.env.BENCH_SECONDS ?? '1');
const only = process.env.BENCH_ONLY?.toUpperCase();
const log = (s: string) => process.stderr.write(s + '\n');

// ---------------------------------------------------------------------------------------------------
// Candidate: xxHash64 in plain JS without BigInt: 64-bit values as (hi, lo) uint32 pairs; products via 16-bit limbs.
// ---------------------------------------------------------------------------------------------------
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;
const P1L0 = P1L & 0xffff, P1L1 = P1L >>> 16, P2L0 = P2L & 0xffff, P2L1 = P2L >>> 16;

// Result registers of the 64-bit helpers (module-level: no allocation per call).
let RH = 0, RL = 0;

/** (ah,al) * (bh,bl) mod 2^64 → (RH, RL). */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const t = (a1 * b0 + a0 * b1) * 65536 + a0 * b0; // < 2^50, exact
  RL = t >>> 0;
  RH = (a1 * b1 + Math.floor(t / 4294967296) + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
}

/** XXH64_round(acc, lane) = rotl(acc + lane * P2, 31) * P1 → (RH, RL). */
function round64(acch: number, accl: number, lh: number, ll: number): void {
  mul64(lh, ll, P2H, P2L);
  let lo = accl + RL;
  const hi = (acch + RH + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  lo >>>= 0;
  // rotl 31
  const rh = ((hi << 31) | (lo >>> 1)) >>> 0, rl = ((lo << 31) | (hi >>> 1)) >>> 0;
  mul64(rh, rl, P1H, P1L);
}

/** acc = acc * P1 + P4 → (RH, RL) */
function mulAddP1P4(h: number, l: number): void {
  mul64(h, l, P1H, P1L);
  const lo = RL + P4L;
  RH = (RH + P4H + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  RL = lo >>> 0;
}

function rd32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** xxHash64 of `data` with seed 0, as (hi, lo) written to `out[0]`, `out[1]`. */
function xxhash64Js(data: Uint8Array, out: Uint32Array): void {
  const len = data.length;
  let p = 0;
  let hh: number, hl: number;
  if (len >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (seed 0)
    let v1h = 0x60ea27ee, v1l = 0xadc0b5d6; // P1 + P2 mod 2^64
    let v2h = P2H, v2l = P2L;
    let v3h = 0, v3l = 0;
    let v4h = 0x61c8864e, v4l = 0x7a143579; // -P1 mod 2^64
    const limit = len - 32;
    do {
      // The four lane rounds, inlined (4x faster than calling round64): acc = rotl(acc + lane * P2, 31) * P1
      for (let k = 0; k < 4; k++) {
        const q = p + 8 * k;
        const ll = rd32(data, q), lh = rd32(data, q + 4);
        const ah = k === 0 ? v1h : k === 1 ? v2h : k === 2 ? v3h : v4h;
        const al = k === 0 ? v1l : k === 1 ? v2l : k === 2 ? v3l : v4l;
        let a0 = ll & 0xffff, a1 = ll >>> 16;
        let t = (a1 * P2L0 + a0 * P2L1) * 65536 + a0 * P2L0;
        const ml = t >>> 0;
        const mh = (a1 * P2L1 + ((t / 4294967296) | 0) + Math.imul(ll, P2H) + Math.imul(lh, P2L)) >>> 0;
        let lo = al + ml;
        const hi = (ah + mh + (lo > 0xffffffff ? 1 : 0)) | 0;
        lo = lo | 0;
        const rh = (hi << 31) | (lo >>> 1), rl = (lo << 31) | (hi >>> 1);
        a0 = rl & 0xffff; a1 = rl >>> 16;
        t = (a1 * P1L0 + a0 * P1L1) * 65536 + a0 * P1L0;
        const nl = t >>> 0;
        const nh = (a1 * P1L1 + ((t / 4294967296) | 0) + Math.imul(rl, P1H) + Math.imul(rh, P1L)) >>> 0;
        if (k === 0) { v1h = nh; v1l = nl; } else if (k === 1) { v2h = nh; v2l = nl; } else if (k === 2) { v3h = nh; v3l = nl; } else { v4h = nh; v4l = nl; }
      }
      p += 32;
    } while (p <= limit);
    // h = rotl(v1,1) + rotl(v2,7) + rotl(v3,12) + rotl(v4,18)
    let lo = (((v1l << 1) | (v1h >>> 31)) >>> 0) + (((v2l << 7) | (v2h >>> 25)) >>> 0);
    let hi = (((v1h << 1) | (v1l >>> 31)) >>> 0) + (((v2h << 7) | (v2l >>> 25)) >>> 0) + (lo > 0xffffffff ? 1 : 0);
    lo >>>= 0;
    lo += ((v3l << 12) | (v3h >>> 20)) >>> 0;
    hi += (((v3h << 12) | (v3l >>> 20)) >>> 0) + (lo > 0xffffffff ? 1 : 0);
    lo >>>= 0;
    lo += ((v4l << 18) | (v4h >>> 14)) >>> 0;
    hi += (((v4h << 18) | (v4l >>> 14)) >>> 0) + (lo > 0xffffffff ? 1 : 0);
    hh = hi >>> 0; hl = lo >>> 0;
    // merge rounds: h ^= round(0, v); h = h * P1 + P4
    round64(0, 0, v1h, v1l); hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0; mulAddP1P4(hh, hl); hh = RH; hl = RL;
    round64(0, 0, v2h, v2l); hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0; mulAddP1P4(hh, hl); hh = RH; hl = RL;
    round64(0, 0, v3h, v3l); hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0; mulAddP1P4(hh, hl); hh = RH; hl = RL;
    round64(0, 0, v4h, v4l); hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0; mulAddP1P4(hh, hl); hh = RH; hl = RL;
  } else {
    hh = P5H; hl = P5L;
  }
  // h += len (len < 2^32 for any ROOT block)
  {
    const lo = hl + (len >>> 0);
    hh = (hh + Math.floor(len / 4294967296) + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
  }
  while (p + 8 <= len) {
    round64(0, 0, rd32(data, p + 4), rd32(data, p));
    hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0;
    // h = rotl(h, 27) * P1 + P4
    const rh = ((hh << 27) | (hl >>> 5)) >>> 0, rl = ((hl << 27) | (hh >>> 5)) >>> 0;
    mulAddP1P4(rh, rl); hh = RH; hl = RL;
    p += 8;
  }
  if (p + 4 <= len) {
    // h ^= u32 * P1; h = rotl(h, 23) * P2 + P3
    mul64(0, rd32(data, p), P1H, P1L);
    hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0;
    const rh = ((hh << 23) | (hl >>> 9)) >>> 0, rl = ((hl << 23) | (hh >>> 9)) >>> 0;
    mul64(rh, rl, P2H, P2L);
    const lo = RL + P3L;
    hh = (RH + P3H + (lo > 0xffffffff ? 1 : 0)) >>> 0; hl = lo >>> 0;
    p += 4;
  }
  while (p < len) {
    // h ^= byte * P5; h = rotl(h, 11) * P1
    mul64(0, data[p]!, P5H, P5L);
    hh = (hh ^ RH) >>> 0; hl = (hl ^ RL) >>> 0;
    const rh = ((hh << 11) | (hl >>> 21)) >>> 0, rl = ((hl << 11) | (hh >>> 21)) >>> 0;
    mul64(rh, rl, P1H, P1L); hh = RH; hl = RL;
    p++;
  }
  // avalanche
  hl = (hl ^ ((hh >>> 1) | 0)) >>> 0; // h ^= h >> 33 : lo ^= hi >>> 1, hi ^= 0
  mul64(hh, hl, P2H, P2L); hh = RH; hl = RL;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0; hh = (hh ^ (hh >>> 29)) >>> 0; // h ^= h >> 29
  mul64(hh, hl, P3H, P3L); hh = RH; hl = RL;
  hl = (hl ^ hh) >>> 0; // h ^= h >> 32
  out[0] = hh; out[1] = hl;
}


// ------------------------------------------------------------------------------------------ data sets
type CodecTag = 'ZL' | 'CS' | 'XZ' | 'L4' | 'ZS';
interface Block { tag: CodecTag; body: Uint8Array; ulen: number; basket: number; outOffset: number }
interface Basket { payload: Uint8Array; objlen: number; ref: Uint8Array | null; refFrom?: string }
interface DataSet { name: string; file: string; tree: string; baskets: Basket[]; blocks: Block[]; outBytes: number; inBytes: number; maxBlock: number }

const DATASETS: { file: string; tree: string; codec: CodecTag; note?: string }[] = [
  { file: 'uproot-HZZ-zlib.root', tree: 'events', codec: 'ZL' },
  { file: 'nano_tt_v15.root', tree: 'Events', codec: 'ZL', note: 'thousands of small baskets' },
  { file: 'uproot-HZZ-lz4.root', tree: 'events', codec: 'L4' },
  { file: 'uproot-sample-6.20.04-lz4.root', tree: 'sample', codec: 'L4', note: 'tiny baskets' },
  { file: 'uproot-HZZ-zstd.root', tree: 'events', codec: 'ZS' },
  { file: 'uproot-HZZ-lzma.root', tree: 'events', codec: 'XZ' },
  { file: 'pfnano.root', tree: 'Events', codec: 'XZ', note: 'LZMA-9' },
  { file: 'pfnano.root', tree: 'ParameterSets', codec: 'XZ', note: 'LZMA-9, blocks up to 7.96 MB' },
];

interface JsBranch { fName: string; fWriteBasket: number; fBasketSeek: ArrayLike<number>; fBranches?: { arr: JsBranch[] } }

async function loadDataSet(file: string, tree: string): Promise<DataSet | null> {
  const path = join(testdata, 'root', file);
  if (!existsSync(path)) {
    log(`SKIP ${file}: not found at ${path} (set HEPML_TESTDATA)`);
    return null;
  }
  const f = await openFile(path);
  const t = await f.readObject(tree);
  const fd = openSync(path, 'r');
  const baskets: Basket[] = [];
  const hdr = Buffer.alloc(18);
  const walk = (arr: JsBranch[]) => {
    for (const b of arr) {
      for (let k = 0; k < b.fWriteBasket; k++) {
        const seek = Number(b.fBasketSeek[k]);
        readSync(fd, hdr, 0, 18, seek);
        const nbytes = hdr.readInt32BE(0), objlen = hdr.readInt32BE(6), keylen = hdr.readInt16BE(14);
        const clen = nbytes - keylen;
        if (clen >= objlen) continue; // stored uncompressed
        const payload = new Uint8Array(clen);
        readSync(fd, payload, 0, clen, seek + keylen);
        baskets.push({ payload, objlen, ref: null });
      }
      if (b.fBranches) walk(b.fBranches.arr);
    }
  };
  walk(t.fBranches.arr as JsBranch[]);
  closeSync(fd);
  const blocks: Block[] = [];
  let inBytes = 0, outBytes = 0, maxBlock = 0;
  baskets.forEach((bk, i) => {
    let ip = 0, op = 0;
    while (op < bk.objlen) {
      const p = bk.payload;
      const tag = String.fromCharCode(p[ip]!, p[ip + 1]!) as CodecTag;
      const clen = p[ip + 3]! | (p[ip + 4]! << 8) | (p[ip + 5]! << 16);
      const ulen = p[ip + 6]! | (p[ip + 7]! << 8) | (p[ip + 8]! << 16);
      blocks.push({ tag, body: p.subarray(ip + 9, ip + 9 + clen), ulen, basket: i, outOffset: op });
      ip += 9 + clen; op += ulen;
      maxBlock = Math.max(maxBlock, ulen);
    }
    inBytes += bk.payload.length; outBytes += bk.objlen;
  });
  // jsroot's own R__unzip is the reference output
  let failed = 0;
  for (const bk of baskets) {
    let dv: DataView | null = null;
    try {
      dv = await R__unzip(new DataView(bk.payload.buffer, bk.payload.byteOffset, bk.payload.byteLength), bk.objlen, true);
    } catch {
      dv = null; // jsroot's LZMA-JS throws on pfnano's 7.96 MB block
    }
    if (dv) bk.ref = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
    else failed++;
  }
  if (failed) log(`NOTE ${file}:${tree}: jsroot R__unzip failed on ${failed} of ${baskets.length} baskets`);
  return { name: `${file}:${tree}`, file, tree, baskets, blocks, outBytes, inBytes, maxBlock };
}

// ------------------------------------------------------------------------------------------ candidates
function pkgDir(name: string): string { return join(modulesDir, ...name.split('/')); }
function pkgJson(name: string): { version: string; main?: string; exports?: unknown; module?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; scripts?: Record<string, string> } | null {
  const p = join(pkgDir(name), 'package.json');
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
}
function dirSize(p: string): number {
  let n = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = join(p, e.name);
    if (e.isDirectory()) n += dirSize(q);
    else if (e.isFile()) n += statSync(q).size;
  }
  return n;
}
/** Installed size of a package and its installed (optional) dependencies, in kB. */
function installSize(name: string, seen = new Set<string>()): number {
  if (seen.has(name)) return 0;
  seen.add(name);
  const pj = pkgJson(name);
  if (!pj) return 0;
  let n = dirSize(pkgDir(name)) / 1024;
  for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) n += installSize(d, seen);
  return Math.round(n);
}
function hasInstallScript(name: string): boolean {
  const s = pkgJson(name)?.scripts ?? {};
  return Boolean(s.install || s.preinstall || s.postinstall);
}
/** Imports an installed package from modulesDir (CommonJS or ESM). */
async function load(name: string): Promise<any> {
  const req = createRequire(join(modulesDir, 'noop.js'));
  try {
    return req(name);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM' && !String(e).includes('ERR_PACKAGE_PATH_NOT_EXPORTED')) throw e;
  }
  const pj = pkgJson(name)!;
  const ex = pj.exports as Record<string, unknown> | string | undefined;
  let entry = pj.module ?? pj.main ?? 'index.js';
  const pick = (v: unknown): string | undefined => typeof v === 'string' ? v : v && typeof v === 'object' ? pick((v as Record<string, unknown>).node ?? (v as Record<string, unknown>).import ?? (v as Record<string, unknown>).default) : undefined;
  if (ex) entry = pick(typeof ex === 'string' ? ex : (ex as Record<string, unknown>)['.'] ?? ex) ?? entry;
  return import(pathToFileURL(join(pkgDir(name), entry)).href);
}

/** A block decoder: decodes `body` (block after the 9-byte header) of `ulen` bytes into `dst` (or returns a new array). */
type SyncDecode = (body: Uint8Array, ulen: number, dst: Uint8Array) => Uint8Array | number;
type AsyncDecode = (body: Uint8Array, ulen: number, dst: Uint8Array) => Promise<Uint8Array | number>;
interface Candidate { codec: CodecTag | 'XXH64'; lib: string; pkg?: string; sync: boolean; notes: string; setup: () => Promise<SyncDecode | AsyncDecode> }

const jsrootModules = dirname(createRequire(import.meta.url).resolve('jsroot/io'));
const jsrootVersion = (JSON.parse(readFileSync(join(jsrootModules, '..', 'package.json'), 'utf8')) as { version: string }).version;
const jsrootFile = (p: string) => pathToFileURL(join(jsrootModules, p)).href;

const xxOut = new Uint32Array(2);
function sizePrepended(payload: Uint8Array, ulen: number): Uint8Array {
  const b = new Uint8Array(payload.length + 4);
  b[0] = ulen & 255; b[1] = (ulen >>> 8) & 255; b[2] = (ulen >>> 16) & 255;
  b.set(payload, 4);
  return b;
}

const CANDIDATES: Candidate[] = [
  // zlib
  { codec: 'ZL', lib: 'jsroot ZIP_inflate (via R__unzip)', sync: false, notes: 'baseline: pure JS', setup: async () => async (body, ulen) => { const dv = await R__unzip(rewrap('ZL', body, ulen), ulen, true); if (!dv) throw new Error('R__unzip returned null'); return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength); } },
  { codec: 'ZL', lib: 'node:zlib inflateSync', sync: true, notes: 'built in', setup: async () => (body, ulen) => inflateSync(body, { chunkSize: Math.max(64, ulen + 1) }) },
  // LZ4 block decoders (checksum not included: see XXH64 rows)
  { codec: 'L4', lib: 'hand-written TS (hep-ml)', sync: true, notes: 'bounds-checked, decodes into caller buffer', setup: async () => (body, _u, dst) => lz4DecodeBlock(body.subarray(8), dst) },
  { codec: 'L4', lib: 'lz4js decompressBlock', pkg: 'lz4js', sync: true, notes: 'pure JS, last release 2017', setup: async () => { const m = await load('lz4js'); return (body, _u, dst) => m.decompressBlock(body.subarray(8), dst, 0, body.length - 8, 0); } },
  { codec: 'L4', lib: 'lz4 (node-lz4) decodeBlock', pkg: 'lz4', sync: true, notes: 'C binding compiled by node-gyp at install (install script)', setup: async () => { const m = await load('lz4'); return (body, _u, dst) => m.decodeBlock(Buffer.from(body.buffer, body.byteOffset + 8, body.length - 8), Buffer.from(dst.buffer, dst.byteOffset, dst.length)); } },
  { codec: 'L4', lib: 'lz4-napi uncompressSync', pkg: 'lz4-napi', sync: true, notes: 'Rust lz4_flex via N-API; needs size-prepended copy', setup: async () => { const m = await load('lz4-napi'); return (body, ulen) => m.uncompressSync(sizePrepended(body.subarray(8), ulen)); } },
  { codec: 'L4', lib: 'lz4-wasm-nodejs decompress', pkg: 'lz4-wasm-nodejs', sync: true, notes: 'Rust lz4_flex as WASM; needs size-prepended copy', setup: async () => { const m = await load('lz4-wasm-nodejs'); return (body, ulen) => m.decompress(sizePrepended(body.subarray(8), ulen)); } },
  { codec: 'L4', lib: 'jsroot LZ4_uncompress (via R__unzip)', sync: false, notes: 'baseline; skips the checksum', setup: async () => async (body, ulen) => { const dv = await R__unzip(rewrap('L4', body, ulen), ulen, true); if (!dv) throw new Error('R__unzip returned null'); return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength); } },
  // xxhash64 over the LZ4 payloads: MB/s of *hashed* bytes
  { codec: 'XXH64', lib: 'hand-written JS, no BigInt (hep-ml)', sync: true, notes: '32-bit limbs', setup: async () => (body) => { xxhash64Js(body.subarray(8), xxOut); return xxOut[1]!; } },
  { codec: 'XXH64', lib: '@node-rs/xxhash xxh64', pkg: '@node-rs/xxhash', sync: true, notes: 'Rust via N-API, returns bigint', setup: async () => { const m = await load('@node-rs/xxhash'); return (body) => Number(m.xxh64(body.subarray(8), 0n) & 0xffffffffn); } },
  { codec: 'XXH64', lib: 'xxhash-wasm h64Raw', pkg: 'xxhash-wasm', sync: true, notes: 'WASM, async init, returns bigint', setup: async () => { const x = await load('xxhash-wasm'); const m = await (x.default ?? x)(); return (body) => Number(m.h64Raw(body.subarray(8), 0n) & 0xffffffffn); } },
  // ZSTD
  { codec: 'ZS', lib: 'fzstd decompress', pkg: 'fzstd', sync: true, notes: 'pure JS, decodes into caller buffer', setup: async () => { const m = await load('fzstd'); return (body, _u, dst) => m.decompress(body, dst); } },
  { codec: 'ZS', lib: 'zstd-napi decompress', pkg: 'zstd-napi', sync: true, notes: 'libzstd via N-API; install runs node-gyp (C++ build)', setup: async () => { const m = await load('zstd-napi'); return (body) => m.decompress(body); } },
  { codec: 'ZS', lib: '@bokuweb/zstd-wasm decompress', pkg: '@bokuweb/zstd-wasm', sync: true, notes: 'libzstd as WASM, async init', setup: async () => { const m = await load('@bokuweb/zstd-wasm'); await m.init(); return (body) => m.decompress(body); } },
  { codec: 'ZS', lib: 'zstddec decode', pkg: 'zstddec', sync: true, notes: 'libzstd as WASM, async init', setup: async () => { const m = await load('zstddec'); const d = new m.ZSTDDecoder(); await d.init(); return (body, ulen) => d.decode(body, ulen); } },
  { codec: 'ZS', lib: 'jsroot bundled zstd-js (WASM)', sync: true, notes: 'baseline: modules/base/zstd.mjs', setup: async () => { const m = await import(jsrootFile('base/zstd.mjs')); const { ZstdStream } = await m.ZstdInit(); return (body) => ZstdStream.decompress(body); } },
  // XZ / LZMA
  { codec: 'XZ', lib: '@napi-rs/lzma xz.decompressSync', pkg: '@napi-rs/lzma', sync: true, notes: 'Rust (lzma-rs) via N-API, prebuilt', setup: async () => { const m = await load('@napi-rs/lzma'); return (body) => m.xz.decompressSync(body); } },
  { codec: 'XZ', lib: 'lzma-native decompress', pkg: 'lzma-native', sync: false, notes: 'liblzma via N-API, prebuilt; async only', setup: async () => { const m = await load('lzma-native'); return (body) => new Promise((res) => m.decompress(Buffer.from(body.buffer, body.byteOffset, body.length), undefined, res)); } },
  { codec: 'XZ', lib: 'xz-decompress XzReadableStream', pkg: 'xz-decompress', sync: false, notes: 'xz-embedded as WASM; async web streams only', setup: async () => {
    const m = await load('xz-decompress');
    return async (body, ulen, dst) => {
      const rs = new m.XzReadableStream(new ReadableStream({ start(c) { c.enqueue(body); c.close(); } }));
      let o = 0;
      for await (const chunk of rs as AsyncIterable<Uint8Array>) { if (o + chunk.length > ulen) throw new Error('too long'); dst.set(chunk, o); o += chunk.length; }
      return o;
    };
  } },
  { codec: 'XZ', lib: 'jsroot bundled LZMA-JS', sync: true, notes: 'baseline: modules/base/lzma.mjs', setup: async () => { const m = await import(jsrootFile('base/lzma.mjs')); return (body, ulen, dst) => m.decompress(body, dst, ulen); } },
  // hep-ml's rootUnzip end to end (header parsing, checksums, size checks, output assembly), per basket
  { codec: 'ZL', lib: 'hep-ml rootUnzip', sync: true, notes: 'node:zlib', setup: async () => (b, u, d) => d },
  { codec: 'L4', lib: 'hep-ml rootUnzip', sync: true, notes: 'hand-written LZ4 + xxhash-wasm checksum', setup: async () => (b, u, d) => d },
  { codec: 'ZS', lib: 'hep-ml rootUnzip', sync: true, notes: 'zstddec', setup: async () => (b, u, d) => d },
  { codec: 'XZ', lib: 'hep-ml rootUnzip', sync: true, notes: '@napi-rs/lzma', setup: async () => (b, u, d) => d },
];
function rewrap(tag: string, body: Uint8Array, ulen: number): DataView {
  const b = new Uint8Array(body.length + 9);
  b[0] = tag.charCodeAt(0); b[1] = tag.charCodeAt(1); b[2] = tag === 'L4' ? 1 : tag === 'ZL' ? 8 : 0;
  b[3] = body.length & 255; b[4] = (body.length >>> 8) & 255; b[5] = body.length >>> 16;
  b[6] = ulen & 255; b[7] = (ulen >>> 8) & 255; b[8] = ulen >>> 16;
  b.set(body, 9);
  return new DataView(b.buffer);
}

// ------------------------------------------------------------------------------------------ timing
function median(a: number[]): number { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]!; }

async function run(ds: DataSet, c: Candidate): Promise<Record<string, unknown>> {
  const version = c.pkg ? pkgJson(c.pkg)?.version : c.lib.startsWith('jsroot') ? jsrootVersion : c.lib.startsWith('node:') ? process.version : 'hep-ml';
  const base = { codec: c.codec, lib: c.lib, version, data: ds.name };
  let fn: SyncDecode | AsyncDecode;
  try {
    fn = await c.setup();
  } catch (e) {
    return { ...base, error: `setup failed: ${String(e).split('\n')[0]}` };
  }
  const isHash = c.codec === 'XXH64';
  const wholeBasket = c.lib.startsWith('hep-ml rootUnzip');
  const outs = ds.baskets.map((b) => new Uint8Array(b.objlen));
  // correctness pass
  let mismatches = 0, errors = 0, firstError = '';
  if (wholeBasket) {
    ds.baskets.forEach((b, i) => {
      try {
        rootUnzip(b.payload, b.objlen, {}, outs[i]);
      } catch (e) {
        errors++; firstError ||= String(e).split('\n')[0]!;
      }
    });
  } else if (isHash) {
    for (const bl of ds.blocks) {
      const lo = (fn as SyncDecode)(bl.body, bl.ulen, outs[0]!) as number;
      if (lo !== new DataView(bl.body.buffer, bl.body.byteOffset, 8).getUint32(4, false)) mismatches++;
    }
  } else {
    for (const bl of ds.blocks) {
      const dst = outs[bl.basket]!.subarray(bl.outOffset, bl.outOffset + bl.ulen);
      try {
        const r = await fn(bl.body, bl.ulen, dst);
        if (typeof r === 'number') { if (r !== bl.ulen) mismatches++; } else if (r !== dst) { if (r.length !== bl.ulen) mismatches++; else dst.set(r); }
      } catch (e) {
        errors++; firstError ||= String(e).split('\n')[0]!;
      }
    }
  }
  if (!isHash) {
    ds.baskets.forEach((b, i) => {
      if (b.ref) {
        if (!equal(outs[i]!, b.ref)) mismatches++;
      } else if (!errors) {
        // jsroot could not decode this basket: the first candidate that can becomes the reference, and
        // every later one must agree with it.
        b.ref = outs[i]!.slice();
        b.refFrom = c.lib;
      }
    });
  }
  if (errors || mismatches) return { ...base, errors, mismatches, firstError, note: 'wrong output: not timed' };
  const bytes = isHash ? ds.blocks.reduce((n, b) => n + b.body.length - 8, 0) : ds.outBytes;
  const times: number[] = [];
  let total = 0;
  const t0 = performance.now();
  while (total < minSeconds * 1000 || times.length < 3) {
    const s = performance.now();
    if (wholeBasket) {
      for (let i = 0; i < ds.baskets.length; i++) rootUnzip(ds.baskets[i]!.payload, ds.baskets[i]!.objlen);
    } else if (c.sync) {
      const f = fn as SyncDecode;
      for (const bl of ds.blocks) f(bl.body, bl.ulen, outs[bl.basket]!.subarray(bl.outOffset, bl.outOffset + bl.ulen));
    } else {
      for (const bl of ds.blocks) await fn(bl.body, bl.ulen, outs[bl.basket]!.subarray(bl.outOffset, bl.outOffset + bl.ulen));
    }
    const dt = performance.now() - s;
    times.push(dt); total += dt;
    if (performance.now() - t0 > 30_000) break;
  }
  const ms = median(times);
  return { ...base, passes: times.length, medianPassMs: +ms.toFixed(3), MBps: +(bytes / 1e6 / (ms / 1000)).toFixed(1), bytes, sync: c.sync, installKB: c.pkg ? installSize(c.pkg) : 0, installScript: c.pkg ? hasInstallScript(c.pkg) : false, notes: c.notes };
}
function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ------------------------------------------------------------------------------------------ main
internals._ZstdStream = { decompress: (src: Uint8Array) => zstdDecompress(src) };
await initCodecs();
const results: Record<string, unknown>[] = [];
const datasets: Record<string, unknown>[] = [];
for (const d of DATASETS) {
  if (only && !only.split(',').some((o) => d.codec === o || (o === 'XXH64' && d.codec === 'L4'))) continue;
  const ds = await loadDataSet(d.file, d.tree);
  if (!ds) { datasets.push({ ...d, skipped: 'file not found' }); continue; }
  const jsrootFailures = ds.baskets.filter((b) => !b.ref).length;
  for (const c of CANDIDATES) {
    if (c.codec !== d.codec && !(c.codec === 'XXH64' && d.codec === 'L4')) continue;
    if (only && !only.split(',').includes(c.codec)) continue;
    if (c.pkg && !pkgJson(c.pkg)) {
      log(`SKIP ${c.lib}: ${c.pkg} not installed in ${modulesDir}`);
      results.push({ codec: c.codec, lib: c.lib, data: ds.name, skipped: `not installed in ${modulesDir}` });
      continue;
    }
    log(`${ds.name}: ${c.lib} ...`);
    const r = await run(ds, c);
    log(`  ${JSON.stringify(r)}`);
    results.push(r);
  }
  const referenceFrom = [...new Set(ds.baskets.map((b) => b.refFrom).filter(Boolean))];
  datasets.push({ name: ds.name, note: d.note, baskets: ds.baskets.length, blocks: ds.blocks.length, compressedBytes: ds.inBytes, uncompressedBytes: ds.outBytes, largestBlock: ds.maxBlock, jsrootFailures, ...(referenceFrom.length ? { referenceForJsrootFailures: referenceFrom } : {}) });
}
console.log(JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadavg: os.loadavg().map((x) => +x.toFixed(2)), minSeconds, modulesDir, testdata, datasets, results }, null, 1));
