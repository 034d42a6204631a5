/**
 * The generate stage: the schema against a real Delphes file's ingest output, determinism (same options ⇒
 * the same bytes, whatever the batch size; other seed or process ⇒ other events), invariants of every
 * event (offsets and `_size` counters, one MissingET, 100–600 EFlow objects, η/φ ranges, PT ordering,
 * charges and PIDs, the lepton's own track, b-tags), the selection efficiency ordering with a minimal
 * isolation written here, and option validation.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { IpcStreamWriter, makeSchema, toRecordBatch } from '../../src/columnar/index.js';
import { UsageError } from '../../src/errors.js';
import {
  EFLOW_MAX,
  EFLOW_MIN,
  GENERATOR_VERSION,
  PROCESSES,
  generateEvents,
  generatorFields,
  generatorMetadata,
  type GenerateOptions,
  type Process,
} from '../../src/generate/index.js';
import { openIngest } from '../../src/ingest/index.js';
import { concatColumns, formatColumnType, type ColumnBatch, type ColumnData, type NumericArray } from '../../src/root/columns.js';
import { columnHash } from '../helpers/column-hash.js';
import { hasTestdata, testdataDir } from '../helpers/truth.js';

type List = Extract<ColumnData, { kind: 'list' }>;

function all(opts: GenerateOptions): ColumnBatch[] {
  return [...generateEvents(opts)];
}

/** Every column of the batches joined row-wise, by name. */
function joined(batches: ColumnBatch[]): Map<string, ColumnData> {
  const parts = new Map<string, ColumnData[]>();
  for (const b of batches) {
    for (const c of b.columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  return new Map([...parts].map(([k, v]) => [k, concatColumns(v)]));
}

function fingerprint(batches: ColumnBatch[]): string[] {
  return [...joined(batches)].map(([k, v]) => `${k}=${columnHash(v)}`);
}

/** The IPC stream bytes of a generation run, as the command writes it. */
async function ipcBytes(opts: GenerateOptions): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const schema = makeSchema(generatorFields(opts), generatorMetadata(opts));
  const w = await IpcStreamWriter.open('-', { stdout: sink, schema });
  for (const b of generateEvents(opts)) await w.write(toRecordBatch(schema, b));
  await w.close();
  return Buffer.concat(chunks);
}

/** Read access to one batch's columns. */
class View {
  readonly cols: Map<string, ColumnData>;
  constructor(b: ColumnBatch) {
    this.cols = new Map(b.columns.map((c) => [c.name, c.data]));
  }
  list(name: string): List {
    const c = this.cols.get(name);
    assert.ok(c && c.kind === 'list', `${name} is a list column`);
    return c;
  }
  values(name: string): NumericArray {
    const c = this.list(name).child;
    assert.equal(c.kind, 'primitive');
    return (c as Extract<ColumnData, { kind: 'primitive' }>).values;
  }
  offsets(name: string): Int32Array {
    return this.list(name).offsets;
  }
  sizes(collection: string): NumericArray {
    const c = this.cols.get(`${collection}_size`);
    assert.ok(c && c.kind === 'primitive', `${collection}_size is a primitive column`);
    return c.values;
  }
}

// ---------------------------------------------------------------------------------------------------
// Schema

describe('generate: schema', () => {
  const dir = testdataDir();
  const file = join(dir, 'root', 'delphes-cms-10ev.root');
  const skip = hasTestdata(dir) ? false : `HEPML_TESTDATA not found: ${dir} (the schema is not compared with a real Delphes file)`;

  test('column names and types equal ingest of the same branches of a real Delphes tree (muons: Muon)', { skip }, async () => {
    const fields = generatorFields({ muons: 'Muon' });
    const job = await openIngest({ files: [file], tree: 'Delphes', branches: fields.map((f) => f.name) });
    try {
      const real = job.fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`);
      const ours = fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`);
      assert.deepEqual(ours, real);
      assert.equal(job.metadata['hep-ml.tree'], generatorMetadata({ process: 'qcd', events: 1 })['hep-ml.tree']);
    } finally {
      await job.close();
    }
  });

  test('default muon collection is MuonTight; the column list is as documented', () => {
    const names = generatorFields().map((f) => f.name);
    assert.equal(names.length, 36);
    assert.deepEqual(
      names.filter((n) => n.startsWith('Muon')),
      ['MuonTight.PT', 'MuonTight.Eta', 'MuonTight.Phi', 'MuonTight.Charge', 'MuonTight_size'],
    );
    const types = Object.fromEntries(generatorFields().map((f) => [f.name, formatColumnType(f.type)]));
    assert.equal(types['EFlowTrack.PID'], 'list<int32>');
    assert.equal(types['Jet.BTag'], 'list<uint32>');
    assert.equal(types['MissingET.MET'], 'list<float32>');
    assert.equal(types['EFlowTrack_size'], 'int32');
  });

  test('batches carry exactly the generator fields, in order, and wrap as Arrow record batches', () => {
    for (const muons of ['MuonTight', 'Muon'] as const) {
      const opts: GenerateOptions = { process: 'ttbar', events: 20, batchSize: 8, muons };
      const fields = generatorFields(opts);
      const schema = makeSchema(fields, generatorMetadata(opts));
      const batches = all(opts);
      assert.deepEqual(
        batches.map((b) => [b.entryStart, b.entryStop]),
        [
          [0, 8],
          [8, 16],
          [16, 20],
        ],
      );
      for (const b of batches) {
        assert.deepEqual(
          b.columns.map((c) => c.name),
          fields.map((f) => f.name),
        );
        assert.equal(toRecordBatch(schema, b).numRows, b.entryStop - b.entryStart);
      }
    }
  });

  test('metadata: source, tree, entry range and the generate parameters', () => {
    const m = generatorMetadata({ process: 'wjets', events: 123, seed: 7 });
    assert.equal(m['hep-ml.source'], '["generate:wjets"]');
    assert.equal(m['hep-ml.tree'], 'Delphes');
    assert.equal(m['hep-ml.entry_start'], '0');
    assert.equal(m['hep-ml.entry_stop'], '123');
    assert.equal(m['hep-ml.entries'], '[123]');
    assert.deepEqual(JSON.parse(m['hep-ml.generate']!), { process: 'wjets', events: 123, seed: 7, version: GENERATOR_VERSION });
    assert.deepEqual(JSON.parse(generatorMetadata({ process: 'qcd', events: 1 })['hep-ml.generate']!).seed, 42);
  });
});

