#!/usr/bin/env -S npx tsx
// Renders the evaluation figures from realistic synthetic data (3 classes QCD, tt, WJets with AUCs
// ≈ 0.99, a 20-epoch history), as SVG and PNG, to look at them.
// Usage: npx tsx scripts/render-sample-plots.ts OUTDIR [events-per-class]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluationPlots } from '../src/evaluate/plots.js';
import type { EvaluationPlotsInput, HistoryPoint, RocCurve } from '../src/evaluate/types.js';

/** Deterministic uniform PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Softmax scores of a 3-class classifier: per class, normal logits shifted towards the true class. */
export function syntheticInput(perClass = 10000, seed = 1): EvaluationPlotsInput {
  const classes = ['QCD', 'tt', 'WJets'];
  const k = classes.length;
  const u = rng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const shift = [2.9, 2.6, 2.4];
  const labels: number[] = [];
  const scores: number[][] = [];
  for (let c = 0; c < k; c++) {
    for (let e = 0; e < perClass; e++) {
      const z = classes.map((_, j) => gauss() * 1.0 + (j === c ? (shift[c] as number) : 0));
      const m = Math.max(...z);
      const ex = z.map((v) => Math.exp(v - m));
      const s = ex.reduce((a, b) => a + b, 0);
      scores.push(ex.map((v) => v / s));
      labels.push(c);
    }
  }
  const n = labels.length;
  // one-vs-rest ROC curves
  const roc: RocCurve[] = classes.map((cls, c) => {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[b]?.[c] ?? 0) - (scores[a]?.[c] ?? 0));
    const P = labels.filter((l) => l === c).length;
    const N = n - P;
    const fpr = [0];
    const tpr = [0];
    const thr = [Infinity];
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < n; i++) {
      const idx = order[i] as number;
      if (labels[idx] === c) tp++;
      else fp++;
      const s = scores[idx]?.[c] ?? 0;
      const next = i + 1 < n ? (scores[order[i + 1] as number]?.[c] ?? 0) : -Infinity;
      if (next !== s) {
        fpr.push(fp / N);
        tpr.push(tp / P);
        thr.push(s);
      }
    }
    let auc = 0;
    for (let i = 1; i < fpr.length; i++) auc += (((fpr[i] as number) - (fpr[i - 1] as number)) * ((tpr[i] as number) + (tpr[i - 1] as number))) / 2;
    return {
      cls,
      fpr: Float64Array.from(fpr),
      tpr: Float64Array.from(tpr),
      thresholds: Float64Array.from(thr),
      auc,
      positives: P,
      negatives: N,
    };
  });
  // confusion (arg-max) and score histograms
  const confusion = classes.map(() => classes.map(() => 0));
  const bins = 50;
  const edges = Float64Array.from({ length: bins + 1 }, (_, b) => b / bins);
  const counts = classes.map(() => classes.map(() => new Float64Array(bins)));
  for (let i = 0; i < n; i++) {
    const s = scores[i] as number[];
    const t = labels[i] as number;
    let arg = 0;
    for (let j = 1; j < k; j++) if ((s[j] as number) > (s[arg] as number)) arg = j;
    (confusion[t] as number[])[arg]++;
    for (let j = 0; j < k; j++) {
      const b = Math.min(bins - 1, Math.floor((s[j] as number) * bins));
      (counts[j]?.[t] as Float64Array)[b]++;
    }
  }
  // a 20-epoch training log
  const history: HistoryPoint[] = [];
  for (let e = 1; e <= 20; e++) {
    const loss = 0.075 + 0.5 * Math.exp(-(e - 1) / 3.5) + 0.004 * gauss();
    const val = 0.088 + 0.42 * Math.exp(-(e - 1) / 3.2) + 0.006 * gauss() + 0.0006 * e;
    history.push({
      epoch: e,
      loss,
      accuracy: 0.975 - 0.14 * Math.exp(-(e - 1) / 3.5) + 0.0015 * gauss(),
      val_loss: val,
      val_accuracy: 0.969 - 0.11 * Math.exp(-(e - 1) / 3.2) + 0.002 * gauss(),
    });
  }
  return { classes, title: 'jet-tagger (mlp)', roc, confusion, scores: { edges, counts }, history };
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: npx tsx scripts/render-sample-plots.ts OUTDIR [events-per-class]');
    process.exit(2);
  }
  const input = syntheticInput(Number(process.argv[3] ?? 10000));
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  await evaluationPlots(input); // warm-up: wasm instantiation, JIT
  const t1 = performance.now();
  const plots = await evaluationPlots(input);
  const t2 = performance.now();
  for (const p of plots) {
    writeFileSync(join(dir, `${p.name}.svg`), p.svg);
    writeFileSync(join(dir, `${p.name}.png`), p.png);
  }
  console.log(
    `AUCs ${input.roc.map((r) => `${r?.cls}=${r?.auc.toFixed(4)}`).join(' ')}; ` +
      `${plots.length} figures: first run ${(t1 - t0).toFixed(0)} ms (wasm init included), then ${(t2 - t1).toFixed(0)} ms → ${dir}`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
