import { Args, Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { remoteFlags, sourceOptions } from '../cli/remote.js';
import { IpcStreamWriter } from '../columnar/index.js';
import { UsageError } from '../errors.js';
import { CLASS_LABELS, recipeOptions, type RecipeOptions } from '../features/recipe.js';
import { isRootInput, openArrowInput, openRootInput, writeFeatures, type FeaturesInput } from '../features/run.js';
import { requiredBranches, type FeaturesStats } from '../features/stream.js';

/** `--label 1` or `--label ttbar` → 1. */
export function parseLabel(s: string | undefined): number {
  if (s === undefined) return -1;
  const t = s.trim().toLowerCase();
  if (t in CLASS_LABELS) return CLASS_LABELS[t]!;
  if (/^\d+$/.test(t)) return Number(t);
  throw new UsageError(`--label takes a class number (0 QCD, 1 ttbar, 2 W+jets) or name (qcd, ttbar, wjets), got '${s}'`);
}

function pct(n: number, d: number): string {
  return d ? `${((100 * n) / d).toFixed(1)}%` : '–';
}

export default class Features extends HepMlCommand {
  static override summary = 'The CERN SparkDLTrigger recipe: isolated-lepton selection, 801×19 particle matrix and 14 high-level features per event.';
  static override description = `Reads Delphes events — an Arrow IPC stream from 'hep-ml ingest' (a file, or '-' for stdin) or a ROOT file directly — and writes one row per selected event: HLF_input (14 floats), GRU_input (801×19 floats, row-major), n_particles, label, encoded_label, entry; with --recipe corrected also GRU_mask.

--recipe sparkdltrigger (the default) reproduces the published notebooks exactly, quirks included; --recipe corrected fixes them (docs/features.md lists every difference). A summary of the selection goes to stderr.`;
  static override examples = [
    '<%= config.bin %> features delphes.root --muons Muon --label ttbar -o ttbar.arrow',
    "<%= config.bin %> ingest delphes.root -t Delphes $(<%= config.bin %> features --print-branches --muons Muon | sed 's/^/-b /') | <%= config.bin %> features - --muons Muon --label wjets -o wjets.arrow",
    '<%= config.bin %> generate --process qcd --events 10000 | <%= config.bin %> features --recipe corrected --sort pt --label qcd -o qcd.arrow',
  ];
  static override args = {
    input: Args.string({ description: "Arrow IPC stream of a Delphes tree ('-' = stdin), or a ROOT file (.root, http(s)://, root://)", default: '-', ignoreStdin: true }),
  };
  static override flags = {
    recipe: Flags.string({ description: 'sparkdltrigger: the published recipe, quirks included; corrected: the quirks fixed', options: ['sparkdltrigger', 'corrected'], default: 'sparkdltrigger' }),
    muons: Flags.string({ description: 'muon collection (the published samples have MuonTight; many Delphes cards write Muon)', default: 'MuonTight' }),
    sort: Flags.string({ description: 'particle order: dr = decreasing ΔR from the lepton (published), pt = decreasing pT', options: ['dr', 'pt'], default: 'dr' }),
    label: Flags.string({ description: 'class of every event: a number or qcd (0), ttbar (1), wjets (2); default: −1 (unlabelled)' }),
    output: Flags.string({ char: 'o', description: "output file, or '-' for stdout", default: '-' }),
    tree: Flags.string({ char: 't', description: 'tree of a ROOT input', default: 'Delphes' }),
    'entry-start': Flags.integer({ description: 'first entry of a ROOT input', min: 0 }),
    'entry-stop': Flags.integer({ description: 'stop before this entry of a ROOT input', min: 0 }),
    'batch-size': Flags.integer({ description: 'events per output batch', default: 256, min: 1 }),
    'print-branches': Flags.boolean({ description: 'print the branches the recipe reads (one per line) and exit' }),
    json: Flags.boolean({ description: 'print the selection summary as JSON: on stdout when -o is a file, else on stderr' }),
    progress: Flags.string({ description: 'progress on stderr: auto, json, none', options: ['auto', 'json', 'none'], default: 'auto' }),
    ...remoteFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Features);
    const ropts: Partial<RecipeOptions> = {
      recipe: flags.recipe as RecipeOptions['recipe'],
      muons: flags.muons,
      sort: flags.sort as RecipeOptions['sort'],
      label: parseLabel(flags.label),
    };
    const o = recipeOptions(ropts);
    if (flags['print-branches']) {
      process.stdout.write(requiredBranches(o).join('\n') + '\n');
      return;
    }
    this.refuseBinaryToTerminal(flags.output);
    const root = isRootInput(args.input);
    if (!root && (flags['entry-start'] !== undefined || flags['entry-stop'] !== undefined)) {
      throw new UsageError('--entry-start/--entry-stop apply to a ROOT input; select entries of a stream with hep-ml ingest');
    }
    const input: FeaturesInput = root
      ? await openRootInput(args.input, {
          ...o,
          tree: flags.tree,
          remote: sourceOptions(flags),
          entryStart: flags['entry-start'],
          entryStop: flags['entry-stop'],
        })
      : await openArrowInput(args.input);
    const progress = new ProgressReporter(flags.progress as ProgressMode, 'features');
    let writer: IpcStreamWriter | undefined;
    let stats: FeaturesStats;
    try {
      writer = await IpcStreamWriter.open(flags.output);
      stats = await writeFeatures(input, writer, {
        ...o,
        batchRows: flags['batch-size'],
        version: this.config.version,
        onBatch: (s) => progress.update({ entriesDone: s.events, entriesTotal: input.entries ?? s.events, bytes: writer!.bytesWritten }),
      });
      await writer.close();
    } catch (e) {
      await writer?.abort();
      throw e;
    } finally {
      progress.stop();
      await input.close();
    }
    const r = stats.rejected;
    this.note(
      `hep-ml features: ${stats.events} events, ${stats.selected} selected (${pct(stats.selected, stats.events)}); rejected: ` +
        `${r.emptyMap} empty EFlow map, ${r.noLepton} no electron or muon, ${r.notIsolated} no isolated lepton with pT > 23 GeV`,
    );
    if (flags.json) {
      const line = JSON.stringify({ input: input.name, recipe: o.recipe, options: o, ...stats }) + '\n';
      if (flags.output === '-') process.stderr.write(line);
      else process.stdout.write(line);
    }
  }
}