// ---------------------------------------------------------------------------------------------------
// Determinism

describe('generate: determinism', () => {
  test('same options ⇒ identical IPC bytes', async () => {
    const opts: GenerateOptions = { process: 'ttbar', events: 150, seed: 3, batchSize: 64 };
    const a = await ipcBytes(opts);
    const b = await ipcBytes(opts);
    assert.ok(a.length > 100_000);
    assert.ok(a.equals(b), 'two runs give the same bytes');
  });

  test('the batch size does not change the events', () => {
    for (const process of PROCESSES) {
      const ref = fingerprint(all({ process, events: 120, seed: 11, batchSize: 1000 }));
      for (const batchSize of [1, 7, 50, 120]) {
        assert.deepEqual(fingerprint(all({ process, events: 120, seed: 11, batchSize })), ref, `${process}, batch size ${batchSize}`);
      }
    }
  });

  test('a prefix of a run is the shorter run (events depend on their index only)', () => {
    const long = joined(all({ process: 'qcd', events: 90, seed: 5, batchSize: 40 }));
    const short = joined(all({ process: 'qcd', events: 30, seed: 5 }));
    const pt = long.get('EFlowTrack.PT') as List;
    const n = pt.offsets[30]!;
    const head = (pt.child as Extract<ColumnData, { kind: 'primitive' }>).values.subarray(0, n);
    assert.deepEqual(Buffer.from(head.buffer, head.byteOffset, head.byteLength), Buffer.from(((short.get('EFlowTrack.PT') as List).child as Extract<ColumnData, { kind: 'primitive' }>).values.buffer));
  });

  test('another seed, or another process with the same seed, gives other events', () => {
    const base = joined(all({ process: 'wjets', events: 50, seed: 1 }));
    const seed2 = joined(all({ process: 'wjets', events: 50, seed: 2 }));
    const ttbar = joined(all({ process: 'ttbar', events: 50, seed: 1 }));
    const qcd = joined(all({ process: 'qcd', events: 50, seed: 1 }));
    for (const other of [seed2, ttbar, qcd]) {
      for (const name of ['EFlowTrack.PT', 'MissingET.MET', 'EFlowPhoton.ET']) {
        assert.notEqual(columnHash(other.get(name)!), columnHash(base.get(name)!), name);
      }
    }
  });

  test('every batch has fresh arrays: earlier batches stay intact while later ones are generated', () => {
    const it = generateEvents({ process: 'ttbar', events: 30, batchSize: 10 });
    const first = it.next().value as ColumnBatch;
    const before = first.columns.map((c) => columnHash(c.data));
    const buffers = new Set(first.columns.map((c) => (c.data.kind === 'list' ? (c.data.child as { values: NumericArray }).values.buffer : (c.data as { values: NumericArray }).values.buffer)));
    for (const b of it) {
      for (const c of b.columns) {
        const buf = c.data.kind === 'list' ? (c.data.child as { values: NumericArray }).values.buffer : (c.data as { values: NumericArray }).values.buffer;
        assert.ok(!buffers.has(buf), `${c.name}: a buffer of batch 0 is reused`);
      }
    }
    assert.deepEqual(
      first.columns.map((c) => columnHash(c.data)),
      before,
    );
  });

  test('zero events: no batch', () => {
    assert.deepEqual(all({ process: 'qcd', events: 0 }), []);
  });
});

