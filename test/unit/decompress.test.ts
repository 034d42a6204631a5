/**
 * src/root/decompress.ts: ROOT's compressed-block format, every codec, and its failure modes.
 *
 * Synthetic data (built here with node:zlib, @napi-rs/lzma and hand-made LZ4 blocks) runs everywhere. Real
 * baskets come from $HEPML_TESTDATA/root (default ../shared/testdata relative to the repo root); those tests
 * are skipped, loudly, when the files are absent. Real-data outputs are compared byte for byte with jsroot's
 * own R__unzip and, for LZ4, ZSTD and LZMA, with the zlib-compressed copy of the same tree.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { internals } from 'jsroot/core';
import { openFile, R__unzip } from 'jsroot/io';
import xxhashWasm from 'xxhash-wasm';
import { CorruptDataError, ExitCode, type ErrorContext } from '../../src/errors.js';
import {
  blockCodec,
  codecsReady,
  compressionName,
  initCodecs,
  isCompressed,
  lz4DecodeBlock,
  MAX_BLOCK_SIZE,
  readBlockHeader,
  rootUnzip,
  unzipPayload,
  zstdDecompress,
  type Codec,
} from '../../src/root/decompress.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TESTDATA = join(resolve(process.env.HEPML_TESTDATA ?? join(repoRoot, '..', 'shared', 'testdata')), 'root');

// ------------------------------------------------------------------------------------------ helpers
function header(tag: string, method: number, clen: number, ulen: number): Uint8Array {
  return Uint8Array.of(tag.charCodeAt(0), tag.charCodeAt(1), method, clen & 255, (clen >>> 8) & 255, clen >>> 16, ulen & 255, (ulen >>> 8) & 255, ulen >>> 16);
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function block(tag: string, method: number, body: Uint8Array, ulen: number): Uint8Array {
  return concat(header(tag, method, body.length, ulen), body);
}
/** ROOT-style zlib payload: one "ZL" block per `chunk` bytes of data. */
function zlibPayload(data: Uint8Array, chunk = MAX_BLOCK_SIZE): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let o = 0; o < data.length; o += chunk) {
    const piece = data.subarray(o, Math.min(data.length, o + chunk));
    parts.push(block('ZL', 8, deflateSync(piece, { level: 1 }), piece.length));
  }
  return concat(...parts);
}
/** Deterministic, moderately compressible bytes. */
function sampleData(n: number, seed = 1): Uint8Array {
  const d = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    d[i] = (x >>> 24) & 0x0f ? i & 0xff : x >>> 16;
  }
  return d;
}
const h64 = (await xxhashWasm()).h64Raw;
/** An "L4" block around raw LZ4 block data, with ROOT's big-endian xxhash64 checksum. */
function lz4RootBlock(lz4: Uint8Array, ulen: number): Uint8Array {
  const sum = new Uint8Array(8);
  new DataView(sum.buffer).setBigUint64(0, h64(lz4, 0n), false);
  return block('L4', 1, concat(sum, lz4), ulen);
}
// 100 × 'a': literal 'a', then a match at offset 1 of 94 bytes (overlapping), then 5 literals.
const LZ4_A100 = Uint8Array.of(0x1f, 0x61, 0x01, 0x00, 94 - 4 - 15, 0x50, 0x61, 0x61, 0x61, 0x61, 0x61);

