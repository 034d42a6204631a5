/**
 * Plain TypeScript GRU forward + BPTT with the same semantics and API as the wasm kernel (gru.c).
 *
 * It is the fallback where WebAssembly SIMD is unavailable and the reference for the tests. It works one
 * sample at a time; arithmetic is float64 in locals and accumulators, and the stored activations, the
 * state and the outputs use the chosen precision: 'f32' (Float32Array, the default, rounding like the
 * kernel's float32 storage) or 'f64' (Float64Array, for finite-difference gradient checks).
 */
import { checkForwardInput, type FloatArray, type GruForwardInput, type GruForwardOptions, type GruGradients, type GruOp } from './types.js';

type Ctor<A extends FloatArray> = { new (n: number): A };

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** 1 + index of the last step of sample b with a non-zero feature (NaN counts as non-zero, -0 as zero). */
function sampleLength(x: FloatArray, b: number, T: number, F: number): number {
  for (let t = T - 1; t >= 0; t--) {
    const o = (b * T + t) * F;
    for (let f = 0; f < F; f++) if (x[o + f] !== 0) return t + 1;
  }
  return 0;
}

export class JsGru<A extends FloatArray = Float32Array> implements GruOp<A> {
  readonly kind = 'js' as const;
  private readonly Arr: Ctor<A>;
  /** The last forward: its input, per-sample lengths and row offsets, and the kept activations. */
  private fwd?: {
    input: GruForwardInput;
    len: Int32Array;
    off: Int32Array; // first packed row of each sample
    H: A; // [rows, U] state entering each step
    Z: A;
    R: A;
    N: A;
    GHN: A; // h Un + bhn
    training: boolean;
  };

  constructor(Arr: Ctor<A>) {
    this.Arr = Arr;
  }

  lengths(): Int32Array {
    return this.fwd ? this.fwd.len.slice() : new Int32Array(0);
  }

  forward(input: GruForwardInput, options: GruForwardOptions = {}): A {
    const G = checkForwardInput(input);
    const training = options.training ?? true;
    const { x, batch: B, steps: T, features: F, units: U, kernel: W, recurrentKernel: Wh, bias } = input;
    const len = new Int32Array(B);
    const off = new Int32Array(B + 1);
    for (let b = 0; b < B; b++) {
      len[b] = sampleLength(x, b, T, F);
      off[b + 1] = off[b] + (training ? len[b] : 0);
    }
    const rows = training ? off[B] : 1; // inference: one scratch row, overwritten at every step
    const H = new this.Arr(rows * U), Z = new this.Arr(rows * U), R = new this.Arr(rows * U);
    const N = new this.Arr(rows * U), GHN = new this.Arr(rows * U);
    const out = new this.Arr(B * U);
    const h = new this.Arr(U); // the state, stored at the chosen precision like the kernel's
    const ga = new Float64Array(G), gb = new Float64Array(G);

    for (let b = 0; b < B; b++) {
      h.fill(0);
      for (let t = 0; t < len[b]; t++) {
        const row = training ? off[b] + t : 0;
        const ro = row * U;
        H.set(h, ro);
        const xo = (b * T + t) * F;
        let masked = true;
        for (let f = 0; f < F; f++) if (x[xo + f] !== 0) { masked = false; break; }
        if (masked) {
          // Carry the state; z = 1, r = n = 0 makes backward pass dh through unchanged with zero gradients.
          for (let j = 0; j < U; j++) { Z[ro + j] = 1; R[ro + j] = 0; N[ro + j] = 0; GHN[ro + j] = 0; }
          continue;
        }
        // ga = bx + x_t W, gb = bh + h Wh (axpy over the 3U gate columns)
        for (let j = 0; j < G; j++) { ga[j] = bias[j]; gb[j] = bias[G + j]; }
        for (let f = 0; f < F; f++) {
          const v = x[xo + f];
          if (v === 0) continue;
          const wo = f * G;
          for (let j = 0; j < G; j++) ga[j] += v * W[wo + j];
        }
        for (let k = 0; k < U; k++) {
          const v = h[k];
          if (v === 0) continue;
          const wo = k * G;
          for (let j = 0; j < G; j++) gb[j] += v * Wh[wo + j];
        }
        for (let j = 0; j < U; j++) {
          const z = sigmoid(ga[j] + gb[j]);
          const r = sigmoid(ga[U + j] + gb[U + j]);
          const ghn = gb[2 * U + j];
          const n = Math.tanh(ga[2 * U + j] + r * ghn);
          Z[ro + j] = z; R[ro + j] = r; N[ro + j] = n; GHN[ro + j] = ghn;
          h[j] = z * h[j] + (1 - z) * n;
        }
      }
      out.set(h, b * U);
    }
    this.fwd = { input, len, off, H, Z, R, N, GHN, training };
    return out;
  }