// ---------------------------------------------------------------------------------------------------
// Per-event invariants

const PHI = Math.PI;

function checkInvariants(process: Process, batches: ColumnBatch[], muons = 'MuonTight'): { trackFraction: number; sortedTrackEvents: number; events: number } {
  let trk = 0;
  let eflow = 0;
  let sortedTrackEvents = 0;
  let events = 0;
  for (const b of batches) {
    const v = new View(b);
    const rows = b.entryStop - b.entryStart;
    // offsets: shared by a collection's leaves, consistent with `_size`, covering the leaf values
    for (const [coll, leaves] of [
      ['EFlowTrack', ['PID', 'Charge', 'PT', 'Eta', 'Phi', 'X', 'Y', 'Z']],
      ['EFlowPhoton', ['ET', 'Eta', 'Phi']],
      ['EFlowNeutralHadron', ['ET', 'Eta', 'Phi']],
      ['Jet', ['PT', 'Eta', 'Phi', 'BTag']],
      ['Electron', ['PT', 'Eta', 'Phi', 'Charge']],
      [muons, ['PT', 'Eta', 'Phi', 'Charge']],
      ['MissingET', ['MET', 'Eta', 'Phi']],
    ] as const) {
      const o0 = v.offsets(`${coll}.${leaves[0]}`);
      const size = v.sizes(coll);
      assert.equal(o0.length, rows + 1, `${coll}: offsets length`);
      assert.equal(size.length, rows, `${coll}_size length`);
      assert.equal(o0[0], 0);
      for (let e = 0; e < rows; e++) {
        assert.ok(o0[e + 1]! >= o0[e]!, `${coll}: offsets non-decreasing`);
        assert.equal(o0[e + 1]! - o0[e]!, size[e], `${coll}_size of entry ${b.entryStart + e}`);
      }
      for (const leaf of leaves) {
        assert.deepEqual(v.offsets(`${coll}.${leaf}`), o0, `${coll}.${leaf} offsets`);
        assert.equal(v.values(`${coll}.${leaf}`).length, o0[rows], `${coll}.${leaf} values`);
      }
    }
    const tPID = v.values('EFlowTrack.PID');
    const tQ = v.values('EFlowTrack.Charge');
    const tPT = v.values('EFlowTrack.PT');
    const tEta = v.values('EFlowTrack.Eta');
    const tPhi = v.values('EFlowTrack.Phi');
    const [tX, tY, tZ] = [v.values('EFlowTrack.X'), v.values('EFlowTrack.Y'), v.values('EFlowTrack.Z')];
    const to = v.offsets('EFlowTrack.PT');
    const po = v.offsets('EFlowPhoton.ET');
    const no = v.offsets('EFlowNeutralHadron.ET');
    const met = v.offsets('MissingET.MET');
    for (let e = 0; e < rows; e++) {
      const ev = `${process} entry ${b.entryStart + e}`;
      events++;
      const n = to[e + 1]! - to[e]! + (po[e + 1]! - po[e]!) + (no[e + 1]! - no[e]!);
      assert.ok(n >= EFLOW_MIN && n <= EFLOW_MAX, `${ev}: ${n} EFlow objects`);
      eflow += n;
      trk += to[e + 1]! - to[e]!;
      assert.equal(met[e + 1]! - met[e]!, 1, `${ev}: one MissingET`);
      // tracks: one vertex per event, charge consistent with PID, tracker acceptance
      let sorted = true;
      for (let i = to[e]!; i < to[e + 1]!; i++) {
        assert.ok(Math.abs(tEta[i]!) <= 2.5, `${ev}: track eta ${tEta[i]}`);
        assert.ok(tPT[i]! > 0 && Number.isFinite(tPT[i]!), `${ev}: track PT ${tPT[i]}`);
        assert.ok(tQ[i] === 1 || tQ[i] === -1, `${ev}: track charge ${tQ[i]}`);
        const pid = tPID[i]!;
        const apid = Math.abs(pid);
        assert.ok([211, 321, 2212, 11, 13].includes(apid), `${ev}: track PID ${pid}`);
        if (apid === 11 || apid === 13) assert.equal(tQ[i], -Math.sign(pid), `${ev}: lepton track PID ${pid} has charge ${tQ[i]}`);
        else assert.equal(tQ[i], Math.sign(pid), `${ev}: hadron track PID ${pid} has charge ${tQ[i]}`);
        assert.equal(tX[i], tX[to[e]!]);
        assert.equal(tY[i], tY[to[e]!]);
        assert.equal(tZ[i], tZ[to[e]!]);
        assert.ok(Math.abs(tX[i]! - 1.03) < 0.1 && Math.abs(tY[i]! - 1.7) < 0.1 && Math.abs(tZ[i]!) < 400, `${ev}: vertex`);
        if (i > to[e]! && tPT[i]! > tPT[i - 1]!) sorted = false;
      }
      if (sorted) sortedTrackEvents++;
    }
    // towers within the calorimeter
    for (const c of ['EFlowPhoton', 'EFlowNeutralHadron']) {
      for (const x of v.values(`${c}.Eta`)) assert.ok(Math.abs(x) <= 5, `${c}.Eta ${x}`);
      for (const x of v.values(`${c}.ET`)) assert.ok(x > 0 && Number.isFinite(x), `${c}.ET ${x}`);
    }
    // every Phi in [−π, π]
    for (const name of v.cols.keys()) {
      if (!name.endsWith('.Phi')) continue;
      for (const x of v.values(name)) assert.ok(x >= -PHI && x <= PHI, `${name} ${x}`);
    }
    // jets, electrons, muons: sorted by decreasing PT, in acceptance
    for (const [coll, etaMax] of [
      ['Jet', 4.7],
      ['Electron', 2.5],
      [muons, 2.4],
    ] as const) {
      const pt = v.values(`${coll}.PT`);
      const eta = v.values(`${coll}.Eta`);
      const o = v.offsets(`${coll}.PT`);
      for (let e = 0; e < rows; e++) {
        for (let i = o[e]!; i < o[e + 1]!; i++) {
          assert.ok(Math.abs(eta[i]!) <= etaMax, `${coll}.Eta ${eta[i]}`);
          assert.ok(pt[i]! > (coll === 'Jet' ? 20 : 10), `${coll}.PT ${pt[i]}`);
          if (i > o[e]!) assert.ok(pt[i]! <= pt[i - 1]!, `${process} entry ${b.entryStart + e}: ${coll} not sorted by PT`);
        }
      }
    }
    for (const t of v.values('Jet.BTag')) assert.ok(t === 0 || t === 1, `BTag ${t}`);
    for (const q of [...v.values('Electron.Charge'), ...v.values(`${muons}.Charge`)]) assert.ok(q === 1 || q === -1, `lepton charge ${q}`);
    for (const x of v.values('MissingET.MET')) assert.ok(x >= 0 && Number.isFinite(x), `MET ${x}`);
    // every stored lepton has its own track: PID ±11/±13, charge, and bit-identical PT/Eta/Phi
    for (const [coll, code] of [
      ['Electron', 11],
      [muons, 13],
    ] as const) {
      const [pt, eta, phi, q] = [v.values(`${coll}.PT`), v.values(`${coll}.Eta`), v.values(`${coll}.Phi`), v.values(`${coll}.Charge`)];
      const o = v.offsets(`${coll}.PT`);
      for (let e = 0; e < rows; e++) {
        for (let i = o[e]!; i < o[e + 1]!; i++) {
          let found = 0;
          for (let k = to[e]!; k < to[e + 1]!; k++) {
            if (tPT[k] === pt[i] && tEta[k] === eta[i] && tPhi[k] === phi[i] && tPID[k] === -code * q[i]! && tQ[k] === q[i]) found++;
          }
          assert.equal(found, 1, `${process} entry ${b.entryStart + e}: ${coll} ${i - o[e]!} has ${found} matching tracks`);
        }
      }
    }
  }
  return { trackFraction: trk / eflow, sortedTrackEvents, events };
}

