/**
 * The features stage over batch streams: Delphes columns (an ingest stream, or a ROOT file read directly)
 * in, one row per selected event out.
 *
 *   HLF_input      FixedSizeList<Float32>[14]
 *   GRU_input      FixedSizeList<Float32>[15219]   801 rows × 19 features, row-major (the published layout)
 *   GRU_mask       FixedSizeList<Uint8>[801]       only with the masked (corrected) padding; 1 = particle
 *   n_particles    Int32                           real particle rows
 *   label          Int32                           --label (−1 = none)
 *   encoded_label  FixedSizeList<Float32>[3]       one-hot of label (all zero for −1)
 *   entry          Int64                           the event's entry number in the input tree (chain)
 */
import { CorruptDataError, SchemaMismatchError } from '../errors.js';
import type { ColumnBatch, ColumnData, ColumnType } from '../root/columns.js';
import {
  FeatureExtractor,
  GRU_WIDTH,
  HLF_NAMES,
  LLF_NAMES,
  N_CLASSES,
  N_HLF,
  N_PARTICLES,
  recipeBranches,
  recipeOptions,
  Reject,
  type EventColumns,
  type RecipeOptions,
} from './recipe.js';

export interface FeaturesStats {
  /** Events read. */
  events: number;
  /** Events written (selected). */
  selected: number;
  rejected: {
    /** An EFlow map (tracks pT > 0.5, photons or neutral hadrons ET > 1) is empty. */
    emptyMap: number;
    /** No Electron and no muon at all. */
    noLepton: number;
    /** No electron or muon with pT > 23 GeV and relative isolation < 0.45. */
    notIsolated: number;
  };
  /** Particle rows dropped by the 450/150/200 caps are not counted; real rows written in total: */
  particles: number;
}

export function emptyStats(): FeaturesStats {
  return { events: 0, selected: 0, rejected: { emptyMap: 0, noLepton: 0, notIsolated: 0 }, particles: 0 };
}

export interface FeaturesOptions extends Partial<RecipeOptions> {
  /** Output rows per batch (default 256: about 16 MB of GRU_input). */
  batchRows?: number;
  /** The input's name in error messages. */
  source?: string;
  /** Entry number of the stream's first row (ingest's `hep-ml.entry_start`; default 0). */
  entryOffset?: number;
}

const f32 = { kind: 'primitive', dtype: 'float32' } as const;

/** The output schema's fields for these options. */
export function featureFields(opts: Partial<RecipeOptions> = {}): { name: string; type: ColumnType }[] {
  const o = recipeOptions(opts);
  const fields: { name: string; type: ColumnType }[] = [
    { name: 'HLF_input', type: { kind: 'fixed', size: N_HLF, child: f32 } },
    { name: 'GRU_input', type: { kind: 'fixed', size: GRU_WIDTH, child: f32 } },
  ];
  if (o.masked) fields.push({ name: 'GRU_mask', type: { kind: 'fixed', size: N_PARTICLES, child: { kind: 'primitive', dtype: 'uint8' } } });
  fields.push(
    { name: 'n_particles', type: { kind: 'primitive', dtype: 'int32' } },
    { name: 'label', type: { kind: 'primitive', dtype: 'int32' } },
    { name: 'encoded_label', type: { kind: 'fixed', size: N_CLASSES, child: f32 } },
    { name: 'entry', type: { kind: 'primitive', dtype: 'int64' } },
  );
  return fields;
}

/** Schema metadata describing the features (merged over the input's metadata by the caller). */
export function featureMetadata(opts: Partial<RecipeOptions> = {}, version = ''): Record<string, string> {
  const o = recipeOptions(opts);
  return {
    'hep-ml.features': JSON.stringify({ format: 'hep-ml/features', version: 1, hepml: version, options: o }),
    'hep-ml.features.recipe': o.recipe,
    'hep-ml.features.hlf_names': JSON.stringify(HLF_NAMES),
    'hep-ml.features.llf_names': JSON.stringify(LLF_NAMES),
    'hep-ml.features.gru_shape': JSON.stringify([N_PARTICLES, LLF_NAMES.length]),
    'hep-ml.features.sort': o.sort === 'dr' ? 'decreasing ΔR from the lepton' : 'decreasing pT',
  };
}