function assertCorrupt(fn: () => unknown, pattern: RegExp, ctx?: ErrorContext): CorruptDataError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CorruptDataError, `expected CorruptDataError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.equal(caught.exitCode, ExitCode.CORRUPT);
  if (ctx) assert.deepEqual(caught.context, ctx);
  return caught;
}

// Real baskets, located with jsroot ------------------------------------------------------------------
interface RealBasket { branch: string; index: number; payload: Uint8Array; objlen: number }
interface JsBranch { fName: string; fWriteBasket: number; fBasketSeek: ArrayLike<number>; fBranches?: { arr: JsBranch[] } }
const basketCache = new Map<string, RealBasket[] | null>();

/** Every compressed basket of every branch of `tree`, or null when the file is absent. */
async function realBaskets(file: string, tree: string): Promise<RealBasket[] | null> {
  const key = `${file}:${tree}`;
  if (basketCache.has(key)) return basketCache.get(key)!;
  const path = join(TESTDATA, file);
  if (!existsSync(path)) {
    basketCache.set(key, null);
    return null;
  }
  await initCodecs();
  internals._ZstdStream = { decompress: (src: Uint8Array) => zstdDecompress(src) }; // for jsroot's metadata reads
  const f = await openFile(path);
  const t = await f.readObject(tree);
  const fd = openSync(path, 'r');
  const out: RealBasket[] = [];
  const hdr = Buffer.alloc(18);
  const walk = (arr: JsBranch[]) => {
    for (const b of arr) {
      for (let k = 0; k < b.fWriteBasket; k++) {
        const seek = Number(b.fBasketSeek[k]);
        readSync(fd, hdr, 0, 18, seek);
        const nbytes = hdr.readInt32BE(0), objlen = hdr.readInt32BE(6), keylen = hdr.readInt16BE(14);
        if (!isCompressed(nbytes - keylen, objlen)) continue;
        const payload = new Uint8Array(nbytes - keylen);
        readSync(fd, payload, 0, payload.length, seek + keylen);
        out.push({ branch: b.fName, index: k, payload, objlen });
      }
      if (b.fBranches) walk(b.fBranches.arr);
    }
  };
  try {
    walk(t.fBranches.arr as JsBranch[]);
  } finally {
    closeSync(fd);
  }
  basketCache.set(key, out);
  return out;
}

async function jsrootUnzip(b: RealBasket): Promise<Uint8Array | null> {
  const dv = await R__unzip(new DataView(b.payload.buffer, b.payload.byteOffset, b.payload.byteLength), b.objlen, true);
  return dv ? new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength) : null;
}

// ------------------------------------------------------------------------------------------ tests
// This test must run first: it checks the state before initCodecs().
test('LZ4 and ZSTD blocks before initCodecs() fail with a clear error', () => {
  assert.equal(codecsReady(), false);
  assert.throws(() => rootUnzip(lz4RootBlock(LZ4_A100, 100), 100), /LZ4 .*initCodecs/);
  assert.throws(() => rootUnzip(block('ZS', 1, new Uint8Array(20), 100), 100), /ZSTD .*initCodecs/);
  assert.throws(() => zstdDecompress(new Uint8Array(20)), /initCodecs/);
  // zlib needs no initialisation
  const data = sampleData(1000);
  assert.deepEqual(rootUnzip(zlibPayload(data), data.length), data);
});

test('initCodecs() initialises once', async () => {
  const p = initCodecs();
  assert.equal(initCodecs(), p);
  await p;
  assert.equal(codecsReady(), true);
});

test('compressionName follows ROOT Compression.h (algorithm * 100 + level)', () => {
  const cases: [number, string][] = [
    [-1, 'inherit'], [0, 'none'], [1, 'default-1'], [4, 'default-4'], [9, 'default-9'], [100, 'none'], [101, 'ZLIB-1'], [106, 'ZLIB-6'],
    [207, 'LZMA-7'], [209, 'LZMA-9'], [306, 'OLD-6'], [400, 'none'], [404, 'LZ4-4'], [505, 'ZSTD-5'],
    [612, 'unknown(612)'], [-5, 'unknown(-5)'], [1.5, 'unknown(1.5)'],
  ];
  for (const [v, name] of cases) assert.equal(compressionName(v), name, `fCompress ${v}`);
});

test('blockCodec and readBlockHeader recognise exactly ROOT’s five headers', () => {
  const cases: [string, number, Codec | undefined][] = [
    ['ZL', 8, 'ZLIB'], ['CS', 8, 'OLD'], ['XZ', 0, 'LZMA'], ['L4', 1, 'LZ4'], ['ZS', 1, 'ZSTD'],
    ['ZL', 7, undefined], ['CS', 0, undefined], ['XZ', 1, undefined], ['ZS', 0, undefined], ['AB', 8, undefined], ['zl', 8, undefined],
  ];
  for (const [tag, m, codec] of cases) assert.equal(blockCodec(header(tag, m, 5, 7)), codec, `${tag}/${m}`);
  const buf = concat(new Uint8Array(3), header('ZS', 1, 0x123456, 0xabcdef));
  assert.equal(blockCodec(buf, 3), 'ZSTD');
  assert.equal(blockCodec(buf, 0), undefined);
  assert.equal(blockCodec(buf, buf.length - 2), undefined);
  assert.deepEqual(readBlockHeader(buf, 3), { codec: 'ZSTD', compressedSize: 0x123456, uncompressedSize: 0xabcdef });
  assert.equal(readBlockHeader(buf.subarray(0, 10), 3), undefined); // header cut short
});

test('ZLIB: round trip, one and many blocks, objects over 16 MB, caller buffer', () => {
  for (const n of [1, 100, 70_000]) {
    const data = sampleData(n, n);
    assert.deepEqual(rootUnzip(zlibPayload(data), n), data, `${n} bytes in one block`);
    assert.deepEqual(rootUnzip(zlibPayload(data, 1000), n), data, `${n} bytes in 1000-byte blocks`);
  }
  // ROOT splits objects larger than a block can describe (0xffffff) into several blocks
  const big = sampleData(MAX_BLOCK_SIZE + 5000, 7);
  const payload = zlibPayload(big);
  assert.equal(readBlockHeader(payload)?.uncompressedSize, MAX_BLOCK_SIZE);
  const res = rootUnzip(payload, big.length);
  assert.equal(res.length, big.length);
  assert.ok(Buffer.from(res.buffer, res.byteOffset, res.length).equals(big), '16 MB + 5000 bytes object');
  assert.equal(res.byteOffset, 0);
  // into a caller-provided buffer (larger than needed): same bytes, same memory
  const data = sampleData(5000, 3);
  const out = new Uint8Array(6000).fill(0xee);
  const r = rootUnzip(zlibPayload(data, 2048), data.length, {}, out);
  assert.equal(r.buffer, out.buffer);
  assert.equal(r.length, data.length);
  assert.deepEqual(r, data);
  assert.equal(out[5000], 0xee, 'nothing written past objlen');
  assert.throws(() => rootUnzip(zlibPayload(data), data.length, {}, new Uint8Array(10)), RangeError);
  // empty object, and bytes after the last block are ignored (as ROOT does)
  assert.equal(rootUnzip(new Uint8Array(0), 0).length, 0);
  assert.deepEqual(rootUnzip(concat(zlibPayload(data), new Uint8Array(7)), data.length), data);
});

test('OLD ("CS", raw deflate) round trip, mixed with ZLIB blocks', () => {
  const a = sampleData(3000, 11), b = sampleData(2000, 12);
  const payload = concat(block('CS', 8, deflateRawSync(a), a.length), block('ZL', 8, deflateSync(b), b.length));
  assert.deepEqual(rootUnzip(payload, 5000), concat(a, b));
});

/** An xz stream made like ROOT's (liblzma easy encoder, CRC32 check) by the xz command, or null without it. */
function xzCommand(data: Uint8Array): Uint8Array | null {
  const r = spawnSync('xz', ['--format=xz', '--check=crc32', '-6', '-c'], { input: data, maxBuffer: 64 << 20 });
  return r.error || r.status !== 0 ? null : new Uint8Array(r.stdout);
}

test('LZMA ("XZ") round trip with xz streams; damage is caught by the CRC32', (t) => {
  const { xz } = createRequire(import.meta.url)('@napi-rs/lzma') as typeof import('@napi-rs/lzma');
  const data = sampleData(50_000, 5);
  // @napi-rs/lzma's own encoder writes streams without a check, so only the decoder is exercised here
  assert.deepEqual(rootUnzip(block('XZ', 0, xz.compressSync(data), data.length), data.length), data);
  const stream = xzCommand(data);
  if (!stream) return t.skip('SKIPPED (partly): the xz command is not available to make CRC32-checked streams');
  assert.equal(stream[7], 1, 'stream flags: CRC32');
  const payload = block('XZ', 0, stream, data.length);
  assert.deepEqual(rootUnzip(payload, data.length), data);
  for (const pos of [20, payload.length >> 1, payload.length - 30]) {
    const bad = payload.slice();
    bad[pos] ^= 0x55;
    assertCorrupt(() => rootUnzip(bad, data.length), /LZMA block 0/);
  }
});

test('LZ4 block decoder: literals, overlapping and long matches, malformed blocks', () => {
  const dst = new Uint8Array(100);
  assert.equal(lz4DecodeBlock(LZ4_A100, dst), 100);
  assert.deepEqual(dst, new Uint8Array(100).fill(0x61));
  // "abc" + match(offset 3, length 60) + "xyz": repeated pattern longer than the copy loop
  const blk = Uint8Array.of(0x3f, 0x61, 0x62, 0x63, 0x03, 0x00, 60 - 4 - 15, 0x30, 0x78, 0x79, 0x7a);
  const out = new Uint8Array(66);
  assert.equal(lz4DecodeBlock(blk, out), 66);
  assert.equal(Buffer.from(out).toString('latin1'), 'abc'.repeat(21) + 'xyz');
  assert.throws(() => lz4DecodeBlock(new Uint8Array(0), dst), /empty/);
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x10, 0x61, 0x00, 0x00), dst), /offset 0/);
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x10, 0x61, 0x05, 0x00), dst), /offset 5/);
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x50, 0x61, 0x62), dst), /past the end/);
  assert.throws(() => lz4DecodeBlock(LZ4_A100, new Uint8Array(99)), /overflows/);
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x1f, 0x61, 0x01), dst), /cut off/);
});

test('LZ4: synthetic ROOT block round trip, and a flipped byte fails the checksum', () => {
  const payload = lz4RootBlock(LZ4_A100, 100);
  assert.deepEqual(rootUnzip(payload, 100), new Uint8Array(100).fill(0x61));
  const bad = payload.slice();
  bad[bad.length - 1] ^= 0x01;
  const ctx = { file: 'x.root', tree: 't', branch: 'b', basket: 3 };
  const e = assertCorrupt(() => rootUnzip(bad, 100, ctx), /LZ4 block 0 .*checksum mismatch: stored xxhash64 [0-9a-f]{16}, computed [0-9a-f]{16}/, ctx);
  assert.match(e.describe(), /^x\.root: tree 't', branch 'b', basket 3: corrupt compressed data/);
  const badSum = payload.slice();
  badSum[9] ^= 0x80; // inside the stored checksum
  assertCorrupt(() => rootUnzip(badSum, 100), /checksum mismatch/);
});

test('errors: unknown header, truncation, sizes that disagree, corrupt streams', () => {
  const data = sampleData(4000, 9);
  const good = zlibPayload(data, 1500); // three blocks
  assertCorrupt(() => rootUnzip(concat(Uint8Array.of(0x41, 0x42, 0x08), good.subarray(3)), data.length), /unknown compression header 0x414208 in block 0/);
  // second block header damaged
  const second = readBlockHeader(good)!.compressedSize + 9;
  const bad = good.slice();
  bad[second] = 0x51;
  assertCorrupt(() => rootUnzip(bad, data.length), /unknown compression header 0x514c08 in block 1 \(at byte \d+/);
  // truncated in the middle of a block's data, inside a header, and before the last block
  assertCorrupt(() => rootUnzip(good.subarray(0, good.length - 10), data.length), /ZLIB block 2 .*needs \d+ bytes of data but only \d+ remain/);
  assertCorrupt(() => rootUnzip(good.subarray(0, second + 4), data.length), /ends inside the header of block 1 .*decompressed 1500 of 4000 bytes/);
  assertCorrupt(() => rootUnzip(good.subarray(0, 0), data.length), /ends inside the header of block 0/);
  assertCorrupt(() => rootUnzip(good, data.length + 1), /ends inside the header of block 3 .*4000 of 4001/);
  // objlen smaller than the blocks
  assertCorrupt(() => rootUnzip(good, data.length - 1), /block 2 .*past the expected total of 3999/);
  // a block whose data is shorter / longer than its header says
  const short = block('ZL', 8, deflateSync(data.subarray(0, 100)), 200);
  assertCorrupt(() => rootUnzip(short, 200), /ZLIB block 0 .*decompressed to 100 bytes, but its header says 200/);
  const long = block('ZL', 8, deflateSync(data.subarray(0, 300)), 200);
  assertCorrupt(() => rootUnzip(long, 200), /ZLIB block 0/);
  assertCorrupt(() => rootUnzip(block('ZL', 8, deflateSync(data), 0), 10), /declares 0 uncompressed bytes/);
  // damaged deflate data / adler32
  const z = zlibPayload(data);
  const flipped = z.slice();
  flipped[flipped.length - 2] ^= 0xff;
  assertCorrupt(() => rootUnzip(flipped, data.length), /ZLIB block 0/);
  // damaged xz stream: see the LZMA tests below
  // LZ4 block that decodes to fewer bytes than declared
  assertCorrupt(() => rootUnzip(lz4RootBlock(LZ4_A100, 120), 120), /LZ4 block 0 .*decompressed to 100 bytes, but its header says 120/);
  assertCorrupt(() => rootUnzip(lz4RootBlock(LZ4_A100, 80), 80), /LZ4 block 0 .*overflows the expected 80 bytes/);
  assertCorrupt(() => rootUnzip(block('L4', 1, new Uint8Array(8), 10), 10), /too few for its checksum/);
});

test('unzipPayload: stored payloads pass through, compressed ones are unzipped', () => {
  const data = new Uint8Array(300).map((_, i) => i % 7);
  assert.equal(isCompressed(300, 300), false);
  assert.equal(isCompressed(299, 300), true);
  assert.equal(unzipPayload(data, 300), data);
  const out = new Uint8Array(300);
  assert.equal(unzipPayload(data, 300, {}, out), out);
  assert.deepEqual(out, data);
  const z = zlibPayload(data);
  assert.ok(z.length < 300);
  assert.deepEqual(unzipPayload(z, 300), data);
});

// Real data ------------------------------------------------------------------------------------------
const REAL: { file: string; tree: string; codec: Codec }[] = [
  { file: 'uproot-HZZ-zlib.root', tree: 'events', codec: 'ZLIB' },
  { file: 'uproot-HZZ-lz4.root', tree: 'events', codec: 'LZ4' },
  { file: 'uproot-sample-6.20.04-lz4.root', tree: 'sample', codec: 'LZ4' },
  { file: 'uproot-HZZ-zstd.root', tree: 'events', codec: 'ZSTD' },
  { file: 'uproot-HZZ-lzma.root', tree: 'events', codec: 'LZMA' },
  { file: 'pfnano.root', tree: 'Events', codec: 'LZMA' },
];

for (const { file, tree, codec } of REAL) {
  test(`${codec}: every basket of ${file}:${tree} equals jsroot's R__unzip`, async (t) => {
    await initCodecs();
    const baskets = await realBaskets(file, tree);
    if (!baskets) return t.skip(`SKIPPED: ${join(TESTDATA, file)} not found (set HEPML_TESTDATA)`);
    assert.ok(baskets.length > 0, 'no compressed baskets found');
    let compared = 0;
    for (const b of baskets) {
      assert.equal(blockCodec(b.payload), codec, `${b.branch}[${b.index}] is ${blockCodec(b.payload)}`);
      const ctx = { file, tree, branch: b.branch, basket: b.index };
      const ours = rootUnzip(b.payload, b.objlen, ctx);
      assert.equal(ours.length, b.objlen);
      const ref = await jsrootUnzip(b);
      assert.ok(ref, `jsroot could not unzip ${b.branch}[${b.index}]`);
      assert.ok(Buffer.from(ours.buffer, ours.byteOffset, ours.length).equals(ref), `${b.branch} basket ${b.index} differs from jsroot`);
      compared++;
    }
    assert.equal(compared, baskets.length);
  });
}