describe('generate: every event is a well-formed Delphes event', () => {
  for (const process of PROCESSES) {
    test(`${process}: 400 events`, () => {
      const r = checkInvariants(process, all({ process, events: 400, seed: 17, batchSize: 150 }));
      assert.equal(r.events, 400);
      assert.ok(r.trackFraction > 0.3 && r.trackFraction < 0.55, `tracks are ${(100 * r.trackFraction).toFixed(1)} % of EFlow objects`);
      assert.ok(r.sortedTrackEvents < 4, `EFlow tracks are not PT-sorted (${r.sortedTrackEvents} sorted events)`);
    });
  }

  test('muons: Muon renames the collection and nothing else', () => {
    const a = all({ process: 'wjets', events: 60, seed: 4, muons: 'Muon' });
    checkInvariants('wjets', a, 'Muon');
    const b = all({ process: 'wjets', events: 60, seed: 4 });
    const ha = [...joined(a)].map(([k, v]) => `${k.replace(/^Muon(?=[._])/, 'MuonTight')}=${columnHash(v)}`);
    assert.deepEqual(ha, fingerprint(b));
  });
});

// ---------------------------------------------------------------------------------------------------
// Selection: a minimal version of the recipe's isolated-lepton requirement

interface Tally {
  events: number;
  selected: number;
  hasTwoFlavours: number;
  noLeptonAbove23: number;
}

