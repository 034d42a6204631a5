/**
 * The kinematics of the SparkDLTrigger recipe, as plain functions on numbers (no per-particle objects).
 *
 * They transcribe the recipe's `LorentzVector` helper (features-spec §3.1): every object is built massless
 * from (pT, η, φ), and its η and φ are *recomputed* from the Cartesian components where the recipe does so.
 * All arithmetic is float64 on float32-decoded inputs, as in the published Python.
 */

export const TWO_PI = 2 * Math.PI;

/** px, py, pz and E of a massless vector from (pT, η, φ): E = |p|. pT is taken as |pT|. */
export function masslessP4(pt: number, eta: number, phi: number, out: Float64Array, at = 0): void {
  const a = Math.abs(pt);
  const x = a * Math.cos(phi);
  const y = a * Math.sin(phi);
  const z = a * Math.sinh(eta);
  out[at] = Math.sqrt(x * x + y * y + z * z); // E (m = 0)
  out[at + 1] = x;
  out[at + 2] = y;
  out[at + 3] = z;
}

/** Transverse momentum sqrt(px² + py²). */
export function ptOf(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

/** Azimuth atan2(py, px). */
export function phiOf(x: number, y: number): number {
  return Math.atan2(y, x);
}

/**
 * Pseudorapidity as the recipe's helper computes it: c = pz/|p| (1 when |p| = 0); −½·ln((1−c)/(1+c)) when
 * c² < 1, 0 when pz = 0, otherwise NaN (the helper returns None; never reached for physical inputs).
 */
export function etaOf(x: number, y: number, z: number): number {
  const p = Math.sqrt(x * x + y * y + z * z);
  const c = p === 0 ? 1 : z / p;
  if (c * c < 1) return -0.5 * Math.log((1 - c) / (1 + c));
  if (z === 0) return 0;
  return Number.NaN;
}

/** Δφ wrapped into [−π, π] (the helper's while-loops). */
export function wrapPhi(dphi: number): number {
  while (dphi > Math.PI) dphi -= TWO_PI;
  while (dphi < -Math.PI) dphi += TWO_PI;
  return dphi;
}

/** ΔR = sqrt(Δη² + Δφ²) with Δφ wrapped into [−π, π]. */
export function deltaR(eta1: number, phi1: number, eta2: number, phi2: number): number {
  const de = eta1 - eta2;
  const dp = wrapPhi(phi1 - phi2);
  return Math.sqrt(de * de + dp * dp);
}

/**
 * The Δφ used by the isolation cones. The published code "wraps" with thresholds ±2π, which never fire
 * for φ in [−π, π] (cones do not wrap across φ = ±π: quirk 1); `properWrap` uses ±π.
 */
export function coneDeltaPhi(mapPhi: number, phi: number, properWrap: boolean): number {
  let d = mapPhi - phi;
  const lim = properWrap ? Math.PI : TWO_PI;
  if (d > lim) d -= TWO_PI;
  else if (d < -lim) d += TWO_PI;
  return d;
}

/**
 * The recipe's HLF "MT": 2·MET·pT·(1 − cos(φ − φ_MET)). This is MT² in GeV² (quirk 3); `sqrt` gives the
 * transverse mass in GeV.
 */
export function transverseMass(met: number, metPhi: number, pt: number, phi: number, sqrt: boolean): number {
  const mt2 = 2 * met * pt * (1 - Math.cos(phi - metPhi));
  return sqrt ? Math.sqrt(Math.max(mt2, 0)) : mt2;
}

/** Scalar HT, jet count and b-tagged jet count over jets with pT > 30 GeV and |η| < 2.6 (both strict). */
export function jetSums(
  pt: ArrayLike<number>,
  eta: ArrayLike<number>,
  btag: ArrayLike<number>,
  lo: number,
  hi: number,
  out: Float64Array,
): void {
  let ht = 0;
  let n = 0;
  let nb = 0;
  for (let j = lo; j < hi; j++) {
    const p = pt[j]!;
    if (p > 30 && Math.abs(eta[j]!) < 2.6) {
      ht += p;
      n++;
      if (btag[j]! > 0) nb++;
    }
  }
  out[0] = ht;
  out[1] = n;
  out[2] = nb;
}

/**
 * An isolation map: the (η, φ, pT) triplets of one EFlow collection above its threshold, in stored order,
 * plus an η-sorted index so that a cone query visits only the entries within Δη < R. Sums are still
 * accumulated in stored order, so results equal the published left-to-right sum bit for bit.
 */
export class IsoMap {
  eta = new Float64Array(1024);
  phi = new Float64Array(1024);
  pt = new Float64Array(1024);
  /** Index of the entry in its source collection (stored order). */
  source = new Int32Array(1024);
  size = 0;
  /** Entry indices sorted by η, and the η values in that order. */
  private order = new Int32Array(1024);
  private sortedEta = new Float64Array(1024);
  private hits = new Int32Array(1024);

  clear(): void {
    this.size = 0;
  }

  push(eta: number, phi: number, pt: number, source: number): void {
    if (this.size === this.eta.length) this.grow();
    const i = this.size++;
    this.eta[i] = eta;
    this.phi[i] = phi;
    this.pt[i] = pt;
    this.source[i] = source;
  }

  private grow(): void {
    const n = this.eta.length * 2;
    const g = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.eta = g(this.eta);
    this.phi = g(this.phi);
    this.pt = g(this.pt);
    this.source = g(this.source);
    this.order = new Int32Array(n);
    this.sortedEta = new Float64Array(n);
    this.hits = new Int32Array(n);
  }

  /** Builds the η index (call once after the last push). */
  index(): void {
    const n = this.size;
    const order = this.order;
    const eta = this.eta;
    for (let i = 0; i < n; i++) order[i] = i;
    // insertion sort for short maps, else the engine's sort on a subarray
    if (n <= 32) {
      for (let i = 1; i < n; i++) {
        const v = order[i]!;
        const e = eta[v]!;
        let j = i - 1;
        while (j >= 0 && eta[order[j]!]! > e) {
          order[j + 1] = order[j]!;
          j--;
        }
        order[j + 1] = v;
      }
    } else {
      order.subarray(0, n).sort((a, b) => eta[a]! - eta[b]! || a - b);
    }
    for (let i = 0; i < n; i++) this.sortedEta[i] = eta[order[i]!]!;
  }

  /** First position in the η order with η ≥ v. */
  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.size;
    const s = this.sortedEta;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Σ pT of the entries with Δφ² + Δη² < R² around (eta, phi), in stored order; the entry with stored
   * index `skip` (or none, −1) is left out. Δφ as in `coneDeltaPhi`.
   */
  coneSum(eta: number, phi: number, r: number, properWrap: boolean, skip: number): number {
    const r2 = r * r;
    // candidates: |Δη| < R, with a margin against rounding in the subtraction
    const from = this.lowerBound(eta - r - 1e-9);
    const s = this.sortedEta;
    const order = this.order;
    const hits = this.hits;
    let nh = 0;
    const lim = eta + r + 1e-9;
    for (let k = from; k < this.size && s[k]! <= lim; k++) {
      const i = order[k]!;
      if (i === skip) continue;
      const de = this.eta[i]! - eta;
      let dp = this.phi[i]! - phi;
      if (properWrap) {
        if (dp > Math.PI) dp -= TWO_PI;
        else if (dp < -Math.PI) dp += TWO_PI;
      } else {
        if (dp > TWO_PI) dp -= TWO_PI;
        else if (dp < -TWO_PI) dp += TWO_PI;
      }
      if (dp * dp + de * de < r2) hits[nh++] = i;
    }
    if (nh === 0) return 0;
    // stored order, as the published loop sums
    for (let a = 1; a < nh; a++) {
      const v = hits[a]!;
      let b = a - 1;
      while (b >= 0 && hits[b]! > v) {
        hits[b + 1] = hits[b]!;
        b--;
      }
      hits[b + 1] = v;
    }
    let sum = 0;
    for (let a = 0; a < nh; a++) sum += this.pt[hits[a]!]!;
    return sum;
  }
}