// The HZZ variants hold the same tree with the same baskets: every LZ4/ZSTD/LZMA basket must decode to
// exactly what the zlib copy's basket decodes to in jsroot (independent of hep-ml's ZSTD decoder, which jsroot
// itself uses in these tests).
for (const codec of ['LZ4', 'ZSTD', 'LZMA'] as const) {
  const file = { LZ4: 'uproot-HZZ-lz4.root', ZSTD: 'uproot-HZZ-zstd.root', LZMA: 'uproot-HZZ-lzma.root' }[codec];
  test(`${codec}: ${file} baskets equal the zlib copy's baskets decoded by jsroot`, async (t) => {
    const [zl, other] = [await realBaskets('uproot-HZZ-zlib.root', 'events'), await realBaskets(file, 'events')];
    if (!zl || !other) return t.skip(`SKIPPED: uproot-HZZ-zlib.root or ${file} not found in ${TESTDATA} (set HEPML_TESTDATA)`);
    const byKey = new Map(zl.map((b) => [`${b.branch}/${b.index}`, b]));
    let compared = 0;
    for (const b of other) {
      const z = byKey.get(`${b.branch}/${b.index}`);
      if (!z) continue; // stored uncompressed in the zlib file
      const ref = await jsrootUnzip(z);
      assert.ok(ref);
      const ours = rootUnzip(b.payload, b.objlen);
      assert.ok(Buffer.from(ours.buffer, ours.byteOffset, ours.length).equals(ref), `${b.branch} basket ${b.index}`);
      compared++;
    }
    assert.ok(compared >= 40, `only ${compared} baskets compared`);
  });
}

