import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ColumnData, DType, NumericArray } from '../../src/root/columns.js';
import {
  compareColumn,
  compareStrings,
  countsSha256,
  findTree,
  fsum,
  hasTestdata,
  isNumericBranch,
  loadTruth,
  objectField,
  rootFilesWithoutTruth,
  testdataDir,
  truthFiles,
  type CompareResult,
  type TruthBranch,
  type TruthFile,
  type TruthNumericBranch,
  type TruthObjectBranch,
  type TruthStringBranch,
  type TruthGenericBranch,
} from '../helpers/truth.js';

const DIR = testdataDir();
const HAVE = hasTestdata(DIR);
const SKIP = `HEPML_TESTDATA not found: ${DIR} (set HEPML_TESTDATA to the testdata directory)`;
if (!HAVE) console.warn(`truth-helpers: ${SKIP}`);

const cache = new Map<string, TruthFile>();
function truth(file: string): TruthFile {
  let t = cache.get(file);
  if (!t) {
    t = loadTruth(join(DIR, 'truth', `${file}.truth.json`));
    cache.set(file, t);
  }
  return t;
}
function branch(file: string, tree: string, name: string): TruthBranch {
  const t = findTree(truth(file), tree);
  assert.ok(t, `${file}: no tree ${tree}`);
  const b = t.branches[name];
  assert.ok(b, `${file}:${tree}: no branch ${name}`);
  return b;
}
function numeric(file: string, tree: string, name: string): TruthNumericBranch {
  const b = branch(file, tree, name);
  assert.ok(isNumericBranch(b), `${name} is not numeric`);
  return b;
}

const SAMPLE = 'uproot-sample-6.20.04-lz4.root';
const N = 30;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const prim = (dtype: DType, values: NumericArray): ColumnData => ({ kind: 'primitive', dtype, values });
const list = (counts: number[], child: ColumnData): ColumnData => {
  const offsets = new Int32Array(counts.length + 1);
  counts.forEach((c, i) => (offsets[i + 1] = offsets[i]! + c));
  return { kind: 'list', offsets, child };
};
const utf8 = (strings: string[]): ColumnData => {
  const enc = new TextEncoder();
  const parts = strings.map((s) => enc.encode(s));
  const offsets = new Int32Array(parts.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
  const bytes = new Uint8Array(offsets[parts.length]!);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return { kind: 'utf8', offsets, bytes };
};

function assertOk(res: CompareResult, what: string): void {
  assert.deepEqual(res.problems, [], `${what} should match its truth`);
  assert.equal(res.ok, true);
}
function assertBad(res: CompareResult, what: string, pattern: RegExp): void {
  assert.equal(res.ok, false, `${what} should be rejected`);
  assert.ok(
    res.problems.some((p) => pattern.test(p)),
    `${what}: expected a problem matching ${pattern}, got:\n  ${res.problems.join('\n  ')}`,
  );
}

// sample tree: i4 = -15..14, ai4[3] = (i-14, i-13, i-12), n = i%5, Ai4[n] = -15 + (i-n) + 2j, b = i even
const i4 = () => Int32Array.from(range(N), (i) => i - 15);
const ai4 = () => Int32Array.from(range(3 * N), (k) => Math.floor(k / 3) - 14 + (k % 3));
const nCounts = range(N).map((i) => i % 5);
const Ai4vals = () => Int32Array.from(range(N).flatMap((i) => range(i % 5).map((j) => -15 + (i - (i % 5)) + 2 * j)));

test('truth files are found and parsed', { skip: HAVE ? false : SKIP }, () => {
  const files = truthFiles(DIR);
  assert.ok(files.length >= 20, `only ${files.length} truth files`);
  for (const f of files) assert.ok(existsSync(f.rootFile), `missing ROOT file for ${f.truthPath}`);
  const missing = rootFilesWithoutTruth(DIR).map((p) => basename(p));
  assert.ok(missing.includes('nano_tt_v15.root'), `nano_tt_v15.root has no truth; got ${missing.join(', ')}`);
  assert.ok(!missing.includes('uproot-HZZ.root'));

  // special values: NaN strings, int64 as bigint, null min/max
  const nan = numeric('pfnano.root', 'Events', 'HTXS_Higgs_y');
  assert.ok(Number.isNaN(nan.first[0] as number));
  assert.equal(nan.min, null);
  const i8 = numeric(SAMPLE, 'sample', 'i8');
  assert.deepEqual(i8.first, [-15n, -14n, -13n]);
  assert.equal(i8.min, -15n);
  assert.deepEqual(numeric(SAMPLE, 'sample', 'b').first, [true, false, true]);
  // two cycles of Delphes: default is the highest
  assert.equal(findTree(truth('delphes-cms-10ev.root'), 'Delphes')?.cycle, 2);
  assert.equal(findTree(truth('delphes-cms-10ev.root'), 'Delphes', 1)?.cycle, 1);
});

test('every truth file loads, with the expected branch kinds', { skip: HAVE ? false : SKIP }, () => {
  const kinds: Record<string, number> = {};
  const t0 = performance.now();
  for (const f of truthFiles(DIR)) {
    const t = loadTruth(f.truthPath);
    for (const tree of t.trees) {
      for (const b of Object.values(tree.branches)) kinds[b.kind] = (kinds[b.kind] ?? 0) + 1;
    }
  }
  const ms = performance.now() - t0;
  assert.ok((kinds.flat ?? 0) > 4000 && (kinds.jagged ?? 0) > 2000 && (kinds.other ?? 0) > 50, JSON.stringify(kinds));
  assert.ok(ms < 20000, `loading all truth files took ${ms.toFixed(0)} ms`);
});

test('flat int32: accepts the right column, rejects changes', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric(SAMPLE, 'sample', 'i4');
  assertOk(compareColumn(t, prim('int32', i4())), 'i4');

  const changedFirst = i4();
  changedFirst[1] = 99;
  assertBad(compareColumn(t, prim('int32', changedFirst)), 'i4 with entry 1 changed', /first: entry 1: expected -14, got 99/);

  const changedMiddle = i4();
  changedMiddle[17] += 1;
  const res = compareColumn(t, prim('int32', changedMiddle));
  assertBad(res, 'i4 with entry 17 changed', /sha256_native/);
  assertBad(res, 'i4 with entry 17 changed', /^sum: expected -15, got -14/);

  const changedLast = i4();
  changedLast[N - 1] = 0;
  assertBad(compareColumn(t, prim('int32', changedLast)), 'i4 with last changed', /last: entry 29 \(last\): expected 14, got 0/);

  assertBad(compareColumn(t, prim('int32', i4().subarray(0, N - 1))), 'i4 one entry short', /entries: expected 30, got 29/);
  const longer = new Int32Array(N + 1);
  longer.set(i4());
  assertBad(compareColumn(t, prim('int32', longer)), 'i4 one entry long', /entries: expected 30, got 31/);
});

