/**
 * evaluate's text outputs: roc.csv and the table printed on stdout.
 */
import type { Evaluation } from './metrics.js';

/** ROC points of every class: class, threshold (select score ≥ threshold), fpr (background eff.), tpr (signal eff.). */
export function rocCsv(ev: Evaluation): string {
  const lines = ['class,threshold,fpr,tpr'];
  for (const c of ev.roc) {
    if (!c) continue;
    const name = /[",\n]/.test(c.cls) ? `"${c.cls.replace(/"/g, '""')}"` : c.cls;
    for (let k = 0; k < c.fpr.length; k++) lines.push(`${name},${Number.isFinite(c.thresholds[k]!) ? c.thresholds[k] : 'inf'},${c.fpr[k]},${c.tpr[k]}`);
  }
  return lines.join('\n') + '\n';
}

const fmt = (x: number | null, d = 4): string => (x === null || Number.isNaN(x) ? '—' : x.toFixed(d));
const pct = (x: number): string => `${+(x * 100).toPrecision(3)}%`;

/** The human-readable summary `hep-ml evaluate` prints. */
export function formatTable(ev: Evaluation, header: string): string {
  const out: string[] = [header, ''];
  out.push(`events ${ev.rows.toLocaleString('en-US')}   loss ${fmt(ev.loss)}   accuracy ${fmt(ev.accuracy)}   macro AUC ${fmt(ev.macro_auc)}`, '');
  const wps = ev.per_class[0]?.working_points.map((w) => w.bkg_eff) ?? [];
  const head = ['class', 'events', 'AUC', 'precision', 'recall', 'F1', ...wps.map((t) => `εS @ εB=${pct(t)}`)];
  const body = ev.per_class.map((c) => [
    c.name,
    c.support.toLocaleString('en-US'),
    fmt(c.auc),
    fmt(c.precision),
    fmt(c.recall),
    fmt(c.f1),
    ...c.working_points.map((w) => (w.sig_eff === null ? '—' : `${fmt(w.sig_eff, 3)} ± ${fmt(w.sig_eff_err, 3)}${w.low_stats ? ' *' : ''}`)),
  ]);
  out.push(...table(head, body, 1));
  if (ev.per_class.some((c) => c.working_points.some((w) => w.low_stats && w.sig_eff !== null))) {
    out.push('* fewer than 10 background events at this efficiency: a statistical guess');
  }
  out.push('', 'confusion matrix (rows: true class, columns: predicted)');
  out.push(...table(['', ...ev.classes], ev.confusion.map((r, k) => [ev.classes[k]!, ...r.map((n) => n.toLocaleString('en-US'))]), 1));
  for (const w of ev.warnings) out.push(`warning: ${w}`);
  return out.join('\n') + '\n';
}

/** Columns padded to their widths; the first `left` columns left-aligned, the rest right-aligned. */
function table(head: string[], body: string[][], left: number): string[] {
  const w = head.map((h, j) => Math.max(h.length, ...body.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((c, j) => (j < left ? c.padEnd(w[j]!) : c.padStart(w[j]!))).join('  ').trimEnd();
  return [line(head), ...body.map(line)];
}
