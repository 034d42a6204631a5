/**
 * `features` end to end: an input (an Arrow IPC stream of Delphes columns, or a ROOT file read directly)
 * → the recipe → an Arrow IPC writer.
 */
import { fromRecordBatch, makeSchema, openIpcStream, schemaFields, toRecordBatch, type IpcStreamWriter } from '../columnar/index.js';
import { openIngest } from '../ingest/index.js';
import { RootFile } from '../root/file.js';
import type { SourceOptions } from '../root/source.js';
import type { ColumnBatch, ColumnType } from '../root/columns.js';
import { recipeOptions } from './recipe.js';
import { checkInputFields, emptyStats, extractFeatures, featureFields, featureMetadata, requiredBranches, type FeaturesOptions, type FeaturesStats } from './stream.js';

export interface FeaturesInput {
  fields: { name: string; type: ColumnType }[];
  metadata: Record<string, string>;
  /** Entry number of the first row. */
  entryOffset: number;
  /** Events in the input when known (ROOT input), for progress. */
  entries?: number;
  name: string;
  batches: AsyncIterable<ColumnBatch>;
  close(): Promise<void>;
}

/** True when the input names a ROOT file rather than an Arrow stream. */
export function isRootInput(input: string): boolean {
  return input !== '-' && (/\.root$/i.test(input.replace(/[?#].*$/, '')) || /^(https?|root|roots):\/\//i.test(input));
}

/** Opens an Arrow IPC stream ('-' = stdin) of Delphes columns. */
export async function openArrowInput(source: string, name?: string): Promise<FeaturesInput> {
  const input = await openIpcStream(source, { name });
  const fields = schemaFields(input.schema);
  const metadata = Object.fromEntries(input.schema.metadata);
  const entryOffset = Number(metadata['hep-ml.entry_start'] ?? 0) || 0;
  async function* batches(): AsyncGenerator<ColumnBatch> {
    let rows = 0;
    for await (const rb of input.batches) {
      yield fromRecordBatch(rb, rows);
      rows += rb.numRows;
    }
  }
  return { fields, metadata, entryOffset, name: input.source, batches: batches(), close: () => input.close() };
}

/**
 * Opens the Delphes tree of a ROOT file with just the branches the recipe reads; a missing branch is
 * reported together with all others by checkInputFields.
 */
export async function openRootInput(
  path: string,
  opts: Partial<FeaturesOptions> & { tree?: string; remote?: SourceOptions; entryStart?: number; entryStop?: number; stepSize?: string | number },
): Promise<FeaturesInput> {
  const need = requiredBranches(opts);
  const f = await RootFile.open(path, opts.remote);
  let present: { name: string; type: ColumnType }[];
  try {
    const t = await f.tree(opts.tree ?? 'Delphes');
    present = t.branches.filter((b) => b.type).map((b) => ({ name: b.name, type: b.type! }));
  } finally {
    await f.close();
  }
  checkInputFields(present, opts, path);
  const job = await openIngest({
    files: [path],
    tree: opts.tree ?? 'Delphes',
    branches: need,
    source: opts.remote,
    entryStart: opts.entryStart,
    entryStop: opts.entryStop,
    stepSize: opts.stepSize ?? 1000,
  });
  return {
    fields: job.fields,
    metadata: job.metadata,
    entryOffset: job.entryStart,
    entries: job.entryStop - job.entryStart,
    name: path,
    batches: job.batches(),
    close: () => job.close(),
  };
}

/** Runs the recipe over an opened input and writes the rows; returns the selection statistics. */
export async function writeFeatures(
  input: FeaturesInput,
  writer: IpcStreamWriter,
  opts: FeaturesOptions & { version?: string; onBatch?: (s: FeaturesStats) => void },
): Promise<FeaturesStats> {
  const o = recipeOptions(opts);
  checkInputFields(input.fields, o, input.name);
  const metadata = { ...input.metadata, ...featureMetadata(o, opts.version) };
  const schema = makeSchema(featureFields(o), metadata);
  await writer.writeSchema(schema);
  const stats = emptyStats();
  const counted = (async function* () {
    for await (const b of input.batches) {
      yield b;
      opts.onBatch?.(stats);
    }
  })();
  for await (const out of extractFeatures(counted, { ...opts, source: input.name, entryOffset: input.entryOffset }, stats)) {
    await writer.write(toRecordBatch(schema, out));
  }
  return stats;
}