test('dtype differences: conversions are problems, identical bytes are not', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric(SAMPLE, 'sample', 'i4');
  const asF64 = Float64Array.from(i4());
  assertBad(compareColumn(t, prim('float64', asF64)), 'i4 as float64', /dtype: expected int32, got float64 \(values equal after conversion\)/);
  // same bytes seen as uint32: accepted, noted
  const u = new Uint32Array(i4().buffer);
  const res = compareColumn(t, prim('uint32', u));
  assertOk(res, 'i4 as uint32 bytes');
  assert.ok(res.info.some((s) => /bytes identical/.test(s)), res.info.join('; '));
  // bool stored as uint8 0/1
  const b = numeric(SAMPLE, 'sample', 'b');
  const bools = Uint8Array.from(range(N), (i) => (i % 2 === 0 ? 1 : 0));
  assertOk(compareColumn(b, prim('bool', bools)), 'b');
  assertOk(compareColumn(b, prim('uint8', bools)), 'b as uint8');
  bools[4] = 0;
  assertBad(compareColumn(b, prim('bool', bools)), 'b changed', /sha256_native/);
  // int64 as bigint
  const i8 = numeric(SAMPLE, 'sample', 'i8');
  const big = BigInt64Array.from(range(N), (i) => BigInt(i - 15));
  assertOk(compareColumn(i8, prim('int64', big)), 'i8');
  big[N - 1] = 2n ** 60n;
  assertBad(compareColumn(i8, prim('int64', big)), 'i8 changed', /last: entry 29 \(last\): expected 14n, got 1152921504606846976n/);
  const u8 = numeric(SAMPLE, 'sample', 'u8');
  assertOk(compareColumn(u8, prim('uint64', BigUint64Array.from(range(N), (i) => BigInt(i)))), 'u8');
});

