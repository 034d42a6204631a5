import { Args, Flags } from '@oclif/core';
import { writeFile, rename, rm } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { HepMlCommand } from '../cli/base.js';
import { ProgressReporter, type ProgressMode } from '../cli/progress.js';
import { IpcStreamWriter } from '../columnar/index.js';
import { UsageError } from '../errors.js';
import { loadSpecs, padStream, parseGroups, parseMaxLen, parsePad, scanStream, spillStdin, type FlattenInput } from '../flatten/stream.js';
import type { Specs } from '../flatten/types.js';

/** Writes text to a file atomically (temp name + rename), or to stdout for '-'. */
async function writeText(target: string, text: string): Promise<void> {
  if (target === '-') {
    process.stdout.write(text);
    return;
  }
  const final = resolve(target);
  const tmp = join(dirname(final), `.${basename(final)}.${process.pid}.part`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export default class Flatten extends HepMlCommand {
  static override summary = 'Pad jagged columns to fixed size (NaN + mask), after a scan of their maximum lengths.';
  static override description = `Pass 1 scans every jagged (List<T>) column of an Arrow IPC stream: maximum length (jdim), min/max, NaN count, length histogram — the "specs". Pass 2 turns each jagged column into FixedSizeList<Float32>[jdim] padded with NaN (or --pad), plus a "<branch>.mask" column (FixedSizeList<Uint8>[jdim], 1 = real value). Flat columns pass through.

A file is read twice. stdin ('-', the default) is spilled to a temporary file first, unless --specs gives pass 1's result, in which case one pass over stdin suffices. See docs/commands/flatten.md and docs/formats/flatten-specs.md.`;
  static override examples = [
    "<%= config.bin %> ingest nano.root -t Events -b 'Muon_*' -o - | <%= config.bin %> flatten -o muons.arrow",
    '<%= config.bin %> flatten events.arrow --scan-only -o specs.json',
    "<%= config.bin %> flatten events.arrow --specs specs.json --max-len muon=8 --group muon='Muon_*' -o padded.arrow",
  ];
  static override args = { input: Args.string({ description: "Arrow IPC stream (file, or '-' for stdin)", default: '-', ignoreStdin: true }) };
  static override flags = {
    specs: Flags.string({ description: 'use this specs file (from --scan-only or --write-specs) instead of pass 1' }),
    'write-specs': Flags.string({ description: 'also save the specs of pass 1 to this file' }),
    'scan-only': Flags.boolean({ description: 'run pass 1 only and write the specs JSON (to -o, default stdout)' }),
    'max-len': Flags.string({ description: 'BRANCH=N (or GROUP=N): pad to N instead of the scanned maximum, truncating longer lists (repeatable)', multiple: true, multipleNonGreedy: true }),
    pad: Flags.string({ description: 'padding value: nan, zero or a number', default: 'nan' }),
    normalize: Flags.string({ description: 'scale values with pass-1 min/max to [0, 1]', options: ['minmax'] }),
    group: Flags.string({ description: "NAME='GLOB': stack the matching jagged branches into one FixedSizeList<Float32>[jdim*k] column with one mask (repeatable)", multiple: true, multipleNonGreedy: true }),
    output: Flags.string({ char: 'o', description: "output file, or '-' for stdout", default: '-' }),
    json: Flags.boolean({ description: 'print a JSON summary (entries, columns, truncation): on stdout when -o is a file, else on stderr' }),
    progress: Flags.string({ description: 'progress on stderr: auto, json, none', options: ['auto', 'json', 'none'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Flatten);
    const padOpts = {
      pad: parsePad(flags.pad),
      maxLen: parseMaxLen(flags['max-len'] ?? []),
      normalize: flags.normalize as 'minmax' | undefined,
      groups: parseGroups(flags.group ?? []),
    };
    if (flags['scan-only'] && flags.specs) throw new UsageError('--scan-only and --specs exclude each other');
    const binaryOut = !flags['scan-only'];
    if (binaryOut) this.refuseBinaryToTerminal(flags.output);
    const hepmlVersion = this.config.version;
    const given: Specs | undefined = flags.specs ? await loadSpecs(flags.specs) : undefined;

    // One pass over stdin is possible only with given specs; otherwise stdin is spilled to a file.
    let input: FlattenInput;
    if (args.input === '-' && !given && !flags['scan-only']) input = await spillStdin();
    else input = { path: args.input, name: args.input === '-' ? '<stdin>' : args.input, cleanup: async () => {} };

    try {
      const specs = given ?? (await scanStream(input.path, { name: input.name, hepmlVersion }));
      const specsText = JSON.stringify(specs, null, 2) + '\n';
      if (flags['write-specs']) await writeText(flags['write-specs'], specsText);
      if (flags['scan-only']) {
        await writeText(flags.output, specsText);
        return;
      }
      const progress = new ProgressReporter(flags.progress as ProgressMode, 'flatten');
      let writer: IpcStreamWriter | undefined;
      try {
        writer = await IpcStreamWriter.open(flags.output);
        const summary = await padStream(input.path, specs, padOpts, writer, {
          name: input.name,
          onBatch: (n) => progress.update({ entriesDone: n, entriesTotal: specs.entries, bytes: writer!.bytesWritten }),
        });
        await writer.close();
        const t = summary.truncation;
        if (t.entries > 0) {
          const per = Object.entries(t.perColumn)
            .filter(([, v]) => v.entries > 0)
            .map(([k, v]) => `${k}: ${v.entries} entries, ${v.values} values`)
            .join('; ');
          this.note(`hep-ml flatten: --max-len truncated ${t.entries} entries, ${t.values} values (${per})`);
        }
        if (flags.json) {
          const line = JSON.stringify(summary) + '\n';
          if (flags.output === '-') process.stderr.write(line);
          else process.stdout.write(line);
        }
      } catch (e) {
        await writer?.abort();
        throw e;
      } finally {
        progress.stop();
      }
    } finally {
      await input.cleanup();
    }
  }
}
