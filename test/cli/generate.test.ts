/**
 * `hep-ml generate` end to end (bin/run.js, compiled dist/): to a file and to a pipe (the same bytes),
 * batch size, zero events, the muon collection name, piping into the next command, and one-line usage
 * errors with exit 2 and no output file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRecordBatch, openIpcStream, schemaFields } from '../../src/columnar/index.js';
import { generatorFields } from '../../src/generate/index.js';
import { concatColumns, formatColumnType, type ColumnData } from '../../src/root/columns.js';
import { columnHash } from '../helpers/column-hash.js';
import { BIN, runCli } from '../helpers/cli.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-generate-'));
}

async function readArrow(path: string) {
  const s = await openIpcStream(path);
  const parts = new Map<string, ColumnData[]>();
  const batchRows: number[] = [];
  for await (const rb of s.batches) {
    batchRows.push(rb.numRows);
    for (const c of fromRecordBatch(rb).columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  return {
    fields: schemaFields(s.schema).map((f) => `${f.name}: ${formatColumnType(f.type)}`),
    metadata: Object.fromEntries(s.schema.metadata),
    batchRows,
    columns: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])),
  };
}

const expectedFields = (muons?: 'Muon' | 'MuonTight') => generatorFields({ muons }).map((f) => `${f.name}: ${formatColumnType(f.type)}`);

test('generate to a file: the documented schema and metadata, 50 events, nothing on stdout', async () => {
  const d = tmp();
  try {
    const out = join(d, 'tt.arrow');
    const r = await runCli(['generate', '--process', 'ttbar', '--events', '50', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
    const a = await readArrow(out);
    assert.deepEqual(a.fields, expectedFields());
    assert.deepEqual(a.batchRows, [50]);
    assert.equal(a.metadata['hep-ml.tree'], 'Delphes');
    assert.equal(a.metadata['hep-ml.source'], '["generate:ttbar"]');
    assert.deepEqual(JSON.parse(a.metadata['hep-ml.generate']!), { process: 'ttbar', events: 50, seed: 42, version: 1 });
    const size = a.columns.get('EFlowTrack_size') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(size.values.length, 50);
    const met = a.columns.get('MissingET.MET') as Extract<ColumnData, { kind: 'list' }>;
    assert.equal(met.offsets[50], 50, 'one MissingET per event');
    assert.deepEqual(readdirSync(d), ['tt.arrow'], 'no temporary file left');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test("'-o -' writes the same bytes to stdout; --batch-size changes the batches, not the events", async () => {
  const d = tmp();
  try {
    const out = join(d, 'w.arrow');
    const a = await runCli(['generate', '-p', 'wjets', '-n', '40', '--seed', '5', '-o', out]);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCli(['generate', '-p', 'wjets', '-n', '40', '--seed', '5', '-o', '-']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stderr, '', 'nothing on stderr without a terminal');
    assert.ok(b.stdout.equals(readFileSync(out)), 'stdout and file are byte-identical');

    const small = join(d, 'small.arrow');
    const c = await runCli(['generate', '-p', 'wjets', '-n', '40', '--seed', '5', '--batch-size', '7', '-o', small]);
    assert.equal(c.code, 0, c.stderr);
    const [ra, rc] = [await readArrow(out), await readArrow(small)];
    assert.deepEqual(rc.batchRows, [7, 7, 7, 7, 7, 5]);
    for (const [k, v] of ra.columns) assert.equal(columnHash(rc.columns.get(k)!), columnHash(v), k);

    const other = join(d, 'other.arrow');
    const e = await runCli(['generate', '-p', 'wjets', '-n', '40', '--seed', '6', '-o', other]);
    assert.equal(e.code, 0, e.stderr);
    assert.ok(!readFileSync(other).equals(readFileSync(out)), 'another seed, other events');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('zero events is a valid stream with the schema and no batch; --muons Muon names the collection', async () => {
  const d = tmp();
  try {
    const out = join(d, 'none.arrow');
    const r = await runCli(['generate', '--process', 'qcd', '--events', '0', '--muons', 'Muon', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const a = await readArrow(out);
    assert.deepEqual(a.batchRows, []);
    assert.deepEqual(a.fields, expectedFields('Muon'));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('piped into the next command: generate | flatten --scan-only', async () => {
  const cmd = `"${process.execPath}" "${BIN}" generate --process qcd --events 30 --progress json | "${process.execPath}" "${BIN}" flatten --scan-only`;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (x: Buffer) => (out += x.toString()));
    child.stderr.on('data', (x: Buffer) => (err += x.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('pipe did not finish in 60 s'));
    }, 60_000);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout: out, stderr: err });
    });
  });
  assert.equal(code, 0, stderr);
  const specs = JSON.parse(stdout) as { entries: number; jkeys: string[] };
  assert.equal(specs.entries, 30);
  assert.ok(specs.jkeys.includes('EFlowTrack.PT') && specs.jkeys.includes('MissingET.MET'));
  // progress went to stderr as JSON lines, and ended at 30 of 30
  const progress = stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { stage: string; entries: number; total: number });
  assert.ok(progress.length > 0, stderr);
  assert.deepEqual([progress.at(-1)!.stage, progress.at(-1)!.entries, progress.at(-1)!.total], ['generate', 30, 30]);
});

test('bad flag values: exit 2, one line on stderr, no output file', async (t) => {
  const d = tmp();
  const out = join(d, 'x.arrow');
  const cases: [string, string[], RegExp][] = [
    ['unknown process', ['--process', 'higgs', '--events', '5'], /--process=higgs to be one of: qcd, ttbar, wjets/],
    ['negative events', ['--process', 'qcd', '--events', '-1'], /--events: expected an integer greater than or equal to 0/],
    ['events not a number', ['--process', 'qcd', '--events', 'ten'], /--events: expected an integer/],
    ['missing process', ['--events', '5'], /Missing required flag process/],
    ['missing events', ['--process', 'qcd'], /Missing required flag events/],
    ['negative seed', ['--process', 'qcd', '--events', '5', '--seed', '-1'], /--seed: expected an integer greater than or equal to 0/],
    ['zero batch size', ['--process', 'qcd', '--events', '5', '--batch-size', '0'], /--batch-size: expected an integer greater than or equal to 1/],
    ['bad muon collection', ['--process', 'qcd', '--events', '5', '--muons', 'MuonLoose'], /--muons=MuonLoose to be one of: MuonTight, Muon/],
    ['unknown flag', ['--process', 'qcd', '--events', '5', '--pileup', '50'], /Nonexistent flag: --pileup/],
  ];
  try {
    for (const [label, args, re] of cases) {
      await t.test(label, async () => {
        const r = await runCli(['generate', ...args, '-o', out]);
        assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
        assert.match(lines[0]!, /^hep-ml generate: /);
        assert.match(lines[0]!, re);
        assert.equal(r.stdout.length, 0);
        assert.deepEqual(readdirSync(d), [], 'no output file');
      });
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
