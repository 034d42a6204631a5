import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { runDemo } from '../demo/index.js';
import { UsageError } from '../errors.js';
import { MODEL_KINDS, type ModelKind } from '../train/models.js';

export default class Demo extends HepMlCommand {
  static override summary = 'Run the whole chain on generated events in a temp folder and print the path of the ROC plot.';
  static override description = `generate → features → prepare → convert (Parquet, TFRecord) → train (2 worker processes) → evaluate, on about 1,000 selected toy events per process, in a new directory (a fresh folder under the system temp dir unless --dir is given):

  features/<process>.arrow     the recipe's 14 high-level features and 801×19 particle matrix per event
  data/                        prepare's train.arrow, test.arrow, scaler.json; convert's train.parquet, test.parquet, test.tfrecord
  model/                       the trained model directory (trained on the Parquet file, validated on the TFRecord file)
  eval/                        metrics.json, roc.csv and the plots: roc.png, roc-log.png, confusion.png, scores.png, history.png

stdout gets one line, the path of eval/roc.png (--json: a summary with the AUCs, every step's time and outputs); each step reports on stderr. Takes about 30 s on 2 cores. The same stages as separate commands: examples/Makefile (make -C examples small) and examples/pipe.sh; step by step in docs/tutorial.md.`;
  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --dir demo-run/ --events 3000 --epochs 12',
    '<%= config.bin %> demo --model dnn --workers 1 --json | jq .evaluation.macro_auc',
  ];
  static override flags = {
    dir: Flags.string({ description: 'directory to fill (new or empty; default: a new folder under the system temp dir, kept)' }),
    events: Flags.integer({ description: 'about this many selected events per process', default: 1000, min: 20 }),
    model: Flags.string({ description: 'the classifier', options: [...MODEL_KINDS], default: 'inclusive' }),
    epochs: Flags.integer({ description: 'training epochs', default: 8, min: 1 }),
    workers: Flags.integer({ description: 'training processes (1: train in this process)', default: 2, min: 1 }),
    lr: Flags.string({ description: "Adam learning rate (higher than Keras' 0.001: the toy samples are small)", default: '0.01' }),
    seed: Flags.integer({ description: 'seed of the events, the split and the training', default: 42, min: 0 }),
    json: Flags.boolean({ description: 'print a JSON summary on stdout instead of the plot path' }),
    progress: Flags.string({ description: 'progress on stderr: auto (bar on a TTY), json (JSON lines), none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Demo);
    const lr = Number(flags.lr);
    if (!(lr > 0 && Number.isFinite(lr))) throw new UsageError(`--lr: expected a positive number, got '${flags.lr}'`);
    const dir = flags.dir ?? (await mkdtemp(join(tmpdir(), 'hep-ml-demo-')));
    this.note(`hep-ml demo: the whole chain in ${dir}`);
    const mode = flags.progress as ProgressMode;
    let reporter: ProgressReporter | undefined;
    let current = '';
    const abort = new AbortController();
    const onSigint = () => {
      if (abort.signal.aborted) process.exit(130);
      this.note('hep-ml demo: interrupted; stopping');
      abort.abort(new Error('interrupted'));
    };
    process.on('SIGINT', onSigint);
    let r;
    try {
      r = await runDemo({
        dir,
        events: flags.events,
        model: flags.model as ModelKind,
        epochs: flags.epochs,
        workers: flags.workers,
        lr,
        seed: flags.seed,
        version: this.config.version,
        signal: abort.signal,
        log: (l) => {
          reporter?.stop();
          reporter = undefined;
          current = '';
          this.note(`hep-ml demo: ${l}`);
        },
        progress: (step, done, total) => {
          if (step !== current) {
            reporter?.stop();
            reporter = new ProgressReporter(mode, `demo ${step}`);
            current = step;
          }
          reporter!.update({ entriesDone: done, entriesTotal: total, bytes: 0 });
        },
      });
    } catch (e) {
      if (abort.signal.aborted) {
        this.note(`hep-ml demo: stopped; partial results in ${dir}`);
        this.exit(130);
      }
      throw e;
    } finally {
      reporter?.stop();
      process.off('SIGINT', onSigint);
    }
    this.note(`hep-ml demo: done in ${r.seconds.toFixed(0)} s; ${(r.bytes / 1e6).toFixed(0)} MB in ${r.dir} (remove it when done)`);
    if (flags.json) {
      const { evaluation, ...rest } = r;
      const ev = { rows: evaluation.rows, classes: evaluation.classes, loss: evaluation.loss, accuracy: evaluation.accuracy, macro_auc: evaluation.macro_auc, auc: Object.fromEntries(evaluation.per_class.map((c) => [c.name, c.auc])), confusion: evaluation.confusion };
      process.stdout.write(JSON.stringify({ ...rest, evaluation: ev }) + '\n');
    } else {
      process.stdout.write(r.roc + '\n');
    }
  }
}