test('floats: exact hashes for float32/float64', { skip: HAVE ? false : SKIP }, () => {
  const f8 = Float64Array.from(range(N), (i) => -14.9 + i);
  assertOk(compareColumn(numeric(SAMPLE, 'sample', 'f8'), prim('float64', f8)), 'f8');
  assertOk(compareColumn(numeric(SAMPLE, 'sample', 'f4'), prim('float32', Float32Array.from(f8))), 'f4');
  // f4 widened to float64 is a dtype problem
  assertBad(
    compareColumn(numeric(SAMPLE, 'sample', 'f4'), prim('float64', Float64Array.from(Float32Array.from(f8)))),
    'f4 as float64',
    /dtype: expected float32, got float64/,
  );
  // f8 off by one ulp somewhere in the middle: rejected by hash (no tolerance without oracle_correction)
  const ulp = f8.slice();
  ulp[20] = ulp[20]! + 2 ** -48;
  assertBad(compareColumn(numeric(SAMPLE, 'sample', 'f8'), prim('float64', ulp)), 'f8 + 1ulp', /sha256_native/);
});

test('fixed-size arrays (inner_shape) on flat branches', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric(SAMPLE, 'sample', 'ai4');
  assert.deepEqual(t.inner_shape, [3]);
  const good: ColumnData = { kind: 'fixed', size: 3, child: prim('int32', ai4()) };
  assertOk(compareColumn(t, good), 'ai4');
  assertBad(compareColumn(t, prim('int32', ai4())), 'ai4 flattened', /structure: expected fixed<3, int32>, got int32/);
  const bad = ai4();
  bad[4] = 0; // entry 1, item 1
  assertBad(compareColumn(t, { kind: 'fixed', size: 3, child: prim('int32', bad) }), 'ai4 changed', /first: entry 1\[1\]: expected -12, got 0/);
  assertBad(
    compareColumn(t, { kind: 'fixed', size: 3, child: prim('int32', ai4().subarray(0, 87)) }),
    'ai4 short',
    /entries: expected 30, got 29/,
  );
});

test('jagged: counts and values', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric(SAMPLE, 'sample', 'Ai4');
  assertOk(compareColumn(t, list(nCounts, prim('int32', Ai4vals()))), 'Ai4');

  // one count moved from entry 10 to entry 11: same total, same values
  const moved = nCounts.slice();
  moved[10]! -= 1;
  moved[11]! += 1;
  const res = compareColumn(t, list(moved, prim('int32', Ai4vals())));
  assertBad(res, 'Ai4 with a count moved', /counts_sha256 differs/);
  assert.ok(!res.problems.some((p) => /sha256_native/.test(p)), 'values hash should still match');

  // one more element in the last entry
  const more = nCounts.slice();
  more[N - 1]! += 1;
  const vals = new Int32Array(Ai4vals().length + 1);
  vals.set(Ai4vals());
  vals[vals.length - 1] = 18;
  const r2 = compareColumn(t, list(more, prim('int32', vals)));
  assertBad(r2, 'Ai4 with one more value', /total_count: expected 60, got 61/);
  assertBad(r2, 'Ai4 with one more value', /max_count: expected 4, got 5/);
  assertBad(r2, 'Ai4 with one more value', /n_values: expected 60, got 61/);

  const v = Ai4vals();
  v[2] = 7; // entry 2, item 1
  assertBad(compareColumn(t, list(nCounts, prim('int32', v))), 'Ai4 changed', /first: entry 2\[1\]: expected -13, got 7/);
  assertBad(compareColumn(t, prim('int32', Ai4vals())), 'Ai4 not a list', /structure: expected list<int32>, got int32/);
  assertBad(compareColumn(t, list(nCounts.slice(0, 29), prim('int32', Ai4vals().subarray(0, 56)))), 'Ai4 short', /entries: expected 30, got 29/);
});

test('jagged with inner_shape (Delphes Jet.FracPt[5], Tower.Edges[4])', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric('delphes-cms-10ev.root', 'Delphes', 'Jet.FracPt[5]');
  assert.deepEqual(t.inner_shape, [5]);
  // all zeros; the counts of Jet come from the top-level branch "Jet" (number of jets per event)
  const jet = numeric('delphes-cms-10ev.root', 'Delphes', 'Jet');
  const counts = [...(jet.first as number[])];
  assert.equal(counts.length, 3);
  // we only know the first three and the last counts; a 10-entry column built from them must fail on counts only
  const good = (cs: number[]): ColumnData =>
    list(cs, { kind: 'fixed', size: 5, child: prim('float32', new Float32Array(5 * cs.reduce((a, b) => a + b, 0))) });
  const partial = compareColumn(t, good([...counts, 1, 1, 1, 1, 1, 1, ...(jet.last as number[])]));
  assertBad(partial, 'FracPt with guessed counts', /counts_sha256|total_count/);
  assert.ok(!partial.problems.some((p) => /first:|last:|structure/.test(p)), partial.problems.join('\n'));
  assertBad(
    compareColumn(t, list(counts, prim('float32', new Float32Array(5 * 27)))),
    'FracPt without fixed',
    /structure: expected list<fixed<5, float32>>, got list<float32>/,
  );
});

