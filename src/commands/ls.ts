import { Args, Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { remoteFlags, sourceOptions } from '../cli/remote.js';
import { describeFile, type FileDescription, type TreeDescription } from '../root/inspect.js';

function human(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

function formatTree(t: TreeDescription): string {
  const head = `TTree ${t.name};${t.cycle}${t.title ? `  "${t.title}"` : ''}  ${t.entries.toLocaleString('en-US')} entries, ${t.branches.length} branches`;
  const rows = [['branch', 'type', 'c++ type', 'counter', 'codec', 'setting', 'baskets', 'zipped', 'unzipped']];
  for (const b of t.branches) {
    rows.push([
      `${'  '.repeat(b.depth)}${b.name}`,
      b.type ?? (b.unsupported?.startsWith('container') ? '(container)' : '(unsupported)'),
      b.cppType || b.branchClass,
      b.counter ?? '',
      b.codec ?? '',
      b.compression,
      String(b.baskets),
      human(b.compressedBytes),
      human(b.uncompressedBytes),
    ]);
  }
  return `${head}\n${table(rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}

export function formatFile(d: FileDescription): string {
  const parts = [`${d.file}  ROOT ${d.rootVersion}, ${human(d.size)}, compression ${d.compression}`];
  for (const t of d.trees) parts.push(formatTree(t));
  if (d.otherKeys.length) parts.push(`other keys: ${d.otherKeys.map((k) => `${k.path};${k.cycle} (${k.className})`).join(', ')}`);
  return parts.join('\n\n') + '\n';
}

export default class Ls extends HepMlCommand {
  static override summary = 'List the trees and branches of a ROOT file: types, entries, codecs, sizes.';
  static override description = `Shows every TTree (all cycles), its entries, and every branch (sub-branches indented) with its column type as hep-ml reads it, the C++ type, the counter branch of jagged leaves, the codec of its first basket and its compression setting, the number of baskets and the compressed/uncompressed sizes. Branches hep-ml cannot read yet are marked (unsupported); --json gives the reason. See docs/commands/ls.md.`;
  static override examples = [
    '<%= config.bin %> ls ../shared/testdata/root/uproot-HZZ.root',
    '<%= config.bin %> ls nano.root --tree Events --json | jq ".trees[0].branches | length"',
    '<%= config.bin %> ls https://eospublic.cern.ch//eos/opendata/cms/derived-data/AOD2NanoAODOutreachTool/Run2012BC_DoubleMuParked_Muons.root --tree Events',
  ];
  static override args = { file: Args.string({ description: 'ROOT file (path, http(s):// URL, or root:// with --xrootd-http-port)', required: true, ignoreStdin: true }) };
  static override flags = {
    tree: Flags.string({ char: 't', description: 'only this tree (name, dir/name or name;cycle)' }),
    json: Flags.boolean({ description: 'machine-readable output on stdout' }),
    ...remoteFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Ls);
    const d = await describeFile(args.file, flags.tree, sourceOptions(flags));
    process.stdout.write(flags.json ? JSON.stringify(d, null, 2) + '\n' : formatFile(d));
  }
}