/** Relative isolation as in the recipe: cone 0.3 (no φ wrap), tracks PT > 0.5 minus the lepton's own, towers ET > 1. */
function selection(batches: ColumnBatch[], muons = 'MuonTight'): Tally {
  const t: Tally = { events: 0, selected: 0, hasTwoFlavours: 0, noLeptonAbove23: 0 };
  for (const b of batches) {
    const v = new View(b);
    const maps = [
      ['EFlowTrack.PT', 'EFlowTrack.Eta', 'EFlowTrack.Phi', 0.5],
      ['EFlowPhoton.ET', 'EFlowPhoton.Eta', 'EFlowPhoton.Phi', 1],
      ['EFlowNeutralHadron.ET', 'EFlowNeutralHadron.Eta', 'EFlowNeutralHadron.Phi', 1],
    ] as const;
    for (let e = 0; e < b.entryStop - b.entryStart; e++) {
      t.events++;
      const nE = v.sizes('Electron')[e]!;
      const nM = v.sizes(muons)[e]!;
      if (nE > 0 && nM > 0) t.hasTwoFlavours++;
      let selected = false;
      let above = false;
      for (const coll of ['Electron', muons]) {
        const o = v.offsets(`${coll}.PT`);
        const [pt, eta, phi] = [v.values(`${coll}.PT`), v.values(`${coll}.Eta`), v.values(`${coll}.Phi`)];
        for (let i = o[e]!; i < o[e + 1]! && !selected; i++) {
          if (pt[i]! <= 23) continue;
          above = true;
          let iso = -1;
          let empty = false;
          for (const [p, h, f, cut] of maps) {
            const mo = v.offsets(p);
            const [mp, mh, mf] = [v.values(p), v.values(h), v.values(f)];
            let any = false;
            for (let k = mo[e]!; k < mo[e + 1]!; k++) {
              if (mp[k]! <= cut) continue;
              any = true;
              const de = mh[k]! - eta[i]!;
              const dp = mf[k]! - phi[i]!;
              if (de * de + dp * dp < 0.09) iso += mp[k]! / pt[i]!;
            }
            if (!any) empty = true;
          }
          if (!empty && iso < 0.45) selected = true;
        }
      }
      if (!above) t.noLeptonAbove23++;
      if (selected) t.selected++;
    }
  }
  return t;
}

