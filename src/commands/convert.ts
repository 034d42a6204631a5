import { Args, Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { checkCompression, convert, parseFormat, parseLayout } from '../convert/index.js';

export default class Convert extends HepMlCommand {
  static override summary = 'Convert a dataset to Parquet, TFRecord or Arrow IPC (one file, stdout, or shards with a manifest).';
  static override description = `Reads any dataset hep-ml writes — an Arrow IPC stream ('-' = stdin) or file, a Parquet file, a TFRecord file (plain or GZIP), or a directory of shards with _manifest.json — and writes it as:

  parquet   standard 3-level LIST for list and fixed-size-list columns, float32 kept, V1 data pages, no dictionary encoding, one row group per --row-group-size rows, the Arrow schema metadata in the footer (snappy by default; zstd, gzip, none)
  tfrecord  one tf.train.Example per row: float columns → float_list, integers and bools → int64_list, strings → bytes_list; masked CRC32C framing; --compression gzip = TensorFlow's GZIP TFRecord
  arrow     an Arrow IPC stream

--rows-per-file N makes -o a directory of part-00000.<ext> shards plus _manifest.json (schema, rows and bytes per shard), which appears whole when the run succeeds. --layout sparkdltrigger writes exactly the published CERN dataset columns (HLF_input, GRU_input flattened to 15 219 values, encoded_label). See docs/commands/convert.md.`;
  static override examples = [
    '<%= config.bin %> convert data/train.arrow --to parquet -o train.parquet',
    '<%= config.bin %> convert data/train.arrow --to tfrecord --layout sparkdltrigger --rows-per-file 10000 -o train-tfrecord/',
    '<%= config.bin %> features delphes.root --muons Muon --label ttbar | <%= config.bin %> convert - --to parquet --compression zstd -o ttbar.parquet',
    '<%= config.bin %> convert delphes.parquet --to arrow -o - | <%= config.bin %> features - --label ttbar -o ttbar.arrow',
  ];
  static override args = {
    input: Args.string({ description: "input: Arrow IPC ('-' = stdin), Parquet, TFRecord, or a shard directory with _manifest.json", default: '-', ignoreStdin: true }),
  };
  static override flags = {
    to: Flags.string({ description: 'output format', options: ['parquet', 'tfrecord', 'arrow'], required: true }),
    output: Flags.string({ char: 'o', description: "output file, '-' for stdout, or a directory with --rows-per-file", required: true }),
    compression: Flags.string({ description: 'parquet: snappy (default), zstd, gzip, none; tfrecord: none (default), gzip', options: ['snappy', 'zstd', 'gzip', 'none'] }),
    'row-group-size': Flags.integer({ description: 'parquet: rows per row group (default: about 64 MB of uncompressed data)', min: 1 }),
    'rows-per-file': Flags.integer({ description: 'write a directory of shards of at most N rows, plus _manifest.json', min: 1 }),
    layout: Flags.string({ description: 'default: every column as it is; sparkdltrigger: the published dataset schema', options: ['default', 'sparkdltrigger'], default: 'default' }),
    json: Flags.boolean({ description: 'print a JSON summary: on stdout when -o is not -, else on stderr' }),
    progress: Flags.string({ description: 'progress on stderr: auto, json, none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Convert);
    const to = parseFormat(flags.to);
    const compression = checkCompression(to, flags.compression, flags.output);
    this.refuseBinaryToTerminal(flags.output, to);
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'convert');
    let summary;
    try {
      summary = await convert({
        input: args.input,
        to,
        output: flags.output,
        compression,
        rowGroupSize: flags['row-group-size'],
        rowsPerFile: flags['rows-per-file'],
        layout: parseLayout(flags.layout),
        version: this.config.version,
        onProgress: (p) => progress.update({ entriesDone: p.rows, entriesTotal: p.rowsTotal ?? p.rows, bytes: 0 }),
      });
    } finally {
      progress.stop();
    }
    this.note(
      `hep-ml convert: ${summary.rows} rows (${summary.inputFormat}) → ${summary.output === '-' ? 'stdout' : summary.output} ` +
        `(${summary.to}, ${summary.compression}${summary.layout !== 'default' ? `, layout ${summary.layout}` : ''}${summary.files > 1 ? `, ${summary.files} files` : ''}), ` +
        `${(summary.bytes / 1e6).toFixed(1)} MB in ${summary.seconds} s`,
    );
    if (flags.json) {
      const line = JSON.stringify(summary) + '\n';
      if (flags.output === '-') process.stderr.write(line);
      else process.stdout.write(line);
    }
  }
}
