/**
 * The fused GRU op (src/train/gru): a hand-computed two-step example, Keras Masking(0.0) semantics
 * (end padding, masked steps in the middle, all-zero samples), a finite-difference gradient check of the
 * float64 JS reference for the kernel, the recurrent kernel and both bias rows, agreement of the wasm
 * kernel and the float32 JS fallback with that reference, wasm == JS on realistic 801 × 19 batches, the
 * API's error paths, and that the shipped gru.wasm is byte-identical to a fresh build (when the pinned
 * clang is installed). No timing assertions.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GRU_WASM_URL,
  GruKernel,
  gruAvailable,
  jsGru,
  loadGru,
  type FloatArray,
  type GruForwardInput,
  type GruOp,
} from '../../src/train/gru/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Deterministic uniform [0, 1) generator (LCG). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A random problem: per sample, real rows are non-zero; rows listed in `masked` are zeroed; then padding. */
function problem(
  seed: number,
  dims: { B: number; T: number; F: number; U: number },
  lengths: number[],
  masked: Array<[b: number, t: number]> = [],
  scale = 1,
): GruForwardInput {
  const r = rng(seed);
  const { B, T, F, U } = dims;
  const G = 3 * U;
  const x = new Float64Array(B * T * F);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < lengths[b]; t++) for (let f = 0; f < F; f++) x[(b * T + t) * F + f] = (r() * 2 - 1) || 0.25;
  for (const [b, t] of masked) x.fill(0, (b * T + t) * F, (b * T + t + 1) * F);
  const u = (n: number, a: number) => Float64Array.from({ length: n }, () => (r() * 2 - 1) * a);
  return {
    x, batch: B, steps: T, features: F, units: U,
    kernel: u(F * G, 0.8 * scale), recurrentKernel: u(U * G, 0.8 * scale), bias: u(2 * G, 0.5 * scale),
  };
}

const f32 = (a: FloatArray): Float32Array => Float32Array.from(a);
const asF32 = (p: GruForwardInput): GruForwardInput => ({
  ...p, x: f32(p.x), kernel: f32(p.kernel), recurrentKernel: f32(p.recurrentKernel), bias: f32(p.bias),
});

/** max |a - b| / max |b| (0 when b is all zero and a equals it). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? d : d / s;
}

let wasm: GruKernel;
before(async () => {
  assert.ok(gruAvailable(), 'WebAssembly SIMD must be available on Node 20');
  wasm = await GruKernel.load();
});

/** The implementations under test, created lazily (wasm is loaded in before()). */
const ops = (): Array<[string, GruOp]> => [['wasm', wasm], ['js', jsGru()]];

