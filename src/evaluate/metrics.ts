/**
 * Everything `hep-ml evaluate` reports, from class probabilities (rows × classes, row-major float32) and
 * integer labels: loss, accuracy, per-class one-vs-rest ROC curves and AUC, macro AUC, the confusion matrix
 * (arg-max prediction), precision/recall/F1, signal efficiency at fixed background efficiency, and score
 * histograms. Definitions follow scikit-learn (see docs/commands/evaluate.md); where sklearn would divide by
 * zero the value is null here, never a silent 0.
 */
import { rocCurve, type WorkingPoint } from './roc.js';
import type { RocCurve, ScoreHistograms } from './types.js';

/** Default background efficiencies of the working points: 1 % and 0.1 %. */
export const DEFAULT_BKG_EFFS = [0.01, 0.001];
/** Bins of the score histograms over [0, 1]. */
export const DEFAULT_SCORE_BINS = 50;

export interface ClassReport {
  name: string;
  /** Events of this class (the true label). */
  support: number;
  /** One-vs-rest ROC AUC; null when undefined (this class or the rest has no events). */
  auc: number | null;
  /** TP / (TP + FP) of the arg-max prediction; null when nothing is predicted as this class. */
  precision: number | null;
  /** TP / (TP + FN); null when the class has no events. */
  recall: number | null;
  f1: number | null;
  /** Signal efficiency of this class's score at fixed background efficiencies (the rest as background). */
  working_points: WorkingPoint[];
}

export interface Evaluation {
  rows: number;
  classes: string[];
  /** Mean categorical cross-entropy as Keras computes it: each row normalised to sum 1, then clipped to [1e-7, 1 − 1e-7]. */
  loss: number;
  accuracy: number;
  /** Mean of the defined per-class AUCs (sklearn roc_auc_score multi_class='ovr', average='macro'). */
  macro_auc: number | null;
  /** Support-weighted mean of the defined per-class AUCs (average='weighted'). */
  weighted_auc: number | null;
  per_class: ClassReport[];
  /** confusion[true][predicted]. */
  confusion: number[][];
  /** Why some numbers are null (a class without events, …). */
  warnings: string[];
  roc: (RocCurve | undefined)[];
  scores: ScoreHistograms;
}

export interface EvaluateOptions {
  bkgEffs?: number[];
  scoreBins?: number;
  dropIntermediate?: boolean;
}

const EPS = 1e-7;

/** The evaluation of `prob` (rows × classes) against `labels` (0..classes-1). */
export function evaluateScores(prob: Float32Array, labels: Int32Array, classes: string[], o: EvaluateOptions = {}): Evaluation {
  const C = classes.length;
  const rows = labels.length;
  if (prob.length !== rows * C) throw new RangeError(`evaluateScores: ${prob.length} probabilities for ${rows} rows × ${C} classes`);
  const bins = o.scoreBins ?? DEFAULT_SCORE_BINS;
  const targets = o.bkgEffs ?? DEFAULT_BKG_EFFS;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  const counts = Array.from({ length: C }, () => Array.from({ length: C }, () => new Float64Array(bins)));
  const support = new Array<number>(C).fill(0);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < C)) throw new RangeError(`label ${y} of event ${i} is not a class index 0..${C - 1}`);
    const base = i * C;
    let best = 0;
    for (let k = 0; k < C; k++) {
      const p = prob[base + k]!;
      if (Number.isNaN(p)) throw new RangeError(`the model's output for event ${i} is NaN`);
      if (p > prob[base + best]!) best = k;
      // histogram over [0, 1]; the top edge belongs to the last bin, out-of-range values to the end bins
      const b = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
      counts[k]![y]![b]!++;
    }
    confusion[y]![best]!++;
    support[y]!++;
    if (best === y) correct++;
    let sum = 0;
    for (let k = 0; k < C; k++) sum += prob[base + k]!;
    loss -= Math.log(Math.min(1 - EPS, Math.max(EPS, prob[base + y]! / sum)));
  }

  const warnings: string[] = [];
  const roc: (RocCurve | undefined)[] = [];
  const perClass: ClassReport[] = [];
  for (let k = 0; k < C; k++) {
    const r = rocCurve(classes[k]!, prob, (i) => labels[i] === k, rows, { stride: C, offset: k, targets, dropIntermediate: o.dropIntermediate });
    if (!r && rows > 0) {
      warnings.push(
        support[k] === 0
          ? `class ${classes[k]} has no events: its ROC curve, AUC and working points are undefined`
          : `every event is of class ${classes[k]}: its one-vs-rest ROC curve is undefined`,
      );
    }
    roc.push(r?.curve);
    const tp = confusion[k]![k]!;
    let predicted = 0;
    for (let j = 0; j < C; j++) predicted += confusion[j]![k]!;
    const precision = predicted > 0 ? tp / predicted : null;
    const recall = support[k]! > 0 ? tp / support[k]! : null;
    const f1 = precision !== null && recall !== null ? (precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0) : null;
    perClass.push({
      name: classes[k]!,
      support: support[k]!,
      auc: r ? r.curve.auc : null,
      precision,
      recall,
      f1,
      working_points: r
        ? r.points
        : targets.map((t) => ({ bkg_eff: t, sig_eff: null, sig_eff_err: null, bkg_eff_actual: null, threshold: null, bkg_events: t * (rows - support[k]!), low_stats: true })),
    });
  }
  const defined = perClass.filter((c) => c.auc !== null);
  const macro = defined.length ? defined.reduce((a, c) => a + c.auc!, 0) / defined.length : null;
  const wsum = defined.reduce((a, c) => a + c.support, 0);
  const weighted = defined.length && wsum > 0 ? defined.reduce((a, c) => a + c.auc! * c.support, 0) / wsum : null;
  const edges = new Float64Array(bins + 1).map((_, b) => b / bins);
  return {
    rows,
    classes,
    loss: rows ? loss / rows : NaN,
    accuracy: rows ? correct / rows : NaN,
    macro_auc: macro,
    weighted_auc: weighted,
    per_class: perClass,
    confusion,
    warnings,
    roc,
    scores: { edges, counts },
  };
}
