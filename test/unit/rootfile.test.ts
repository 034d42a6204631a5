/**
 * Real ROOT files ($HEPML_TESTDATA/root, default ../shared/testdata/root): RootFile open/close (no
 * leaked file descriptors), jsroot integration (console capture, native key decompression), tree
 * lookup by name and cycle, branch selection (src/ingest selectBranches), "did you mean", and the
 * TreeReader's basket cache (bounded memory when reading in steps, out-of-order reads).
 *
 * The pure helpers (editDistance, closest, quietly) are tested without data; the rest is skipped,
 * loudly, when the test data is absent.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorruptDataError, NotRootFileError, SelectionError, UnsupportedError } from '../../src/errors.js';
import { closest, editDistance, isTreeClass, RootFile } from '../../src/root/file.js';
import { isTFilePatched, jsrootMessages, quietly } from '../../src/root/jsroot.js';
import { TreeReader } from '../../src/root/reader.js';
import { basketsFor, basketTable, type RawBasket } from '../../src/root/basket.js';
import { columnRows, concatColumns, sliceRows, type ColumnData } from '../../src/root/columns.js';
import type { BranchInfo, Tree } from '../../src/root/tree.js';
import { selectBranches } from '../../src/ingest/index.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';

// Recorded before anything in this process opens a ROOT file.
const patchedAtLoad = isTFilePatched();

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TESTDATA = testdataDir();
const HAVE = hasTestdata(TESTDATA);
const ROOT_DIR = join(TESTDATA, 'root');
const skip = HAVE ? false : `HEPML_TESTDATA not found: ${TESTDATA} (set HEPML_TESTDATA to the test data directory)`;
if (!HAVE) console.warn(`\n*** ${skip}: ROOT-file tests in rootfile.test.ts are SKIPPED ***\n`);
const rf = (name: string) => join(ROOT_DIR, name);

async function withFile<T>(name: string, fn: (f: RootFile) => Promise<T>): Promise<T> {
  const f = await RootFile.open(rf(name));
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}

const fdCount = () => readdirSync('/proc/self/fd').length;
const HAVE_PROC = existsSync('/proc/self/fd');

// ---------------------------------------------------------------------------------------------------
// pure helpers

describe('file.ts: editDistance / closest', () => {
  test('Levenshtein distance', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('abc', ''), 3);
    assert.equal(editDistance('', ''), 0);
    assert.equal(editDistance('Muon_pt', 'Muon_pt'), 0);
    assert.equal(editDistance('Muon_pt', 'Muon_eta'), 2);
    assert.equal(editDistance('Muon_pt', 'Muon_phi'), 2);
    assert.equal(editDistance('flaw', 'lawn'), 2);
    for (const [a, b] of [['Jet_pt', 'jet_PT'], ['Delphes', 'Delphs'], ['abc', 'cba']]) assert.equal(editDistance(a!, b!), editDistance(b!, a!));
    // case-sensitive by itself (closest() lowers the case)
    assert.equal(editDistance('A', 'a'), 1);
  });

  test('closest: case-insensitive, substrings preferred, at most n, closest first', () => {
    const names = ['Muon_pt', 'Muon_eta', 'Muon_phi', 'nMuon', 'Jet_pt', 'Electron_pt'];
    assert.deepEqual(closest('muon_pt', names, 1), ['Muon_pt']);
    assert.deepEqual(closest('Muon_ptt', names, 1), ['Muon_pt']);
    assert.equal(closest('x', names, 3).length, 3);
    assert.deepEqual(closest('x', [], 3), []);
    assert.deepEqual(closest('x', ['a', 'b'], 5).sort(), ['a', 'b']);
    // containing the name counts as 2 edits less: 'Jet_pt' (4 - 2), 'Muon_pt' (5 - 2) before 'nMuon' (5)
    assert.deepEqual(closest('pt', names, 2), ['Jet_pt', 'Muon_pt']);
    assert.deepEqual(closest('DELPHS', ['Delphes', 'Events'], 1), ['Delphes']);
    // the input list is not reordered
    const copy = [...names];
    closest('eta', names, 2);
    assert.deepEqual(names, copy);
  });

  test('isTreeClass', () => {
    for (const c of ['TTree', 'TNtuple', 'TNtupleD']) assert.ok(isTreeClass(c), c);
    for (const c of ['TH1F', 'TDirectoryFile', 'TList', 'RNTuple', 'TBranch']) assert.ok(!isTreeClass(c), c);
  });
});

describe('jsroot.ts: quietly', () => {
  const METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;

  /** Runs fn with process.stdout/stderr.write spied; returns what carried `marker`. */
  async function spyWrites(marker: string, fn: () => Promise<void>): Promise<{ stdout: string[]; stderr: string[] }> {
    const seen = { stdout: [] as string[], stderr: [] as string[] };
    const real = { stdout: process.stdout.write, stderr: process.stderr.write };
    for (const s of ['stdout', 'stderr'] as const) {
      const orig = real[s];
      process[s].write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString();
        if (text.includes(marker)) {
          seen[s].push(text);
          return true;
        }
        return (orig as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof process.stdout.write;
    }
    try {
      await fn();
    } finally {
      process.stdout.write = real.stdout;
      process.stderr.write = real.stderr;
    }
    return seen;
  }

  test('console.* inside quietly reaches neither stdout nor stderr; messages are kept; console is restored', async () => {
    const before = Object.fromEntries(METHODS.map((m) => [m, console[m]]));
    const n0 = jsrootMessages.length;
    const saved = process.env.HEPML_DEBUG;
    delete process.env.HEPML_DEBUG;
    try {
      const seen = await spyWrites('QMARK-1', async () => {
        const r = await quietly(async () => {
          for (const m of METHODS) console[m](`QMARK-1 ${m}`, 42, { a: 1 });
          return 'value';
        });
        assert.equal(r, 'value');
      });
      assert.deepEqual(seen, { stdout: [], stderr: [] });
    } finally {
      if (saved !== undefined) process.env.HEPML_DEBUG = saved;
    }
    const got = jsrootMessages.slice(n0);
    assert.deepEqual(got, METHODS.map((m) => `QMARK-1 ${m} 42 [object Object]`));
    for (const m of METHODS) assert.equal(console[m], before[m], `console.${m} restored`);
  });

  test('nested calls stay quiet until the outermost ends; a throw restores the console', async () => {
    const log = console.log;
    const seen = await spyWrites('QMARK-2', async () => {
      await quietly(async () => {
        await quietly(async () => console.log('QMARK-2 inner'));
        console.log('QMARK-2 after inner');
        await new Promise((r) => setTimeout(r, 5));
        console.error('QMARK-2 after a timer');
      });
      await assert.rejects(
        quietly(async () => {
          console.warn('QMARK-2 before throw');
          throw new Error('boom');
        }),
        /boom/,
      );
    });
    assert.deepEqual(seen.stdout, []);
    assert.deepEqual(seen.stderr, []);
    assert.equal(console.log, log);
  });

  test('HEPML_DEBUG=1 shows the messages on stderr (never stdout), prefixed [jsroot]', async () => {
    const saved = process.env.HEPML_DEBUG;
    process.env.HEPML_DEBUG = '1';
    try {
      const seen = await spyWrites('QMARK-3', async () => {
        await quietly(async () => console.log('QMARK-3 shown'));
      });
      assert.deepEqual(seen.stdout, []);
      assert.deepEqual(seen.stderr, ['[jsroot] QMARK-3 shown\n']);
    } finally {
      if (saved === undefined) delete process.env.HEPML_DEBUG;
      else process.env.HEPML_DEBUG = saved;
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// RootFile

describe('file.ts / jsroot.ts with real files', { skip }, () => {
  test('the first RootFile.open patches jsroot to decompress keys natively', async () => {
    assert.equal(patchedAtLoad, false, 'nothing patched before the first open');
    await withFile('uproot-HZZ-lzma.root', async (f) => {
      assert.equal(isTFilePatched(), true);
      const proto = Object.getPrototypeOf(Object.getPrototypeOf(f.js)) as { readObjBuffer: () => unknown };
      assert.match(String(proto.readObjBuffer), /rootUnzip/, "jsroot's TFile.readObjBuffer is hep-ml's");
      // and the patch does not leave a 'proxy' property on Object.prototype
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'proxy'), false);
      const t = await f.tree();
      assert.equal(t.entries, 2421);
    });
  });

  test('open + close 300 times leaks no file descriptors (also failed opens)', { skip: HAVE_PROC ? false : 'no /proc/self/fd' }, async () => {
    // warm up (lazy module loads, codec initialisation)
    await withFile('uproot-HZZ.root', async (f) => void (await f.tree()));
    const dir = mkdtempSync(join(tmpdir(), 'hepml-fd-'));
    try {
      const notRoot = join(dir, 'text.root');
      writeFileSync(notRoot, 'this is not a ROOT file, only some text that is long enough to pass the size check\n'.repeat(3));
      const truncated = join(dir, 'truncated.root');
      writeFileSync(truncated, readFileSync(rf('uproot-HZZ.root')).subarray(0, 400));
      const before = fdCount();
      for (let i = 0; i < 300; i++) {
        const f = await RootFile.open(rf(i % 2 ? 'uproot-HZZ.root' : 'uproot-HZZ-zstd.root'));
        if (i % 25 === 0) await f.tree('events');
        await f.close();
      }
      for (let i = 0; i < 50; i++) {
        await assert.rejects(RootFile.open(notRoot), NotRootFileError);
        await assert.rejects(RootFile.open(truncated), (e: unknown) => e instanceof NotRootFileError || e instanceof CorruptDataError);
      }
      assert.equal(fdCount(), before, 'open file descriptors before and after');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('jsroot output never reaches stdout while reading uproot-HZZ-objects.root (child process, stdout spied)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'fixtures', 'quiet-read.ts'), ROOT_DIR], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, HEPML_DEBUG: '' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '', 'nothing on the real stdout');
    const summary = JSON.parse(r.stderr.trim().split('\n').pop()!) as { writes: string[]; rows: number; objectBranches: number; messages: number; sample: string[] };
    assert.deepEqual(summary.writes, [], 'no process.stdout.write calls');
    assert.equal(summary.rows, 2421 + 5, 'HZZ-objects and stl_containers read in full');
    assert.ok(summary.objectBranches > 0);
    // jsroot did print (its TObject byte-count warnings, and the 5 test messages): all captured
    assert.ok(summary.messages > 5, `jsroot messages captured: ${summary.messages} (${summary.sample.join(' | ')})`);
    assert.ok(!r.stderr.includes('QUIET-MARKER'), 'not on stderr either without HEPML_DEBUG');
  });

  test("tree(): 'Delphes;1' is cycle 1; 'Delphes' is the highest cycle; '/Delphes' and 'Delphes;2' too", async () => {
    await withFile('delphes-cms-10ev.root', async (f) => {
      const keys = await f.treeKeys();
      assert.deepEqual(keys.map((k) => `${k.path};${k.cycle}`).sort(), ['Delphes;1', 'Delphes;2']);
      const t1 = await f.tree('Delphes;1');
      assert.equal(t1.cycle, 1);
      assert.equal(t1.name, 'Delphes');
      for (const name of ['Delphes', '/Delphes', 'Delphes;2', undefined, '']) {
        const t = await f.tree(name);
        assert.equal(t.cycle, 2, String(name));
        assert.equal(t.entries, 10);
      }
      await assert.rejects(f.tree('Delphes;3'), (e: unknown) => e instanceof SelectionError && e.exitCode === 5 && /no tree 'Delphes;3'.*Delphes/.test(e.message));
    });
  });

  test('tree(): a typo suggests the right tree; a key of another class says what it is', async () => {
    await withFile('delphes-cms-10ev.root', async (f) => {
      await assert.rejects(f.tree('Delphs'), (e: unknown) => e instanceof SelectionError && /no tree 'Delphs'; trees in this file: Delphes/.test(e.message) && e.describe().includes('delphes-cms-10ev.root'));
      await assert.rejects(f.tree('ProcessID0'), (e: unknown) => e instanceof SelectionError && /'ProcessID0' is a TProcessID, not a TTree/.test(e.message));
      await assert.rejects(f.tree('StreamerInfo'), (e: unknown) => e instanceof SelectionError && /is a TList/.test(e.message));
    });
  });

  test('tree() without a name: the only tree, or a SelectionError listing all trees', async () => {
    await withFile('uproot-HZZ.root', async (f) => assert.equal((await f.tree()).name, 'events'));
    await withFile('pfnano.root', async (f) => {
      await assert.rejects(f.tree(), (e: unknown) => {
        assert.ok(e instanceof SelectionError, String(e));
        assert.match(e.message, /several trees/);
        for (const n of ['Events', 'LuminosityBlocks', 'Runs', 'MetaData', 'ParameterSets']) assert.ok(e.message.includes(n), `${n} listed`);
        assert.ok(e.describe().startsWith(rf('pfnano.root')));
        return true;
      });
      assert.equal((await f.tree('Runs')).entries, 1);
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// selectBranches (src/ingest)

describe('ingest selectBranches on real trees', { skip }, () => {
  test('globs pick branches in tree order; a glob that matches nothing is a SelectionError', async () => {
    await withFile('uproot-HZZ.root', async (f) => {
      const t = await f.tree();
      const pick = selectBranches(t, ['Muon_P?', 'Jet_E', 'Muon_[!P]*']).map((b) => b.name);
      assert.deepEqual(pick, ['Jet_E', 'Muon_Px', 'Muon_Py', 'Muon_Pz', 'Muon_E', 'Muon_Charge', 'Muon_Iso']);
      assert.throws(() => selectBranches(t, ['Tau_*']), (e: unknown) => e instanceof SelectionError && /no branch matches 'Tau_\*'/.test(e.message));
      assert.throws(() => selectBranches(t, ['Muon_pt']), (e: unknown) => e instanceof SelectionError && /did you mean: .*Muon_P/.test(e.message));
      // duplicates are picked once
      assert.deepEqual(selectBranches(t, ['Jet_E', 'Jet_E', 'Jet_?']).map((b) => b.name), ['Jet_E']);
    });
  });

  test("exact names containing '[' are found by tree.branch(), and globs can reach them with [[]", async () => {
    await withFile('uproot-small-evnt-tree-fullsplit.root', async (f) => {
      const t = await f.tree();
      const b = t.branch('ArrayI16[10]');
      assert.ok(b && b.type, 'ArrayI16[10] exists and is readable');
      assert.deepEqual(selectBranches(t, ['ArrayI16[[]10]']).map((x) => x.name), ['ArrayI16[10]']);
      assert.deepEqual(selectBranches(t, ['ArrayI*']).map((x) => x.name).slice(0, 1), ['ArrayI16[10]']);
    });
  });

  test("an exact branch name containing '[' selects that branch (ArrayI16[10], GenJet.FracPt[5])", async () => {
    await withFile('uproot-small-evnt-tree-fullsplit.root', async (f) => {
      const t = await f.tree();
      assert.deepEqual(selectBranches(t, ['ArrayI16[10]']).map((x) => x.name), ['ArrayI16[10]']);
    });
    await withFile('delphes-cms-10ev.root', async (f) => {
      const t = await f.tree();
      assert.deepEqual(selectBranches(t, ['GenJet.FracPt[5]']).map((x) => x.name), ['GenJet.FracPt[5]']);
      // an unreadable one is an UnsupportedError naming it, not "no branch matches"
      assert.throws(() => selectBranches(t, ['GenJet.TrimmedP4[5]']), UnsupportedError);
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// TreeReader: basket cache

type Cache = Map<BranchInfo, Map<number, RawBasket>>;
const cacheOf = (r: TreeReader) => (r as unknown as { cache: Cache }).cache;

/** Byte-exact equality of two columns (NaN payloads included). */
function sameColumn(a: ColumnData, b: ColumnData, path: string): void {
  assert.equal(a.kind, b.kind, path);
  switch (b.kind) {
    case 'primitive': {
      const av = (a as typeof b).values;
      assert.equal(av.constructor, b.values.constructor, `${path}: dtype`);
      assert.ok(Buffer.from(av.buffer, av.byteOffset, av.byteLength).equals(Buffer.from(b.values.buffer, b.values.byteOffset, b.values.byteLength)), `${path}: values differ`);
      return;
    }
    case 'fixed':
      assert.equal((a as typeof b).size, b.size);
      return sameColumn((a as typeof b).child, b.child, `${path}.item`);
    case 'list':
      assert.deepEqual(Array.from((a as typeof b).offsets), Array.from(b.offsets), `${path}: offsets`);
      return sameColumn((a as typeof b).child, b.child, `${path}[]`);
    case 'utf8':
      assert.deepEqual(Array.from((a as typeof b).offsets), Array.from(b.offsets), `${path}: offsets`);
      assert.ok(Buffer.from((a as typeof b).bytes).equals(Buffer.from(b.bytes)), `${path}: bytes`);
      return;
  }
}

/**
 * Reads [0, n) in steps with the cache checked around every fetch: after fetching [start, stop) a branch
 * holds exactly the baskets that overlap [start, stop); after the read at most one, the one reaching past
 * `stop`. Returns the concatenated columns.
 */
async function readStepped(tree: Tree, branches: BranchInfo[], step: number): Promise<{ cols: Map<string, ColumnData>; reader: TreeReader; maxHeld: number }> {
  const reader = new TreeReader(tree, branches);
  const cache = cacheOf(reader);
  const r = reader as unknown as { fetch(start: number, stop: number): Promise<void> };
  const fetch = r.fetch.bind(reader);
  let maxHeld = 0;
  r.fetch = async (start: number, stop: number) => {
    await fetch(start, stop);
    for (const [b, m] of cache) {
      const want = basketsFor(b, start, stop).map((l) => l.index);
      assert.deepEqual([...m.keys()].sort((x, y) => x - y), want, `${b.name}: baskets held while reading ${start}..${stop}`);
      maxHeld = Math.max(maxHeld, m.size);
    }
  };
  const parts = new Map<string, ColumnData[]>();
  for (let a = 0; a < tree.entries; a += step) {
    const stop = Math.min(tree.entries, a + step);
    const batch = await reader.read(a, stop);
    assert.equal(batch.entryStart, a);
    assert.equal(batch.entryStop, stop);
    for (const c of batch.columns) {
      assert.equal(columnRows(c.data), stop - a, `${c.name}: rows of ${a}..${stop}`);
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
    for (const [b, m] of cache) {
      assert.ok(m.size <= 1, `${b.name}: ${m.size} baskets kept after reading ${a}..${stop}`);
      for (const rb of m.values()) assert.ok(rb.entryStart < stop && rb.entryStop > stop, `${b.name}: kept basket ${rb.entryStart}..${rb.entryStop} after ${a}..${stop}`);
    }
  }
  return { cols: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])), reader, maxHeld };
}

async function readWhole(tree: Tree, branches: BranchInfo[]): Promise<Map<string, ColumnData>> {
  const reader = new TreeReader(tree, branches);
  const batch = await reader.read(0, tree.entries);
  for (const m of cacheOf(reader).values()) assert.equal(m.size, 0, 'nothing kept after reading the whole tree');
  return new Map(batch.columns.map((c) => [c.name, c.data]));
}

describe('reader.ts: TreeReader basket cache', { skip }, () => {
  test('uproot-demo-double32.root in steps of 777: bounded cache, each basket fetched once, same data as one read', async () => {
    await withFile('uproot-demo-double32.root', async (f) => {
      const t = await f.tree();
      assert.equal(t.entries, 40000);
      const branches = t.readable();
      const whole = await readWhole(t, branches);
      const { cols, reader, maxHeld } = await readStepped(t, branches, 777);
      // (exactly the overlapping baskets are held, checked in readStepped); fD64 has ~488-entry baskets,
      // so a 777-entry step touches at most 3 of them
      assert.ok(maxHeld >= 2 && maxHeld <= 3, `max baskets held per branch: ${maxHeld}`);
      const total = branches.reduce((s, b) => s + basketTable(b).length, 0);
      assert.equal(reader.stats.baskets, total, 'every basket fetched exactly once');
      for (const b of branches) sameColumn(cols.get(b.name)!, whole.get(b.name)!, b.name);
    });
  });

  test('jagged, string and fixed-array branches in steps of 1, 4 and 7 (uproot-sample, HZZ): bounded, same data', async () => {
    for (const [file, steps] of [
      ['uproot-sample-6.20.04-uncompressed.root', [1, 4, 7]],
      ['uproot-HZZ-zstd.root', [333]],
      ['uproot-small-evnt-tree-fullsplit.root', [9]],
    ] as const) {
      await withFile(file, async (f) => {
        const t = await f.tree();
        const branches = t.readable();
        const whole = await readWhole(t, branches);
        for (const step of steps) {
          const { cols, reader } = await readStepped(t, branches, step);
          const bulk = branches.filter((b) => b.plan!.kind !== 'jsroot');
          assert.equal(reader.stats.baskets, bulk.reduce((s, b) => s + basketTable(b).filter((l) => !l.embedded).length, 0), `${file} step ${step}: baskets fetched once`);
          for (const b of branches) sameColumn(cols.get(b.name)!, whole.get(b.name)!, `${file} step ${step}: ${b.name}`);
        }
      });
    }
  });

  test('reads out of entry order give the right data (baskets dropped earlier are fetched again)', async () => {
    await withFile('uproot-demo-double32.root', async (f) => {
      const t = await f.tree();
      const branches = t.readable();
      const whole = await readWhole(t, branches);
      const reader = new TreeReader(t, branches);
      const ranges: [number, number][] = [[20000, 20777], [0, 777], [39000, 40000], [10000, 10001], [500, 1500], [0, 40000], [777, 1554]];
      for (const [a, z] of ranges) {
        const batch = await reader.read(a, z);
        for (const c of batch.columns) sameColumn(c.data, sliceRows(whole.get(c.name)!, a, z), `${c.name} ${a}..${z}`);
      }
      // going back costs fetching again: more baskets than one pass over the tree
      const total = branches.reduce((s, b) => s + basketTable(b).length, 0);
      assert.ok(reader.stats.baskets > total, `${reader.stats.baskets} baskets fetched, ${total} in the tree`);
    });
  });

  test('reading backwards in steps keeps the cache bounded', async () => {
    await withFile('uproot-demo-double32.root', async (f) => {
      const t = await f.tree();
      const reader = new TreeReader(t, t.readable());
      let worst = 0;
      for (let z = t.entries; z > 0; z -= 777) {
        await reader.read(Math.max(0, z - 777), z);
        for (const m of cacheOf(reader).values()) worst = Math.max(worst, m.size);
      }
      assert.ok(worst <= 3, `up to ${worst} baskets of one branch held at once (a step touches at most 3)`);
    });
  });

  test('a branch hep-ml cannot read is refused by the TreeReader constructor', async () => {
    await withFile('uproot-HZZ-objects.root', async (f) => {
      const t = await f.tree();
      const met = t.branch('MET')!;
      assert.equal(met.type, undefined);
      assert.throws(() => new TreeReader(t, [met]), (e: unknown) => e instanceof UnsupportedError && e.describe().includes("branch 'MET'"));
    });
  });
});
