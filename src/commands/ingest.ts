import { Args, Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { remoteFlags, sourceOptions } from '../cli/remote.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../columnar/index.js';
import { openIngest } from '../ingest/index.js';

export default class Ingest extends HepMlCommand {
  static override summary = 'Stream ROOT TTree branches into an Arrow IPC stream (one RecordBatch per step).';
  static override description = `Reads the selected branches of a TTree from one or more ROOT files (read as one chain) and writes an Arrow IPC stream to a file, or to stdout ('-', the default; refused when stdout is a terminal).

Columns are named by the branch's full name in ROOT; jagged branches become List<T>, fixed-size arrays FixedSizeList<T>, scalars T, with their types preserved. Memory stays bounded: one step of entries is held at a time and stdout backpressure is respected. See docs/commands/ingest.md.`;
  static override examples = [
    '<%= config.bin %> ingest events.root --tree Events -o events.arrow',
    `<%= config.bin %> ingest nano.root -t Events -b 'Muon_*' -b nMuon --entry-stop 1000 -o - | python3 -c 'import sys, pyarrow as pa; t = pa.ipc.open_stream(sys.stdin.buffer).read_all(); print(t.num_rows, t.column_names)'`,
    '<%= config.bin %> ingest a.root b.root -t Delphes -b "EFlowTrack.*" --step-size "50 MB" -o tracks.arrow',
  ];
  static override strict = false;
  static override args = { files: Args.string({ description: 'ROOT files (paths, http(s):// URLs, or root:// with --xrootd-http-port)', required: true, ignoreStdin: true }) };
  static override flags = {
    tree: Flags.string({ char: 't', description: 'tree name (dir/name, name;cycle); optional if the file has one tree' }),
    branches: Flags.string({
      char: 'b',
      description: 'branch name or glob (repeat -b for more); default: all readable branches',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'entry-start': Flags.integer({ description: 'first entry (global over all files)', min: 0 }),
    'entry-stop': Flags.integer({ description: 'stop before this entry (global over all files)', min: 0 }),
    'step-size': Flags.string({ description: 'entries per batch, or input bytes per batch ("100 MB")', default: '100 MB' }),
    output: Flags.string({ char: 'o', description: "output file, or '-' for stdout", default: '-' }),
    progress: Flags.string({ description: 'progress on stderr: auto (bar on a TTY), json (JSON lines), none', options: ['auto', 'json', 'none'], default: 'auto' }),
    quiet: Flags.boolean({ char: 'q', description: 'do not report skipped branches' }),
    ...remoteFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Ingest);
    const files = argv as string[];
    this.refuseBinaryToTerminal(flags.output);
    const skipped: string[] = [];
    const job = await openIngest({
      files,
      tree: flags.tree,
      branches: flags.branches,
      entryStart: flags['entry-start'],
      entryStop: flags['entry-stop'],
      stepSize: flags['step-size'],
      source: sourceOptions(flags),
      onSkip: (b, why) => skipped.push(`${b} (${why})`),
    });
    if (skipped.length && !flags.quiet) {
      this.note(`hep-ml ingest: skipping ${skipped.length} branch(es) hep-ml cannot read: ${skipped.slice(0, 10).join('; ')}${skipped.length > 10 ? '; ...' : ''}`);
    }
    const schema = makeSchema(job.fields, job.metadata);
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'ingest');
    let writer: IpcStreamWriter | undefined;
    try {
      writer = await IpcStreamWriter.open(flags.output, { schema });
      for await (const batch of job.batches((p) =>
        progress.update({ entriesDone: p.entriesDone, entriesTotal: p.entriesTotal, bytes: p.uncompressedBytes }),
      )) {
        await writer.write(toRecordBatch(schema, batch));
      }
      await writer.close();
    } catch (e) {
      await writer?.abort();
      throw e;
    } finally {
      progress.stop();
      await job.close();
    }
  }
}
