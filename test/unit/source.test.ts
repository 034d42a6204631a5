/**
 * src/root/source.ts: coalescing of byte ranges, and the local-file byte source (reads, truncation,
 * missing paths, directories, closing, file:// URLs, root:// refused).
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CorruptDataError, InputNotFoundError, IoError, UnsupportedError } from '../../src/errors.js';
import { coalesceRanges, LocalFileSource, openSource, type Coalesced } from '../../src/root/source.js';

// ---------------------------------------------------------------------------------------------------
// coalesceRanges

/**
 * Every range lies inside its group, every index appears once, groups are in file order. (Groups may
 * overlap: a range that overlaps a full group starts a new one, and the shared bytes are read twice.)
 */
function checkGroups(ranges: (readonly [number, number])[], groups: Coalesced[], gap: number, max: number): void {
  const seen = new Set<number>();
  let prevStart = -Infinity;
  for (const g of groups) {
    assert.ok(g.start >= prevStart, `groups out of order: ${JSON.stringify(groups)}`);
    prevStart = g.start;
    assert.ok(g.members.length > 0);
    let lo = Infinity;
    let hi = -Infinity;
    for (const i of g.members) {
      assert.ok(!seen.has(i), `index ${i} in two groups`);
      seen.add(i);
      const [pos, len] = ranges[i]!;
      assert.ok(pos >= g.start && pos + len <= g.end, `range ${i} (${pos}+${len}) outside its group ${g.start}..${g.end}`);
      lo = Math.min(lo, pos);
      hi = Math.max(hi, pos + len);
    }
    assert.equal(g.start, lo, 'group starts at its first member');
    assert.equal(g.end, hi, 'group ends at its last byte');
    // a group larger than max holds a single range
    if (g.end - g.start > max) assert.equal(g.members.length, 1);
    // members are in file order
    for (let k = 1; k < g.members.length; k++) assert.ok(ranges[g.members[k - 1]!]![0] <= ranges[g.members[k]!]![0]);
  }
  assert.equal(seen.size, ranges.length, 'every range is in a group');
  // neighbouring groups are split for a reason: a gap larger than `gap`, or the size limit
  for (let k = 1; k < groups.length; k++) {
    const a = groups[k - 1]!;
    const b = groups[k]!;
    assert.ok(b.start > a.end + gap || Math.max(b.end, a.end) - a.start > max, `groups ${k - 1} and ${k} should have been merged`);
  }
}

