/**
 * The evaluate stage: a model directory and datasets → metrics.json, roc.csv, plots (SVG + PNG) and a table.
 *
 *   const r = await evaluate({ model: 'model/', data: ['prep/test.arrow'], out: 'eval/' });
 *   r.evaluation.per_class[0].auc
 *
 * Memory: the probabilities and labels of every event (4·(classes + 1) bytes each: 16 MB per million events
 * of three classes) — the exact ROC curve needs them all — plus one batch.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { IoError, UsageError } from '../errors.js';
import { makeTempDir } from '../columnar/tempdir.js';
import { hepMlVersion } from '../version.js';
import { concatTyped } from '../train/data.js';
import { evaluateScores, type Evaluation, type EvaluateOptions as MetricOptions } from './metrics.js';
import { openModel, readHistory, scoreBatches } from './model.js';
import { evaluationPlots } from './plots.js';
import { rocCsv } from './report.js';

export const EVALUATION_FORMAT = 'hep-ml/evaluation';

export interface EvaluateOptions extends MetricOptions {
  /** The model directory (hep-ml train or import-keras output). */
  model: string;
  /** Datasets with labels (Arrow, Parquet, TFRecord, shard directories; '-' = stdin). */
  data: string[];
  /** Where metrics.json, roc.csv and the plots go (created; our files in it are replaced). None: nothing written. */
  out?: string;
  /** Write the plots (default true). */
  plots?: boolean;
  batchSize?: number;
  log?: (line: string) => void;
  onProgress?: (rows: number, total?: number) => void;
  signal?: AbortSignal;
}

export interface EvaluateResult {
  evaluation: Evaluation;
  /** metrics.json's content. */
  report: Record<string, unknown>;
  /** Files written (absolute paths). */
  files: string[];
  seconds: number;
}

/** Evaluates a model on datasets; writes the outputs when `out` is given. */
export async function evaluate(o: EvaluateOptions): Promise<EvaluateResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  if (o.data.length === 0) throw new UsageError('no data to evaluate (--data PATH)');
  const m = await openModel(o.model);
  const C = m.classes.length;
  const probs: Float32Array[] = [];
  const labels: Int32Array[] = [];
  let rows = 0;
  let total: number | undefined = 0;
  const sources: { path: string; name: string; rows?: number }[] = [];
  for await (const b of scoreBatches(m, o.data, {
    batchSize: o.batchSize,
    labels: 'required',
    reader: 'evaluate',
    log,
    signal: o.signal,
    onSource: (s, path) => {
      sources.push({ path, name: s.name, rows: s.rows });
      total = total !== undefined && s.rows !== undefined ? total + s.rows : undefined;
    },
  })) {
    probs.push(b.prob);
    labels.push(b.labels);
    rows += b.rows;
    o.onProgress?.(rows, total);
  }
  if (rows === 0) throw new UsageError(`nothing to evaluate: ${o.data.join(', ')} ${o.data.length > 1 ? 'have' : 'has'} no events`);
  const prob = concatTyped(probs, (n) => new Float32Array(n));
  const lab = concatTyped(labels, (n) => new Int32Array(n));
  probs.length = 0;
  labels.length = 0;
  const ev = evaluateScores(prob, lab, m.classes, o);
  for (const w of ev.warnings) log(`warning: ${w}`);
  const history = await readHistory(o.model);

  const report: Record<string, unknown> = {
    format: EVALUATION_FORMAT,
    version: 1,
    hepml: hepMlVersion(),
    created: new Date().toISOString(),
    model: { dir: resolve(o.model), kind: m.meta.model, classes: m.classes, params: m.meta.params, inputs: m.inputs },
    data: sources.map((s) => ({ path: s.path === '-' ? '-' : resolve(s.path), rows: s.rows ?? null })),
    rows: ev.rows,
    loss: ev.loss,
    accuracy: ev.accuracy,
    macro_auc: ev.macro_auc,
    weighted_auc: ev.weighted_auc,
    per_class: ev.per_class,
    confusion: { rows: 'true class', columns: 'predicted class (arg-max)', classes: m.classes, counts: ev.confusion },
    warnings: ev.warnings,
  };

  const files: string[] = [];
  if (o.out !== undefined) {
    const out = resolve(o.out);
    await mkdir(out, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new IoError(`cannot create the output directory: ${e.message}`, { file: o.out });
    });
    const staged: [string, string | Uint8Array][] = [
      ['metrics.json', JSON.stringify(report, null, 2) + '\n'],
      ['roc.csv', rocCsv(ev)],
    ];
    if (o.plots ?? true) {
      const title = `${basename(resolve(o.model))} (${m.meta.model})`;
      const plots = await evaluationPlots({ classes: m.classes, title, roc: ev.roc, confusion: ev.confusion, scores: ev.scores, history });
      for (const p of plots) staged.push([`${p.name}.svg`, p.svg], [`${p.name}.png`, p.png]);
      if (history.length === 0) log(`${o.model} has no training log (metrics.jsonl): no loss/accuracy plot`);
    }
    // everything is written into a temp directory beside OUT first, then moved in: no partial file ever
    const tmp = await makeTempDir(dirname(out), `${basename(out)}.`);
    try {
      for (const [name, data] of staged) await writeFile(join(tmp.path, name), data);
      for (const [name] of staged) {
        await rename(join(tmp.path, name), join(out, name));
        files.push(join(out, name));
      }
    } finally {
      await tmp.remove();
    }
  }
  return { evaluation: ev, report, files, seconds: (performance.now() - t0) / 1000 };
}
