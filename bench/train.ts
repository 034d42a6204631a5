/**
 * Training throughput of the recipe's models at batch 128 (one Adam step per batch: forward, backward,
 * update, through tfjs' trainOnBatch), on the engine hep-ml picks, with hep-ml's fused GRU layer and — the
 * baseline, in the same run — with stock tfjs-layers Masking + GRU (reset_after=false; the closest model
 * tfjs-layers can build). Lengths: realistic (100–400 real particles of 801, uniform) and full (801).
 * With Debian's python3-torch installed, PyTorch's figure for the same model (bench/train-torch.py).
 * Prints one JSON document. Usage: npm run -s bench -- train [--quick] [--no-torch]
 */
import { cpus } from 'node:os';
import { loadEngine } from '../src/train/engine.js';
import { buildModel, compileModel } from '../src/train/models.js';
import { medianTime } from './lib.js';
import { torchPeer } from './torch-peer.js';

const quick = process.argv.includes('--quick');
const noTorch = process.argv.includes('--no-torch');
const B = 128, T = 801, F = 19;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const r = rng(7);
function gruBatch(mode: 'realistic' | 'full'): { x: Float32Array; meanLength: number } {
  const x = new Float32Array(B * T * F);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    const L = mode === 'full' ? T : 100 + Math.floor(r() * 301);
    sum += L;
    for (let t = 0; t < L; t++) for (let f = 0; f < F; f++) x[(b * T + t) * F + f] = r() * 2 - 1 || 0.5;
  }
  return { x, meanLength: sum / B };
}
const hlf = Float32Array.from({ length: B * 14 }, () => r());
const labels = new Float32Array(B * 3);
for (let b = 0; b < B; b++) labels[b * 3 + (b % 3)] = 1;

const eng = await loadEngine();
const tf = eng.tf;
process.stderr.write(`bench train: ${eng.reason}\n`);

/** The same architecture with tfjs-layers' GRU (Masking + GRU, sigmoid, reset_after=false) and Dropout. */
function stockModel(kind: 'gru' | 'inclusive'): ReturnType<typeof tf.model> {
  const g = tf.input({ shape: [T, F], name: 'gru_input' });
  const m = tf.layers.masking({ maskValue: 0 }).apply(g) as ReturnType<typeof tf.input>;
  const h = tf.layers.gru({ units: 50, recurrentActivation: 'sigmoid' }).apply(m) as ReturnType<typeof tf.input>;
  const d = tf.layers.dropout({ rate: 0.2 }).apply(h) as ReturnType<typeof tf.input>;
  let model;
  if (kind === 'gru') {
    model = tf.model({ inputs: g, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(d) as ReturnType<typeof tf.input> });
  } else {
    const x = tf.input({ shape: [14], name: 'hlf_input' });
    const dx = tf.layers.dropout({ rate: 0.2 }).apply(x) as ReturnType<typeof tf.input>;
    const c = tf.layers.concatenate().apply([d, dx]) as ReturnType<typeof tf.input>;
    const dd = tf.layers.dense({ units: 25, activation: 'relu' }).apply(c) as ReturnType<typeof tf.input>;
    model = tf.model({ inputs: [g, x], outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(dd) as ReturnType<typeof tf.input> });
  }
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  return model;
}

async function stepsPerSecond(model: ReturnType<typeof tf.model>, kind: 'gru' | 'inclusive' | 'dnn', x: Float32Array, minSeconds: number, minRuns: number) {
  const xs = kind === 'dnn' ? [tf.tensor2d(hlf, [B, 14])] : kind === 'gru' ? [tf.tensor3d(x, [B, T, F])] : [tf.tensor3d(x, [B, T, F]), tf.tensor2d(hlf, [B, 14])];
  const ys = tf.tensor2d(labels, [B, 3]);
  const { median, runs } = await medianTime(() => model.trainOnBatch(xs.length === 1 ? xs[0]! : xs, ys), { minSeconds, minRuns });
  tf.dispose([...xs, ys]);
  return { samplesPerS: +(B / median).toFixed(1), stepMs: +(median * 1000).toFixed(1), runs };
}

const results: Record<string, unknown>[] = [];
const rss0 = process.memoryUsage().rss;
for (const kind of ['gru', 'inclusive'] as const) {
  for (const lengths of ['realistic', 'full'] as const) {
    const { x, meanLength } = gruBatch(lengths);
    const fast = await buildModel(kind, { seed: 1 });
    compileModel(fast, 1e-3);
    const ours = await stepsPerSecond(fast, kind, x, quick ? 2 : 6, quick ? 3 : 5);
    fast.dispose();
    // the stock GRU's cost does not depend on the lengths (it runs all 801 steps): measure it once per model
    let stock: Awaited<ReturnType<typeof stepsPerSecond>> | undefined;
    if (lengths === 'realistic') {
      const s = stockModel(kind);
      stock = await stepsPerSecond(s, kind, x, 0, quick ? 1 : 2);
      s.dispose();
    }
    const torch = noTorch ? null : await torchPeer(kind, lengths, { steps: quick ? 4 : 8 }).catch((e: Error) => (process.stderr.write(`torch peer failed: ${e.message}\n`), null));
    const row: Record<string, unknown> = {
      model: kind,
      lengths,
      mean_length: +meanLength.toFixed(1),
      hepml_samples_per_s: ours.samplesPerS,
      hepml_step_ms: ours.stepMs,
      hepml_runs: ours.runs,
    };
    if (stock) Object.assign(row, { stock_tfjs_samples_per_s: stock.samplesPerS, stock_tfjs_step_ms: stock.stepMs, speedup_vs_stock: +(ours.samplesPerS / stock.samplesPerS).toFixed(1) });
    if (torch) Object.assign(row, { pytorch_samples_per_s: +torch.samplesPerS.toFixed(1), pytorch: `torch ${torch.torch}, ${torch.blas}`, ratio_vs_pytorch: +(ours.samplesPerS / torch.samplesPerS).toFixed(2) });
    results.push(row);
    process.stderr.write(`bench train: ${JSON.stringify(row)}\n`);
  }
}
// the speed-up against stock at full length uses the same stock figure (its cost is length-independent)
for (const row of results) {
  if (row.lengths === 'full') {
    const s = results.find((x) => x.model === row.model && x.lengths === 'realistic')!;
    row.speedup_vs_stock = +((row.hepml_samples_per_s as number) / (s.stock_tfjs_samples_per_s as number)).toFixed(1);
  }
}
const dnn = await buildModel('dnn', { seed: 1 });
compileModel(dnn, 1e-3);
const dnnRate = await stepsPerSecond(dnn, 'dnn', new Float32Array(0), quick ? 1 : 3, 20);

process.stdout.write(
  JSON.stringify(
    {
      bench: 'train',
      engine: eng.name,
      batch: B,
      cpu: cpus()[0]?.model,
      cores_used: 1,
      results,
      dnn_samples_per_s: dnnRate.samplesPerS,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      rss_at_start_mb: Math.round(rss0 / 1e6),
      targets: { speedup_vs_stock: 50, samples_per_s_realistic: 200 },
    },
    null,
    2,
  ) + '\n',
);