describe('GRU op: semantics', () => {
  test('a hand-computed two-step example (F = 2, U = 1)', () => {
    // kernel [F, 3U] = [[Wz, Wr, Wn] per feature], recurrent [U, 3U], bias [[bxz bxr bxn], [bhz bhr bhn]]
    const kernel = [0.5, -0.25, 1.0, /* feature 1 */ -1.0, 0.75, 0.5];
    const rec = [0.3, -0.6, 0.9];
    const bias = [0.1, 0.2, -0.3, /* recurrent */ -0.05, 0.15, 0.25];
    const xs = [[0.4, -0.2], [1.5, 0.5]];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    let h = 0;
    for (const [x0, x1] of xs) {
      const z = sig(x0 * 0.5 + x1 * -1.0 + 0.1 + h * 0.3 - 0.05);
      const r = sig(x0 * -0.25 + x1 * 0.75 + 0.2 + h * -0.6 + 0.15);
      const n = Math.tanh(x0 * 1.0 + x1 * 0.5 - 0.3 + r * (h * 0.9 + 0.25));
      h = z * h + (1 - z) * n;
    }
    // Worked by hand: step 1 has pre-activations z 0.45, r 0.1, n 0.131245 (= 0 + r·0.25), so
    // z = 0.610639, r = 0.524979, n = 0.130496, h1 = (1 - z)·n = 0.0508102; step 2 gives
    // z = 0.578165, r = 0.579206, n = 0.924811, h2 = 0.419495.
    assert.ok(Math.abs(h - 0.419495) < 1e-6, `expected h2 ≈ 0.419495, got ${h}`);
    const input: GruForwardInput = {
      x: Float32Array.from(xs.flat()), batch: 1, steps: 2, features: 2, units: 1,
      kernel: Float32Array.from(kernel), recurrentKernel: Float32Array.from(rec), bias: Float32Array.from(bias),
    };
    for (const [name, op] of ops()) {
      const out = op.forward(input);
      assert.equal(out.length, 1);
      assert.ok(Math.abs(out[0] - h) < 2e-7, `${name}: ${out[0]} vs ${h}`);
      assert.deepEqual([...op.lengths()], [2]);
    }
  });

  test('end padding is skipped: a padded sample equals the unpadded one, values and gradients', () => {
    const dims = { B: 1, T: 9, F: 5, U: 6 };
    const padded = asF32(problem(7, dims, [6]));
    const short = { ...padded, steps: 6, x: padded.x.slice(0, 6 * 5) };
    const dh = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
    for (const [name, op] of ops()) {
      const a = op.forward(padded), ga = op.backward(dh);
      assert.deepEqual([...op.lengths()], [6]);
      const b = op.forward(short), gb = op.backward(dh);
      assert.deepEqual(a, b, `${name}: h_T`);
      assert.deepEqual(ga, gb, `${name}: gradients`);
    }
  });

  test('a masked step in the middle carries the state (= the sequence without that step)', () => {
    const dims = { B: 1, T: 8, F: 4, U: 5 };
    const full = asF32(problem(11, dims, [8], [[0, 3], [0, 4]])); // steps 3 and 4 all zero
    const x = full.x;
    const without = new Float32Array(6 * 4);
    without.set(x.subarray(0, 3 * 4), 0);
    without.set(x.subarray(5 * 4, 8 * 4), 3 * 4);
    const removed = { ...full, steps: 6, x: without };
    const dh = Float32Array.from({ length: 5 }, (_, i) => 0.3 * i - 0.4);
    for (const [name, op] of ops()) {
      const a = op.forward(full), ga = op.backward(dh);
      assert.deepEqual([...op.lengths()], [8]);
      const b = op.forward(removed), gb = op.backward(dh);
      assert.ok(relErr(a, b) < 1e-6, `${name}: h_T ${relErr(a, b)}`);
      for (const k of ['kernel', 'recurrentKernel', 'bias'] as const)
        assert.ok(relErr(ga[k], gb[k]) < 1e-5, `${name}: d${k} ${relErr(ga[k], gb[k])}`);
    }
  });

  test('an all-zero sample (and -0) gives h = 0 and contributes no gradient; the others are unaffected', () => {
    const dims = { B: 3, T: 6, F: 3, U: 4 };
    const p = asF32(problem(5, dims, [6, 0, 4]));
    p.x.fill(-0, 6 * 3, 12 * 3); // sample 1: negative zeros are masked too (Keras compares with 0)
    const dh = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2);
    const alone = { ...p, batch: 2, x: Float32Array.from([...p.x.subarray(0, 18), ...p.x.subarray(36, 54)]) };
    const dhAlone = Float32Array.from([...dh.subarray(0, 4), ...dh.subarray(8, 12)]);
    for (const [name, op] of ops()) {
      const h = op.forward(p);
      assert.deepEqual([...op.lengths()], [6, 0, 4]);
      assert.deepEqual([...h.subarray(4, 8)], [0, 0, 0, 0], `${name}: all-zero sample`);
      const g = op.backward(dh);
      const h2 = op.forward(alone), g2 = op.backward(dhAlone);
      assert.deepEqual([...h.subarray(0, 4), ...h.subarray(8, 12)], [...h2], `${name}: other samples`);
      for (const k of ['kernel', 'recurrentKernel', 'bias'] as const)
        assert.ok(relErr(g[k], g2[k]) < 1e-6, `${name}: d${k}`);
    }
  });

  test('empty batch and zero steps', () => {
    for (const [name, op] of ops()) {
      const p = asF32(problem(1, { B: 0, T: 4, F: 3, U: 2 }, []));
      assert.equal(op.forward(p).length, 0, name);
      const q = asF32(problem(1, { B: 2, T: 0, F: 3, U: 2 }, [0, 0]));
      assert.deepEqual([...op.forward(q)], [0, 0, 0, 0], name);
      const g = op.backward(new Float32Array(4));
      assert.ok(g.kernel.every((v) => v === 0) && g.bias.every((v) => v === 0), name);
    }
  });
});

