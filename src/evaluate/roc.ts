/**
 * Exact ROC curves: every distinct score is a threshold; tied scores move the curve diagonally (the
 * trapezoid over distinct thresholds, equal to the Mann–Whitney U statistic with average ranks). The points
 * are those scikit-learn's `roc_curve` returns (with `drop_intermediate`: interior points on a straight
 * horizontal or vertical run are dropped; the area is unchanged).
 *
 * Sorting: a score's float32 bit pattern, made monotonic, and the label are packed into one float64 key
 * (2 × 2^32 + 1 < 2^53: exact), so the sort is the typed array's native numeric sort — no comparator calls,
 * no index array. 10 M events sort in about a second.
 */
import type { RocCurve } from './types.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → uint32 with the same order (negative scores included). */
function orderedBits(x: number): number {
  f32[0] = x === 0 ? 0 : x; // -0 and 0 are one score
  const b = u32[0]!;
  return b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

function bitsToFloat(k: number): number {
  u32[0] = k & 0x80000000 ? (k & 0x7fffffff) >>> 0 : ~k >>> 0;
  return f32[0]!;
}

export interface RocOptions {
  /** Drop points that lie on a straight run of the curve (scikit-learn's default). Default true. */
  dropIntermediate?: boolean;
}

/**
 * The ROC curve of the scores score[offset + i·stride] (float32 values, NaN not allowed; i < rows) for the
 * events where `positive(i)`, and its working points at the background efficiencies `targets`. The curve is
 * undefined (undefined) when either side has no events.
 */
export function rocCurve(
  cls: string,
  score: Float32Array,
  positive: (i: number) => boolean,
  rows: number,
  o: RocOptions & { stride?: number; offset?: number; targets?: number[] } = {},
): { curve: RocCurve; points: WorkingPoint[] } | undefined {
  const stride = o.stride ?? 1;
  const offset = o.offset ?? 0;
  const keys = new Float64Array(rows);
  let nPos = 0;
  for (let i = 0; i < rows; i++) {
    const s = score[offset + i * stride]!;
    if (Number.isNaN(s)) throw new RangeError(`the score of event ${i} is NaN`);
    const p = positive(i) ? 1 : 0;
    nPos += p;
    keys[i] = orderedBits(s) * 2 + p;
  }
  const nNeg = rows - nPos;
  if (nPos === 0 || nNeg === 0) return undefined;
  keys.sort();
  // walk from the highest score down; one point per distinct score, after the origin
  const tps = new Float64Array(rows + 1);
  const fps = new Float64Array(rows + 1);
  const thr = new Float64Array(rows + 1);
  thr[0] = Infinity;
  let n = 0; // last point's index
  let tp = 0;
  let fp = 0;
  for (let i = rows - 1; i >= 0; ) {
    const bits = Math.floor(keys[i]! / 2);
    let j = i;
    while (j >= 0 && Math.floor(keys[j]! / 2) === bits) {
      if (keys[j]! % 2 === 1) tp++;
      else fp++;
      j--;
    }
    n++;
    tps[n] = tp;
    fps[n] = fp;
    thr[n] = bitsToFloat(bits);
    i = j;
  }
  // area: trapezoids over every distinct threshold
  let area = 0;
  for (let k = 1; k <= n; k++) area += ((fps[k]! - fps[k - 1]!) * (tps[k]! + tps[k - 1]!)) / 2;
  const auc = area / (nPos * nNeg);

  // working points on the full curve (a dropped point can be the best one)
  const points = (o.targets ?? []).map((target): WorkingPoint => {
    let best = 0;
    for (let k = 0; k <= n && fps[k]! / nNeg <= target; k++) best = k;
    const eff = tps[best]! / nPos;
    const bkgEvents = target * nNeg;
    return {
      bkg_eff: target,
      sig_eff: eff,
      sig_eff_err: Math.sqrt((eff * (1 - eff)) / nPos),
      bkg_eff_actual: fps[best]! / nNeg,
      threshold: Number.isFinite(thr[best]!) ? thr[best]! : null,
      bkg_events: bkgEvents,
      low_stats: bkgEvents < 10,
    };
  });

  let keep: number[];
  if ((o.dropIntermediate ?? true) && n > 2) {
    // scikit-learn: keep the ends and every point where the second difference of fps or tps is non-zero,
    // on the curve without the origin (prepended afterwards)
    keep = [0, 1];
    for (let k = 2; k < n; k++) {
      if (fps[k - 1]! - 2 * fps[k]! + fps[k + 1]! !== 0 || tps[k - 1]! - 2 * tps[k]! + tps[k + 1]! !== 0) keep.push(k);
    }
    keep.push(n);
  } else {
    keep = Array.from({ length: n + 1 }, (_, k) => k);
  }
  const fpr = new Float64Array(keep.length);
  const tpr = new Float64Array(keep.length);
  const thresholds = new Float64Array(keep.length);
  keep.forEach((k, m) => {
    fpr[m] = fps[k]! / nNeg;
    tpr[m] = tps[k]! / nPos;
    thresholds[m] = thr[k]!;
  });
  return { curve: { cls, fpr, tpr, thresholds, auc, positives: nPos, negatives: nNeg }, points };
}

/** An operating point: the highest signal efficiency whose background efficiency does not exceed a target. */
export interface WorkingPoint {
  /** The requested background efficiency (e.g. 0.01 = 1 % background, rejection 100). */
  bkg_eff: number;
  /** Signal efficiency at the chosen threshold (null when the curve is undefined). */
  sig_eff: number | null;
  /** Binomial standard error of sig_eff: sqrt(ε(1 − ε)/N_signal). */
  sig_eff_err: number | null;
  /** The background efficiency actually reached (≤ bkg_eff). */
  bkg_eff_actual: number | null;
  /** Select score ≥ threshold (null: nothing selected). */
  threshold: number | null;
  /** Background events the target corresponds to; below 10 the number is a statistical guess (low_stats). */
  bkg_events: number;
  low_stats: boolean;
}
