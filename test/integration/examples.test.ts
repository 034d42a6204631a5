/**
 * The whole chain as users run it: `make -C examples small` (generate → features → prepare → convert →
 * train with 2 workers → evaluate) through the CLI, every artefact read back by the next stage or by an
 * independent reader, the final AUC; make's incremental rebuilds; examples/pipe.sh twice with the same
 * seed (identical features, and identical to the Makefile's); the real-Delphes path of both
 * (ingest → features) on a real Delphes file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC, type Table } from 'apache-arrow';
import { BIN } from '../helpers/cli.js';
import { REPO_ROOT, testdataDir } from '../helpers/truth.js';

const EXAMPLES = join(REPO_ROOT, 'examples');
const PROCESSES = ['qcd', 'ttbar', 'wjets'];
const hasMake = spawnSync('make', ['--version']).status === 0;
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; timeout?: number } = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'buffer',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeout ?? 600_000,
    maxBuffer: 1 << 28,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString(), seconds: (performance.now() - t0) / 1000 };
}

const hepml = (...args: string[]) => run(process.execPath, [BIN, ...args]);
const readArrow = (path: string): Table => tableFromIPC(readFileSync(path));
/** Any dataset hep-ml reads, back as an Arrow table through `hep-ml convert --to arrow -o -`. */
function readBack(path: string): Table {
  const r = hepml('convert', path, '--to', 'arrow', '--progress', 'none', '-o', '-');
  assert.equal(r.code, 0, r.stderr);
  return tableFromIPC(r.stdout);
}
/** A list column's values, row after row (List or FixedSizeList of floats). */
function floats(t: Table, col: string): Float32Array {
  const rows = t.getChild(col)!.toArray() as { toArray(): Float32Array }[];
  const parts = rows.map((r) => r.toArray());
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const floatsOf = (t: Table, col: string) => Float32Array.from(t.getChild(col)!.toArray() as ArrayLike<number>);
const ints = (t: Table, col: string) => Int32Array.from(t.getChild(col)!.toArray() as ArrayLike<number | bigint>, (x) => Number(x));

describe('examples/Makefile: make -C examples small', { skip: hasMake ? false : 'make is not installed: the Makefile tests are SKIPPED' }, () => {
  let dir: string;
  let out: string;
  let makeRun: ReturnType<typeof run>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hepml-examples-'));
    out = join(dir, 'small');
    makeRun = run('make', ['-C', 'examples', 'small', `OUT=${out}`]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the small target runs the whole chain through the CLI and says where the ROC curve is', (t) => {
    t.diagnostic(`make -C examples small: ${makeRun.seconds.toFixed(1)} s`);
    assert.equal(makeRun.code, 0, makeRun.stderr + makeRun.stdout.toString());
    const log = makeRun.stdout.toString() + makeRun.stderr;
    for (const cmd of ['generate', 'features', 'prepare', 'convert', 'train', 'evaluate']) assert.match(log, new RegExp(`run\\.js ${cmd} `), `make ran hep-ml ${cmd}`);
    assert.match(log, /--workers 2/);
    assert.ok(log.includes(`ROC curve: ${out}/eval/roc.png`), 'make names the ROC plot');
  });

  test('every artefact exists and is read by the next stage (and Parquet/TFRecord hold the same rows as Arrow)', () => {
    assert.equal(makeRun.code, 0);
    const selected: Record<string, number> = {};
    for (const p of PROCESSES) {
      const events = readArrow(join(out, 'events', `${p}.arrow`));
      assert.ok(events.getChild('EFlowTrack.PT'), `${p} events have the Delphes columns`);
      const f = readArrow(join(out, 'features', `${p}.arrow`));
      selected[p] = f.numRows;
      assert.ok(f.numRows > 0 && f.numRows < events.numRows + 1);
      assert.deepEqual(f.schema.fields.map((x) => x.name).slice(0, 2), ['HLF_input', 'GRU_input']);
      assert.ok(ints(f, 'label').every((l) => l === PROCESSES.indexOf(p)), `${p} rows carry label ${PROCESSES.indexOf(p)}`);
    }
    const summary = JSON.parse(readFileSync(join(out, 'data', 'prepare.json'), 'utf8')) as { rows: { train: number; test: number; input: number } };
    assert.equal(summary.rows.input, Object.values(selected).reduce((a, b) => a + b, 0), 'prepare read every features row');
    const min = Math.min(...Object.values(selected));
    assert.equal(summary.rows.train + summary.rows.test, 3 * min, 'undersampled to the smallest class');
    for (const split of ['train', 'test'] as const) {
      const arrow = readArrow(join(out, 'data', `${split}.arrow`));
      assert.equal(arrow.numRows, summary.rows[split]);
      for (const fmt of ['parquet', 'tfrecord']) {
        const back = readBack(join(out, 'data', `${split}.${fmt}`));
        assert.equal(back.numRows, arrow.numRows, `${split}.${fmt} rows`);
        assert.deepEqual(ints(back, 'label'), ints(arrow, 'label'), `${split}.${fmt} labels`);
        assert.deepEqual(floats(back, 'HLF_input'), floats(arrow, 'HLF_input'), `${split}.${fmt} HLF_input`);
        assert.deepEqual(floats(back, 'GRU_input'), floats(arrow, 'GRU_input'), `${split}.${fmt} GRU_input`);
      }
    }
    const meta = JSON.parse(readFileSync(join(out, 'model', 'hep-ml-model.json'), 'utf8')) as { output: { classes: string[] } };
    assert.deepEqual(meta.output.classes, PROCESSES);
    for (const f of ['model.json', 'weights.bin', 'metrics.jsonl', 'state.json']) assert.ok(existsSync(join(out, 'model', f)), `model/${f}`);
    const epochs = readFileSync(join(out, 'model', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; workers?: number; val_rows?: number });
    assert.equal(epochs.length, 8, 'one metrics line per epoch');
    assert.ok(epochs.every((e) => e.workers === 2), 'trained by 2 workers');
    assert.equal(epochs[epochs.length - 1]!.val_rows, summary.rows.test, 'validated on every row of test.tfrecord');
    // the model reads the TFRecord test set too, and predicts what evaluate counted
    const pr = hepml('predict', '--model', join(out, 'model'), '--data', join(out, 'data', 'test.tfrecord'), '--progress', 'none', '-o', '-');
    assert.equal(pr.code, 0, pr.stderr);
    const scores = tableFromIPC(pr.stdout);
    assert.equal(scores.numRows, summary.rows.test);
    const metrics = JSON.parse(readFileSync(join(out, 'eval', 'metrics.json'), 'utf8')) as { rows: number; accuracy: number };
    assert.equal(metrics.rows, summary.rows.test);
    const pred = ints(scores, 'predicted');
    const lab = ints(scores, 'label');
    const correct = pred.reduce((n, p, i) => n + (p === lab[i] ? 1 : 0), 0);
    assert.ok(Math.abs(correct / pred.length - metrics.accuracy) < 1e-12, 'predict on TFRecord = evaluate on Parquet');
    // features output (not scaled) as TFRecord, which keeps no metadata: scaled by the model's scaler all the same
    const feat = join(out, 'features', 'wjets.arrow');
    const featTf = join(dir, 'wjets-features.tfrecord');
    assert.equal(hepml('convert', feat, '--to', 'tfrecord', '--progress', 'none', '-o', featTf).code, 0);
    const viaArrow = hepml('predict', '--model', join(out, 'model'), '--data', feat, '--progress', 'none', '-o', '-');
    const viaTf = hepml('predict', '--model', join(out, 'model'), '--data', featTf, '--progress', 'none', '-o', '-');
    assert.equal(viaTf.code, 0, viaTf.stderr);
    assert.match(viaTf.stderr, /TFRecord keeps no metadata.*scaling with the model's min-max scaler/);
    assert.deepEqual(floatsOf(tableFromIPC(viaTf.stdout), 'prob_wjets'), floatsOf(tableFromIPC(viaArrow.stdout), 'prob_wjets'));
  });

  test('the final AUC is at least 0.9 for every class; the plots are PNG and SVG', (t) => {
    assert.equal(makeRun.code, 0);
    const m = JSON.parse(readFileSync(join(out, 'eval', 'metrics.json'), 'utf8')) as { macro_auc: number; per_class: { name: string; auc: number }[] };
    t.diagnostic(`AUC ${m.per_class.map((c) => `${c.name} ${c.auc.toFixed(4)}`).join(', ')}; macro ${m.macro_auc.toFixed(4)}`);
    assert.ok(m.macro_auc >= 0.9, `macro AUC ${m.macro_auc}`);
    for (const c of m.per_class) assert.ok(c.auc >= 0.9, `${c.name} AUC ${c.auc}`);
    for (const p of ['roc', 'roc-log', 'confusion', 'scores', 'history']) {
      assert.deepEqual(readFileSync(join(out, 'eval', `${p}.png`)).subarray(0, 8), PNG, `${p}.png`);
      assert.match(readFileSync(join(out, 'eval', `${p}.svg`), 'utf8'), /^<svg /);
    }
    const csv = readFileSync(join(out, 'eval', 'roc.csv'), 'utf8').split('\n');
    assert.equal(csv[0], 'class,threshold,fpr,tpr');
  });

  test('incremental: nothing to redo; a touched file redoes exactly the stages downstream of it', () => {
    assert.equal(makeRun.code, 0);
    const dry = () => {
      const r = run('make', ['-n', '-C', 'examples', 'small', `OUT=${out}`]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.toString().split('\n');
      return lines.flatMap((l) => {
        const m = /run\.js (\w+) (\S+)/.exec(l);
        return m ? [`${m[1]} ${m[2]!.replace(out + '/', '')}`] : [];
      });
    };
    assert.deepEqual(dry(), [], 'a second make has nothing to do');
    const later = new Date(Date.now() + 5000);
    const touch = (p: string) => spawnSync('touch', ['-d', later.toISOString(), join(out, p)]);
    touch('data/test.arrow');
    assert.deepEqual(dry().sort(), ['convert data/test.arrow', 'convert data/test.arrow', 'evaluate --model', 'train --model'].sort());
    touch('features/ttbar.arrow');
    const redo = dry();
    assert.ok(redo.includes('prepare --class') && !redo.some((c) => c.startsWith('generate') || c.startsWith('features')), redo.join('; '));
  });

  test('pipe.sh twice with the same seed: identical features, and identical to the Makefile\'s', (t) => {
    assert.equal(makeRun.code, 0);
    const full = run('bash', [join(EXAMPLES, 'pipe.sh'), join(dir, 'pipe1')], { env: { MODEL: 'dnn', WORKERS: '1', EPOCHS: '3' } });
    t.diagnostic(`pipe.sh (dnn, 3 epochs): ${full.seconds.toFixed(1)} s`);
    assert.equal(full.code, 0, full.stderr);
    assert.ok(full.stderr.includes(`ROC curve: ${join(dir, 'pipe1')}/eval/roc.png`));
    assert.deepEqual(readFileSync(join(dir, 'pipe1', 'eval', 'roc.png')).subarray(0, 8), PNG);
    const scores = readBack(join(dir, 'pipe1', 'scores.parquet'));
    assert.deepEqual(scores.schema.fields.map((f) => f.name), ['event', 'label', 'predicted', 'prob_qcd', 'prob_ttbar', 'prob_wjets']);
    const second = run('bash', [join(EXAMPLES, 'pipe.sh'), join(dir, 'pipe2')], { env: { STOP: 'features' } });
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!existsSync(join(dir, 'pipe2', 'data')), 'STOP=features stops after the features');
    for (const p of PROCESSES) {
      const a = readFileSync(join(dir, 'pipe1', 'features', `${p}.arrow`));
      assert.ok(a.equals(readFileSync(join(dir, 'pipe2', 'features', `${p}.arrow`))), `${p}: the second pipe run gives the same bytes`);
      assert.ok(a.equals(readFileSync(join(out, 'features', `${p}.arrow`))), `${p}: generate | features = the Makefile's generate -o file; features file`);
    }
    const other = run('bash', [join(EXAMPLES, 'pipe.sh'), join(dir, 'pipe3')], { env: { STOP: 'features', SEED: '43', QCD_EVENTS: '2000' } });
    assert.equal(other.code, 0, other.stderr);
    assert.ok(!readFileSync(join(dir, 'pipe3', 'features', 'ttbar.arrow')).equals(readFileSync(join(dir, 'pipe1', 'features', 'ttbar.arrow'))), 'another seed, other events');
  });
});

describe('examples with real Delphes files: ingest → features', () => {
  const delphes = join(testdataDir(), 'root', 'delphes-cms-10ev.root');
  const skip = !existsSync(delphes) ? `no ${delphes}: the real-Delphes example tests are SKIPPED` : !hasMake ? 'make is not installed: SKIPPED' : false;
  test('the Makefile (ingest -o file, features file) and pipe.sh (ingest | features) give the same rows', { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'hepml-examples-real-'));
    try {
      const vars = { DELPHES_QCD: delphes, DELPHES_TTBAR: `${delphes} ${delphes}`, DELPHES_WJETS: delphes, MUONS: 'Muon' };
      const m = run('make', ['-C', 'examples', 'features', `OUT=${join(dir, 'make')}`, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)]);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout.toString(), /run\.js ingest .*delphes-cms-10ev\.root --tree Delphes -b EFlowTrack\.PT/);
      assert.doesNotMatch(m.stdout.toString(), /run\.js generate/);
      const p = run('bash', [join(EXAMPLES, 'pipe.sh'), join(dir, 'pipe')], { env: { ...vars, STOP: 'features' } });
      assert.equal(p.code, 0, p.stderr);
      for (const proc of PROCESSES) {
        const a = readFileSync(join(dir, 'make', 'features', `${proc}.arrow`));
        assert.ok(a.equals(readFileSync(join(dir, 'pipe', 'features', `${proc}.arrow`))), proc);
      }
      const one = readArrow(join(dir, 'make', 'features', 'qcd.arrow'));
      const two = readArrow(join(dir, 'make', 'features', 'ttbar.arrow'));
      assert.ok(one.numRows > 0, 'some of the 10 events pass the selection');
      assert.equal(two.numRows, 2 * one.numRows, 'two files are one chain');
      assert.ok(readdirSync(join(dir, 'make', 'events')).length === 3 && statSync(join(dir, 'make', 'events', 'qcd.arrow')).size > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