describe('GRU op: gradients', () => {
  // B=3, T=7: sample 0 full length with masked steps 2 and 3; sample 1 padded after 5 steps with step 1
  // masked; sample 2 padded after 3 steps. U=5 and F=4 (units pad to 8 inside the kernel); a second case
  // with F=3 exercises feature padding.
  const cases = [
    { name: 'F=4', dims: { B: 3, T: 7, F: 4, U: 5 } },
    { name: 'F=3', dims: { B: 3, T: 7, F: 3, U: 5 } },
  ];
  for (const { name, dims } of cases) {
    const p = problem(3, dims, [7, 5, 3], [[0, 2], [0, 3], [1, 1]], 1.5);
    const c = Float64Array.from({ length: dims.B * dims.U }, (_, i) => Math.sin(1 + i)); // L = Σ c ⊙ h_T
    const loss = (q: GruForwardInput): number => {
      const h = jsGru({ precision: 'f64' }).forward(q, { training: false });
      return h.reduce((s, v, i) => s + v * c[i], 0);
    };
    const ref = jsGru({ precision: 'f64' });
    ref.forward(p);
    const analytic = ref.backward(c);

    test(`float64 reference matches central finite differences (${name})`, () => {
      assert.deepEqual([...ref.lengths()], [7, 5, 3]);
      const eps = 1e-6;
      for (const key of ['kernel', 'recurrentKernel', 'bias'] as const) {
        const w = p[key] as Float64Array;
        let worst = 0, scale = 0;
        for (let i = 0; i < w.length; i++) {
          const w0 = w[i];
          w[i] = w0 + eps;
          const lp = loss(p);
          w[i] = w0 - eps;
          const lm = loss(p);
          w[i] = w0;
          const fd = (lp - lm) / (2 * eps);
          worst = Math.max(worst, Math.abs(fd - analytic[key][i]));
          scale = Math.max(scale, Math.abs(fd));
        }
        assert.ok(scale > 1e-2, `${key}: gradient should not vanish`);
        assert.ok(worst < 1e-8 * Math.max(1, scale), `${key}: max |fd - analytic| = ${worst} (scale ${scale})`);
        if (key === 'bias') {
          // both rows are exercised: input-bias and recurrent-bias gradients differ in the h block
          const G = 3 * dims.U;
          assert.ok(analytic.bias.subarray(0, G).some((v) => v !== 0) && analytic.bias.subarray(G).some((v) => v !== 0));
          assert.notDeepEqual([...analytic.bias.subarray(2 * dims.U, G)], [...analytic.bias.subarray(G + 2 * dims.U)]);
        }
      }
    });

    test(`wasm and the float32 JS fallback agree with the float64 reference (${name})`, () => {
      const hRef = ref.forward(p);
      const q = asF32(p);
      for (const [opName, op] of ops()) {
        const h = op.forward(q);
        assert.ok(relErr(h, hRef) < 1e-6, `${opName}: h_T ${relErr(h, hRef)}`);
        const g = op.backward(f32(c));
        for (const key of ['kernel', 'recurrentKernel', 'bias'] as const)
          assert.ok(relErr(g[key], analytic[key]) < 1e-5, `${opName}: d${key} ${relErr(g[key], analytic[key])}`);
      }
    });
  }
});