  backward(dhT: FloatArray): GruGradients<A> {
    const s = this.fwd;
    if (!s || !s.training) throw new Error('gru: backward() needs a preceding forward() with training: true');
    const { x, batch: B, steps: T, features: F, units: U, recurrentKernel: Wh } = s.input;
    if (dhT.length !== B * U) throw new RangeError(`gru: dh has ${dhT.length} values, expected ${B * U}`);
    const G = 3 * U;
    const dW = new Float64Array(F * G), dWh = new Float64Array(U * G), db = new Float64Array(2 * G);
    const dh = new Float64Array(U), dhPrev = new Float64Array(U);
    const dgx = new Float64Array(G), dgh = new Float64Array(G);
    const { H, Z, R, N, GHN } = s;

    for (let b = 0; b < B; b++) {
      for (let j = 0; j < U; j++) dh[j] = dhT[b * U + j];
      for (let t = s.len[b] - 1; t >= 0; t--) {
        const ro = (s.off[b] + t) * U;
        for (let j = 0; j < U; j++) {
          const d = dh[j], z = Z[ro + j], r = R[ro + j], n = N[ro + j];
          const dn = d * (1 - z) * (1 - n * n); // dL/d(n pre-activation)
          const dz = d * (H[ro + j] - n) * z * (1 - z); // dL/d(z pre-activation)
          const dr = dn * GHN[ro + j] * r * (1 - r); // dL/d(r pre-activation)
          dgx[j] = dz; dgx[U + j] = dr; dgx[2 * U + j] = dn;
          dgh[j] = dz; dgh[U + j] = dr; dgh[2 * U + j] = dn * r;
          dhPrev[j] = d * z;
        }
        for (let j = 0; j < G; j++) { db[j] += dgx[j]; db[G + j] += dgh[j]; }
        // dh_prev += dgh Wh^T ; dWh += h^T dgh
        for (let k = 0; k < U; k++) {
          const wo = k * G;
          const hk = H[ro + k];
          let acc = 0;
          for (let j = 0; j < G; j++) {
            acc += dgh[j] * Wh[wo + j];
            dWh[wo + j] += hk * dgh[j];
          }
          dhPrev[k] += acc;
        }
        // dW += x^T dgx (a masked step has x = 0 and dgx = 0: nothing to add)
        const xo = (b * T + t) * F;
        for (let f = 0; f < F; f++) {
          const v = x[xo + f];
          if (v === 0) continue;
          const wo = f * G;
          for (let j = 0; j < G; j++) dW[wo + j] += v * dgx[j];
        }
        dh.set(dhPrev);
      }
    }
    const conv = (a: Float64Array): A => {
      const o = new this.Arr(a.length);
      o.set(a);
      return o;
    };
    return { kernel: conv(dW), recurrentKernel: conv(dWh), bias: conv(db) };
  }
}

/** The pure-JS GRU op: float32 storage by default, float64 with `{ precision: 'f64' }`. */
export function jsGru(options?: { precision?: 'f32' }): JsGru<Float32Array>;
export function jsGru(options: { precision: 'f64' }): JsGru<Float64Array>;
export function jsGru(options: { precision?: 'f32' | 'f64' } = {}): JsGru<Float32Array> | JsGru<Float64Array> {
  return options.precision === 'f64' ? new JsGru(Float64Array) : new JsGru(Float32Array);
}
