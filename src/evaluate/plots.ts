/**
 * The figures of `hep-ml evaluate`: ROC curves (linear and the HEP log convention), the training
 * history, the normalised confusion matrix and the score distributions, as SVG and PNG.
 */
import { Figure, TAB10 } from './plot/figure.js';
import { initPng } from './plot/png.js';
import type { EvaluationPlotsInput, RocCurve } from './types.js';

/** One figure, both ways: SVG with real text and a 2× PNG. */
export interface PlotFile {
  /** File name without extension: roc, roc-log, history, confusion, scores. */
  name: string;
  svg: string;
  png: Uint8Array;
}

/** A figure of the evaluation, before rendering. */
export interface NamedFigure {
  name: string;
  figure: Figure;
}

const RANDOM = '#7f7f7f';

function classColor(i: number): string {
  return TAB10[i % TAB10.length] as string;
}

function fmtAuc(auc: number): string {
  return Number.isFinite(auc) ? auc.toFixed(4) : 'n/a';
}

/** Curves that exist, with their class index (for a color that is the same in every figure). */
function curves(input: EvaluationPlotsInput): Array<{ i: number; c: RocCurve }> {
  const out: Array<{ i: number; c: RocCurve }> = [];
  input.roc.forEach((c, i) => {
    if (c && c.fpr.length > 0 && c.tpr.length > 0) out.push({ i, c });
  });
  return out;
}

/** ROC curves, x = background efficiency, y = signal efficiency, both linear 0–1. */
function rocFigure(input: EvaluationPlotsInput): Figure | undefined {
  const cs = curves(input);
  if (cs.length === 0) return undefined;
  const fig = new Figure({ panelWidth: 560, panelHeight: 500 });
  const p = fig.panel(0, 0, {
    title: `${input.title}: ROC curves (one vs. rest)`,
    x: { label: 'Background efficiency (false-positive rate)', domain: [-0.01, 1.01] },
    y: { label: 'Signal efficiency (true-positive rate)', domain: [-0.01, 1.01] },
  });
  for (const { i, c } of cs) {
    p.line(c.fpr, c.tpr, { label: `${c.cls} (AUC = ${fmtAuc(c.auc)})`, color: classColor(i) });
  }
  p.line([0, 1], [0, 1], { label: 'Random', color: RANDOM, width: 1.25, dash: [6, 4] });
  p.legend({ loc: 'lower right' });
  return fig;
}

/** ROC curves the HEP way: x = signal efficiency (linear), y = background efficiency (log). */
function rocLogFigure(input: EvaluationPlotsInput): Figure | undefined {
  const cs = curves(input);
  if (cs.length === 0) return undefined;
  let minPos = Infinity;
  for (const { c } of cs) for (const v of c.fpr) if (v > 0 && v < minPos) minPos = v;
  // Down to just below the smallest non-zero background efficiency (1e-4 without one), at least a decade.
  const lo = Number.isFinite(minPos) ? Math.min(0.1, minPos / 1.5) : 1e-4;
  const fig = new Figure({ panelWidth: 560, panelHeight: 500 });
  const p = fig.panel(0, 0, {
    title: `${input.title}: background efficiency vs. signal efficiency`,
    x: { label: 'Signal efficiency (true-positive rate)', domain: [-0.01, 1.01] },
    y: { label: 'Background efficiency (false-positive rate)', scale: 'log', domain: [lo, 1.15] },
  });
  for (const { i, c } of cs) {
    // tpr on x, fpr on y; points with fpr = 0 have no place on a log axis
    const xs: number[] = [];
    const ys: number[] = [];
    const n = Math.min(c.fpr.length, c.tpr.length);
    for (let k = 0; k < n; k++) {
      const f = c.fpr[k] as number;
      if (f > 0) {
        xs.push(c.tpr[k] as number);
        ys.push(f);
      }
    }
    p.line(xs, ys, { label: `${c.cls} (AUC = ${fmtAuc(c.auc)})`, color: classColor(i) });
  }
  // random guessing: fpr = tpr, a curve on the log axis
  const rx: number[] = [];
  for (let k = 0; k <= 200; k++) rx.push(10 ** (Math.log10(lo) * (1 - k / 200)));
  p.line(rx, rx, { label: 'Random', color: RANDOM, width: 1.25, dash: [6, 4] });
  p.legend({ loc: 'best' });
  return fig;
}

/** Loss and accuracy per epoch, training and validation. */
function historyFigure(input: EvaluationPlotsInput): Figure | undefined {
  const h = input.history;
  if (h.length === 0) return undefined;
  const epochs = h.map((p) => p.epoch);
  const markers = h.length <= 40;
  const fig = new Figure({ cols: 2, panelWidth: 520, panelHeight: 420, title: `${input.title}: training history` });
  const panels = [
    { key: 'loss', val: 'val_loss', label: 'Loss', loc: 'upper right' },
    { key: 'accuracy', val: 'val_accuracy', label: 'Accuracy', loc: 'lower right' },
  ] as const;
  panels.forEach((spec, col) => {
    const p = fig.panel(0, col, {
      x: { label: 'Epoch', integer: true },
      y: { label: spec.label },
    });
    p.line(epochs, h.map((e) => e[spec.key]), { label: 'Training', color: TAB10[0], markers });
    const val = h.map((e) => e[spec.val] ?? Number.NaN);
    if (val.some(Number.isFinite)) p.line(epochs, val, { label: 'Validation', color: TAB10[1], markers });
    p.legend({ loc: 'best' });
  });
  return fig;
}

