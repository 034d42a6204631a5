/**
 * `hep-ml demo`, the README's main job: the whole chain in a fresh temp folder, stdout = the ROC plot's path.
 * Run as a user would (no flags), with TMPDIR pointing at a folder the test removes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCli, type RunResult } from '../helpers/cli.js';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('hep-ml demo', () => {
  let tmp: string;
  let plain: RunResult;
  let seconds = 0;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hepml-demo-test-'));
    const t0 = performance.now();
    plain = await runCli(['demo'], { env: { TMPDIR: tmp }, timeoutMs: 400_000 });
    seconds = (performance.now() - t0) / 1000;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('with no flags: one line on stdout, the ROC plot in a new folder under the temp dir; AUC ≥ 0.9', (t) => {
    t.diagnostic(`hep-ml demo: ${seconds.toFixed(1)} s`);
    assert.equal(plain.code, 0, plain.stderr);
    const out = plain.stdout.toString();
    assert.match(out, /^[^\n]+\n$/, 'exactly one line');
    const roc = out.trim();
    const dir = dirname(dirname(roc));
    assert.equal(dirname(dir), tmp, 'a folder directly under $TMPDIR');
    assert.match(roc, /\/hep-ml-demo-[^/]+\/eval\/roc\.png$/);
    assert.deepEqual(readFileSync(roc).subarray(0, 8), PNG);
    for (const f of ['features/qcd.arrow', 'features/ttbar.arrow', 'features/wjets.arrow', 'data/train.arrow', 'data/test.arrow', 'data/scaler.json', 'data/train.parquet', 'data/test.parquet', 'data/test.tfrecord', 'model/hep-ml-model.json', 'model/weights.bin', 'eval/metrics.json', 'eval/roc.csv', 'eval/confusion.png', 'eval/history.png']) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const m = JSON.parse(readFileSync(join(dir, 'eval', 'metrics.json'), 'utf8')) as { macro_auc: number; per_class: { name: string; auc: number }[] };
    t.diagnostic(`AUC ${m.per_class.map((c) => `${c.name} ${c.auc.toFixed(4)}`).join(', ')}`);
    for (const c of m.per_class) assert.ok(c.auc >= 0.9, `${c.name} AUC ${c.auc}`);
    const epochs = readFileSync(join(dir, 'model', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { workers: number });
    assert.equal(epochs.length, 8);
    assert.ok(epochs.every((e) => e.workers === 2), 'two training processes');
    // every step reported on stderr, no progress bar off a TTY
    for (const s of ['generate | features qcd', 'prepare:', 'convert: data/train.arrow → data/train.parquet', 'train: epoch 8/8', 'evaluate:']) assert.ok(plain.stderr.includes(s), s);
    assert.doesNotMatch(plain.stderr, /\r|\x1b\[/);
  });

  test('--json: the AUCs, every step with its time and outputs; --dir an empty folder', async () => {
    const dir = join(tmp, 'json-run');
    mkdirSync(dir);
    const r = await runCli(['demo', '--dir', dir, '--events', '300', '--model', 'dnn', '--workers', '1', '--epochs', '3', '--progress', 'none', '--json'], { timeoutMs: 200_000 });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout.toString()) as { dir: string; roc: string; evaluation: { auc: Record<string, number>; rows: number }; steps: { step: string; seconds: number; outputs: string[] }[]; epochs: unknown[]; prepare: { rows: { test: number } } };
    assert.equal(j.dir, dir);
    assert.equal(j.roc, join(dir, 'eval', 'roc.png'));
    assert.deepEqual(Object.keys(j.evaluation.auc), ['qcd', 'ttbar', 'wjets']);
    assert.equal(j.evaluation.rows, j.prepare.rows.test);
    assert.equal(j.epochs.length, 3);
    assert.deepEqual(
      j.steps.map((s) => s.step),
      ['generate | features qcd', 'generate | features ttbar', 'generate | features wjets', 'prepare', 'convert train.parquet', 'convert test.parquet', 'convert test.tfrecord', 'train', 'evaluate'],
    );
    for (const s of j.steps) for (const o of s.outputs) assert.ok(existsSync(o), o);
  });

  test('a folder that is not empty, a bad --lr, too few events: exit 2, one line each', async () => {
    const full = join(tmp, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    for (const [args, msg] of [
      [['--dir', full], /is not empty/],
      [['--lr', 'fast', '--dir', join(tmp, 'x1')], /--lr: expected a positive number/],
      [['--events', '5', '--dir', join(tmp, 'x2')], /--events/],
    ] as [string[], RegExp][]) {
      const r = await runCli(['demo', ...args, '--progress', 'none']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout.length, 0);
    }
    assert.deepEqual(readdirSync(full), ['keep.txt'], 'a user folder is left alone');
  });
});
