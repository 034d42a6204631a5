/**
 * The ingest stage: one or more ROOT files (a chain) → a stream of column batches with one schema.
 * Usable as a library: `const job = await openIngest({files, tree, branches}); for await (const b of job.batches()) ...`
 */
import { SchemaMismatchError, SelectionError, UnsupportedError } from '../errors.js';
import { closest, RootFile } from '../root/file.js';
import { globToRegExp, isGlob } from '../root/glob.js';
import { formatColumnType, type ColumnBatch, type ColumnType } from '../root/columns.js';
import { checkEntryRange, parseStepSize, TreeReader } from '../root/reader.js';
import type { BranchInfo, Tree } from '../root/tree.js';
import type { SourceOptions } from '../root/source.js';

export interface IngestOptions {
  files: string[];
  /** Tree name (`Events`, `dir/tree`, `Delphes;1`); optional when each file has exactly one tree. */
  tree?: string;
  /** Branch names or globs; default: every branch hep-ml can read. */
  branches?: string[];
  /** Global entry range over the chain of files, [entryStart, entryStop). */
  entryStart?: number;
  entryStop?: number;
  /** Entries per batch (number) or bytes of uncompressed input per batch ("100 MB"). */
  stepSize?: string | number;
  /** How remote inputs are reached (headers, root:// mapping). */
  source?: SourceOptions;
  /** Called with a note for every branch that was skipped because hep-ml cannot read it. */
  onSkip?: (branch: string, reason: string) => void;
}

export interface IngestField {
  name: string;
  type: ColumnType;
}

