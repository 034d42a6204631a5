/**
 * The generator's random numbers: xoshiro128** (32-bit state words, Math.imul only, no BigInt), reseeded
 * for every event from a hash of (seed, process, event index). An event's content therefore depends only
 * on those three values: not on the batch size, on the events before it, or on Math.random.
 */

const TWO_M32 = 2 ** -32;
const TWO_PI = 2 * Math.PI;

/** MurmurHash3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Lower and upper 32 bits of a non-negative safe integer. */
function split53(n: number): [number, number] {
  return [n % 0x1_0000_0000 | 0, Math.floor(n / 0x1_0000_0000) | 0];
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Second normal deviate of the last Box–Muller pair, or NaN. */
  private spare = NaN;

  /**
   * Reseeds from (seed, stream, index): `seed` and `index` non-negative safe integers, `stream` a small
   * integer (the process). The four state words come from a splitmix32 sequence started at the hash.
   */
  reseed(seed: number, stream: number, index: number): void {
    const [sLo, sHi] = split53(seed);
    const [iLo, iHi] = split53(index);
    let h = fmix32(sLo ^ 0x6a09e667);
    h = fmix32(h ^ sHi ^ 0x3c6ef372);
    h = fmix32(h ^ Math.imul(stream + 1, 0x9e3779b1));
    h = fmix32(h ^ iLo ^ 0x510e527f);
    h = fmix32(h ^ iHi ^ 0x1f83d9ab);
    const g = 0x9e3779b9 | 0;
    this.s0 = fmix32((h + g) | 0);
    this.s1 = fmix32((h + 2 * g) | 0);
    this.s2 = fmix32((h + 3 * g) | 0);
    this.s3 = fmix32((h + 4 * g) | 0);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    this.spare = NaN;
  }

  /** The next 32 random bits, as a signed int32. */
  nextInt32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2 ^ s0;
    const s3 = this.s3 ^ s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9);
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    this.s2 = s2 ^ (s1 << 9);
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return (this.nextInt32() >>> 0) * TWO_M32;
  }

  /** Uniform in (0, 1): safe for log(). */
  open(): number {
    return ((this.nextInt32() >>> 0) + 0.5) * TWO_M32;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform azimuth in [-π, π). */
  phi(): number {
    return TWO_PI * this.uniform() - Math.PI;
  }

  /** ±1 with P(+1) = p. */
  sign(p = 0.5): number {
    return this.uniform() < p ? 1 : -1;
  }

  /** Standard normal (Box–Muller; the second deviate is kept for the next call). */
  normal(): number {
    const s = this.spare;
    if (s === s) {
      this.spare = NaN;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.open()));
    const a = TWO_PI * this.uniform();
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Exponential with the given mean. */
  exp(mean: number): number {
    return -mean * Math.log(this.open());
  }

  /** Poisson with mean `lambda` (multiplication method below 30, a rounded normal above). */
  poisson(lambda: number): number {
    if (lambda <= 0) return 0;
    if (lambda >= 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.normal()));
    const l = Math.exp(-lambda);
    let k = 0;
    let p = this.uniform();
    while (p > l) {
      k++;
      p *= this.uniform();
    }
    return k;
  }

  /** Gamma with integer shape k (a sum of k exponentials) and scale theta. */
  gammaInt(k: number, theta: number): number {
    let p = 1;
    for (let i = 0; i < k; i++) p *= this.open();
    return -theta * Math.log(p);
  }

  /** Relativistic Breit–Wigner approximated by a Cauchy of (mass, width), truncated to [lo, hi]. */
  breitWigner(mass: number, width: number, lo: number, hi: number): number {
    for (let i = 0; i < 16; i++) {
      const m = mass + 0.5 * width * Math.tan(Math.PI * (this.uniform() - 0.5));
      if (m >= lo && m <= hi) return m;
    }
    return mass;
  }
}