test('first entries of HZZ: a 3-entry column fails on length only', { skip: HAVE ? false : SKIP }, () => {
  const t = numeric('uproot-HZZ.root', 'events', 'Muon_Px');
  const first = t.first as number[][];
  const col = list(
    first.map((e) => e.length),
    prim('float32', Float32Array.from(first.flat())),
  );
  const res = compareColumn(t, col);
  assertBad(res, 'HZZ Muon_Px first 3', /entries: expected 2421, got 3/);
  assert.ok(!res.problems.some((p) => p.startsWith('first:')), res.problems.join('\n'));
  const changed = Float32Array.from(first.flat());
  changed[2] = 1.5; // entry 1, item 0
  assertBad(compareColumn(t, list(first.map((e) => e.length), prim('float32', changed))), 'HZZ changed', /first: entry 1\[0\]: expected -0\.816459357738494\d*, got 1\.5/);
});

test('NaN values and empty collections', { skip: HAVE ? false : SKIP }, () => {
  const nan = numeric('pfnano.root', 'Events', 'HTXS_Higgs_y');
  // the file holds the NaN that x86 C++ produces (0xffc00000, negative); the hash is over those bits
  const fileNan = new Float32Array(new Uint32Array(nan.n_entries).fill(0xffc00000).buffer);
  assertOk(compareColumn(nan, prim('float32', fileNan)), 'all-NaN column');
  const jsNan = new Float32Array(nan.n_entries).fill(NaN); // 0x7fc00000
  assertBad(compareColumn(nan, prim('float32', jsNan)), 'canonical NaN', /10 are NaN; .*NaN bit patterns/);
  const lenient = compareColumn(nan, prim('float32', jsNan), { ignoreNanPayload: true });
  assertOk(lenient, 'canonical NaN with ignoreNanPayload');
  assert.ok(lenient.info.some((s) => /NaN bit patterns/.test(s)));
  assertBad(compareColumn(nan, prim('float32', new Float32Array(nan.n_entries))), 'zeros instead of NaN', /first: entry 0: expected NaN, got 0/);

  const empty = numeric('delphes-eic-gun-1000ev.root', 'Delphes', 'Weight.fUniqueID');
  assert.equal(empty.total_count, 0);
  assertOk(compareColumn(empty, list(new Array<number>(1000).fill(0), prim('uint32', new Uint32Array(0)))), 'empty lists');
});

test('tolerance for Double32 with range (oracle_correction)', { skip: HAVE ? false : SKIP }, () => {
  // a synthetic branch from the known f8 values, marked as corrected
  const base = numeric(SAMPLE, 'sample', 'f8');
  const t: TruthNumericBranch = {
    ...base,
    oracle_correction: { what: 'test', n_values_differing_from_uproot3: 0, max_abs_diff_vs_uproot3: 0, uproot3_sha256_f64: '' },
  };
  const f8 = Float64Array.from(range(N), (i) => -14.9 + i);
  const ulp = f8.slice();
  ulp[1] = ulp[1]! * (1 + 2 ** -52);
  const res = compareColumn(t, prim('float64', ulp));
  assertOk(res, 'f8 + 1ulp with tolerance');
  assert.ok(res.info.some((s) => /tolerance/.test(s)));
  const off = f8.slice();
  off[1] = off[1]! + 1e-6;
  const r2 = compareColumn(t, prim('float64', off));
  assertBad(r2, 'f8 + 1e-6 with tolerance', /first: entry 1/);
  assertBad(r2, 'f8 + 1e-6 with tolerance', /^sum:/);

  // the real Double32 truth carries oracle_correction on fI* branches
  const fI16 = numeric('uproot-demo-double32.root', 'T', 'fI16');
  assert.ok(fI16.oracle_correction);
});