/** The confusion matrix normalised per true class, with fractions and counts. */
function confusionFigure(input: EvaluationPlotsInput): Figure | undefined {
  const m = input.confusion;
  const n = input.classes.length;
  if (n === 0 || m.length === 0) return undefined;
  const total = m.reduce((a, r) => a + r.reduce((b, v) => b + (Number.isFinite(v) ? v : 0), 0), 0);
  if (total <= 0) return undefined;
  const fmtCount = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const fractions: number[][] = [];
  const notes: string[][][] = [];
  for (let t = 0; t < n; t++) {
    const row = m[t] ?? [];
    const sum = row.reduce((a, v) => a + (Number.isFinite(v) ? v : 0), 0);
    fractions.push(Array.from({ length: n }, (_, j) => (sum > 0 ? (row[j] ?? 0) / sum : Number.NaN)));
    notes.push(
      Array.from({ length: n }, (_, j) => {
        const v = row[j] ?? 0;
        return sum > 0 ? [(v / sum).toFixed(2), `(${fmtCount.format(v)})`] : ['–', '(0)'];
      }),
    );
  }
  const side = Math.max(440, Math.min(900, 140 + 90 * n));
  const fig = new Figure({ panelWidth: side + 110, panelHeight: side });
  fig
    .panel(0, 0, {
      title: `${input.title}: confusion matrix`,
      x: { label: 'Predicted class' },
      y: { label: 'True class' },
    })
    .heatmap(fractions, {
      xCategories: input.classes,
      yCategories: input.classes,
      colormap: 'Blues',
      domain: [0, 1],
      annotations: notes,
      colorbarLabel: 'Fraction of true class',
    });
  return fig;
}

/** Each output score's distribution per true class, normalised to unit area, log y. */
function scoresFigure(input: EvaluationPlotsInput): Figure | undefined {
  const { edges, counts } = input.scores;
  const k = Math.min(counts.length, input.classes.length);
  if (edges.length < 2 || k === 0) return undefined;
  // Up to 3 classes: one row, a legend in each panel. More: one legend, in a spare cell.
  const shared = k > 3;
  const cols = shared ? (k >= 8 ? 4 : 3) : k;
  const rows = Math.ceil((k + (shared ? 1 : 0)) / cols);
  const fig = new Figure({ rows, cols, panelWidth: 460, panelHeight: 400, title: `${input.title}: score distributions` });
  let drawn = false;
  for (let s = 0; s < k; s++) {
    const p = fig.panel(Math.floor(s / cols), s % cols, {
      x: { label: `P(${input.classes[s]})`, domain: [edges[0] as number, edges[edges.length - 1] as number] },
      y: { label: 'Normalised to unit area', scale: 'log' },
    });
    const perTrue = counts[s] ?? [];
    for (let j = 0; j < Math.min(perTrue.length, input.classes.length); j++) {
      const c = perTrue[j] as Float64Array;
      let sum = 0;
      for (const v of c) if (Number.isFinite(v)) sum += v;
      if (!(sum > 0)) continue;
      const density = new Float64Array(Math.min(c.length, edges.length - 1));
      for (let b = 0; b < density.length; b++) {
        const w = (edges[b + 1] as number) - (edges[b] as number);
        density[b] = w > 0 ? (c[b] as number) / (sum * w) : Number.NaN;
      }
      p.step(edges, density, { label: input.classes[j], color: classColor(j), fill: true, fillOpacity: 0.12 });
      drawn = true;
    }
    if (!shared) p.legend({ loc: 'best', title: 'True class' });
    else if (s === 0) fig.legendPanel(Math.floor(k / cols), k % cols, p, { title: 'True class' });
  }
  return drawn ? fig : undefined;
}

/** The evaluation figures whose data is present, in order: roc, roc-log, history, confusion, scores. */
export function evaluationFigures(input: EvaluationPlotsInput): NamedFigure[] {
  const out: NamedFigure[] = [];
  const add = (name: string, f: Figure | undefined): void => {
    if (f) out.push({ name, figure: f });
  };
  add('roc', rocFigure(input));
  add('roc-log', rocLogFigure(input));
  add('history', historyFigure(input));
  add('confusion', confusionFigure(input));
  add('scores', scoresFigure(input));
  return out;
}

/** Renders every evaluation figure whose data is present as SVG (real text) and PNG (2×). */
export async function evaluationPlots(input: EvaluationPlotsInput): Promise<PlotFile[]> {
  await initPng();
  const out: PlotFile[] = [];
  for (const { name, figure } of evaluationFigures(input)) {
    out.push({ name, svg: figure.toSvg(), png: await figure.toPng(2) });
  }
  return out;
}
