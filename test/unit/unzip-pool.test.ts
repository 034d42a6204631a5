/**
 * The unzip pool (src/root/unzip-pool.ts): baskets decompressed on worker threads give exactly the
 * columns of the synchronous path, and a corrupt basket gives exactly its CorruptDataError (same message,
 * same file/tree/branch/basket context). The pool is forced on with configureUnzipPool: minBytes 0 (every
 * step uses it) and local false (the reading thread decompresses nothing itself, so the workers do every
 * ZLIB/XZ basket), and also tried with the reading thread taking part; the synchronous path is workers 0.
 *
 * Real ROOT files ($HEPML_TESTDATA/root); skipped, loudly, when the test data is absent.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorruptDataError, type ErrorContext } from '../../src/errors.js';
import { RootFile } from '../../src/root/file.js';
import { TreeReader } from '../../src/root/reader.js';
import { basketsFor } from '../../src/root/basket.js';
import type { ColumnBatch, ColumnData } from '../../src/root/columns.js';
import { closeUnzipPool, configureUnzipPool, unzipPoolStats, type UnzipPoolOptions } from '../../src/root/unzip-pool.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';

const TESTDATA = testdataDir();
const HAVE = hasTestdata(TESTDATA);
const skip = HAVE ? false : `HEPML_TESTDATA not found: ${TESTDATA} (set HEPML_TESTDATA to the test data directory)`;
if (!HAVE) console.warn(`\n*** ${skip}: ROOT-file tests in unzip-pool.test.ts are SKIPPED ***\n`);
const rf = (name: string) => join(TESTDATA, 'root', name);

const SYNC: UnzipPoolOptions = { workers: 0 };
const WORKERS_ONLY: UnzipPoolOptions = { workers: 1, minBytes: 0, local: false };
const SHARED: UnzipPoolOptions = { workers: 2, minBytes: 0, local: true };

after(() => closeUnzipPool());

/** Every typed array replaced by a Buffer of its bytes (plus its type), for a byte-exact deepEqual. */
function bytesOf(c: ColumnData): unknown {
  const raw = (a: ArrayBufferView) => ({ type: a.constructor.name, bytes: Buffer.from(a.buffer, a.byteOffset, a.byteLength) });
  switch (c.kind) {
    case 'primitive':
      return { kind: c.kind, dtype: c.dtype, values: raw(c.values) };
    case 'fixed':
      return { kind: c.kind, size: c.size, child: bytesOf(c.child) };
    case 'list':
      return { kind: c.kind, offsets: raw(c.offsets), child: bytesOf(c.child) };
    case 'utf8':
      return { kind: c.kind, offsets: raw(c.offsets), bytes: raw(c.bytes) };
  }
}

async function readAll(file: string, treeName: string, step: number, opts: UnzipPoolOptions): Promise<unknown[]> {
  await configureUnzipPool(opts);
  const f = await RootFile.open(rf(file));
  try {
    const tree = await f.tree(treeName);
    const r = new TreeReader(tree, tree.readable());
    const out: unknown[] = [];
    for await (const b of r.batches(0, tree.entries, step) as AsyncGenerator<ColumnBatch>) {
      out.push({ entryStart: b.entryStart, entryStop: b.entryStop, columns: b.columns.map((c) => ({ name: c.name, data: bytesOf(c.data) })) });
    }
    return out;
  } finally {
    await f.close();
  }
}

async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

describe('unzip pool: same columns as the synchronous path', { skip }, () => {
  const cases: [string, string, number][] = [
    ['nano_tt_v15.root', 'Events', 1_000_000], // ZLIB, one step, thousands of small baskets
    ['nano_tt_v15.root', 'Events', 37], // many steps: baskets kept across steps
    ['uproot-HZZ-zlib.root', 'events', 500],
    ['pfnano.root', 'Events', 1_000_000], // XZ (LZMA) baskets
  ];
  for (const [file, tree, step] of cases) {
    test(`${file}, steps of ${step} entries`, async () => {
      const expected = await readAll(file, tree, step, SYNC);
      const before = unzipPoolStats.workerBaskets;
      const viaWorkers = await readAll(file, tree, step, WORKERS_ONLY);
      assert.ok(unzipPoolStats.workerBaskets > before, 'the workers decompressed baskets');
      assert.deepStrictEqual(viaWorkers, expected);
      assert.deepStrictEqual(await readAll(file, tree, step, SHARED), expected);
    });
  }
});

describe('unzip pool: a corrupt basket gives the synchronous path\'s CorruptDataError', { skip }, () => {
  const dir = HAVE ? mkdtempSync(join(tmpdir(), 'hepml-unzip-pool-')) : '';
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  test('damaged deflate stream in basket 1 of a branch (HZZ-zlib)', async () => {
    // Pick a branch with at least two compressed baskets and damage the middle of basket 1's stream.
    const bytes = readFileSync(rf('uproot-HZZ-zlib.root'));
    let target: { branch: string; basket: number } | undefined;
    {
      const f = await RootFile.open(rf('uproot-HZZ-zlib.root'));
      try {
        const tree = await f.tree('events');
        for (const b of tree.readable()) {
          const locs = basketsFor(b, 0, tree.entries);
          const loc = locs[1];
          if (!loc || loc.embedded) continue;
          const keylen = bytes.readInt16BE(loc.seek + 14);
          const objlen = bytes.readInt32BE(loc.seek + 6);
          const p = loc.seek + keylen;
          if (objlen <= loc.bytes - keylen || bytes.toString('latin1', p, p + 2) !== 'ZL') continue;
          const clen = bytes[p + 3]! | (bytes[p + 4]! << 8) | (bytes[p + 5]! << 16);
          for (let k = 0; k < 8; k++) bytes[p + 9 + (clen >> 1) + k]! ^= 0x5a;
          target = { branch: b.name, basket: loc.index };
          break;
        }
      } finally {
        await f.close();
      }
    }
    assert.ok(target, 'found a branch with a compressed basket 1');
    const bad = join(dir, 'HZZ-corrupt-basket.root');
    writeFileSync(bad, bytes);

    const read = async (opts: UnzipPoolOptions) => {
      await configureUnzipPool(opts);
      const f = await RootFile.open(bad);
      try {
        const tree = await f.tree('events');
        await new TreeReader(tree, tree.readable()).read(0, tree.entries);
      } finally {
        await f.close();
      }
    };
    const sync = await caught(() => read(SYNC));
    assert.ok(sync instanceof CorruptDataError, `synchronous path: ${String(sync)}`);
    const ctx: ErrorContext = { file: bad, tree: 'events', branch: target.branch, basket: target.basket };
    assert.deepStrictEqual({ ...sync.context }, ctx);
    assert.match(sync.message, /^corrupt compressed data: ZLIB block 0/);

    for (const opts of [WORKERS_ONLY, SHARED]) {
      const jobs = unzipPoolStats.jobs;
      const e = await caught(() => read(opts));
      assert.ok(unzipPoolStats.jobs > jobs, 'the step went through the pool');
      assert.ok(e instanceof CorruptDataError, `pool ${JSON.stringify(opts)}: ${String(e)}`);
      assert.equal(e.message, sync.message);
      assert.deepStrictEqual({ ...e.context }, ctx);
      assert.equal(e.describe(), sync.describe());
    }
  });
});
