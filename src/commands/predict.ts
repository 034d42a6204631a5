import { Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { checkCompression, parseFormat } from '../convert/index.js';
import { formatOf, predict } from '../evaluate/predict.js';

export default class Predict extends HepMlCommand {
  static override summary = 'Write per-event class probabilities of a model over datasets (Arrow, Parquet or TFRecord).';
  static override description = `Streams datasets (Arrow, Parquet, TFRecord, shard directories, - for stdin; labelled or not) through the model of a model directory, one batch at a time, and writes one row per event:

  event (int64, the event's index over the inputs in order), label (int32, when the data has labels; -1 where an event has none), predicted (int32, the arg-max class), prob_<class> (float32, one column per class).

The format follows -o's extension (.parquet/.pq → Parquet, .tfrecord/.tfrecords → TFRecord, .tfrecord.gz → GZIP TFRecord, otherwise Arrow IPC; '-' = an Arrow IPC stream on stdout), or --format. Data that did not go through hep-ml prepare (hep-ml features output) is scaled with the model's own min-max scaler; data without any hep-ml metadata (a TFRecord file) is judged by the range of its first batch, and stderr says which. See docs/commands/predict.md.`;
  static override examples = [
    '<%= config.bin %> predict --model model/ --data prep/test.arrow -o scores.parquet',
    '<%= config.bin %> generate --process ttbar --events 5000 | <%= config.bin %> features - | <%= config.bin %> predict --model model/ --data - -o - | <%= config.bin %> convert - --to parquet -o ttbar-scores.parquet',
  ];
  static override flags = {
    model: Flags.string({ char: 'm', description: 'the model directory', required: true }),
    data: Flags.string({ description: 'data: Arrow/Parquet/TFRecord file, shard directory, or - (stdin)', multiple: true, required: true }),
    output: Flags.string({ char: 'o', description: "output file, or '-' for an Arrow IPC stream on stdout", required: true }),
    format: Flags.string({ description: 'output format (default: from the extension)', options: ['arrow', 'parquet', 'tfrecord'] }),
    compression: Flags.string({ description: 'parquet: snappy (default), zstd, gzip, none; tfrecord: none, gzip' }),
    'batch-size': Flags.integer({ description: 'events per inference batch', default: 1024, min: 1 }),
    json: Flags.boolean({ description: 'print a JSON summary: on stdout when -o is not -, else on stderr' }),
    progress: Flags.string({ description: 'progress on stderr: auto, json, none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Predict);
    const format = flags.format ? parseFormat(flags.format) : flags.output === '-' ? 'arrow' : formatOf(flags.output);
    const compression = checkCompression(format, flags.compression, flags.output);
    this.refuseBinaryToTerminal(flags.output, format);
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'predict');
    let s;
    try {
      s = await predict({
        model: flags.model,
        data: flags.data,
        output: flags.output,
        format,
        compression,
        batchSize: flags['batch-size'],
        log: (l) => this.note(`hep-ml predict: ${l}`),
        onProgress: (rows, total) => progress.update({ entriesDone: rows, entriesTotal: total ?? rows, bytes: 0 }),
      });
    } finally {
      progress.stop();
    }
    this.note(`hep-ml predict: ${s.rows.toLocaleString('en-US')} events → ${s.output === '-' ? 'stdout' : s.output} (${s.format}, ${(s.bytes / 1e6).toFixed(1)} MB) in ${s.seconds.toFixed(2)} s`);
    if (flags.json) {
      const line = JSON.stringify(s) + '\n';
      if (flags.output === '-') process.stderr.write(line);
      else process.stdout.write(line);
    }
  }
}
