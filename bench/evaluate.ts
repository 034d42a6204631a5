/**
 * Evaluate benchmark, one thread:
 *   - metrics: evaluateScores() on BENCH_EVENTS events × 3 classes of synthetic float32 probabilities (every
 *     number evaluate reports: three exact ROC curves, working points, confusion, histograms, loss).
 *     Baseline in the same run: the textbook exact ROC — an index array sorted with a comparator, then one
 *     walk per class (what src/train/metrics.ts rocAuc does) — for the three AUCs alone.
 *   - plots: the five figures (SVG + PNG at 2×) from those metrics.
 *   - predict: predict() of an (untrained) DNN over BENCH_PREDICT_EVENTS rows of HLF_input[14] in an Arrow
 *     file → Arrow; baseline: model.predict alone on as many rows already in memory (the compute floor: what
 *     streaming, conversion and writing add on top), and the reader alone (streamBatches, the I/O floor).
 * Prints one JSON document on stdout. Env: BENCH_EVENTS (default 1,000,000), BENCH_PREDICT_EVENTS (200,000),
 * BENCH_SECONDS (min seconds per measurement, default 2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { medianTime } from './lib.js';
import { openFileSink } from '../src/convert/dataset.js';
import { evaluateScores } from '../src/evaluate/metrics.js';
import { evaluationPlots } from '../src/evaluate/plots.js';
import { predict } from '../src/evaluate/predict.js';
import { openModel } from '../src/evaluate/model.js';
import { streamBatches } from '../src/train/data.js';
import { loadEngine } from '../src/train/engine.js';
import { rocAuc } from '../src/train/metrics.js';
import { buildModel, countParams, modelInputs } from '../src/train/models.js';
import { saveModelDir, MODEL_FORMAT, MODEL_VERSION, type ModelMeta } from '../src/train/model-io.js';
import { Rng } from '../src/prepare/rng.js';

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const NP = Number(process.env.BENCH_PREDICT_EVENTS ?? 200_000);
const minSeconds = Number(process.env.BENCH_SECONDS ?? 2);
const CLASSES = ['QCD', 'tt', 'WJets'];
const log = (s: string) => process.stderr.write(`${s}\n`);
const rate = (n: number, s: number) => Math.round(n / s);

// synthetic scores: softmax of Gaussian logits shifted for the true class (AUC ≈ 0.95)
const rng = new Rng(7);
const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const prob = new Float32Array(N * 3);
const labels = new Int32Array(N);
for (let i = 0; i < N; i++) {
  const y = rng.below(3);
  labels[i] = y;
  const z = [0, 1, 2].map((k) => Math.exp(normal() + (k === y ? 2.5 : 0)));
  const s = z[0]! + z[1]! + z[2]!;
  for (let k = 0; k < 3; k++) prob[i * 3 + k] = z[k]! / s;
}

log(`metrics: ${N.toLocaleString('en-US')} events × 3 classes`);
let ev = evaluateScores(prob, labels, CLASSES);
const tMetrics = await medianTime(() => void (ev = evaluateScores(prob, labels, CLASSES)), { minSeconds, minRuns: 3 });
const score = new Float32Array(N);
const pos = new Uint8Array(N);
const baseAuc: number[] = [];
const tBase = await medianTime(
  () => {
    baseAuc.length = 0;
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < N; i++) {
        score[i] = prob[i * 3 + k]!;
        pos[i] = labels[i] === k ? 1 : 0;
      }
      baseAuc.push(rocAuc(score, pos));
    }
  },
  { minSeconds, minRuns: 3 },
);
for (let k = 0; k < 3; k++) {
  if (Math.abs(baseAuc[k]! - ev.per_class[k]!.auc!) > 1e-9) throw new Error(`AUC mismatch for class ${k}: ${baseAuc[k]} vs ${ev.per_class[k]!.auc}`);
}

log('plots: five figures, SVG + PNG');
const plotInput = {
  classes: CLASSES,
  title: 'bench',
  roc: ev.roc,
  confusion: ev.confusion,
  scores: ev.scores,
  history: Array.from({ length: 20 }, (_, e) => ({ epoch: e + 1, loss: 1 / (e + 1), accuracy: 1 - 0.5 / (e + 1), val_loss: 1.1 / (e + 1), val_accuracy: 1 - 0.6 / (e + 1) })),
};
await evaluationPlots(plotInput); // wasm init
const tPlots = await medianTime(() => evaluationPlots(plotInput), { minSeconds, minRuns: 3 });
const rocPoints = ev.roc.reduce((a, c) => a + (c?.fpr.length ?? 0), 0);

log(`predict: DNN over ${NP.toLocaleString('en-US')} rows of HLF_input[14]`);
const dir = mkdtempSync(join(tmpdir(), 'hepml-bench-eval-'));
try {
  const eng = await loadEngine();
  const data = join(dir, 'data.arrow');
  const sink = await openFileSink(
    data,
    'arrow',
    [
      { name: 'HLF_input', type: { kind: 'fixed', size: 14, child: { kind: 'primitive', dtype: 'float32' } } },
      { name: 'label', type: { kind: 'primitive', dtype: 'int32' } },
    ],
    { compression: 'none', metadata: {} },
  );
  for (let at = 0; at < NP; at += 4096) {
    const n = Math.min(4096, NP - at);
    const x = new Float32Array(n * 14).map(() => rng.next());
    const y = Int32Array.from({ length: n }, () => rng.below(3));
    await sink.write({
      entryStart: at,
      entryStop: at + n,
      columns: [
        { name: 'HLF_input', data: { kind: 'fixed', size: 14, child: { kind: 'primitive', dtype: 'float32', values: x } } },
        { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: y } },
      ],
    });
  }
  await sink.close();
  const model = await buildModel('dnn', { seed: 1 });
  const inputs = modelInputs('dnn');
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    hepml: 'bench',
    created: new Date().toISOString(),
    model: 'dnn',
    inputs: inputs.map((i) => ({ ...i, dtype: 'float32' as const })),
    output: { name: 'output', classes: CLASSES },
    params: countParams(model),
  };
  const modelDir = join(dir, 'model');
  await saveModelDir(model, meta, modelDir);
  const out = join(dir, 'scores.arrow');
  const tPredict = await medianTime(() => predict({ model: modelDir, data: [data], output: out }), { minSeconds, minRuns: 3, before: () => rm(out, { force: true }) });
  // the compute floor: the same model on the same number of rows already in memory, batch by batch
  const loaded = await openModel(modelDir);
  const xb = eng.tf.tensor2d(new Float32Array(1024 * 14).map(() => rng.next()), [1024, 14]);
  const tInfer = await medianTime(
    async () => {
      for (let at = 0; at < NP; at += 1024) {
        const p = loaded.model.predict(xb) as import('@tensorflow/tfjs').Tensor;
        await p.data();
        p.dispose();
      }
    },
    { minSeconds, minRuns: 3 },
  );
  xb.dispose();
  const tRead = await medianTime(
    async () => {
      for await (const _ of streamBatches([data], { inputs, classes: 3 }, { batchSize: 1024, shuffleRows: 0 })) void _;
    },
    { minSeconds, minRuns: 3 },
  );

  process.stdout.write(
    JSON.stringify(
      {
        stage: 'evaluate',
        engine: eng.name,
        metrics: {
          events: N,
          classes: 3,
          seconds: +tMetrics.median.toFixed(3),
          events_per_s: rate(N, tMetrics.median),
          roc_points_kept: rocPoints,
          baseline: { what: 'comparator index sort + walk, AUC only (src/train/metrics.ts rocAuc)', seconds: +tBase.median.toFixed(3), events_per_s: rate(N, tBase.median) },
          speedup: +(tBase.median / tMetrics.median).toFixed(2),
        },
        plots: { figures: 5, seconds: +tPlots.median.toFixed(3) },
        predict: {
          events: NP,
          model: 'dnn',
          seconds: +tPredict.median.toFixed(3),
          events_per_s: rate(NP, tPredict.median),
          baseline: { what: 'model.predict alone on the same number of rows already in memory (batches of 1024)', seconds: +tInfer.median.toFixed(3), events_per_s: rate(NP, tInfer.median) },
          fraction_of_compute_rate: +(tInfer.median / tPredict.median).toFixed(3),
          read_only: { what: 'reading the same rows (streamBatches), no model', seconds: +tRead.median.toFixed(3), events_per_s: rate(NP, tRead.median) },
        },
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      },
      null,
      2,
    ) + '\n',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
