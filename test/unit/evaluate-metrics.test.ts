/**
 * evaluate's metrics against scikit-learn on the same float32 scores: ROC points (fpr, tpr, thresholds of
 * roc_curve with drop_intermediate), AUC, macro/weighted one-vs-rest AUC, confusion matrix, precision /
 * recall / F1, log loss, and working points (from sklearn's full curve). Cases include heavy ties, all-equal
 * scores, perfect separation, a class without events and a single-class dataset.
 *
 * Needs python3 with scikit-learn (Debian python3-sklearn; .ci/run installs it): skipped loudly without.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/prepare/rng.js';
import { evaluateScores, type Evaluation } from '../../src/evaluate/metrics.js';
import { rocCurve } from '../../src/evaluate/roc.js';
import { rocCsv, formatTable } from '../../src/evaluate/report.js';

const CLASSES = ['QCD', 'tt', 'WJets'];

/** A standard normal draw (Box–Muller). */
const normal = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const TARGETS = [0.01, 0.001, 0.1];

interface Case {
  name: string;
  prob: Float32Array;
  labels: Int32Array;
}

function softmaxCase(name: string, n: number, sep: number, seed: number, round?: number, labelOf?: (i: number, rng: Rng) => number): Case {
  const rng = new Rng(seed);
  const prob = new Float32Array(n * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = labelOf ? labelOf(i, rng) : rng.below(3);
    labels[i] = y;
    const z = [0, 1, 2].map((k) => normal(rng) + (k === y ? sep : 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e[0]! + e[1]! + e[2]!;
    for (let k = 0; k < 3; k++) {
      let p = e[k]! / s;
      if (round) p = Math.round(p * round) / round;
      prob[i * 3 + k] = p;
    }
  }
  return { name, prob, labels };
}

const cases: Case[] = [
  softmaxCase('random', 4000, 1.5, 1),
  softmaxCase('heavy ties (one decimal)', 3000, 1.0, 2, 10),
  softmaxCase('heavy ties (two decimals), imbalanced', 5000, 2.0, 3, 100, (i, r) => (r.next() < 0.8 ? 0 : r.next() < 0.7 ? 1 : 2)),
  softmaxCase('well separated', 20000, 4.0, 4),
  { name: 'all scores equal', prob: new Float32Array(300 * 3).fill(1 / 3), labels: Int32Array.from({ length: 300 }, (_, i) => i % 3) },
  {
    name: 'perfect separation',
    prob: Float32Array.from({ length: 90 * 3 }, (_, j) => (Math.floor(j / 3) % 3 === j % 3 ? 0.8 : 0.1)),
    labels: Int32Array.from({ length: 90 }, (_, i) => i % 3),
  },
  softmaxCase('class WJets has no events', 500, 1.0, 5, undefined, (_, r) => r.below(2)),
  softmaxCase('one class only', 200, 1.0, 6, undefined, () => 0),
  softmaxCase('tiny', 4, 1.0, 7),
];

const PY = String.raw`
import json, sys, warnings
import numpy as np
from sklearn.preprocessing import label_binarize
from sklearn.metrics import roc_curve, roc_auc_score, auc, confusion_matrix, precision_recall_fscore_support, log_loss
warnings.simplefilter('ignore')
spec = json.load(open(sys.argv[1]))
out = []
for c in spec['cases']:
    prob = np.fromfile(c['prob'], dtype='<f4').reshape(-1, 3)
    y = np.fromfile(c['labels'], dtype='<i4')
    r = {'classes': []}
    for k in range(3):
        pos = (y == k).astype(int)
        if pos.sum() == 0 or pos.sum() == len(y):
            r['classes'].append(None)
            continue
        fpr, tpr, thr = roc_curve(pos, prob[:, k])
        ffpr, ftpr, fthr = roc_curve(pos, prob[:, k], drop_intermediate=False)
        wps = []
        for t in spec['targets']:
            ok = np.where(ffpr <= t)[0]
            j = ok[-1]
            wps.append({'sig_eff': float(ftpr[j]), 'bkg_eff_actual': float(ffpr[j]), 'threshold': None if j == 0 else float(fthr[j])})
        r['classes'].append({'fpr': fpr.tolist(), 'tpr': tpr.tolist(), 'thr': thr[1:].astype(float).tolist(),
                             'auc': float(auc(fpr, tpr)), 'auc_score': float(roc_auc_score(pos, prob[:, k])), 'wps': wps})
    present = sorted(set(y.tolist()))
    if len(present) == 3:
        # one-vs-rest over the label indicator matrix (multi_class='ovr' also insists that rows sum to 1)
        Y = label_binarize(y, classes=[0, 1, 2])
        r['macro'] = float(roc_auc_score(Y, prob, average='macro'))
        r['weighted'] = float(roc_auc_score(Y, prob, average='weighted'))
        if abs(prob.sum(axis=1) - 1).max() < 1e-6:
            r['macro_ovr'] = float(roc_auc_score(y, prob, multi_class='ovr', average='macro'))
    pred = prob.argmax(axis=1)
    r['confusion'] = confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()
    p, rc, f, s = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    r['precision'] = p.tolist(); r['recall'] = rc.tolist(); r['f1'] = f.tolist(); r['support'] = s.tolist()
    r['accuracy'] = float((pred == y).mean())
    p64 = prob.astype(np.float64)
    # Keras: normalise each row, then clip; sklearn clips first (the same unless a probability is below 1e-7)
    r['keras_loss'] = float(np.mean(-np.log(np.clip(p64[np.arange(len(y)), y] / p64.sum(axis=1), 1e-7, 1 - 1e-7))))
    if p64.min() > 1e-7:
        r['log_loss'] = float(log_loss(y, p64, labels=[0, 1, 2], eps=1e-7))
    out.append(r)
print(json.dumps(out))
`;

/** A Python with scikit-learn: $HEPML_PYTHON, Debian's /usr/bin/python3 (python3-sklearn), or python3 on PATH. */
function sklearnPython(): { python: string; version: string } | undefined {
  for (const python of [process.env.HEPML_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!python) continue;
    const r = spawnSync(python, ['-c', 'import sklearn; print(sklearn.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python, version: r.stdout.trim() };
  }
  return undefined;
}

interface SkClass {
  fpr: number[];
  tpr: number[];
  thr: number[];
  auc: number;
  auc_score: number;
  wps: { sig_eff: number; bkg_eff_actual: number; threshold: number | null }[];
}
interface SkResult {
  classes: (SkClass | null)[];
  macro?: number;
  weighted?: number;
  macro_ovr?: number;
  confusion: number[][];
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
  accuracy: number;
  keras_loss: number;
  log_loss?: number;
}

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

describe('evaluate metrics vs scikit-learn', () => {
  const py = sklearnPython();
  let sk: SkResult[] = [];
  let ours: Evaluation[] = [];
  before(() => {
    if (!py) return;
    const dir = mkdtempSync(join(tmpdir(), 'hepml-sk-'));
    try {
      const spec = {
        targets: TARGETS,
        cases: cases.map((c, i) => {
          const prob = join(dir, `p${i}.f32`);
          const labels = join(dir, `y${i}.i32`);
          writeFileSync(prob, new Uint8Array(c.prob.buffer, c.prob.byteOffset, c.prob.byteLength));
          writeFileSync(labels, new Uint8Array(c.labels.buffer, c.labels.byteOffset, c.labels.byteLength));
          return { prob, labels };
        }),
      };
      writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
      writeFileSync(join(dir, 'sk.py'), PY);
      sk = JSON.parse(execFileSync(py.python, [join(dir, 'sk.py'), join(dir, 'spec.json')], { encoding: 'utf8', maxBuffer: 1 << 28 })) as SkResult[];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    ours = cases.map((c) => evaluateScores(c.prob, c.labels, CLASSES, { bkgEffs: TARGETS }));
  });

  if (!py) {
    test('scikit-learn comparison', (t) => {
      process.stderr.write('SKIPPED: python3 with scikit-learn is not installed (apt-get install python3-sklearn; .ci/run does)\n');
      t.skip('python3-sklearn not installed');
    });
    return;
  }

  cases.forEach((c, ci) => {
    test(`${c.name}: ROC points, AUC, working points`, () => {
      const s = sk[ci]!;
      const e = ours[ci]!;
      for (let k = 0; k < 3; k++) {
        const ref = s.classes[k];
        const roc = e.roc[k];
        if (ref === null) {
          assert.equal(roc, undefined, `class ${k}: sklearn has no curve`);
          assert.equal(e.per_class[k]!.auc, null);
          continue;
        }
        assert.ok(roc, `class ${k}: a curve`);
        assert.deepEqual(Array.from(roc.fpr), ref.fpr, `class ${k} fpr`);
        assert.deepEqual(Array.from(roc.tpr), ref.tpr, `class ${k} tpr`);
        assert.deepEqual(Array.from(roc.thresholds.subarray(1)), ref.thr, `class ${k} thresholds`);
        assert.equal(roc.thresholds[0], Infinity);
        near(roc.auc, ref.auc, 1e-12, `class ${k} AUC vs sklearn auc()`);
        near(roc.auc, ref.auc_score, 1e-12, `class ${k} AUC vs roc_auc_score`);
        e.per_class[k]!.working_points.forEach((w, j) => {
          assert.equal(w.sig_eff, ref.wps[j]!.sig_eff, `class ${k} ε_S at ${TARGETS[j]}`);
          assert.equal(w.bkg_eff_actual, ref.wps[j]!.bkg_eff_actual);
          assert.equal(w.threshold, ref.wps[j]!.threshold);
          assert.ok(w.bkg_eff_actual! <= TARGETS[j]!);
        });
      }
    });

    test(`${c.name}: confusion, precision/recall/F1, accuracy, loss, macro AUC`, () => {
      const s = sk[ci]!;
      const e = ours[ci]!;
      assert.deepEqual(e.confusion, s.confusion);
      for (let k = 0; k < 3; k++) {
        const p = e.per_class[k]!;
        assert.equal(p.support, s.support[k]);
        // sklearn reports 0 where it divides by zero (zero_division=0); we report null
        near(p.precision ?? 0, s.precision[k]!, 1e-15, `precision ${k}`);
        near(p.recall ?? 0, s.recall[k]!, 1e-15, `recall ${k}`);
        near(p.f1 ?? 0, s.f1[k]!, 1e-12, `f1 ${k}`);
        if (s.support[k] === 0) assert.equal(p.recall, null);
      }
      near(e.accuracy, s.accuracy, 1e-15, 'accuracy');
      near(e.loss, s.keras_loss, 1e-9 * Math.max(1, s.keras_loss), 'loss (Keras definition)');
      if (s.log_loss !== undefined) near(e.loss, s.log_loss, 1e-9 * Math.max(1, s.log_loss), 'loss vs sklearn log_loss');
      if (s.macro !== undefined) {
        near(e.macro_auc!, s.macro, 1e-12, 'macro AUC');
        near(e.weighted_auc!, s.weighted!, 1e-12, 'weighted AUC');
        if (s.macro_ovr !== undefined) near(e.macro_auc!, s.macro_ovr, 1e-12, "macro AUC vs multi_class='ovr'");
      }
    });
  });

  test('undefined curves are explained, not zero', () => {
    const none = ours[cases.findIndex((c) => c.name === 'class WJets has no events')]!;
    assert.equal(none.per_class[2]!.auc, null);
    assert.match(none.warnings.join('\n'), /class WJets has no events/);
    assert.ok(none.macro_auc !== null && none.macro_auc > 0.5, 'macro AUC over the defined classes');
    const one = ours[cases.findIndex((c) => c.name === 'one class only')]!;
    assert.deepEqual(one.per_class.map((p) => p.auc), [null, null, null]);
    assert.equal(one.macro_auc, null);
    assert.match(one.warnings.join('\n'), /every event is of class QCD/);
    assert.match(formatTable(one, 'x'), /warning: every event is of class QCD/);
  });
});

describe('ROC details', () => {
  test('AUC equals the Mann–Whitney statistic with ties counted half', () => {
    const rng = new Rng(11);
    const n = 3000;
    const s = Float32Array.from({ length: n }, () => Math.round(rng.next() * 20) / 20);
    const pos = Uint8Array.from({ length: n }, (_, i) => (rng.next() < 0.3 + 0.5 * s[i]! ? 1 : 0));
    let num = 0;
    let np = 0;
    let nn = 0;
    for (let i = 0; i < n; i++) if (pos[i]) np++;
    nn = n - np;
    for (let i = 0; i < n; i++) {
      if (!pos[i]) continue;
      for (let j = 0; j < n; j++) if (!pos[j]) num += s[i]! > s[j]! ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
    const r = rocCurve('x', s, (i) => pos[i] === 1, n)!;
    near(r.curve.auc, num / (np * nn), 1e-12, 'AUC');
  });

  test('negative and large scores sort correctly (logits, not probabilities)', () => {
    const s = Float32Array.of(-3e30, -2.5, -0.0, 0, 1e-40, 7, 3e38, -1e-40);
    const pos = [0, 0, 1, 0, 1, 1, 1, 0];
    const r = rocCurve('x', s, (i) => pos[i] === 1, s.length, { dropIntermediate: false })!;
    // thresholds strictly decreasing; -0 and 0 are one threshold
    for (let k = 2; k < r.curve.thresholds.length; k++) assert.ok(r.curve.thresholds[k]! < r.curve.thresholds[k - 1]!);
    assert.equal(r.curve.thresholds.length, 1 + 7);
    assert.equal(r.curve.auc, 15.5 / 16); // the positive -0 ties with the negative 0, every other pair is ordered
  });

  test('NaN scores are refused', () => {
    assert.throws(() => rocCurve('x', Float32Array.of(0.1, NaN), (i) => i === 0, 2), /event 1 is NaN/);
    assert.throws(() => evaluateScores(Float32Array.of(0.5, NaN), Int32Array.of(0), ['a', 'b']), /event 0 is NaN/);
  });

  test('roc.csv: header, inf first threshold, one block per defined class', () => {
    const e = evaluateScores(cases[0]!.prob, cases[0]!.labels, CLASSES);
    const lines = rocCsv(e).trimEnd().split('\n');
    assert.equal(lines[0], 'class,threshold,fpr,tpr');
    assert.equal(lines[1], 'QCD,inf,0,0');
    assert.equal(lines.length - 1, e.roc.reduce((a, c) => a + c!.fpr.length, 0));
    for (const cls of CLASSES) assert.ok(lines.some((l) => l.startsWith(`${cls},inf,0,0`)));
    assert.ok(lines.at(-1)!.endsWith(',1,1'));
  });
});