test('strings: sha256_concat and sha256_len_prefixed', { skip: HAVE ? false : SKIP }, () => {
  const t = branch(SAMPLE, 'sample', 'str') as TruthStringBranch;
  assert.equal(t.layout, 'string');
  const strs = range(N).map((i) => `hey-${i}`);
  assertOk(compareStrings(t, utf8(strs)), 'str');
  assertOk(compareColumn(t, utf8(strs)), 'str via compareColumn');
  const changed = strs.slice();
  changed[12] = 'hey-1x';
  assertBad(compareStrings(t, utf8(changed)), 'str changed', /sha256_concat differs/);
  // same bytes, different boundaries
  const shifted = strs.slice();
  shifted[0] = 'hey-0h';
  shifted[1] = 'ey-1';
  const r = compareStrings(t, utf8(shifted));
  assertBad(r, 'str shifted', /sha256_len_prefixed differs \(same bytes, different boundaries\)/);
  assertBad(r, 'str shifted', /first: entry 0: expected "hey-0", got "hey-0h"/);
  assertBad(compareStrings(t, utf8(strs.slice(0, 29))), 'str short', /entries: expected 30, got 29/);
  assertBad(compareStrings(t, list(strs.map(() => 1), utf8(strs))), 'str as list', /structure: expected utf8/);
});

test('generic: vector<vector<int>>, vector<string>', { skip: HAVE ? false : SKIP }, () => {
  const file = 'uproot-stl_containers.root';
  const vvi = branch(file, 'tree', 'vector_vector_int32') as TruthGenericBranch;
  // entry i: [[1], [1,2], …, [1..i+1]]
  const inner: number[] = [];
  const vals: number[] = [];
  for (let i = 0; i < 5; i++) for (let k = 1; k <= i + 1; k++) {
    inner.push(k);
    for (let m = 1; m <= k; m++) vals.push(m);
  }
  const col = list([1, 2, 3, 4, 5], list(inner, prim('int32', Int32Array.from(vals))));
  assertOk(compareColumn(vvi, col), 'vector_vector_int32');
  const bad = Int32Array.from(vals);
  bad[bad.length - 1] = 6;
  assertBad(compareColumn(vvi, list([1, 2, 3, 4, 5], list(inner, prim('int32', bad)))), 'vvi changed', /numeric_leaves\.sum/);

  const vs = branch(file, 'tree', 'vector_string') as TruthGenericBranch;
  const words = ['one', 'two', 'three', 'four', 'five'];
  const flat: string[] = [];
  for (let i = 0; i < 5; i++) flat.push(...words.slice(0, i + 1));
  assertOk(compareColumn(vs, list([1, 2, 3, 4, 5], utf8(flat))), 'vector_string');
  assertBad(compareColumn(vs, list([1, 2, 3, 5, 4], utf8(flat))), 'vector_string counts', /counts_sha256 differs/);
});

test('object branches: per-field comparison', { skip: HAVE ? false : SKIP }, () => {
  const met = branch('uproot-HZZ-objects.root', 'events', 'MC_bquarkhadronic') as TruthObjectBranch;
  assert.equal(met.layout, 'object');
  assertBad(compareColumn(met, prim('float64', new Float64Array(2421))), 'object as one column', /objectField/);
  const fx = objectField(met, 'fX');
  assert.equal(fx.kind, 'flat');
  assertOk(compareColumn(fx, prim('float64', new Float64Array(2421))), 'MC_bquarkhadronic.fX');
  const jet = branch('uproot-HZZ-objects.root', 'events', 'jetp4') as TruthObjectBranch;
  const jfx = objectField(jet, 'fX');
  assert.equal(jfx.kind, 'jagged');
  assert.equal(jfx.total_count, 2773);
  assert.throws(() => objectField(jet, 'nope'), /no field nope/);
});

test('helpers: fsum is exactly rounded, counts hash', () => {
  assert.equal(fsum([1e100, 1, -1e100]), 1);
  assert.equal(fsum(new Array<number>(10).fill(0.1)), 1);
  assert.equal(fsum([]), 0);
  assert.ok(Number.isNaN(fsum([1, NaN])));
  // python: hashlib.sha256(struct.pack('<3q', 0, 1, 2)).hexdigest()
  assert.equal(countsSha256(Int32Array.from([0, 0, 1, 3])), 'ab25350e3e65efebe24584461683ecda68725576e825e550038b90e7b1479946');
  assert.equal(countsSha256(Int32Array.from([0, 0, 1, 3])), countsSha256(Int32Array.from([5, 5, 6, 8])));
  assert.notEqual(countsSha256(Int32Array.from([0, 0, 1, 3])), countsSha256(Int32Array.from([0, 1, 1, 3])));
});