test('LZ4: the stored checksum is xxhash64 (seed 0) of the compressed data, big-endian', async (t) => {
  const baskets = await realBaskets('uproot-HZZ-lz4.root', 'events');
  if (!baskets) return t.skip(`SKIPPED: uproot-HZZ-lz4.root not found in ${TESTDATA} (set HEPML_TESTDATA)`);
  let checked = 0;
  for (const b of baskets) {
    const clen = readBlockHeader(b.payload)!.compressedSize;
    const dv = new DataView(b.payload.buffer, b.payload.byteOffset + 9, 8);
    const hash = h64(b.payload.subarray(17, 9 + clen), 0n);
    assert.equal(dv.getBigUint64(0, false), hash, `${b.branch}[${b.index}] big-endian`);
    assert.notEqual(dv.getBigUint64(0, true), hash, `${b.branch}[${b.index}] little-endian must not match`);
    checked++;
  }
  assert.ok(checked > 0);
});

test('LZ4: a flipped byte in a real basket fails the checksum; truncation is caught', async (t) => {
  const baskets = await realBaskets('uproot-HZZ-lz4.root', 'events');
  if (!baskets) return t.skip(`SKIPPED: uproot-HZZ-lz4.root not found in ${TESTDATA} (set HEPML_TESTDATA)`);
  const b = baskets.find((x) => x.payload.length > 1000)!;
  const ctx = { file: 'uproot-HZZ-lz4.root', tree: 'events', branch: b.branch, basket: b.index };
  for (const pos of [17, b.payload.length >> 1, b.payload.length - 1]) {
    const bad = b.payload.slice();
    bad[pos] ^= 0x04;
    assertCorrupt(() => rootUnzip(bad, b.objlen, ctx), /LZ4 block 0 .*checksum mismatch/, ctx);
  }
  assertCorrupt(() => rootUnzip(b.payload.subarray(0, b.payload.length - 1), b.objlen, ctx), /LZ4 block 0 .*only \d+ remain/, ctx);
});