/** The input branches these options read (for `ingest -b`). */
export function requiredBranches(opts: Partial<RecipeOptions> = {}): string[] {
  return [...new Set(Object.values(recipeBranches(recipeOptions(opts))))];
}

/**
 * Checks that the input has every branch the recipe reads, as jagged numbers; one error lists every
 * missing branch (with a hint when another muon collection is there).
 */
export function checkInputFields(fields: { name: string; type: ColumnType }[], opts: Partial<RecipeOptions> = {}, source?: string): void {
  const o = recipeOptions(opts);
  const have = new Map(fields.map((f) => [f.name, f.type]));
  const need = requiredBranches(o);
  const missing = need.filter((n) => !have.has(n));
  if (missing.length) {
    let hint = '';
    if (missing.some((n) => n.startsWith(`${o.muons}.`))) {
      const other = [...have.keys()].map((n) => /^(\w*Muon\w*)\.PT$/.exec(n)?.[1]).find((x) => x && x !== o.muons);
      if (other) hint = ` (the input has ${other}.*: try --muons ${other})`;
    }
    const list = groupLeaves(missing);
    const more = hint || ' (hep-ml features --print-branches lists every branch it reads)';
    throw new SchemaMismatchError(`not a Delphes tree the ${o.recipe} recipe can read: ${missing.length} branch(es) missing: ${list}${more}`, { file: source });
  }
  for (const n of need) {
    const t = have.get(n)!;
    const ok = t.kind === 'list' && t.child.kind === 'primitive' && !['int64', 'uint64'].includes(t.child.dtype);
    if (!ok) throw new SchemaMismatchError(`branch '${n}' must be a list of numbers (a Delphes collection leaf)`, { file: source, branch: n });
  }
}

/** ['Jet.PT', 'Jet.Eta', 'MissingET.MET'] → 'Jet.{PT,Eta}, MissingET.MET'. */
function groupLeaves(names: string[]): string {
  const by = new Map<string, string[]>();
  for (const n of names) {
    const i = n.indexOf('.');
    const k = i < 0 ? n : n.slice(0, i);
    if (!by.has(k)) by.set(k, []);
    if (i >= 0) by.get(k)!.push(n.slice(i + 1));
  }
  return [...by].map(([k, v]) => (v.length === 0 ? k : v.length === 1 ? `${k}.${v[0]}` : `${k}.{${v.join(',')}}`)).join(', ');
}

function bindColumns(batch: ColumnBatch, o: RecipeOptions, source: string | undefined): EventColumns {
  const byName = new Map(batch.columns.map((c) => [c.name, c.data]));
  const out: EventColumns = {};
  const totals = new Map<string, number>();
  for (const [role, name] of Object.entries(recipeBranches(o))) {
    const d = byName.get(name) as Extract<ColumnData, { kind: 'list' }> | undefined;
    if (!d || d.kind !== 'list' || d.child.kind !== 'primitive') {
      throw new SchemaMismatchError(`batch lacks branch '${name}' as a list of numbers`, { file: source, branch: name });
    }
    const values = d.child.values as ArrayLike<number>;
    out[role] = { offsets: d.offsets, values };
    // leaves of one collection share its counter: their totals must agree
    const coll = name.slice(0, name.indexOf('.'));
    const total = d.offsets[d.offsets.length - 1]! - d.offsets[0]!;
    const prev = totals.get(coll);
    if (prev === undefined) totals.set(coll, total);
    else if (prev !== total) {
      throw new CorruptDataError(`leaves of collection ${coll} have different lengths (${prev} vs ${total} values in entries ${batch.entryStart}–${batch.entryStop - 1})`, { file: source, branch: name });
    }
  }
  return out;
}

class OutputBuffers {
  hlf: Float32Array;
  gru: Float32Array;
  mask: Uint8Array | undefined;
  nPart: Int32Array;
  entry: BigInt64Array;
  rows = 0;
  constructor(
    readonly capacity: number,
    masked: boolean,
  ) {
    this.hlf = new Float32Array(capacity * N_HLF);
    this.gru = new Float32Array(capacity * GRU_WIDTH);
    this.mask = masked ? new Uint8Array(capacity * N_PARTICLES) : undefined;
    this.nPart = new Int32Array(capacity);
    this.entry = new BigInt64Array(capacity);
  }

