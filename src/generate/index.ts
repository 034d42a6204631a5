/**
 * The generate stage: toy Delphes events for three processes (lepton-filtered QCD, tt̄, W+jets), in exactly
 * the columns `hep-ml ingest` produces for the Delphes branches the SparkDLTrigger recipe reads.
 *
 *   for (const batch of generateEvents({ process: 'ttbar', events: 10_000, seed: 1 })) ...
 *
 * Deterministic: every event is generated from its own PRNG stream, seeded by (seed, process, event
 * index), so the same options give bit-identical columns whatever the batch size, and an event range can
 * be regenerated on its own. The physics model is in model.ts and docs/commands/generate.md.
 */
import { UsageError } from '../errors.js';
import type { ColumnBatch, ColumnType } from '../root/columns.js';
import { EventModel, type Process } from './model.js';

export type { Process } from './model.js';
export { EFLOW_MAX, EFLOW_MIN, PROCESS_CODE } from './model.js';
export { PHI_MAX } from './buffers.js';

export interface GenerateOptions {
  process: Process;
  /** Number of events (entries) to generate. */
  events: number;
  /** Non-negative integer; default 42. */
  seed?: number;
  /** Events per batch; default 1000. Does not change the events. */
  batchSize?: number;
  /** Name of the muon collection: 'MuonTight' (the published samples; default) or 'Muon'. */
  muons?: 'MuonTight' | 'Muon';
}

/** The processes, in the recipe's label order (0 = QCD, 1 = tt̄, 2 = W+jets). */
export const PROCESSES: readonly Process[] = ['qcd', 'ttbar', 'wjets'];
/**
 * Version of the physics model: part of the 'hep-ml.generate' metadata, bumped whenever the events
 * generated for given options change.
 */
export const GENERATOR_VERSION = 1;
export const DEFAULT_SEED = 42;
export const DEFAULT_BATCH_SIZE = 1000;

const F32: ColumnType = { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } };
const I32: ColumnType = { kind: 'list', child: { kind: 'primitive', dtype: 'int32' } };
const U32: ColumnType = { kind: 'list', child: { kind: 'primitive', dtype: 'uint32' } };
const SIZE: ColumnType = { kind: 'primitive', dtype: 'int32' };

/**
 * The generated columns, in the order of the branches in a Delphes tree (which is the order `ingest`
 * writes them in): EFlowTrack, EFlowPhoton, EFlowNeutralHadron, Jet, Electron, MuonTight (or Muon),
 * MissingET; each collection's leaves, then its `_size` counter. Takes `{ muons }` or the whole GenerateOptions.
 */
export function generatorFields(opts: { muons?: 'MuonTight' | 'Muon' } & Partial<GenerateOptions> = {}): { name: string; type: ColumnType }[] {
  const muons = opts.muons ?? 'MuonTight';
  const f = (name: string, type: ColumnType) => ({ name, type });
  return [
    f('EFlowTrack.PID', I32),
    f('EFlowTrack.Charge', I32),
    f('EFlowTrack.PT', F32),
    f('EFlowTrack.Eta', F32),
    f('EFlowTrack.Phi', F32),
    f('EFlowTrack.X', F32),
    f('EFlowTrack.Y', F32),
    f('EFlowTrack.Z', F32),
    f('EFlowTrack_size', SIZE),
    f('EFlowPhoton.ET', F32),
    f('EFlowPhoton.Eta', F32),
    f('EFlowPhoton.Phi', F32),
    f('EFlowPhoton_size', SIZE),
    f('EFlowNeutralHadron.ET', F32),
    f('EFlowNeutralHadron.Eta', F32),
    f('EFlowNeutralHadron.Phi', F32),
    f('EFlowNeutralHadron_size', SIZE),
    f('Jet.PT', F32),
    f('Jet.Eta', F32),
    f('Jet.Phi', F32),
    f('Jet.BTag', U32),
    f('Jet_size', SIZE),
    f('Electron.PT', F32),
    f('Electron.Eta', F32),
    f('Electron.Phi', F32),
    f('Electron.Charge', I32),
    f('Electron_size', SIZE),
    f(`${muons}.PT`, F32),
    f(`${muons}.Eta`, F32),
    f(`${muons}.Phi`, F32),
    f(`${muons}.Charge`, I32),
    f(`${muons}_size`, SIZE),
    f('MissingET.MET', F32),
    f('MissingET.Eta', F32),
    f('MissingET.Phi', F32),
    f('MissingET_size', SIZE),
  ];
}

interface Checked {
  process: Process;
  events: number;
  seed: number;
  batchSize: number;
  muons: 'MuonTight' | 'Muon';
}

/** Validates options (UsageError, exit 2) and fills in the defaults. */
export function checkGenerateOptions(opts: GenerateOptions): Checked {
  const { process, events } = opts;
  const seed = opts.seed ?? DEFAULT_SEED;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const muons = opts.muons ?? 'MuonTight';
  if (!PROCESSES.includes(process)) throw new UsageError(`unknown process '${String(process)}': expected one of ${PROCESSES.join(', ')}`);
  if (!Number.isSafeInteger(events) || events < 0) throw new UsageError(`events must be a non-negative integer, got ${String(events)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`seed must be a non-negative integer, got ${String(seed)}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${String(batchSize)}`);
  if (muons !== 'MuonTight' && muons !== 'Muon') throw new UsageError(`muons must be 'MuonTight' or 'Muon', got '${String(muons)}'`);
  return { process, events, seed, batchSize, muons };
}

/**
 * Arrow schema metadata, shaped like ingest's: 'hep-ml.source' = `["generate:<process>"]`, 'hep-ml.tree' =
 * 'Delphes', the entry range [0, events), and 'hep-ml.generate' = JSON {process, events, seed, version}.
 */
export function generatorMetadata(opts: GenerateOptions): Record<string, string> {
  const o = checkGenerateOptions(opts);
  return {
    'hep-ml.source': JSON.stringify([`generate:${o.process}`]),
    'hep-ml.tree': 'Delphes',
    'hep-ml.entry_start': '0',
    'hep-ml.entry_stop': String(o.events),
    'hep-ml.entries': JSON.stringify([o.events]),
    'hep-ml.generate': JSON.stringify({ process: o.process, events: o.events, seed: o.seed, version: GENERATOR_VERSION }),
  };
}

/**
 * Generates `events` events in batches of `batchSize` (the last may be shorter; none when events = 0).
 * entryStart/entryStop are global event indices; every batch has fresh typed arrays. Columns as
 * generatorFields(opts).
 */
export function generateEvents(opts: GenerateOptions): Generator<ColumnBatch> {
  return batches(checkGenerateOptions(opts)); // options are checked now, not at the first next()
}

function* batches(o: Checked): Generator<ColumnBatch> {
  const model = new EventModel();
  for (let start = 0; start < o.events; start += o.batchSize) {
    const stop = Math.min(o.events, start + o.batchSize);
    model.begin(stop - start);
    for (let i = start; i < stop; i++) model.event(o.process, o.seed, i);
    yield { entryStart: start, entryStop: stop, columns: model.end(o.muons) };
  }
}
