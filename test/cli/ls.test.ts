import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';

const dir = testdataDir();
const skip = hasTestdata(dir) ? false : `HEPML_TESTDATA not found: ${dir}`;
const root = (n: string) => join(dir, 'root', n);

test('hep-ml --help lists the commands', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout.toString(), /ingest/);
  assert.match(r.stdout.toString(), /\bls\b/);
});

test('ls: human table with types, counters, codecs and sizes', { skip }, async () => {
  const r = await runCli(['ls', root('uproot-HZZ-lz4.root')]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  assert.match(out, /TTree events;1 .*2,421 entries, 51 branches/);
  assert.match(out, /Jet_Px\s+list<float32>\s+Float_t\[NJet\]\s+NJet\s+LZ4/);
  assert.match(out, /MET_px\s+float32\s+Float_t/);
});

test('ls --json: trees with cycles, branch types, codec per branch', { skip }, async () => {
  const r = await runCli(['ls', root('delphes-cms-10ev.root'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout.toString());
  const names = d.trees.map((t: { name: string; cycle: number }) => `${t.name};${t.cycle}`).sort();
  assert.deepEqual(names, ['Delphes;1', 'Delphes;2']);
  const pt = d.trees[0].branches.find((b: { name: string }) => b.name === 'EFlowTrack.PT');
  assert.equal(pt.type, 'list<float32>');
  assert.equal(pt.counter, 'EFlowTrack');
  assert.equal(pt.readable, true);
  assert.equal(typeof pt.compressedBytes, 'number');
  const ref = d.trees[0].branches.find((b: { name: string }) => b.name === 'EFlowTrack.Particle');
  assert.equal(ref.readable, false);
  assert.ok(ref.unsupported);
});

test('ls: every file in testdata lists without error', { skip }, async () => {
  const { readdirSync } = await import('node:fs');
  for (const name of readdirSync(join(dir, 'root')).filter((n) => n.endsWith('.root'))) {
    const r = await runCli(['ls', root(name), '--json']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    const d = JSON.parse(r.stdout.toString());
    assert.ok(Array.isArray(d.trees), name);
  }
});