export interface IngestProgress {
  file: string;
  entriesDone: number;
  entriesTotal: number;
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface IngestJob {
  fields: IngestField[];
  /** Arrow schema metadata: source, tree, entry range. */
  metadata: Record<string, string>;
  entryStart: number;
  entryStop: number;
  /** Batches in entry order; `onProgress` is called after each. */
  batches(onProgress?: (p: IngestProgress) => void): AsyncGenerator<ColumnBatch>;
  close(): Promise<void>;
}

/** Picks branches by names/globs, in the tree's order; a pattern that matches nothing is an error. */
export function selectBranches(tree: Tree, patterns: string[] | undefined, onSkip?: (b: string, why: string) => void): BranchInfo[] {
  const ctx = { file: tree.location, tree: tree.name };
  const all = tree.branches;
  const seen = new Set<string>();
  const pick: BranchInfo[] = [];
  const add = (b: BranchInfo) => {
    if (!seen.has(b.name)) {
      seen.add(b.name);
      pick.push(b);
    }
  };
  if (!patterns || patterns.length === 0) {
    for (const b of all) {
      if (b.type) add(b);
      else if (b.subBranches === 0 || !/container/.test(b.unsupported ?? '')) onSkip?.(b.name, b.unsupported ?? 'cannot be read');
    }
    if (pick.length === 0) throw new SelectionError('the tree has no branch that hep-ml can read', ctx);
    return pick;
  }
  const names = all.map((b) => b.name);
  for (const p of patterns) {
    // An exact branch name wins over a glob reading of it: `ArrayI16[10]` is a name, not a class.
    if (isGlob(p) && !tree.branch(p)) {
      const re = globToRegExp(p);
      const hits = all.filter((b) => re.test(b.name));
      if (hits.length === 0) {
        throw new SelectionError(`no branch matches '${p}' (${all.length} branches; e.g. ${names.slice(0, 5).join(', ')})`, ctx);
      }
      const ok = hits.filter((b) => b.type);
      for (const b of hits) if (!b.type && !/container/.test(b.unsupported ?? '')) onSkip?.(b.name, b.unsupported ?? 'cannot be read');
      if (ok.length === 0) {
        throw new UnsupportedError(`'${p}' matches only branches hep-ml cannot read: ${hits.slice(0, 5).map((b) => `${b.name} (${b.unsupported})`).join('; ')}`, ctx);
      }
      ok.forEach(add);
    } else {
      const b = tree.branch(p);
      if (!b) {
        throw new SelectionError(`no branch '${p}'; did you mean: ${closest(p, names, 3).join(', ')}?`, ctx);
      }
      if (!b.type) throw new UnsupportedError(b.unsupported ?? 'cannot be read', { ...ctx, branch: b.name });
      add(b);
    }
  }
  // keep the tree's order: it is the order of the data on disk
  const order = new Map(all.map((b, i) => [b.name, i]));
  return pick.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
}

function sameFields(a: IngestField[], tree: Tree, picked: BranchInfo[]): void {
  const ctx = { file: tree.location, tree: tree.name };
  const byName = new Map(picked.map((b) => [b.name, b]));
  for (const f of a) {
    const b = byName.get(f.name);
    if (!b) throw new SchemaMismatchError(`branch '${f.name}' of the first file is missing here`, ctx);
    if (formatColumnType(f.type) !== formatColumnType(b.type!)) {
      throw new SchemaMismatchError(
        `branch type differs from the first file: ${formatColumnType(b.type!)} here, ${formatColumnType(f.type)} there`,
        { ...ctx, branch: f.name },
      );
    }
  }
}

export async function openIngest(opts: IngestOptions): Promise<IngestJob> {
  if (opts.files.length === 0) throw new SelectionError('no input files');
  const step = parseStepSize(opts.stepSize ?? '100 MB');
  const files: RootFile[] = [];
  const trees: Tree[] = [];
  const selections: BranchInfo[][] = [];
  try {
    for (const path of opts.files) {
      const f = await RootFile.open(path, opts.source);
      files.push(f);
      const t = await f.tree(opts.tree);
      trees.push(t);
      if (selections.length === 0) {
        selections.push(selectBranches(t, opts.branches, opts.onSkip));
      } else {
        const fields = selections[0]!.map((b) => ({ name: b.name, type: b.type! }));
        const names = selections[0]!.map((b) => b.name);
        const picked = names.map((n) => t.branch(n)).filter((b): b is BranchInfo => !!b);
        sameFields(fields, t, picked);
        selections.push(picked);
      }
    }
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
  const fields = selections[0]!.map((b) => ({ name: b.name, type: b.type! }));
  const total = trees.reduce((s, t) => s + t.entries, 0);
  const [entryStart, entryStop] = checkEntryRange(total, opts.entryStart, opts.entryStop, {
    file: opts.files.length === 1 ? opts.files[0] : `${opts.files.length} files`,
    tree: trees[0]!.name,
  });
  const metadata: Record<string, string> = {
    'hep-ml.source': JSON.stringify(opts.files),
    'hep-ml.tree': trees[0]!.name,
    'hep-ml.entry_start': String(entryStart),
    'hep-ml.entry_stop': String(entryStop),
    'hep-ml.entries': JSON.stringify(trees.map((t) => t.entries)),
  };
  return {
    fields,
    metadata,
    entryStart,
    entryStop,
    async *batches(onProgress) {
      let base = 0;
      let done = 0;
      let cBytes = 0;
      let uBytes = 0;
      for (let i = 0; i < trees.length; i++) {
        const t = trees[i]!;
        const lo = Math.max(entryStart - base, 0);
        const hi = Math.min(entryStop - base, t.entries);
        base += t.entries;
        if (hi <= lo) continue;
        const reader = new TreeReader(t, selections[i]!);
        const per = reader.stepEntries(step);
        for await (const batch of reader.batches(lo, hi, per)) {
          done += batch.entryStop - batch.entryStart;
          onProgress?.({
            file: t.location,
            entriesDone: done,
            entriesTotal: entryStop - entryStart,
            compressedBytes: cBytes + reader.stats.compressedBytes,
            uncompressedBytes: uBytes + reader.stats.uncompressedBytes,
          });
          yield batch;
        }
        cBytes += reader.stats.compressedBytes;
        uBytes += reader.stats.uncompressedBytes;
      }
    },
    async close() {
      await Promise.all(files.map((f) => f.close()));
    },
  };
}