describe('GRU op: wasm against the JS fallback', () => {
  test('B=8, T=801, F=19, U=50, real lengths 100–400: h_T and gradients to 1e-5', () => {
    const r = rng(2024);
    const lengths = Array.from({ length: 8 }, () => 100 + Math.floor(r() * 301));
    const dims = { B: 8, T: 801, F: 19, U: 50 };
    // Keras-like initial scales: glorot-uniform kernel, recurrent of the same order, small biases.
    const p = asF32(problem(99, dims, lengths, [[3, 50]], 0.35));
    const js = jsGru();
    const hw = wasm.forward(p), hj = js.forward(p);
    assert.deepEqual([...wasm.lengths()], lengths);
    assert.deepEqual([...js.lengths()], lengths);
    assert.ok(relErr(hw, hj) < 1e-5, `h_T ${relErr(hw, hj)}`);
    const dh = Float32Array.from({ length: 8 * 50 }, () => r() * 2 - 1);
    const gw = wasm.backward(dh), gj = js.backward(dh);
    for (const key of ['kernel', 'recurrentKernel', 'bias'] as const)
      assert.ok(relErr(gw[key], gj[key]) < 1e-5, `d${key} ${relErr(gw[key], gj[key])}`);
    // backward can be repeated for the same forward; inference mode gives the same h_T
    assert.deepEqual(wasm.backward(dh), gw);
    assert.deepEqual(wasm.forward(p, { training: false }), hw);
    assert.deepEqual(js.forward(p, { training: false }), hj);
  });
});

describe('GRU op: API', () => {
  test('loadGru picks wasm by default and js on request', async () => {
    assert.equal((await loadGru()).kind, 'wasm');
    assert.equal((await loadGru({ prefer: 'js' })).kind, 'js');
    assert.equal((await loadGru({ prefer: 'wasm' })).kind, 'wasm');
  });

  test('errors: sizes, backward without a training forward', async () => {
    const p = asF32(problem(1, { B: 2, T: 3, F: 2, U: 3 }, [3, 2]));
    for (const op of [await GruKernel.load(), jsGru()]) {
      assert.throws(() => op.backward(new Float32Array(6)), /backward\(\) needs/);
      assert.throws(() => op.forward({ ...p, steps: 4 }), RangeError);
      assert.throws(() => op.forward({ ...p, bias: new Float32Array(3) }), /bias has 3 values/);
      assert.throws(() => op.forward({ ...p, units: 0 }), RangeError);
      op.forward(p);
      assert.throws(() => op.backward(new Float32Array(5)), /dh has 5 values/);
      op.forward(p, { training: false });
      assert.throws(() => op.backward(new Float32Array(6)), /backward\(\) needs/);
    }
  });
});

describe('GRU op: shipped gru.wasm', () => {
  test('is byte-identical to a fresh build (needs the pinned clang and wasm-ld)', (t) => {
    const script = join(repo, 'scripts/build-gru-wasm.sh');
    const pinned = /PINNED_CLANG="([0-9.]+)"/.exec(readFileSync(script, 'utf8'))?.[1];
    const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
    const version = has('clang') ? /clang version ([0-9.]+)/.exec(execFileSync('clang', ['--version'], { encoding: 'utf8' }))?.[1] : undefined;
    if (!has('wasm-ld') || version === undefined || version !== pinned) {
      const msg = `SKIPPED: gru.wasm reproducibility NOT CHECKED: needs clang ${pinned} and wasm-ld on the PATH ` +
        `(found clang ${version ?? 'none'}, wasm-ld ${has('wasm-ld') ? 'yes' : 'none'}); apt-get install -y clang lld`;
      console.warn(`\n!!! ${msg}\n`);
      t.skip(msg);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'gru-wasm-'));
    try {
      const out = join(dir, 'gru.wasm');
      execFileSync('bash', [script, out], { stdio: ['ignore', 'ignore', 'pipe'] });
      const fresh = readFileSync(out), shipped = readFileSync(GRU_WASM_URL);
      assert.ok(fresh.equals(shipped), `src/train/gru/gru.wasm is stale: run scripts/build-gru-wasm.sh (fresh ${fresh.length} bytes, shipped ${shipped.length})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
