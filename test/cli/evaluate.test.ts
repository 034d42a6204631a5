/**
 * `hep-ml evaluate` and `hep-ml predict` end to end, through child processes, on a DNN trained on generated
 * events: the files evaluate writes, its numbers against numbers computed here from predict's output
 * (independent pair-counting AUC, confusion matrix), predict's columns and formats, the scaling of unprepared
 * data, and the one-line errors for bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hepml, makeRecipeData, sh } from '../helpers/recipe-data.js';
import { openDataset, openFileSink } from '../../src/convert/dataset.js';
import type { ColumnBatch, ColumnData } from '../../src/root/columns.js';

/** One-vs-rest AUC by counting pairs (independent of src/evaluate). */
function pairAuc(score: Float32Array, pos: boolean[]): number {
  let s = 0;
  let np = 0;
  let nn = 0;
  for (let i = 0; i < score.length; i++) {
    if (!pos[i]) continue;
    np++;
    for (let j = 0; j < score.length; j++) if (!pos[j]) s += score[i]! > score[j]! ? 1 : score[i] === score[j] ? 0.5 : 0;
  }
  nn = score.length - np;
  return s / (np * nn);
}

/** Every column of a dataset, concatenated (small files only). */
async function readColumns(path: string): Promise<{ cols: Map<string, number[]>; metadata: Record<string, string> }> {
  const { source } = await openDataset(path);
  const cols = new Map<string, number[]>();
  for await (const b of source.batches()) {
    for (const c of b.columns) {
      const d = c.data as Extract<ColumnData, { kind: 'primitive' }>;
      const arr = cols.get(c.name) ?? [];
      for (const v of d.values) arr.push(Number(v));
      cols.set(c.name, arr);
    }
  }
  const metadata = source.metadata;
  await source.close();
  return { cols, metadata };
}

/** An Arrow file with the given HLF_input width, labels and schema metadata. */
async function writeArrow(path: string, rows: number, width: number, metadata: Record<string, string> = {}): Promise<void> {
  const sink = await openFileSink(
    path,
    'arrow',
    [
      { name: 'HLF_input', type: { kind: 'fixed', size: width, child: { kind: 'primitive', dtype: 'float32' } } },
      { name: 'label', type: { kind: 'primitive', dtype: 'int32' } },
    ],
    { compression: 'none', metadata },
  );
  if (rows > 0) {
    const batch: ColumnBatch = {
      entryStart: 0,
      entryStop: rows,
      columns: [
        { name: 'HLF_input', data: { kind: 'fixed', size: width, child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(rows * width).fill(0.5) } } },
        { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: new Int32Array(rows) } },
      ],
    };
    await sink.write(batch);
  }
  await sink.close();
}

