import { Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../columnar/index.js';
import { UsageError } from '../errors.js';
import { checkGenerateOptions, DEFAULT_BATCH_SIZE, DEFAULT_SEED, generateEvents, generatorFields, generatorMetadata, PROCESSES, type Process } from '../generate/index.js';

export default class Generate extends HepMlCommand {
  static override summary = 'Generate toy Delphes events (QCD, tt̄, W+jets) as an Arrow IPC stream, in the schema ingest gives for a Delphes tree.';
  static override description = `Writes N toy events of one process with the Delphes leaves the SparkDLTrigger recipe reads, typed as \`hep-ml ingest\` types them: EFlowTrack, EFlowPhoton, EFlowNeutralHadron, Jet, Electron, MuonTight (or Muon) and MissingET, each collection's leaves as List<T> plus its _size counter (ingest of a real file has more columns; features reads either).

The kinematics are plausible per process (isolated or in-jet lepton, jets and b-tags, MET, 100–600 EFlow objects per event), so the whole chain runs at any scale without real samples and a classifier can learn to separate the processes, though not perfectly. Deterministic: the same --process, --events and --seed give identical output whatever --batch-size. See docs/commands/generate.md for the physics model and measured distributions.`;
  static override examples = [
    '<%= config.bin %> generate --process ttbar --events 10000 -o ttbar.arrow',
    '<%= config.bin %> generate --process wjets --events 1000 --seed 7 -o - | <%= config.bin %> flatten -o wjets-padded.arrow',
    '<%= config.bin %> generate --process qcd --events 500 --muons Muon -o qcd.arrow',
  ];
  static override flags = {
    process: Flags.string({ char: 'p', description: 'process to generate', options: [...PROCESSES], required: true }),
    events: Flags.integer({ char: 'n', description: 'number of events', min: 0, required: true }),
    seed: Flags.integer({ description: 'random seed (non-negative integer)', min: 0, default: DEFAULT_SEED }),
    muons: Flags.string({ description: 'name of the muon collection', options: ['MuonTight', 'Muon'], default: 'MuonTight' }),
    'batch-size': Flags.integer({ description: 'events per record batch (does not change the events)', min: 1, default: DEFAULT_BATCH_SIZE }),
    output: Flags.string({ char: 'o', description: "output file, or '-' for stdout", default: '-' }),
    progress: Flags.string({ description: 'progress on stderr: auto (bar on a TTY), json (JSON lines), none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  /** oclif's parse, with its (multi-line) flag errors turned into a one-line UsageError (exit 2). */
  private async parseOneLine() {
    try {
      return await this.parse(Generate);
    } catch (e) {
      const err = e as Error & { oclif?: { exit?: number } };
      if (err.oclif?.exit !== 2) throw e;
      const msg = err.message
        .replace(/The following errors? occurred:/g, '')
        .replace(/See more help with --help/g, '')
        .replace(/\s+/g, ' ')
        .trim()
        .replace(/^Parsing (--[\w-]+) Expected/, '$1: expected');
      throw new UsageError(`${msg} (see hep-ml generate --help)`);
    }
  }

  async run(): Promise<void> {
    const { flags } = await this.parseOneLine();
    const opts = checkGenerateOptions({
      process: flags.process as Process,
      events: flags.events,
      seed: flags.seed,
      batchSize: flags['batch-size'],
      muons: flags.muons as 'MuonTight' | 'Muon',
    });
    this.refuseBinaryToTerminal(flags.output);
    const schema = makeSchema(generatorFields(opts), generatorMetadata(opts));
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'generate');
    let writer: IpcStreamWriter | undefined;
    try {
      writer = await IpcStreamWriter.open(flags.output, { schema });
      for (const batch of generateEvents(opts)) {
        await writer.write(toRecordBatch(schema, batch));
        progress.update({ entriesDone: batch.entryStop, entriesTotal: opts.events, bytes: writer.bytesWritten });
      }
      await writer.close();
    } catch (e) {
      await writer?.abort();
      throw e;
    } finally {
      progress.stop();
    }
  }
}