test('LZMA: flipped bytes in real ROOT blocks (CRC32-checked) are caught', async (t) => {
  const baskets = await realBaskets('uproot-HZZ-lzma.root', 'events');
  if (!baskets) return t.skip(`SKIPPED: uproot-HZZ-lzma.root not found in ${TESTDATA} (set HEPML_TESTDATA)`);
  const b = baskets.find((x) => x.payload.length > 2000)!;
  assert.equal(b.payload[9 + 7], 1, 'ROOT writes xz streams with a CRC32 check');
  for (const pos of [30, b.payload.length >> 1, b.payload.length - 40]) {
    const bad = b.payload.slice();
    bad[pos] ^= 0x55;
    assertCorrupt(() => rootUnzip(bad, b.objlen), /LZMA block 0/);
  }
  assertCorrupt(() => rootUnzip(b.payload.subarray(0, b.payload.length - 1), b.objlen), /LZMA block 0 .*only \d+ remain/);
});

test('ZSTD: truncated and damaged real blocks fail; zstdDecompress reads the frame size', async (t) => {
  const baskets = await realBaskets('uproot-HZZ-zstd.root', 'events');
  if (!baskets) return t.skip(`SKIPPED: uproot-HZZ-zstd.root not found in ${TESTDATA} (set HEPML_TESTDATA)`);
  const b = baskets.find((x) => x.payload.length > 1000)!;
  const h = readBlockHeader(b.payload)!;
  const frame = b.payload.subarray(9, 9 + h.compressedSize);
  assert.deepEqual(zstdDecompress(frame), rootUnzip(b.payload, b.objlen));
  assert.throws(() => zstdDecompress(frame, h.uncompressedSize + 1), /declares \d+ bytes of content/);
  // cut the frame short but keep the block header consistent: the decoder must fail, not pad
  const cut = block('ZS', 1, frame.subarray(0, frame.length - 20), h.uncompressedSize);
  assertCorrupt(() => rootUnzip(cut, b.objlen), /ZSTD block 0/);
  const garbage = block('ZS', 1, new Uint8Array(40).fill(7), 100);
  assertCorrupt(() => rootUnzip(garbage, 100), /ZSTD block 0 .*not a zstd frame/);
});

test('LZMA: pfnano ParameterSets 7.96 MB block (jsroot fails on it) equals xz -dc', async (t) => {
  const baskets = await realBaskets('pfnano.root', 'ParameterSets');
  if (!baskets) return t.skip(`SKIPPED: pfnano.root not found in ${TESTDATA} (set HEPML_TESTDATA)`);
  const big = baskets.reduce((a, b) => (b.objlen > a.objlen ? b : a));
  assert.ok(big.objlen > 7_000_000, `largest basket is ${big.objlen} bytes`);
  assert.equal(readBlockHeader(big.payload)?.uncompressedSize, big.objlen, 'one block');
  const ours = rootUnzip(big.payload, big.objlen);
  assert.equal(ours.length, big.objlen);
  const h = readBlockHeader(big.payload)!;
  const xz = spawnSync('xz', ['-dc'], { input: big.payload.subarray(9, 9 + h.compressedSize), maxBuffer: 64 << 20 });
  if (xz.error || xz.status !== 0) return t.skip(`SKIPPED comparison: the xz command is not available (${String(xz.error ?? xz.stderr)})`);
  assert.ok(Buffer.from(ours.buffer, ours.byteOffset, ours.length).equals(xz.stdout), 'differs from xz -dc');
});
