/**
 * Seeded pseudo-random numbers for `prepare`: xoshiro128** (32-bit state words, fast in JS), seeded through
 * splitmix64 from (seed, stream name), so that every decision has its own independent stream: adding a class
 * does not change which rows another class keeps. Never Math.random.
 */

const MASK64 = (1n << 64n) - 1n;

/** One splitmix64 step: [next state, output]. */
export function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

/** FNV-1a, 64-bit, of a string's UTF-16 code units (stream names are ASCII). */
function fnv1a64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

/** xoshiro128** (Blackman & Vigna): 32-bit outputs, period 2^128 - 1. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** A generator for `stream` under `seed` (any integer; taken modulo 2^64). */
  constructor(seed: number | bigint, stream = '') {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    let st = BigInt.asUintN(64, BigInt(seed)) ^ fnv1a64(stream);
    let a: bigint;
    let b: bigint;
    [st, a] = splitmix64(st);
    [st, b] = splitmix64(st);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the one forbidden state
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform integer in [0, n), 1 <= n <= 2^32, without modulo bias (rejection sampling). */
  below(n: number): number {
    if (!(n >= 1 && n <= 0x100000000) || !Number.isInteger(n)) throw new RangeError(`Rng.below: bad bound ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** A uniform double in [0, 1) (32 random bits). */
  next(): number {
    return this.nextU32() / 0x100000000;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A uniformly random ordering of [0, n) whose first `k` entries are a uniformly random k-subset in random
 * order (a partial Fisher–Yates shuffle: only k draws). k defaults to n (a full random permutation).
 */
export function randomPrefix(n: number, rng: Rng, k = n): Int32Array {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`randomPrefix: bad length ${n}`);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  const stop = Math.min(k, n - 1);
  for (let i = 0; i < stop; i++) {
    const j = i + rng.below(n - i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

/** A uniformly random permutation of [0, n). */
export function randomPermutation(n: number, rng: Rng): Int32Array {
  return randomPrefix(n, rng, n);
}