  /** The filled rows as a column batch (views, no copy). */
  batch(label: number, rowStart: number): ColumnBatch {
    const n = this.rows;
    const labels = new Int32Array(n).fill(label);
    const onehot = new Float32Array(n * N_CLASSES);
    if (label >= 0 && label < N_CLASSES) for (let i = 0; i < n; i++) onehot[i * N_CLASSES + label] = 1;
    const prim = (dtype: 'float32' | 'uint8' | 'int32' | 'int64', values: Float32Array | Uint8Array | Int32Array | BigInt64Array) =>
      ({ kind: 'primitive', dtype, values }) as ColumnData;
    const columns: ColumnBatch['columns'] = [
      { name: 'HLF_input', data: { kind: 'fixed', size: N_HLF, child: prim('float32', this.hlf.subarray(0, n * N_HLF)) } },
      { name: 'GRU_input', data: { kind: 'fixed', size: GRU_WIDTH, child: prim('float32', this.gru.subarray(0, n * GRU_WIDTH)) } },
    ];
    if (this.mask) columns.push({ name: 'GRU_mask', data: { kind: 'fixed', size: N_PARTICLES, child: prim('uint8', this.mask.subarray(0, n * N_PARTICLES)) } });
    columns.push(
      { name: 'n_particles', data: prim('int32', this.nPart.subarray(0, n)) },
      { name: 'label', data: prim('int32', labels) },
      { name: 'encoded_label', data: { kind: 'fixed', size: N_CLASSES, child: prim('float32', onehot) } },
      { name: 'entry', data: prim('int64', this.entry.subarray(0, n)) },
    );
    return { entryStart: rowStart, entryStop: rowStart + n, columns };
  }
}

/**
 * Applies the recipe to a stream of Delphes column batches; yields batches of selected events
 * (`batchRows` rows, the last one shorter). `stats` is updated as it goes.
 */
export async function* extractFeatures(
  batches: AsyncIterable<ColumnBatch> | Iterable<ColumnBatch>,
  opts: FeaturesOptions = {},
  stats: FeaturesStats = emptyStats(),
): AsyncGenerator<ColumnBatch> {
  const o = recipeOptions(opts);
  const cap = Math.max(1, opts.batchRows ?? 256);
  const x = new FeatureExtractor(o);
  let buf = new OutputBuffers(cap, o.masked);
  let written = 0;
  const offset = opts.entryOffset ?? 0;
  for await (const b of batches as AsyncIterable<ColumnBatch>) {
    const cols = bindColumns(b, o, opts.source);
    const n = b.entryStop - b.entryStart;
    const sink = { hlf: buf.hlf, gru: buf.gru, mask: buf.mask, row: 0 };
    for (let e = 0; e < n; e++) {
      stats.events++;
      sink.row = buf.rows;
      const r = x.process(cols, e, sink);
      if (r > 0) {
        buf.nPart[buf.rows] = r;
        buf.entry[buf.rows] = BigInt(offset + b.entryStart + e);
        buf.rows++;
        stats.selected++;
        stats.particles += r;
        if (buf.rows === cap) {
          yield buf.batch(o.label, written);
          written += buf.rows;
          buf = new OutputBuffers(cap, o.masked);
          sink.hlf = buf.hlf;
          sink.gru = buf.gru;
          sink.mask = buf.mask;
        }
      } else if (r === Reject.EMPTY_MAP) stats.rejected.emptyMap++;
      else if (r === Reject.NO_LEPTON) stats.rejected.noLepton++;
      else if (r === Reject.NOT_ISOLATED) stats.rejected.notIsolated++;
      else if (r === Reject.NO_MET) {
        throw new CorruptDataError('the selected event has no MissingET entry', { file: opts.source, branch: 'MissingET.MET', entry: offset + b.entryStart + e });
      }
    }
  }
  if (buf.rows > 0) yield buf.batch(o.label, written);
}
