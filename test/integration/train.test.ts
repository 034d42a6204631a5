/**
 * `hep-ml train` on generated events (generate | features --recipe corrected → prepare): the inclusive
 * model learns (AUC computed here, from the saved model's predictions), the model directory is complete,
 * resume continues the uninterrupted run, and user mistakes are clear errors with the right exit codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { hepml, makeRecipeData, sh } from '../helpers/recipe-data.js';
import { loadEngine } from '../../src/train/engine.js';
import { loadModelDir } from '../../src/train/model-io.js';
import { predictDatasets, train } from '../../src/train/trainer.js';
import { decodeEventFile } from '../../src/train/tensorboard.js';

/** One-vs-rest AUC by counting pairs (independent of src/train/metrics.ts). */
function pairAuc(score: number[], pos: boolean[]): number {
  const p = score.filter((_, i) => pos[i]);
  const n = score.filter((_, i) => !pos[i]);
  let s = 0;
  for (const a of p) for (const b of n) s += a > b ? 1 : a === b ? 0.5 : 0;
  return s / (p.length * n.length);
}

let dir = '';
let prep = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hepml-train-'));
  prep = makeRecipeData(dir);
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hep-ml train', () => {
  test('the inclusive model learns: AUC ≥ 0.9 per class on the test split after 4 short epochs; the model directory is complete', async (t) => {
    const out = join(dir, 'incl');
    const r = sh(`${hepml} train --model inclusive --data ${prep}/train.arrow --validation ${prep}/test.arrow --out ${out} --epochs 4 --lr 0.003 --seed 1 --json`);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { epochs: { epoch: number; loss: number; val_auc: Record<string, number> }[]; params: number; peakRssMb: number };
    assert.equal(res.params, 12353);
    t.diagnostic(`peak RSS ${res.peakRssMb} MB`);
    assert.ok(res.peakRssMb < 1024, `peak RSS ${res.peakRssMb} MB (the issue asks < 1 GB for the inclusive model at batch 128)`);
    assert.equal(res.epochs.length, 4);
    assert.ok(res.epochs[3]!.loss < res.epochs[0]!.loss, 'the training loss falls');
    t.diagnostic(r.stderr.split('\n').filter((l) => /epoch \d:/.test(l)).join('\n'));

    // independent AUC from the saved model's predictions
    await loadEngine();
    const { model, meta } = await loadModelDir(out);
    assert.deepEqual(meta.output.classes, ['qcd', 'ttbar', 'wjets']);
    assert.deepEqual(meta.inputs.map((i) => i.column), ['GRU_input', 'HLF_input']);
    assert.equal(meta.training?.epochs, 4);
    assert.equal((meta.recipe as { options?: { recipe?: string } }).options?.recipe, 'corrected');
    assert.equal((meta.scaler as { column?: string }).column, 'HLF_input');
    const { prob, labels } = await predictDatasets(model, meta.inputs, 3, [join(prep, 'test.arrow')]);
    for (let k = 0; k < 3; k++) {
      const score = Array.from(labels, (_, i) => prob[i * 3 + k]!);
      const a = pairAuc(score, Array.from(labels, (y) => y === k));
      t.diagnostic(`AUC ${meta.output.classes[k]} = ${a.toFixed(4)} (trainer said ${res.epochs[3]!.val_auc[meta.output.classes[k]!]!.toFixed(4)})`);
      assert.ok(a >= 0.9, `AUC ${k} = ${a}`);
      assert.ok(Math.abs(a - res.epochs[3]!.val_auc[meta.output.classes[k]!]!) < 1e-6, 'the trainer computes the same AUC');
    }

    for (const f of ['model.json', 'weights.bin', 'hep-ml-model.json', 'metrics.jsonl', 'state.json']) assert.ok(existsSync(join(out, f)), f);
    assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['epoch-0001', 'epoch-0002', 'epoch-0003', 'epoch-0004']);
    for (const f of ['model.json', 'weights.bin', 'hep-ml-model.json', 'optimizer.json', 'optimizer.bin']) assert.ok(existsSync(join(out, 'checkpoints', 'epoch-0004', f)), f);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number });
    assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3, 4]);
    const tbFiles = readdirSync(join(out, 'tensorboard'));
    assert.equal(tbFiles.length, 1);
    const events = decodeEventFile(readFileSync(join(out, 'tensorboard', tbFiles[0]!)));
    const loss = events.flatMap((e) => e.scalars.filter((s) => s.tag === 'loss').map((s) => [e.step, s.value]));
    assert.deepEqual(loss.map((l) => l[0]), [1, 2, 3, 4]);
    assert.ok(Math.abs(loss[3]![1]! - res.epochs[3]!.loss) < 1e-6);
    assert.ok(events.some((e) => e.scalars.some((s) => s.tag === 'val_auc/ttbar')));
    assert.ok(!readdirSync(out).some((f) => f.startsWith('.')), 'no temporary files left');
  });

  test('resume: 1 epoch + --resume to 2 equals 2 epochs straight (weights, metrics, dropout masks, shuffle)', async () => {
    const common = { model: 'inclusive' as const, data: [join(prep, 'train.arrow')], lr: 0.002, seed: 3, engine: 'cpu' as const, shuffleRows: 500 };
    const a = await train({ ...common, out: join(dir, 'straight'), epochs: 2 });
    await train({ ...common, out: join(dir, 'resumed'), epochs: 1 });
    const b = await train({ ...common, out: join(dir, 'resumed'), epochs: 2, resume: true });
    assert.equal(b.epochs.length, 2);
    assert.equal(b.epochs[0]!.loss, a.epochs[0]!.loss, 'epoch 1 is the same run');
    assert.ok(Math.abs(b.epochs[1]!.loss - a.epochs[1]!.loss) < 1e-5 * a.epochs[1]!.loss, `epoch 2 loss ${b.epochs[1]!.loss} vs ${a.epochs[1]!.loss}`);
    const wa = readFileSync(join(dir, 'straight', 'weights.bin'));
    const wb = readFileSync(join(dir, 'resumed', 'weights.bin'));
    const fa = new Float32Array(wa.buffer, wa.byteOffset, wa.length / 4);
    const fb = new Float32Array(wb.buffer, wb.byteOffset, wb.length / 4);
    let max = 0;
    for (let i = 0; i < fa.length; i++) max = Math.max(max, Math.abs(fa[i]! - fb[i]!));
    assert.ok(max < 1e-5, `max |Δw| = ${max}`);
    // and a different seed really gives a different run (the comparison above is not vacuous)
    const c = await train({ ...common, seed: 4, out: join(dir, 'other'), epochs: 1 });
    assert.notEqual(c.epochs[0]!.loss, a.epochs[0]!.loss);
    const lines = readFileSync(join(dir, 'resumed', 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(readdirSync(join(dir, 'resumed', 'tensorboard')).length, 2, 'a second event file for the resumed run');
  });

  test('Ctrl-C: stops after the current batch with exit 130; the last completed epoch stays and --resume continues from it', async () => {
    const out = join(dir, 'interrupted');
    const child = spawn('node', [BIN, 'train', '--model', 'dnn', '--data', `${prep}/train.arrow`, '--out', out, '--epochs', '100000', '--progress', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    for (let i = 0; i < 600 && !existsSync(join(out, 'state.json')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(join(out, 'state.json')), `no epoch completed: ${stderr}`);
    child.kill('SIGINT');
    assert.equal(await code, 130, stderr);
    assert.match(stderr, /stopped; .* holds the last completed epoch \(continue with --resume\)/);
    const state = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')) as { epoch: number };
    assert.ok(state.epoch >= 1);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, state.epoch, 'one metrics line per committed epoch');
    const r = sh(`${hepml} train --model dnn --data ${prep}/train.arrow --out ${out} --epochs ${state.epoch + 1} --resume --json --progress none`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { epochs: { epoch: number }[] }).epochs.map((e) => e.epoch), Array.from({ length: state.epoch + 1 }, (_, i) => i + 1));
  });

  test('the DNN trains on Parquet written by convert (list<double> layout) as well as on Arrow', () => {
    const pq = join(dir, 'train.parquet');
    let r = sh(`${hepml} convert ${prep}/train.arrow --to parquet --layout sparkdltrigger -o ${pq}`);
    assert.equal(r.code, 0, r.stderr);
    r = sh(`${hepml} train --model dnn --data ${pq} --validation ${prep}/test.arrow --out ${dir}/dnn --epochs 2 --lr 0.01 --json --progress none`);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { epochs: { rows: number; val_auc: Record<string, number> }[] };
    assert.equal(res.epochs[0]!.rows, JSON.parse(readFileSync(join(prep, 'prepare.json'), 'utf8')).rows.train);
    assert.ok(Object.values(res.epochs[1]!.val_auc).every((a) => a > 0.8), JSON.stringify(res.epochs[1]!.val_auc));
  });

  test('mistakes: a non-empty --out (exit 2), --resume with nothing to resume (exit 3), missing columns (exit 8), unlabelled rows (exit 2)', () => {
    writeFileSync(join(dir, 'junk.txt'), 'x');
    let r = sh(`${hepml} train --model dnn --data ${prep}/train.arrow --out ${dir} --epochs 1`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is not empty: use --resume .* or --overwrite/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    r = sh(`${hepml} train --model dnn --data ${prep}/train.arrow --out ${dir}/nothing --epochs 2 --resume`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /no state\.json/);
    // the features output of one process has no label
    r = sh(`${hepml} train --model dnn --data ${dir}/qcd.arrow --out ${dir}/unlabelled --epochs 1`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /label -1 \(no class/);
    // an ingest-like file without the model's columns
    r = sh(`${hepml} convert ${prep}/test.arrow --to arrow -o - | ${hepml} train --model gru --data - --out ${dir}/x --epochs 2`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /standard input can be read once/);
    r = sh(`${hepml} train --model gru --data ${prep}/scaler.json --out ${dir}/y --epochs 1`);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.equal(r.stdout, '');
  });
});