describe('source.ts: coalesceRanges', () => {
  test('no ranges, one range', () => {
    assert.deepEqual(coalesceRanges([]), []);
    assert.deepEqual(coalesceRanges([[100, 10]]), [{ start: 100, end: 110, members: [0] }]);
  });

  test('members name the original indices, in file order, for unsorted input', () => {
    const ranges = [[300, 10], [100, 10], [200, 10], [0, 10]] as const;
    assert.deepEqual(coalesceRanges(ranges, 1000, 1 << 20), [{ start: 0, end: 310, members: [3, 1, 2, 0] }]);
    // equal positions keep their input order
    assert.deepEqual(coalesceRanges([[50, 5], [50, 20], [50, 1]], 0, 100), [{ start: 50, end: 70, members: [0, 1, 2] }]);
  });

  test('gap: ranges at most `gap` bytes apart are merged, further apart are not', () => {
    const gap = 100;
    assert.deepEqual(coalesceRanges([[0, 10], [110, 5]], gap, 1e9), [{ start: 0, end: 115, members: [0, 1] }]);
    assert.deepEqual(coalesceRanges([[0, 10], [111, 5]], gap, 1e9), [
      { start: 0, end: 10, members: [0] },
      { start: 111, end: 116, members: [1] },
    ]);
    // touching ranges merge with gap 0
    assert.deepEqual(coalesceRanges([[10, 10], [0, 10]], 0, 1e9), [{ start: 0, end: 20, members: [1, 0] }]);
  });

  test('overlapping and contained ranges merge without shrinking the group', () => {
    assert.deepEqual(coalesceRanges([[0, 100], [50, 10], [90, 30]], 0, 1e9), [{ start: 0, end: 120, members: [0, 1, 2] }]);
  });

  test('max: a group never grows beyond max; a single larger range is its own group', () => {
    assert.deepEqual(coalesceRanges([[0, 60], [60, 60]], 1000, 100), [
      { start: 0, end: 60, members: [0] },
      { start: 60, end: 120, members: [1] },
    ]);
    assert.deepEqual(coalesceRanges([[0, 50], [50, 50]], 1000, 100), [{ start: 0, end: 100, members: [0, 1] }]);
    assert.deepEqual(coalesceRanges([[0, 10], [20, 500], [600, 10]], 1000, 100), [
      { start: 0, end: 10, members: [0] },
      { start: 20, end: 520, members: [1] },
      { start: 600, end: 610, members: [2] },
    ]);
  });

  test('randomised: invariants hold for many inputs', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 300; trial++) {
      const n = rnd(30);
      const ranges = Array.from({ length: n }, () => [rnd(5000), rnd(300)] as const);
      const gap = rnd(200);
      const max = 50 + rnd(1000);
      checkGroups(ranges, coalesceRanges(ranges, gap, max), gap, max);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// LocalFileSource / openSource

const dir = mkdtempSync(join(tmpdir(), 'hepml-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
const path = join(dir, 'data.bin');
writeFileSync(path, data);

describe('source.ts: LocalFileSource', () => {
  test('size, exact reads, stats', async () => {
    const s = await LocalFileSource.open(path);
    try {
      assert.equal(s.name, path);
      assert.equal(s.size, data.length);
      assert.deepEqual(await s.read(0, 16), data.subarray(0, 16));
      assert.deepEqual(await s.read(data.length - 5, 5), data.subarray(data.length - 5));
      assert.deepEqual(await s.read(data.length, 0), new Uint8Array(0));
      assert.equal(s.stats.requests, 3);
      assert.equal(s.stats.bytes, 21);
    } finally {
      await s.close();
    }
  });

  test('reading past the end, or at a negative position, is a CorruptDataError naming the file', async () => {
    const s = await LocalFileSource.open(path);
    try {
      const named = (e: unknown) => e instanceof CorruptDataError && e.exitCode === 7 && e.describe().startsWith(`${path}: `) && /truncated or corrupt/.test(e.message);
      await assert.rejects(s.read(data.length - 4, 5), named);
      await assert.rejects(s.read(data.length + 100, 1), named);
      await assert.rejects(s.read(-1, 4), named);
      await assert.rejects(s.readMany([[0, 4], [data.length - 2, 10]]), named);
    } finally {
      await s.close();
    }
  });

  test('a missing path, a path under a file, a directory: InputNotFoundError naming the path', async () => {
    const missing = join(dir, 'nope.root');
    await assert.rejects(LocalFileSource.open(missing), (e: unknown) => e instanceof InputNotFoundError && e.exitCode === 3 && e.describe() === `${missing}: no such file`);
    await assert.rejects(LocalFileSource.open(join(path, 'x.root')), (e: unknown) => e instanceof InputNotFoundError && /no such file/.test(e.message));
    const sub = join(dir, 'a-directory.root');
    mkdirSync(sub);
    await assert.rejects(LocalFileSource.open(sub), (e: unknown) => e instanceof InputNotFoundError && e.describe() === `${sub}: is a directory, not a ROOT file`);
  });

  test('an unreadable file is an IoError (permission denied)', async (t) => {
    if (process.getuid?.() === 0) return t.skip('running as root: permissions are not enforced');
    const p = join(dir, 'secret.root');
    writeFileSync(p, 'x', { mode: 0o000 });
    await assert.rejects(LocalFileSource.open(p), (e: unknown) => e instanceof IoError && /permission denied/.test(e.message) && e.describe().includes(p));
  });

  test('readMany: unsorted, overlapping, duplicate, far-apart and empty ranges all get their own bytes', async () => {
    const s = await LocalFileSource.open(path);
    try {
      const ranges: [number, number][] = [
        [250_000, 100],
        [10, 50],
        [0, 100], // overlaps the previous one
        [40, 5], // inside both
        [10, 50], // duplicate
        [299_990, 10], // the very end
        [123_456, 0], // empty
        [100, 1], // touching
        [200_000, 70_000], // overlaps nothing but is long
      ];
      const got = await s.readMany(ranges);
      assert.equal(got.length, ranges.length);
      ranges.forEach(([pos, len], i) => assert.deepEqual(got[i], data.subarray(pos, pos + len), `range ${i}: ${pos}+${len}`));
      // far-apart ranges are separate requests, neighbours are one
      assert.ok(s.stats.requests >= 2 && s.stats.requests <= 4, `requests: ${s.stats.requests}`);
    } finally {
      await s.close();
    }
  });

  test('neighbouring ranges are read in one request', async () => {
    const s = await LocalFileSource.open(path);
    try {
      const got = await s.readMany([[5000, 10], [0, 10], [2000, 10]]);
      assert.deepEqual(got[0], data.subarray(5000, 5010));
      assert.deepEqual(got[1], data.subarray(0, 10));
      assert.deepEqual(got[2], data.subarray(2000, 2010));
      assert.equal(s.stats.requests, 1);
      assert.equal(s.stats.bytes, 5010);
    } finally {
      await s.close();
    }
  });

  test('after close: reads are an IoError; close twice is fine', async () => {
    const s = await LocalFileSource.open(path);
    await s.close();
    await s.close();
    await assert.rejects(s.read(0, 1), (e: unknown) => e instanceof IoError && /already closed/.test(e.message) && e.describe().includes(path));
  });
});

describe('source.ts: openSource', () => {
  test('a plain path and a file:// URL open the same file', async () => {
    for (const loc of [path, pathToFileURL(path).href]) {
      const s = await openSource(loc);
      try {
        assert.equal(s.size, data.length);
        assert.deepEqual(await s.read(1000, 8), data.subarray(1000, 1008));
      } finally {
        await s.close();
      }
    }
  });

  test('a file:// URL with percent-escapes (spaces, #, %) opens the file it names', async () => {
    const p = join(dir, 'with space #1 100%.bin');
    writeFileSync(p, data.subarray(0, 100));
    const s = await openSource(pathToFileURL(p).href);
    try {
      assert.equal(s.size, 100);
    } finally {
      await s.close();
    }
  });

  test('root:// is refused with an UnsupportedError that points to HTTP', async () => {
    await assert.rejects(openSource('root://eospublic.cern.ch//eos/x.root'), (e: unknown) => e instanceof UnsupportedError && e.exitCode === 10 && /HTTP/.test(e.message) && e.describe().startsWith('root://'));
    await assert.rejects(openSource('ROOT://host//x.root'), UnsupportedError);
  });

  test('a missing local path is an InputNotFoundError', async () => {
    await assert.rejects(openSource(join(dir, 'missing.root')), InputNotFoundError);
  });
});
