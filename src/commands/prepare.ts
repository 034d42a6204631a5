import { Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { parseClassArg, parseFraction, prepare, type PrepareProgress, type ScalerFit } from '../prepare/index.js';

export default class Prepare extends HepMlCommand {
  static override summary = 'Label, undersample, min-max scale, split and shuffle per-class feature files into train/test Arrow files.';
  static override description = `Reads the Arrow IPC files of each class (what hep-ml features writes), assigns labels (qcd 0, ttbar 1, wjets 2 by default; other names get the next free label; NAME:LABEL=PATH sets one), optionally undersamples every class to the smallest one (exact, seeded), min-max scales HLF_input (fit on all rows as published, or on the training rows), splits each class exactly (test = round(f · kept)), and shuffles both splits with the seed.

Writes OUT/train.arrow, OUT/test.arrow (columns of the input, HLF_input scaled to float32, label Int32, encoded_label one-hot FixedSizeList<Float32>[K]), OUT/scaler.json and OUT/prepare.json, all-or-nothing. Memory is bounded by --memory (plus a few input and output batches), whatever the input size: larger inputs go through temporary buckets on disk. The same inputs and seed give byte-identical outputs. See docs/commands/prepare.md.`;
  static override examples = [
    '<%= config.bin %> prepare --class qcd=qcd.arrow --class ttbar=tt.arrow --class wjets=w.arrow --out data/',
    '<%= config.bin %> prepare --class qcd=q1.arrow,q2.arrow --class tt=tt.arrow --class w=w.arrow --undersample --scaler-fit train --out data/ --json',
    '<%= config.bin %> prepare --class sig:1=sig.arrow --class bkg:0=bkg.arrow --test-fraction 0.25 --seed 7 --memory "4 GB" --out data/',
  ];
  static override flags = {
    class: Flags.string({
      description: 'NAME=PATH[,PATH...] or NAME:LABEL=PATH[,PATH...] (repeatable; the same NAME again appends files)',
      multiple: true,
      multipleNonGreedy: true,
      required: true,
    }),
    out: Flags.string({ char: 'o', description: 'output directory (created if missing)', required: true }),
    undersample: Flags.boolean({ description: 'keep exactly as many rows of every class as the smallest class has (seeded)' }),
    'test-fraction': Flags.string({ description: 'fraction of each class that goes to test, in [0, 1)', default: '0.2' }),
    seed: Flags.integer({ description: 'seed of every random choice', default: 42 }),
    'scaler-fit': Flags.string({ description: 'fit the min-max scaler on all rows (as published) or on the training rows only', options: ['all', 'train'], default: 'all' }),
    'scale-column': Flags.string({ description: 'the fixed-size float column to min-max scale', default: 'HLF_input' }),
    memory: Flags.string({ description: 'memory budget for row data ("1 GB", "512 MB")', default: '1 GB' }),
    'batch-size': Flags.integer({ description: 'rows per output batch', default: 1024, min: 1 }),
    json: Flags.boolean({ description: 'print the summary as JSON on stdout' }),
    progress: Flags.string({ description: 'progress on stderr: auto (bar on a TTY), json (JSON lines), none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Prepare);
    const classes = (flags.class ?? []).map(parseClassArg);
    const testFraction = parseFraction(flags['test-fraction']);
    const mode = flags.progress as ProgressMode;
    const reporters = new Map<PrepareProgress['phase'], ProgressReporter>();
    let current: ProgressReporter | undefined;
    const onProgress = (p: PrepareProgress) => {
      let r = reporters.get(p.phase);
      if (!r) {
        current?.stop();
        r = new ProgressReporter(mode, `prepare ${p.phase}`);
        reporters.set(p.phase, r);
        current = r;
      }
      r.update({ entriesDone: p.rowsDone, entriesTotal: p.rowsTotal, bytes: p.bytes });
    };
    let summary;
    try {
      summary = await prepare({
        classes,
        out: flags.out,
        undersample: flags.undersample,
        testFraction,
        seed: flags.seed,
        scalerFit: flags['scaler-fit'] as ScalerFit,
        scaleColumn: flags['scale-column'],
        memory: flags.memory,
        batchSize: flags['batch-size'],
        onProgress,
      });
    } finally {
      current?.stop();
    }
    const per = summary.classes.map((c) => `${c.name}=${c.label}: ${c.rows}${c.kept !== c.rows ? ` → ${c.kept}` : ''} (${c.train}/${c.test})`).join(', ');
    this.note(
      `hep-ml prepare: ${summary.rows.input} rows → ${summary.rows.train} train + ${summary.rows.test} test [${per}]; ` +
        `${summary.scaleColumn} min-max fit on ${summary.scalerFit} (${summary.scalerRows} rows); ` +
        `${((summary.bytes.train + summary.bytes.test) / 1e6).toFixed(1)} MB in ${summary.out}, ${summary.run.seconds} s`,
    );
    if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  }
}
