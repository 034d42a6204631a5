/**
 * GRU op throughput: forward + backward samples/s at batch 128, 801 × 19 inputs, 50 units, one core.
 * Prints one JSON document. Usage: node --import tsx bench/gru.ts [--reps N]
 */
import { cpus } from 'node:os';
import { GruKernel, jsGru, type GruOp } from '../src/train/gru/index.js';

const B = 128, T = 801, F = 19, U = 50, G = 3 * U;
const repsArg = process.argv.indexOf('--reps');
const reps = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 7;
const only = process.argv.includes('--wasm-only');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const r = rng(42);
function batch(lengths: (b: number) => number): Float32Array {
  const x = new Float32Array(B * T * F);
  for (let b = 0; b < B; b++) {
    const L = lengths(b);
    for (let t = 0; t < L; t++) for (let f = 0; f < F; f++) x[(b * T + t) * F + f] = r() * 2 - 1 || 0.5;
  }
  return x;
}
const glorot = (n: number, fanIn: number, fanOut: number) => {
  const lim = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * lim);
};
const kernel = glorot(F * G, F, G), recurrentKernel = glorot(U * G, U, G), bias = new Float32Array(2 * G);
const dh = Float32Array.from({ length: B * U }, () => r() * 2 - 1);
const cases = {
  full: batch(() => T),
  realistic: batch(() => 100 + Math.floor(r() * 301)),
};

function measure(op: GruOp, x: Float32Array, n: number) {
  const input = { x, batch: B, steps: T, features: F, units: U, kernel, recurrentKernel, bias };
  op.forward(input); op.backward(dh); // warm-up
  const wall: number[] = [], fwd: number[] = [];
  const cpu0 = process.cpuUsage(); const w0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    op.forward(input);
    const t1 = performance.now();
    op.backward(dh);
    wall.push(performance.now() - t0); fwd.push(t1 - t0);
  }
  const cpu = process.cpuUsage(cpu0); const w = performance.now() - w0;
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
  const rows = op.lengths().reduce((s, v) => s + v, 0);
  return {
    samplesPerS: +(B / (med(wall) / 1000)).toFixed(1),
    samplesPerCpuS: +((B * n) / ((cpu.user + cpu.system) / 1e6)).toFixed(1),
    forwardMs: +med(fwd).toFixed(1), batchMs: +med(wall).toFixed(1), reps: n, meanLength: rows / B,
    // 2(F+U)G forward + 2(UG + FG + GU) backward FLOP per real row-step (gate elementwise excluded)
    gflops: +((rows * (2 * (F + U) * G + 2 * (U * G + F * G + G * U))) / (med(wall) / 1000) / 1e9).toFixed(2),
    wallVsCpu: +(w / ((cpu.user + cpu.system) / 1e3)).toFixed(2),
  };
}

const wasm = await GruKernel.load();
const out: Record<string, unknown> = { node: process.version, cpu: cpus()[0]?.model, batch: B, steps: T, features: F, units: U };
for (const [name, x] of Object.entries(cases)) {
  out[`wasm_${name}`] = measure(wasm, x, reps);
  if (!only) out[`js_${name}`] = measure(jsGru(), x, Math.max(2, Math.ceil(reps / 3)));
}
console.log(JSON.stringify(out, null, 2));
