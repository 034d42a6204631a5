import { Flags } from '@oclif/core';
import { basename, resolve } from 'node:path';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { UsageError } from '../errors.js';
import { DEFAULT_BKG_EFFS, DEFAULT_SCORE_BINS } from '../evaluate/metrics.js';
import { formatTable } from '../evaluate/report.js';
import { evaluate } from '../evaluate/run.js';

export default class Evaluate extends HepMlCommand {
  static override summary = 'Evaluate a model on labelled data: loss, accuracy, ROC curves and AUC, confusion matrix, working points, plots.';
  static override description = `Runs the model of a model directory (hep-ml train or import-keras output) over labelled datasets (Arrow, Parquet, TFRecord, shard directories; the output of hep-ml prepare, or hep-ml features output, which is scaled with the model's own scaler) and reports:

  loss and accuracy; per class (one-vs-rest): ROC curve, AUC, precision, recall, F1 of the arg-max prediction, and the signal efficiency at fixed background efficiencies (--bkg-eff, default 1% and 0.1%) with its binomial error; macro and weighted AUC; the confusion matrix.

The table goes to stdout (--json: metrics.json's content instead). With --out DIR (default: evaluation/) it writes metrics.json, roc.csv (every ROC point: class, threshold, fpr = background efficiency, tpr = signal efficiency) and the plots as SVG and PNG: roc, roc-log (background efficiency on a log axis), history (loss and accuracy per epoch from the training log), confusion, scores (each class's score distribution per true class). AUCs are exact (trapezoid over every distinct score; ties handled), the same as scikit-learn's. See docs/commands/evaluate.md.`;
  static override examples = [
    '<%= config.bin %> evaluate --model model/ --data prep/test.arrow',
    '<%= config.bin %> evaluate --model model/ --data prep/test.arrow --out eval/ --bkg-eff 0.01,0.001,0.0001',
    '<%= config.bin %> evaluate --model model/ --data test.parquet --json | jq .macro_auc',
  ];
  static override flags = {
    model: Flags.string({ char: 'm', description: 'the model directory', required: true }),
    data: Flags.string({ description: "labelled data: Arrow/Parquet/TFRecord file, shard directory, or - (stdin)", multiple: true, required: true }),
    out: Flags.string({ char: 'o', description: 'directory for metrics.json, roc.csv and the plots', default: 'evaluation' }),
    plots: Flags.boolean({ description: 'write the plots (SVG and PNG)', default: true, allowNo: true }),
    'bkg-eff': Flags.string({ description: 'background efficiencies of the working points, comma-separated', default: DEFAULT_BKG_EFFS.join(',') }),
    bins: Flags.integer({ description: 'bins of the score histograms', default: DEFAULT_SCORE_BINS, min: 2, max: 10000 }),
    'batch-size': Flags.integer({ description: 'events per inference batch', default: 1024, min: 1 }),
    json: Flags.boolean({ description: "print metrics.json's content on stdout instead of the table" }),
    progress: Flags.string({ description: 'progress on stderr: auto, json, none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Evaluate);
    const bkgEffs = flags['bkg-eff'].split(',').map((s) => {
      const x = Number(s.trim());
      if (!(x > 0 && x < 1)) throw new UsageError(`--bkg-eff: '${s}' is not a background efficiency in (0, 1)`);
      return x;
    });
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'evaluate');
    let r;
    try {
      r = await evaluate({
        model: flags.model,
        data: flags.data,
        out: flags.out,
        plots: flags.plots,
        bkgEffs,
        scoreBins: flags.bins,
        batchSize: flags['batch-size'],
        log: (l) => this.note(`hep-ml evaluate: ${l}`),
        onProgress: (rows, total) => progress.update({ entriesDone: rows, entriesTotal: total ?? rows, bytes: 0 }),
      });
    } finally {
      progress.stop();
    }
    const ev = r.evaluation;
    this.note(`hep-ml evaluate: ${ev.rows.toLocaleString('en-US')} events in ${r.seconds.toFixed(2)} s; wrote ${r.files.length} files to ${flags.out}`);
    if (flags.json) {
      process.stdout.write(JSON.stringify(r.report, null, 2) + '\n');
      return;
    }
    const model = basename(resolve(flags.model));
    process.stdout.write(formatTable(ev, `model ${model} (${String((r.report.model as { kind: string }).kind)}), data ${flags.data.join(', ')}`));
  }
}