let dir = '';
let prep = '';
let model = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hepml-eval-'));
  prep = makeRecipeData(dir);
  model = join(dir, 'dnn');
  const r = sh(`${hepml} train --model dnn --data ${prep}/train.arrow --validation ${prep}/test.arrow --out ${model} --epochs 4 --lr 0.003 --seed 1 --progress none`);
  assert.equal(r.code, 0, r.stderr);
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hep-ml evaluate / predict', () => {
  test('predict writes event, label, predicted and one probability per class; evaluate agrees with numbers computed from it', async () => {
    const scores = join(dir, 'scores.arrow');
    const p = sh(`${hepml} predict --model ${model} --data ${prep}/test.arrow -o ${scores} --json`);
    assert.equal(p.code, 0, p.stderr);
    const summary = JSON.parse(p.stdout) as { rows: number; columns: string[]; format: string };
    assert.deepEqual(summary.columns, ['event', 'label', 'predicted', 'prob_qcd', 'prob_ttbar', 'prob_wjets']);
    assert.equal(summary.format, 'arrow');
    const { cols, metadata } = await readColumns(scores);
    const n = summary.rows;
    assert.ok(n > 500, `${n} test events`);
    assert.deepEqual(cols.get('event'), Array.from({ length: n }, (_, i) => i));
    const probs = ['prob_qcd', 'prob_ttbar', 'prob_wjets'].map((c) => Float32Array.from(cols.get(c)!));
    const labels = cols.get('label')!;
    for (let i = 0; i < n; i++) {
      const s = probs[0]![i]! + probs[1]![i]! + probs[2]![i]!;
      assert.ok(Math.abs(s - 1) < 1e-5, `event ${i}: probabilities sum to ${s}`);
      const best = [0, 1, 2].reduce((b, k) => (probs[k]![i]! > probs[b]![i]! ? k : b), 0);
      assert.equal(cols.get('predicted')![i], best);
    }
    assert.deepEqual(JSON.parse(metadata['hep-ml.predict']!).classes, ['qcd', 'ttbar', 'wjets']);

    const out = join(dir, 'eval');
    const r = sh(`${hepml} evaluate --model ${model} --data ${prep}/test.arrow --out ${out} --json --progress none`);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as {
      rows: number;
      accuracy: number;
      macro_auc: number;
      per_class: { name: string; auc: number; support: number; working_points: { bkg_eff: number; sig_eff: number }[] }[];
      confusion: { counts: number[][] };
    };
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).per_class, m.per_class, 'metrics.json = --json output');
    assert.equal(m.rows, n);
    const conf = [0, 1, 2].map(() => [0, 0, 0]);
    let correct = 0;
    for (let i = 0; i < n; i++) {
      conf[labels[i]!]![cols.get('predicted')![i]!]!++;
      if (labels[i] === cols.get('predicted')![i]) correct++;
    }
    assert.deepEqual(m.confusion.counts, conf);
    assert.equal(m.accuracy, correct / n);
    for (let k = 0; k < 3; k++) {
      const auc = pairAuc(probs[k]!, labels.map((y) => y === k));
      assert.ok(Math.abs(m.per_class[k]!.auc - auc) < 1e-12, `${m.per_class[k]!.name}: ${m.per_class[k]!.auc} vs ${auc}`);
      assert.ok(auc > 0.85, `the model learned: AUC ${auc}`);
      assert.deepEqual(m.per_class[k]!.working_points.map((w) => w.bkg_eff), [0.01, 0.001]);
    }
    assert.ok(Math.abs(m.macro_auc - m.per_class.reduce((a, c) => a + c.auc, 0) / 3) < 1e-15);

    const files = readdirSync(out).sort();
    for (const name of ['roc', 'roc-log', 'history', 'confusion', 'scores']) {
      assert.ok(files.includes(`${name}.svg`) && files.includes(`${name}.png`), `${name}.svg/png in ${files.join(' ')}`);
      const png = readFileSync(join(out, `${name}.png`));
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      assert.match(readFileSync(join(out, `${name}.svg`), 'utf8'), /^<svg|^<\?xml/);
    }
    assert.ok(!files.some((f) => f.startsWith('.')), 'no temp files left');
    const csv = readFileSync(join(out, 'roc.csv'), 'utf8').trimEnd().split('\n');
    assert.equal(csv[0], 'class,threshold,fpr,tpr');
    assert.ok(csv.includes('qcd,inf,0,0') && csv.includes('wjets,inf,0,0'));
  });

  test('the table on stdout; --no-plots; --bkg-eff', () => {
    const out = join(dir, 'eval-table');
    const r = sh(`${hepml} evaluate --model ${model} --data ${prep}/test.arrow --out ${out} --no-plots --bkg-eff 0.05,0.01 --progress none`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /macro AUC 0\.\d{4}/);
    assert.match(r.stdout, /^class\s+events\s+AUC\s+precision\s+recall\s+F1\s+εS @ εB=5%\s+εS @ εB=1%$/m);
    for (const c of ['qcd', 'ttbar', 'wjets']) assert.match(r.stdout, new RegExp(`^${c}\\s+[\\d,]+\\s+0\\.\\d{4}`, 'm'));
    assert.match(r.stdout, /confusion matrix \(rows: true class, columns: predicted\)/);
    assert.deepEqual(readdirSync(out).sort(), ['metrics.json', 'roc.csv']);
  });

  test('predict: Parquet by extension, an Arrow stream on stdout into a pipe, unprepared features data scaled with the model scaler', async () => {
    const pq = join(dir, 'scores.parquet');
    let r = sh(`${hepml} predict --model ${model} --data ${prep}/test.arrow -o ${pq}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(pq).subarray(0, 4).toString(), 'PAR1');
    const a = await readColumns(pq);
    const b = await readColumns(join(dir, 'scores.arrow'));
    assert.deepEqual(a.cols.get('prob_ttbar'), b.cols.get('prob_ttbar'));

    r = sh(`cat ${prep}/test.arrow | ${hepml} predict --model ${model} --data - -o - | ${hepml} convert - --to parquet -o ${join(dir, 'piped.parquet')}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readColumns(join(dir, 'piped.parquet'))).cols.get('prob_qcd'), b.cols.get('prob_qcd'));

    // features output (no prepare record, no labels): the model's scaler applies, and the QCD events look like QCD
    r = sh(`${hepml} predict --model ${model} --data ${dir}/qcd.arrow -o ${join(dir, 'qcd-scores.arrow')}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not written by hep-ml prepare; scaling HLF_input with the model's min-max scaler/);
    const q = await readColumns(join(dir, 'qcd-scores.arrow'));
    assert.ok(q.cols.get('label')!.every((y) => y === -1), 'features output without --label: label -1 (no class) kept');
    const pq0 = q.cols.get('prob_qcd')!;
    const mean = pq0.reduce((x, y) => x + y, 0) / pq0.length;
    assert.ok(mean > 0.6, `mean P(qcd) over QCD events ${mean}`);
  });

  test('bad input: one-line errors with stable exit codes, no partial outputs', async () => {
    const one = (stderr: string) => assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
    // inputs that do not match the model
    let r = sh(`${hepml} evaluate --model ${model} --data ${dir}/scores.arrow --out ${dir}/x1`);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^hep-ml evaluate: .*scores\.arrow: missing column HLF_input \(has: event, label, predicted, prob_qcd/);
    one(r.stderr);
    await writeArrow(join(dir, 'w10.arrow'), 5, 10);
    r = sh(`${hepml} predict --model ${model} --data ${dir}/w10.arrow -o ${dir}/x2.arrow`);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /w10\.arrow, column HLF_input: 10 values per row, the model's input \w+ needs 14/);
    one(r.stderr);
    assert.ok(!existsSync(join(dir, 'x2.arrow')), 'no partial output');
    // an empty dataset
    await writeArrow(join(dir, 'empty.arrow'), 0, 14);
    r = sh(`${hepml} evaluate --model ${model} --data ${dir}/empty.arrow --out ${dir}/x3`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /nothing to evaluate: .*empty\.arrow has no events/);
    one(r.stderr);
    r = sh(`${hepml} predict --model ${model} --data ${dir}/empty.arrow -o ${dir}/x4.arrow`);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(!existsSync(join(dir, 'x4.arrow')));
    // classes that are not the model's
    await writeArrow(join(dir, 'other.arrow'), 5, 14, { 'hep-ml.prepare': JSON.stringify({ labels: ['sig', 'bkg', 'other'] }) });
    r = sh(`${hepml} evaluate --model ${model} --data ${dir}/other.arrow --out ${dir}/x5`);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /the data's classes \(sig, bkg, other\) are not the model's \(qcd, ttbar, wjets\)/);
    // no model
    r = sh(`${hepml} evaluate --model ${dir}/nope --data ${prep}/test.arrow`);
    assert.equal(r.code, 3, r.stderr);
    one(r.stderr);
    // unlabelled data cannot be evaluated
    r = sh(`${hepml} evaluate --model ${model} --data ${dir}/qcd.arrow --out ${dir}/x6`);
    assert.notEqual(r.code, 0);
    one(r.stderr);
    assert.match(r.stderr, /label/);
    r = sh(`${hepml} evaluate --model ${model} --data ${prep}/test.arrow --bkg-eff 2`);
    assert.equal(r.code, 2, r.stderr);
  });
});
