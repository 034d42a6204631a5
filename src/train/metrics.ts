/**
 * Classification metrics over predicted class probabilities (rows × classes) and integer labels.
 */

/**
 * ROC AUC of `score` for the positive set `positive` (Mann–Whitney U with average ranks for ties: equal to
 * the trapezoidal area under the ROC curve). NaN when either class is empty.
 */
export function rocAuc(score: Float32Array | Float64Array, positive: Uint8Array): number {
  const n = score.length;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => score[a]! - score[b]!);
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && score[idx[j]!] === score[idx[i]!]) j++;
    const avg = (i + 1 + j) / 2; // ranks i+1 .. j
    for (let k = i; k < j; k++) {
      if (positive[idx[k]!]) {
        nPos++;
        rankSum += avg;
      }
    }
    i = j;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface ClassMetrics {
  rows: number;
  /** Mean categorical cross-entropy as Keras computes it (each row normalised to sum 1, clipped to [1e-7, 1 − 1e-7]). */
  loss: number;
  accuracy: number;
  /** One-vs-rest AUC per class. */
  auc: number[];
}

/** Loss, accuracy and one-vs-rest AUC of probabilities [rows, classes] against labels. */
export function classMetrics(prob: Float32Array, labels: Int32Array, classes: number): ClassMetrics {
  const rows = labels.length;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    let best = 0;
    for (let k = 1; k < classes; k++) if (prob[i * classes + k]! > prob[i * classes + best]!) best = k;
    if (best === y) correct++;
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += prob[i * classes + k]!;
    loss -= Math.log(Math.min(1 - 1e-7, Math.max(1e-7, prob[i * classes + y]! / sum)));
  }
  const auc: number[] = [];
  const score = new Float32Array(rows);
  const pos = new Uint8Array(rows);
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < rows; i++) {
      score[i] = prob[i * classes + k]!;
      pos[i] = labels[i] === k ? 1 : 0;
    }
    auc.push(rocAuc(score, pos));
  }
  return { rows, loss: rows ? loss / rows : NaN, accuracy: rows ? correct / rows : NaN, auc };
}
