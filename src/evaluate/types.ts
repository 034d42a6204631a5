/**
 * What `hep-ml evaluate` measures, as the plots (src/evaluate/plots.ts) and metrics.json read it.
 */

/** One-vs-rest ROC curve of one class: points in order of decreasing threshold, starting at (0, 0). */
export interface RocCurve {
  /** Class name (the signal of this curve; every other class is background). */
  cls: string;
  /** Background efficiency (false-positive rate) per point. */
  fpr: Float64Array;
  /** Signal efficiency (true-positive rate) per point. */
  tpr: Float64Array;
  /** Score threshold per point (score ≥ threshold is selected); the first is +Infinity. */
  thresholds: Float64Array;
  /** Area under the curve (trapezoid over distinct thresholds). */
  auc: number;
  /** Events of this class and of the others. */
  positives: number;
  negatives: number;
}

/** Histograms of each output score, one per true class: what the score-distribution plot shows. */
export interface ScoreHistograms {
  /** Bin edges over [0, 1] (bins + 1 values). */
  edges: Float64Array;
  /** counts[score k][true class j][bin]. */
  counts: Float64Array[][];
}

/** One epoch of the training log (metrics.jsonl of the model directory). */
export interface HistoryPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss?: number;
  val_accuracy?: number;
}

/** Everything the plots need. */
export interface EvaluationPlotsInput {
  classes: string[];
  /** Model name for titles (e.g. the model directory's base name and kind). */
  title: string;
  /** One per class, in class order; undefined for a class whose curve is undefined (no events, or no others). */
  roc: (RocCurve | undefined)[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  scores: ScoreHistograms;
  /** Empty when the model directory has no training log (e.g. an imported Keras model). */
  history: HistoryPoint[];
}