test('selection efficiency: W+jets > tt̄ > QCD, roughly as in the published samples', () => {
  const eff: Record<string, number> = {};
  const tallies: Record<string, Tally> = {};
  for (const process of PROCESSES) {
    const t = selection(all({ process, events: 2000, seed: 99 }));
    tallies[process] = t;
    eff[process] = t.selected / t.events;
  }
  assert.ok(eff.wjets! > eff.ttbar! && eff.ttbar! > eff.qcd!, `efficiencies ${JSON.stringify(eff)}`);
  assert.ok(eff.wjets! > 0.8, `W+jets ${eff.wjets}`);
  assert.ok(eff.ttbar! > 0.55 && eff.ttbar! < 0.9, `ttbar ${eff.ttbar}`);
  assert.ok(eff.qcd! > 0.03 && eff.qcd! < 0.25, `QCD ${eff.qcd}`);
  // occasional events without a lepton above threshold, and with both an electron and a muon
  for (const process of PROCESSES) assert.ok(tallies[process]!.noLeptonAbove23 > 0, `${process}: some events have no lepton above 23 GeV`);
  assert.ok(tallies.ttbar!.hasTwoFlavours > 0 && tallies.qcd!.hasTwoFlavours > 0, 'some events have both an electron and a muon');
});

// ---------------------------------------------------------------------------------------------------
// Options

test('invalid options are UsageErrors (exit 2)', () => {
  const bad: GenerateOptions[] = [
    { process: 'higgs' as Process, events: 1 },
    { process: 'qcd', events: -1 },
    { process: 'qcd', events: 1.5 },
    { process: 'qcd', events: Number.NaN },
    { process: 'qcd', events: 1, seed: -3 },
    { process: 'qcd', events: 1, seed: 0.5 },
    { process: 'qcd', events: 1, batchSize: 0 },
    { process: 'qcd', events: 1, muons: 'Muons' as 'Muon' },
  ];
  for (const o of bad) {
    assert.throws(() => generateEvents(o), (e: unknown) => e instanceof UsageError && e.exitCode === 2, `${JSON.stringify(o)}: checked at the call`);
    assert.throws(() => generatorMetadata(o), UsageError);
  }
});
