/**
 * hep-ml features end to end: the real Delphes events (ROOT input and an ingest pipe), both recipes, the
 * published oracles (lepton last, isMu = √800), clear errors for trees the recipe cannot read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRecordBatch, openIpcStream } from '../../src/columnar/index.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { BIN } from '../helpers/cli.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';

const dir = testdataDir();
const skip = hasTestdata(dir) ? false : `HEPML_TESTDATA not found: ${dir} — real Delphes tests SKIPPED`;
const cms = join(dir, 'root', 'delphes-cms-10ev.root');
const eic = join(dir, 'root', 'delphes-eic-gun-1000ev.root');
const hepml = `node ${BIN}`;

function sh(cmd: string): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { encoding: 'buffer', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

async function read(path: string): Promise<{ cols: Map<string, ColumnData>; meta: Map<string, string>; types: Map<string, string>; rows: number }> {
  const s = await openIpcStream(path);
  const parts = new Map<string, ColumnData[]>();
  let rows = 0;
  for await (const rb of s.batches) {
    rows += rb.numRows;
    for (const c of fromRecordBatch(rb).columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  const types = new Map(s.schema.fields.map((f) => [f.name, String(f.type)]));
  return { cols: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])), meta: s.schema.metadata, types, rows };
}
const fixedValues = (d: ColumnData | undefined) => ((d as Extract<ColumnData, { kind: 'fixed' }>).child as { values: Float32Array }).values;
const flat = (d: ColumnData | undefined) => Array.from((d as { values: ArrayLike<number | bigint> }).values, Number);

const tmp = () => mkdtempSync(join(tmpdir(), 'hepml-features-test-'));

test('real Delphes events: selection, lepton choice (η vs pT), MT², √800 oracle, schema', { skip }, async () => {
  const d = tmp();
  try {
    const a = sh(`${hepml} features ${cms} --muons Muon --label ttbar -o ${d}/pub.arrow --json`);
    assert.equal(a.code, 0, a.stderr);
    const summary = JSON.parse(a.stdout.toString());
    // 6 of the 10 events have neither an electron nor a muon (ls/ingest show the collections)
    assert.deepEqual([summary.events, summary.selected, summary.rejected.noLepton], [10, 4, 6]);
    assert.match(a.stderr, /10 events, 4 selected/);
    const pub = await read(`${d}/pub.arrow`);
    assert.equal(pub.rows, 4);
    assert.equal(pub.types.get('HLF_input'), 'FixedSizeList[14]<Float32>');
    assert.equal(pub.types.get('GRU_input'), 'FixedSizeList[15219]<Float32>');
    assert.equal(pub.types.get('encoded_label'), 'FixedSizeList[3]<Float32>');
    assert.equal(pub.types.get('label'), 'Int32');
    assert.equal(pub.types.get('GRU_mask'), undefined);
    assert.deepEqual(flat(pub.cols.get('entry')), [3, 4, 5, 6]);
    assert.deepEqual(flat(pub.cols.get('label')), [1, 1, 1, 1]);
    assert.deepEqual([...fixedValues(pub.cols.get('encoded_label'))], [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]);
    const hlf = fixedValues(pub.cols.get('HLF_input'));
    const gru = fixedValues(pub.cols.get('GRU_input'));
    const H = (row: number, k: number) => hlf[row * 14 + k]!;
    // entry 3: one muon (pT 40.71, φ −3.0446); entry 4: one electron (146.25); entry 6: one muon (95.58)
    assert.deepEqual([H(0, 13), H(1, 13), H(3, 13)], [0, 1, 0]);
    assert.ok(Math.abs(H(0, 6) - 40.71085) < 1e-3 && Math.abs(H(1, 6) - 146.25046) < 1e-3 && Math.abs(H(3, 6) - 95.58057) < 1e-3);
    // entry 5 has an isolated electron (pT 94.06, η −1.966) and muon (67.24, η −1.778): the published code
    // keeps the larger η — the muon
    assert.equal(H(2, 13), 0);
    assert.ok(Math.abs(H(2, 6) - 67.24359) < 1e-3);
    // charges as stored: muon +1 (entry 3), electron +1 (4), muon −1 (5, 6)
    assert.deepEqual([0, 1, 2, 3].map((r) => H(r, 12)), [1, 1, -1, -1]);
    // MT is MT² (GeV²): ≥ 0 and = 2·MET·pT·(1 − cos Δφ) of the stored values
    const mt2 = 2 * H(0, 1) * H(0, 6) * (1 - Math.cos(H(0, 8) - H(0, 2)));
    assert.ok(Math.abs(H(0, 3) - mt2) / mt2 < 1e-5, `${H(0, 3)} vs ${mt2}`);
    for (let r = 0; r < 4; r++) {
      const flag = H(r, 13) === 1 ? 16 : 17;
      const g = gru.subarray(r * 15219, (r + 1) * 15219);
      assert.ok(Math.abs(g[800 * 19 + flag]! - Math.sqrt(800)) < 1e-4, 'the lepton is row 800 with its flag = √800');
      assert.ok(Math.abs(g[0 * 19 + flag]! + 1 / Math.sqrt(800)) < 1e-6);
    }
    const meta = JSON.parse(pub.meta.get('hep-ml.features')!);
    assert.equal(meta.options.recipe, 'sparkdltrigger');
    assert.deepEqual(JSON.parse(pub.meta.get('hep-ml.features.gru_shape')!), [801, 19]);

    const b = sh(`${hepml} features ${cms} --muons Muon --recipe corrected --sort pt -o ${d}/cor.arrow`);
    assert.equal(b.code, 0, b.stderr);
    const cor = await read(`${d}/cor.arrow`);
    assert.equal(cor.types.get('GRU_mask'), 'FixedSizeList[801]<Uint8>');
    const ch = fixedValues(cor.cols.get('HLF_input'));
    // corrected: the larger pT — the electron of entry 5; MT in GeV = √(published MT)
    assert.equal(ch[2 * 14 + 13], 1);
    assert.ok(Math.abs(ch[2 * 14 + 6]! - 94.05927) < 1e-3);
    assert.ok(Math.abs(ch[0 * 14 + 3]! - Math.sqrt(H(0, 3))) < 1e-3);
    assert.deepEqual(flat(cor.cols.get('label')), [-1, -1, -1, -1]);
    assert.deepEqual([...fixedValues(cor.cols.get('encoded_label'))], new Array(12).fill(0));
    const np = flat(cor.cols.get('n_particles'));
    const mask = (cor.cols.get('GRU_mask') as Extract<ColumnData, { kind: 'fixed' }>).child as { values: Uint8Array };
    for (let r = 0; r < 4; r++) {
      assert.equal(mask.values.subarray(r * 801, (r + 1) * 801).reduce((s, v) => s + v, 0), np[r]);
      // pT order: row 0 has the largest pT among the particles, compare raw pT ordering through the sign of differences
      const g = fixedValues(cor.cols.get('GRU_input')).subarray(r * 15219, (r + 1) * 15219);
      for (let k = 1; k < np[r]!; k++) assert.ok(g[k * 19 + 4]! <= g[(k - 1) * 19 + 4]!, 'decreasing pT');
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest | features gives the same rows as features on the ROOT file', { skip }, async () => {
  const d = tmp();
  try {
    const a = sh(`${hepml} ingest ${cms} -t Delphes $(${hepml} features --print-branches --muons Muon | sed 's/^/-b /') --step-size 3 | ${hepml} features - --muons Muon -o ${d}/pipe.arrow`);
    assert.equal(a.code, 0, a.stderr);
    const b = sh(`${hepml} features ${cms} --muons Muon --batch-size 1 -o ${d}/root.arrow`);
    assert.equal(b.code, 0, b.stderr);
    const [p, r] = [await read(`${d}/pipe.arrow`), await read(`${d}/root.arrow`)];
    assert.deepEqual([...p.cols.keys()], [...r.cols.keys()]);
    for (const k of p.cols.keys()) assert.deepEqual(p.cols.get(k), r.cols.get(k), k);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('trees the recipe cannot read: one error listing what is missing, exit 8, no output file', { skip }, () => {
  const d = tmp();
  try {
    const a = sh(`${hepml} features ${cms} -o ${d}/x.arrow`);
    assert.equal(a.code, 8);
    assert.match(a.stderr, /MuonTight\.\{PT,Eta,Phi,Charge\}.*try --muons Muon/);
    assert.equal(a.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    // the EIC particle-gun file: Delphes, but without EFlow, leptons, MET or jets (its collections are empty)
    const b = sh(`${hepml} features ${eic} -o ${d}/y.arrow`);
    assert.equal(b.code, 8);
    assert.match(b.stderr, /EFlowTrack\.\{PT,Eta,Phi,X,Y,Z,PID\}/);
    // a stream without the branches (ingest of other branches) fails the same way
    const c = sh(`${hepml} ingest ${cms} -t Delphes -b 'Jet.*' | ${hepml} features - -o ${d}/z.arrow`);
    assert.equal(c.code, 8);
    assert.match(c.stderr, /<stdin>.*branch\(es\) missing/);
    assert.deepEqual(readdirSync(d), [], 'no partial output');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('usage: --print-branches, bad --label, ROOT-only flags on a stream', () => {
  const a = sh(`${hepml} features --print-branches --recipe corrected --muons Muon`);
  assert.equal(a.code, 0);
  const names = a.stdout.toString().trim().split('\n');
  assert.ok(names.includes('Muon.Charge') && names.includes('EFlowTrack.Charge') && names.includes('Jet.BTag'));
  const b = sh(`${hepml} features x.arrow --label higgs -o /dev/null`);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /--label takes/);
  const c = sh(`${hepml} features x.arrow --entry-stop 5 -o /dev/null`);
  assert.equal(c.code, 2);
  const e = sh(`${hepml} features /nonexistent/x.arrow -o /dev/null`);
  assert.equal(e.code, 3);
});
