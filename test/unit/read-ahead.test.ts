/**
 * TreeReader.batches() read-ahead: the basket bytes of step k+1 are fetched while step k is unpacked,
 * assembled and consumed, one step ahead at most, with the same results and the same errors as reading
 * without read-ahead. A ByteSource wrapper around a real file delays readMany, logs when each call starts
 * and ends, and fails chosen calls.
 *
 * Needs $HEPML_TESTDATA/root (skipped, loudly, without it).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IoError } from '../../src/errors.js';
import { RootFile } from '../../src/root/file.js';
import { TreeReader } from '../../src/root/reader.js';
import type { ByteSource } from '../../src/root/source.js';
import type { ColumnBatch } from '../../src/root/columns.js';
import type { Tree } from '../../src/root/tree.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';
import { columnHash } from '../helpers/column-hash.js';

const TESTDATA = testdataDir();
const HAVE = hasTestdata(TESTDATA);
const skip = HAVE ? false : `HEPML_TESTDATA not found: ${TESTDATA} (set HEPML_TESTDATA to the test data directory)`;
if (!HAVE) console.warn(`\n*** ${skip}: read-ahead tests in read-ahead.test.ts are SKIPPED ***\n`);

// Unhandled rejections anywhere in this file fail the last test (a dropped read-ahead must never cause one).
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
after(() => process.off('unhandledRejection', onUnhandled));

type Event = { at: number; what: string; call?: number };

/** Delays every readMany by `delayMs`, logs its start and end, and fails the calls `fail` names. */
class SlowSource implements ByteSource {
  readonly log: Event[] = [];
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  requestedBytes = 0;
  private readonly t0 = performance.now();
  constructor(
    private readonly inner: ByteSource,
    public delayMs: number,
    /** 0-based readMany call → the error it rejects with (after the delay) */
    public fail: (call: number) => Error | undefined = () => undefined,
  ) {}
  get name() {
    return this.inner.name;
  }
  get size() {
    return this.inner.size;
  }
  get stats() {
    return this.inner.stats;
  }
  mark(what: string, call?: number): void {
    this.log.push({ at: performance.now() - this.t0, what, call });
  }
  read(pos: number, len: number): Promise<Uint8Array> {
    return this.inner.read(pos, len);
  }
  async readMany(ranges: readonly (readonly [number, number])[]): Promise<Uint8Array[]> {
    const call = this.calls++;
    for (const [, len] of ranges) this.requestedBytes += len;
    this.mark('fetch-start', call);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await sleep(this.delayMs);
      const err = this.fail(call);
      if (err) throw err;
      return await this.inner.readMany(ranges);
    } finally {
      this.inFlight--;
      this.mark('fetch-end', call);
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function openSlow(name: string, tree: string, delayMs: number, fail?: (call: number) => Error | undefined) {
  const f = await RootFile.open(join(TESTDATA, 'root', name));
  const t = await f.tree(tree);
  const slow = new SlowSource(f.source, delayMs, fail);
  Object.assign(f, { source: slow }); // the reader fetches baskets through tree.file.source
  return { f, t, slow };
}

const batchHash = (b: ColumnBatch) => `${b.entryStart}-${b.entryStop}|${b.columns.map((c) => `${c.name}=${columnHash(c.data)}`).join('|')}`;

async function readAll(t: Tree, readAhead: boolean, step: number, start = 0, stop = t.entries) {
  const r = new TreeReader(t, t.readable(), { readAhead });
  const hashes: string[] = [];
  for await (const b of r.batches(start, stop, step)) hashes.push(batchHash(b));
  return { hashes, stats: { ...r.stats } };
}

describe('TreeReader read-ahead', { skip }, () => {
  test('default: on for a source that is not a local file, off for a local file', async () => {
    const { f, t } = await openSlow('uproot-sample-6.20.04-uncompressed.root', 'sample', 0);
    try {
      assert.equal(new TreeReader(t, t.readable()).readAhead, true);
      assert.equal(new TreeReader(t, t.readable(), { readAhead: false }).readAhead, false);
    } finally {
      await f.close();
    }
    const local = await RootFile.open(join(TESTDATA, 'root', 'uproot-sample-6.20.04-uncompressed.root'));
    try {
      const lt = await local.tree('sample');
      assert.equal(new TreeReader(lt, lt.readable()).readAhead, false);
      assert.equal(new TreeReader(lt, lt.readable(), { readAhead: true }).readAhead, true);
    } finally {
      await local.close();
    }
  });

  test('identical batches, statistics and requests with and without read-ahead (baskets straddling steps)', async () => {
    const cases: [string, string, number[]][] = [
      ['uproot-sample-6.20.04-uncompressed.root', 'sample', [1, 3, 7, 30]],
      ['uproot-sample-5.23.02-zlib.root', 'sample', [2, 11]],
      ['uproot-demo-double32.root', 'T', [3333, 40000]],
    ];
    for (const [name, tree, steps] of cases) {
      const { f, t, slow } = await openSlow(name, tree, 0);
      try {
        for (const step of steps) {
          slow.calls = 0;
          slow.requestedBytes = 0;
          const off = await readAll(t, false, step);
          const offCalls = slow.calls;
          const offBytes = slow.requestedBytes;
          slow.calls = 0;
          slow.requestedBytes = 0;
          const on = await readAll(t, true, step);
          assert.deepEqual(on.hashes, off.hashes, `${name}, step ${step}`);
          assert.deepEqual(on.stats, off.stats, `${name}, step ${step}: stats`);
          assert.equal(slow.calls, offCalls, `${name}, step ${step}: one readMany per step, as without read-ahead`);
          assert.equal(slow.requestedBytes, offBytes, `${name}, step ${step}: every basket requested once`);
          // a range that does not start at 0 (the first step reads baskets straddling its start)
          const mid = Math.floor(t.entries / 3);
          const a = await readAll(t, false, step, mid, t.entries - 1);
          const b = await readAll(t, true, step, mid, t.entries - 1);
          assert.deepEqual(b.hashes, a.hashes, `${name}, step ${step}, entries ${mid}..`);
        }
        // and the same as one read of everything
        const whole = await new TreeReader(t, t.readable()).read(0, t.entries);
        const on = new TreeReader(t, t.readable(), { readAhead: true });
        const parts: ColumnBatch[] = [];
        for await (const b of on.batches(0, t.entries, Math.ceil(t.entries / 5))) parts.push(b);
        assert.equal(parts.length, t.entries < 5 ? t.entries : 5);
        assert.equal(parts.at(-1)!.entryStop, whole.entryStop);
      } finally {
        await f.close();
      }
    }
  });

  test('the next step is fetched while the current one is consumed: overlapped, one step ahead at most', async (t) => {
    const D = 60; // ms per readMany
    const C = 60; // ms the consumer spends on each batch
    const STEP = 5;
    const run = async (readAhead: boolean) => {
      const { f, t, slow } = await openSlow('uproot-sample-6.20.04-uncompressed.root', 'sample', D);
      try {
        const r = new TreeReader(t, t.readable(), { readAhead });
        const t0 = performance.now();
        let k = 0;
        for await (const b of r.batches(0, t.entries, STEP)) {
          assert.equal(b.entryStart, k * STEP);
          slow.mark('consume-start', k);
          await sleep(C);
          slow.mark('consume-end', k);
          k++;
        }
        return { seconds: (performance.now() - t0) / 1000, steps: k, slow };
      } finally {
        await f.close();
      }
    };
    const off = await run(false);
    const on = await run(true);
    const steps = on.steps;
    assert.equal(steps, 6);
    const at = (s: SlowSource, what: string, n: number) => s.log.find((e) => e.what === what && e.call === n)!.at;

    // without read-ahead: the fetch of step k+1 starts only after batch k is consumed
    for (let k = 0; k + 1 < steps; k++) assert.ok(at(off.slow, 'fetch-start', k + 1) >= at(off.slow, 'consume-end', k), `off: step ${k + 1}`);
    // with it: the fetch of step k+1 starts before batch k is handed out, and ends while it is consumed ...
    for (let k = 0; k + 1 < steps; k++) {
      assert.ok(at(on.slow, 'fetch-start', k + 1) < at(on.slow, 'consume-start', k), `on: step ${k + 1} starts early`);
    }
    // ... but never two steps ahead: step k+2 is requested only after the consumer asked for batch k+1
    for (let k = 0; k + 2 < steps; k++) assert.ok(at(on.slow, 'fetch-start', k + 2) >= at(on.slow, 'consume-end', k), `on: bound at ${k}`);
    assert.equal(on.slow.maxInFlight, 1, 'one step of bytes in flight at a time');
    assert.equal(on.slow.calls, off.slow.calls);

    // time: without read-ahead ≈ steps × (D + C); with it ≈ D + steps × max(D, C)
    // no timing assertions (they flake on a loaded machine): the order of events above is the proof of overlap
    t.diagnostic(`read-ahead ${on.seconds.toFixed(3)} s, without ${off.seconds.toFixed(3)} s`);
  });

  test("an I/O error of step k+1's early fetch is thrown at step k+1, the same error as without read-ahead", async () => {
    const STEP = 4;
    const FAIL = 3; // readMany call 3 = step 3's baskets
    const boom = () => new IoError('request failed: connection reset (injected)', { file: 'slow://test' });
    const run = async (readAhead: boolean) => {
      const { f, t, slow } = await openSlow('uproot-sample-6.20.04-uncompressed.root', 'sample', 5, (c) => (c === FAIL ? boom() : undefined));
      try {
        const r = new TreeReader(t, t.readable(), { readAhead });
        const got: number[] = [];
        let error: unknown;
        let failedBeforeAsked = false;
        try {
          for await (const b of r.batches(0, t.entries, STEP)) {
            got.push(b.entryStart);
            await sleep(30); // the early fetch of the next step fails during this
            failedBeforeAsked ||= slow.log.some((e) => e.what === 'fetch-end' && e.call === FAIL);
          }
        } catch (e) {
          error = e;
        }
        return { got, error, failedBeforeAsked };
      } finally {
        await f.close();
      }
    };
    const off = await run(false);
    const on = await run(true);
    assert.deepEqual(off.got, [0, 4, 8]);
    assert.deepEqual(on.got, off.got, 'the batches before the failing step are delivered');
    assert.ok(on.error instanceof IoError, `on: ${String(on.error)}`);
    assert.ok(off.error instanceof IoError);
    assert.equal((on.error as IoError).message, (off.error as IoError).message);
    assert.equal((on.error as IoError).exitCode, (off.error as IoError).exitCode);
    assert.ok(on.failedBeforeAsked, 'with read-ahead the failing request had already failed while batch 2 was consumed');
    assert.ok(!off.failedBeforeAsked);
  });

  test('a consumer that stops early: the fetch ahead is dropped, its failure is never unhandled', async () => {
    for (const failIt of [false, true]) {
      const { f, t, slow } = await openSlow('uproot-sample-6.20.04-uncompressed.root', 'sample', 40, (c) =>
        failIt && c === 1 ? new IoError('injected', { file: 'slow://test' }) : undefined,
      );
      try {
        const r = new TreeReader(t, t.readable(), { readAhead: true });
        for await (const b of r.batches(0, t.entries, 5)) {
          assert.equal(b.entryStart, 0);
          assert.equal(slow.inFlight, 1, 'step 1 is being fetched');
          break;
        }
        await sleep(80); // let the dropped fetch settle
        assert.equal(slow.inFlight, 0);
        assert.equal(slow.calls, 2, 'nothing requested after the consumer stopped');
      } finally {
        await f.close();
      }
    }
    // the same reader object still reads (out of the generator) normally
    const { f, t } = await openSlow('uproot-sample-6.20.04-uncompressed.root', 'sample', 1);
    try {
      const r = new TreeReader(t, t.readable(), { readAhead: true });
      const it = r.batches(0, t.entries, 10);
      await it.next();
      await it.return(undefined);
      assert.equal((await r.read(10, 20)).entryStop, 20);
    } finally {
      await f.close();
    }
    await sleep(20);
    assert.deepEqual(unhandled, [], 'no unhandled rejection in this file');
  });
});
