/** Delphes events as plain objects ↔ the column batches `ingest` produces (for the features tests). */
import type { ColumnBatch, ColumnData } from '../../src/root/columns.js';
import type { RefEvent } from './sparkdl-reference.js';

type Leaf = { coll: keyof RefEvent; leaf: string; dtype: 'float32' | 'int32' | 'uint32' };

function leaves(muons: string): { name: string; l: Leaf }[] {
  const L = (coll: keyof RefEvent, leaf: string, dtype: Leaf['dtype'] = 'float32', name = coll as string) => ({ name: `${name}.${leaf}`, l: { coll, leaf, dtype } });
  return [
    L('EFlowTrack', 'PID', 'int32'), L('EFlowTrack', 'Charge', 'int32'),
    L('EFlowTrack', 'PT'), L('EFlowTrack', 'Eta'), L('EFlowTrack', 'Phi'), L('EFlowTrack', 'X'), L('EFlowTrack', 'Y'), L('EFlowTrack', 'Z'),
    L('EFlowPhoton', 'ET'), L('EFlowPhoton', 'Eta'), L('EFlowPhoton', 'Phi'),
    L('EFlowNeutralHadron', 'ET'), L('EFlowNeutralHadron', 'Eta'), L('EFlowNeutralHadron', 'Phi'),
    L('Jet', 'PT'), L('Jet', 'Eta'), L('Jet', 'BTag', 'uint32'),
    L('Electron', 'PT'), L('Electron', 'Eta'), L('Electron', 'Phi'), L('Electron', 'Charge', 'int32'),
    L('Muon', 'PT', 'float32', muons), L('Muon', 'Eta', 'float32', muons), L('Muon', 'Phi', 'float32', muons), L('Muon', 'Charge', 'int32', muons),
    L('MissingET', 'MET'), L('MissingET', 'Phi'),
  ];
}

/** Builds the ingest-shaped batch of these events (values rounded to float32 as ROOT stores them). */
export function eventsToBatch(events: RefEvent[], muons = 'MuonTight', entryStart = 0): ColumnBatch {
  const columns = leaves(muons).map(({ name, l }) => {
    const offsets = new Int32Array(events.length + 1);
    const vals: number[] = [];
    events.forEach((ev, i) => {
      for (const o of ev[l.coll] as unknown as Record<string, number>[]) vals.push(o[l.leaf] ?? 0);
      offsets[i + 1] = vals.length;
    });
    const values = l.dtype === 'float32' ? Float32Array.from(vals) : l.dtype === 'int32' ? Int32Array.from(vals) : Uint32Array.from(vals);
    const data: ColumnData = { kind: 'list', offsets, child: { kind: 'primitive', dtype: l.dtype, values } };
    return { name, data };
  });
  return { entryStart, entryStop: entryStart + events.length, columns };
}

/** The events of a batch as objects (numbers as decoded: float32 widened to float64). */
export function batchToEvents(b: ColumnBatch, muons = 'MuonTight'): RefEvent[] {
  const by = new Map(b.columns.map((c) => [c.name, c.data as Extract<ColumnData, { kind: 'list' }>]));
  const n = b.entryStop - b.entryStart;
  const out: RefEvent[] = [];
  for (let e = 0; e < n; e++) {
    const ev = { EFlowTrack: [], EFlowPhoton: [], EFlowNeutralHadron: [], Electron: [], Muon: [], MissingET: [], Jet: [] } as unknown as Record<string, Record<string, number>[]>;
    for (const { name, l } of leaves(muons)) {
      const d = by.get(name);
      if (!d) continue;
      const lo = d.offsets[e]!;
      const hi = d.offsets[e + 1]!;
      const arr = ev[l.coll]!;
      const vals = (d.child as { values: ArrayLike<number> }).values;
      for (let k = lo; k < hi; k++) {
        arr[k - lo] ??= {};
        arr[k - lo]![l.leaf] = Number(vals[k]);
      }
    }
    out.push(ev as unknown as RefEvent);
  }
  return out;
}
