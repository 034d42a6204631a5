import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIpcStream, fromRecordBatch } from '../../src/columnar/index.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { BIN, runCli } from '../helpers/cli.js';
import { compareColumn, findTree, formatResult, hasTestdata, loadTruth, testdataDir } from '../helpers/truth.js';

const dir = testdataDir();
const skip = hasTestdata(dir) ? false : `HEPML_TESTDATA not found: ${dir}`;
const root = (n: string) => join(dir, 'root', n);
const truthOf = (n: string) => loadTruth(join(dir, 'truth', `${n}.truth.json`));

async function readArrow(path: string) {
  const s = await openIpcStream(path);
  const cols = new Map<string, ColumnData[]>();
  let batches = 0;
  for await (const rb of s.batches) {
    batches++;
    for (const c of fromRecordBatch(rb).columns) {
      if (!cols.has(c.name)) cols.set(c.name, []);
      cols.get(c.name)!.push(c.data);
    }
  }
  const metadata = Object.fromEntries(s.schema.metadata);
  return { schema: s.schema, metadata, batches, columns: new Map([...cols].map(([k, v]) => [k, concatColumns(v)])) };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-test-'));
}

test('ingest: all branches of HZZ (zstd) to a file, in several batches, equal to the truth', { skip }, async () => {
  const d = tmp();
  try {
    const out = join(d, 'hzz.arrow');
    const r = await runCli(['ingest', root('uproot-HZZ-zstd.root'), '-t', 'events', '--step-size', '500', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0, 'nothing on stdout when writing a file');
    const a = await readArrow(out);
    assert.equal(a.batches, 5);
    assert.equal(a.metadata['hep-ml.tree'], 'events');
    assert.equal(a.metadata['hep-ml.entry_stop'], '2421');
    const tt = findTree(truthOf('uproot-HZZ-zstd.root'), 'events')!;
    assert.equal(a.columns.size, Object.keys(tt.branches).length);
    for (const [name, tb] of Object.entries(tt.branches)) {
      const res = compareColumn(tb, a.columns.get(name)!);
      assert.ok(res.ok, formatResult(name, res));
    }
    // types are preserved in the Arrow schema
    const t = (n: string) => String(a.schema.fields.find((f) => f.name === n)!.type);
    assert.equal(t('MET_px'), 'Float32');
    assert.equal(t('NJet'), 'Int32');
    assert.match(t('Jet_Px'), /^List<Float32>$/);
    assert.match(t('Jet_ID'), /^List<Bool>$/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest: Delphes collection members by glob, entry range, to stdout', { skip }, async () => {
  const r = await runCli(['ingest', root('delphes-cms-10ev.root'), '-t', 'Delphes', '-b', 'EFlowTrack.P?', '-b', 'EFlowTrack_size', '--entry-start', '2', '--entry-stop', '7', '-o', '-']);
  assert.equal(r.code, 0, r.stderr);
  const d = tmp();
  try {
    writeFileSync(join(d, 'o.arrow'), r.stdout);
    const a = await readArrow(join(d, 'o.arrow'));
    assert.deepEqual([...a.columns.keys()], ['EFlowTrack.PT', 'EFlowTrack_size'], 'columns in the tree\'s order');
    const pt = a.columns.get('EFlowTrack.PT') as Extract<ColumnData, { kind: 'list' }>;
    const size = a.columns.get('EFlowTrack_size') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(pt.offsets.length - 1, 5);
    for (let i = 0; i < 5; i++) assert.equal(pt.offsets[i + 1]! - pt.offsets[i]!, size.values[i], `entry ${i + 2}`);
    const tb = findTree(truthOf('delphes-cms-10ev.root'), 'Delphes')!.branches['EFlowTrack_size']!;
    assert.deepEqual(Array.from(size.values.subarray(0, 1)), [(tb as { first: number[] }).first[2]]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest: several files are one chain; a global entry range crosses the file boundary', { skip }, async () => {
  const d = tmp();
  try {
    const out = join(d, 'chain.arrow');
    const f = root('uproot-HZZ.root');
    const r = await runCli(['ingest', f, root('uproot-HZZ-lzma.root'), '-t', 'events', '-b', 'NMuon', '--entry-start', '2400', '--entry-stop', '2450', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const a = await readArrow(out);
    const n = a.columns.get('NMuon') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(n.values.length, 50);
    // entries 2421.. are the second file's entries 0..: the same events, since both files hold the same data
    const first = (await readArrow(out)).columns.get('NMuon') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.deepEqual(Array.from(first.values.subarray(21, 50)), Array.from(first.values.subarray(21, 50)));
    const tb = findTree(truthOf('uproot-HZZ.root'), 'events')!.branches['NMuon'] as { first: number[] };
    assert.deepEqual(Array.from(n.values.subarray(21, 24)), tb.first);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest: files whose schemas differ are refused (exit 8) with no output file', { skip }, async () => {
  const d = tmp();
  try {
    const r = await runCli(['ingest', root('uproot-HZZ.root'), root('uproot-Zmumu.root'), '-t', 'events', '-o', join(d, 'x.arrow')]);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /uproot-Zmumu\.root: tree 'events': branch '\w+' of the first file is missing here/);
    assert.deepEqual(readdirSync(d), []);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest | head: a closed pipe ends the command quietly with exit 0', { skip }, async () => {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('bash', ['-c', `set -o pipefail; node ${BIN} ingest ${root('uproot-demo-double32.root')} -t T --step-size 1000 -o - | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (x) => (out += x));
    child.on('close', () => resolve(Number(out.trim())));
  });
  assert.equal(code, 0);
});

test('ingest -o - writes an Arrow IPC stream to a pipe', { skip }, async () => {
  const r = await runCli(['ingest', root('uproot-small-flat-tree.root'), '-b', 'Int32', '-o', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.subarray(0, 4).readUInt32LE(0), 0xffffffff, 'Arrow IPC continuation marker');
});

test('ingest --progress json writes JSON lines on stderr and nothing else', { skip }, async () => {
  const d = tmp();
  try {
    const r = await runCli(['ingest', root('uproot-HZZ.root'), '-t', 'events', '--step-size', '1000', '--progress', 'json', '-o', join(d, 'p.arrow')]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 1);
    const last = lines.at(-1);
    assert.equal(last.event, 'progress');
    assert.equal(last.entries, 2421);
    assert.equal(last.total, 2421);
    assert.ok(last.mb > 0);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

// ---- bad input: one line on stderr, documented exit code, no partial output, no hang ----

test('bad input gives one-line errors, documented exit codes and no partial output', { skip }, async (t) => {
  const d = tmp();
  const hzz = root('uproot-HZZ-zlib.root');
  const size = statSync(hzz).size;
  const bytes = readFileSync(hzz);
  writeFileSync(join(d, 'truncated.root'), bytes.subarray(0, Math.floor(size / 2)));
  const corrupt = Buffer.from(bytes);
  corrupt.fill(0xa5, 20000, 20016);
  writeFileSync(join(d, 'corrupt.root'), corrupt);
  writeFileSync(join(d, 'text.root'), 'this is not a ROOT file, it is plain text long enough to pass the size check\n'.repeat(3));
  copyFileSync(root('uproot-HZZ-lz4.root'), join(d, 'lz4.root'));
  chmodSync(join(d, 'lz4.root'), 0o644);
  const lz4 = readFileSync(join(d, 'lz4.root'));
  lz4.fill(0x5a, 30000, 30008);
  writeFileSync(join(d, 'lz4-corrupt.root'), lz4);
  const out = join(d, 'out');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(out);
  const cases: [string, string[], number, RegExp][] = [
    ['missing path', ['ingest', join(d, 'nope.root'), '-o', join(out, 'a.arrow')], 3, /nope\.root: no such file/],
    ['a directory', ['ingest', d, '-o', join(out, 'a.arrow')], 3, /is a directory/],
    ['not a ROOT file', ['ingest', join(d, 'text.root'), '-o', join(out, 'a.arrow')], 4, /text\.root: not a ROOT file/],
    ['truncated file', ['ingest', join(d, 'truncated.root'), '-o', join(out, 'a.arrow')], 7, /truncated\.root: .*truncated/],
    ['corrupt zlib basket', ['ingest', join(d, 'corrupt.root'), '-t', 'events', '-o', join(out, 'a.arrow')], 7, /corrupt\.root: tree 'events', branch '\w+', basket \d+: .*ZLIB/],
    ['corrupt lz4 basket', ['ingest', join(d, 'lz4-corrupt.root'), '-t', 'events', '-o', join(out, 'a.arrow')], 7, /lz4-corrupt\.root: tree 'events', branch '\w+', basket \d+: .*(checksum|LZ4)/],
    ['wrong tree name', ['ingest', hzz, '-t', 'event', '-o', join(out, 'a.arrow')], 5, /no tree 'event'; trees in this file: events/],
    ['glob matching nothing', ['ingest', hzz, '-t', 'events', '-b', 'Tau_*', '-o', join(out, 'a.arrow')], 5, /no branch matches 'Tau_\*'/],
    ['unknown branch', ['ingest', hzz, '-t', 'events', '-b', 'Muon_PX', '-o', join(out, 'a.arrow')], 5, /no branch 'Muon_PX'; did you mean: Muon_Px/],
    ['entry start out of range', ['ingest', hzz, '-t', 'events', '--entry-start', '2421', '-o', join(out, 'a.arrow')], 6, /entry start 2421 is beyond the last entry/],
    ['entry stop before start', ['ingest', hzz, '-t', 'events', '--entry-start', '10', '--entry-stop', '5', '-o', join(out, 'a.arrow')], 6, /before entry start/],
    ['bad step size', ['ingest', hzz, '-t', 'events', '--step-size', '12 parsecs', '-o', join(out, 'a.arrow')], 2, /cannot parse step size/],
    ['ls: wrong tree', ['ls', hzz, '--tree', 'Events'], 5, /no tree 'Events'; trees in this file: events/],
  ];
  try {
    for (const [label, args, code, re] of cases) {
      await t.test(label, async () => {
        const r = await runCli(args, { timeoutMs: 30000 });
        assert.equal(r.code, code, `${label}: exit ${r.code}, stderr: ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
        assert.match(lines[0]!, re);
        assert.doesNotMatch(r.stderr, /\s+at \S+ \(/, 'no stack trace');
        assert.deepEqual(readdirSync(out), [], 'no partial output file');
      });
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('ingest interrupted by SIGINT/SIGTERM leaves neither the output nor its temp file', { skip }, async () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const d = tmp();
    try {
      const f = root('nano_tt_v15.root');
      const child = spawn(process.execPath, [BIN, 'ingest', f, f, f, f, '-t', 'Events', '--step-size', '1', '-o', join(d, 'big.arrow')], { stdio: 'ignore' });
      // wait until the temp file exists, then interrupt
      for (let i = 0; i < 200 && readdirSync(d).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(readdirSync(d).length, 1, 'the temp file exists while writing');
      child.kill(sig);
      const code = await new Promise<number | null>((r) => child.on('close', (c, s) => r(c ?? (s ? -1 : null))));
      assert.notEqual(code, 0, `${sig}: non-zero exit`);
      assert.deepEqual(readdirSync(d), [], `${sig}: no output and no temp file left`);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }
});
