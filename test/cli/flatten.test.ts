/**
 * hep-ml flatten end to end: pipes, specs files, NanoAOD conformance of the padded values, bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRecordBatch, openIpcStream } from '../../src/columnar/index.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { BIN } from '../helpers/cli.js';
import { findTree, hasTestdata, loadTruth, testdataDir, type TruthNumericBranch } from '../helpers/truth.js';

const dir = testdataDir();
const skip = hasTestdata(dir) ? false : `HEPML_TESTDATA not found: ${dir}`;
const root = (n: string) => join(dir, 'root', n);
const hepml = `node ${BIN}`;

function sh(cmd: string, cwd?: string): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd, encoding: 'buffer', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

async function readColumns(path: string): Promise<{ columns: Map<string, ColumnData>; metadata: Map<string, string>; types: Map<string, string> }> {
  const s = await openIpcStream(path);
  const parts = new Map<string, ColumnData[]>();
  for await (const rb of s.batches) {
    for (const c of fromRecordBatch(rb).columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  const types = new Map(s.schema.fields.map((f) => [f.name, String(f.type)]));
  await s.close();
  return { columns: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])), metadata: s.schema.metadata, types };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-flatten-test-'));
}

function spillDirs(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith('hep-ml-flatten-'));
}

test('pipe: ingest | flatten | flatten --scan-only', { skip }, async () => {
  const before = spillDirs();
  const r = sh(`${hepml} ingest ${root('nano_dy.root')} --tree Events --branches 'Muon_*' -o - | ${hepml} flatten | ${hepml} flatten --scan-only`);
  assert.equal(r.code, 0, r.stderr);
  const specs = JSON.parse(r.stdout.toString());
  assert.equal(specs.format, 'hep-ml/flatten-specs');
  assert.equal(specs.entries, 40);
  assert.deepEqual(specs.jkeys, [], 'after padding nothing is jagged any more');
  assert.deepEqual(spillDirs(), before, 'the spilled copy of stdin is removed');
});

for (const file of ['nano_dy.root', 'nano_dimuon.root', 'nano_tt_v12.root'])
test(`NanoAOD ${file}: padded values and masks reproduce the truth of every Muon_ branch, entry by entry`, { skip }, async () => {
  const d = tmp();
  try {
    const out = join(d, 'muons.arrow');
    const specsPath = join(d, 'specs.json');
    const r = sh(`${hepml} ingest ${root(file)} -t Events -b 'Muon_*' -b nMuon -o - | ${hepml} flatten --write-specs ${specsPath} -o ${out}`);
    assert.equal(r.code, 0, r.stderr);
    const specs = JSON.parse(readFileSync(specsPath, 'utf8'));
    const { columns, types } = await readColumns(out);
    const tt = findTree(loadTruth(join(dir, 'truth', `${file}.truth.json`)), 'Events')!;
    let checked = 0;
    for (const name of specs.jkeys as string[]) {
      const tb = tt.branches[name] as TruthNumericBranch;
      const jdim = specs.jdim[name] as number;
      assert.equal(jdim, tb.max_count, `${name}: jdim = the truth's max_count`);
      assert.equal(types.get(name), `FixedSizeList[${jdim}]<Float32>`);
      const padded = columns.get(name) as Extract<ColumnData, { kind: 'fixed' }>;
      const mask = columns.get(`${name}.mask`) as Extract<ColumnData, { kind: 'fixed' }>;
      const v = (padded.child as { values: Float32Array }).values;
      const m = (mask.child as { values: Uint8Array }).values;
      const rows = v.length / Math.max(jdim, 1);
      assert.equal(rows, tt.entries);
      // real values in order, and per-entry counts, from the mask
      const counts = new BigInt64Array(rows);
      const real: number[] = [];
      for (let i = 0; i < rows; i++) {
        let n = 0;
        for (let j = 0; j < jdim; j++) {
          const k = i * jdim + j;
          if (m[k]) {
            assert.equal(n, j, `${name} entry ${i}: real values come first`);
            real.push(v[k]!);
            n++;
          } else assert.ok(Number.isNaN(v[k]!), `${name} entry ${i} slot ${j}: padding is NaN`);
        }
        counts[i] = BigInt(n);
      }
      assert.equal(createHash('sha256').update(new Uint8Array(counts.buffer)).digest('hex'), tb.counts_sha256, `${name}: counts`);
      if (tb.dtype === 'float32') {
        const f = Float32Array.from(real);
        assert.equal(createHash('sha256').update(new Uint8Array(f.buffer)).digest('hex'), tb.sha256_native, `${name}: values`);
      } else {
        // integers and bools become float32: compare the values themselves
        const sum = real.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - Number(tb.sum)) <= 1e-6 * Math.max(1, Math.abs(Number(tb.sum))), `${name}: sum ${sum} vs ${tb.sum}`);
      }
      checked++;
    }
    assert.ok(checked >= 10, `checked ${checked} Muon_ branches`);
    // nMuon is flat: passed through unchanged
    assert.match(types.get('nMuon')!, /^U?[Ii]nt32$/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('--specs: one pass over stdin; --max-len truncates and reports; --json summary', { skip }, async () => {
  const d = tmp();
  try {
    const a = join(d, 'a.arrow');
    const specs = join(d, 'specs.json');
    assert.equal(sh(`${hepml} ingest ${root('uproot-HZZ.root')} -t events -b 'Muon_*' -o ${a}`).code, 0);
    const s = sh(`${hepml} flatten ${a} --scan-only -o ${specs}`);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(readFileSync(specs, 'utf8')).jdim.Muon_Px, 4);
    const before = spillDirs();
    const r = sh(`cat ${a} | ${hepml} flatten --specs ${specs} --max-len Muon_Px=1 --json -o ${join(d, 'b.arrow')}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spillDirs(), before, 'no spill with --specs');
    assert.match(r.stderr, /truncated \d+ entries, \d+ values \(Muon_Px: \d+ entries/);
    const summary = JSON.parse(r.stdout.toString());
    assert.equal(summary.entries, 2421);
    assert.ok(summary.truncation.perColumn.Muon_Px.entries > 0);
    const { types } = await readColumns(join(d, 'b.arrow'));
    assert.equal(types.get('Muon_Px'), 'FixedSizeList[1]<Float32>');
    assert.equal(types.get('Muon_Px.mask'), 'FixedSizeList[1]<Uint8>');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('bad input: one line, non-zero exit, no partial output, no spill left behind', { skip }, async (t) => {
  const d = tmp();
  const a = join(d, 'hzz.arrow');
  const nano = join(d, 'nano.arrow');
  assert.equal(sh(`${hepml} ingest ${root('uproot-HZZ.root')} -t events -b 'Muon_*' -o ${a}`).code, 0);
  assert.equal(sh(`${hepml} ingest ${root('nano_dy.root')} -t Events -b 'Muon_*' -o ${nano}`).code, 0);
  assert.equal(sh(`${hepml} flatten ${a} --scan-only -o ${join(d, 'hzz-specs.json')}`).code, 0);
  writeFileSync(join(d, 'text.txt'), 'definitely not arrow\n'.repeat(10));
  const out = join(d, 'out');
  sh(`mkdir -p ${out}`);
  const before = spillDirs();
  const cases: [string, string, number, RegExp][] = [
    ['non-Arrow stdin', `cat ${join(d, 'text.txt')} | ${hepml} flatten -o ${join(out, 'x.arrow')}`, 7, /<stdin>: .*(not an Arrow|Arrow IPC)/i],
    ['non-Arrow file', `${hepml} flatten ${join(d, 'text.txt')} -o ${join(out, 'x.arrow')}`, 7, /text\.txt: .*(not an Arrow|Arrow IPC)/i],
    ['specs of another stream', `${hepml} flatten ${nano} --specs ${join(d, 'hzz-specs.json')} -o ${join(out, 'x.arrow')}`, 8, /Muon_/],
    ['--max-len for an unknown branch', `${hepml} flatten ${a} --max-len Tau_pt=3 -o ${join(out, 'x.arrow')}`, 2, /Tau_pt/],
    ['bad --pad', `${hepml} flatten ${a} --pad lots -o ${join(out, 'x.arrow')}`, 2, /--pad/],
    ['missing specs file', `${hepml} flatten ${a} --specs ${join(d, 'nope.json')} -o ${join(out, 'x.arrow')}`, 3, /nope\.json/],
  ];
  try {
    for (const [label, cmd, code, re] of cases) {
      await t.test(label, () => {
        const r = sh(cmd);
        assert.equal(r.code, code, `${label}: exit ${r.code}: ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, re);
        assert.deepEqual(readdirSync(out), [], 'no partial output');
        assert.deepEqual(spillDirs(), before, 'no spilled stdin left');
      });
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('flatten interrupted while reading stdin leaves no spilled copy and no output', { skip }, async () => {
  const d = tmp();
  try {
    const before = spillDirs();
    // a producer that never finishes: flatten is still spilling stdin when it is interrupted
    const child = spawn('bash', ['-c', `(${hepml} ingest ${root('nano_tt_v15.root')} -t Events -o -; sleep 30) | exec ${hepml} flatten -o ${join(d, 'out.arrow')}`], { stdio: 'ignore', detached: true });
    for (let i = 0; i < 200 && spillDirs().length === before.length; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(spillDirs().length > before.length, 'the spill file exists while stdin is read');
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((r) => child.on('close', r));
    for (let i = 0; i < 40 && spillDirs().length !== before.length; i++) await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(spillDirs(), before, 'the spill file is removed on SIGINT');
    assert.deepEqual(readdirSync(d), [], 'no output');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
