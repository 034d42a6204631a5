/**
 * An independent, deliberately naive transcription of the SparkDLTrigger recipe from
 * ../shared/reference/features-spec.md (§2–§5), written the way the published Python reads: objects,
 * plain arrays, O(n²) loops, a stable sort of all 801 rows. It shares no code with src/features, so the
 * optimized extractor (η-indexed cones, block-inserted padding, columnar buffers) is checked against it.
 */

export interface RefOptions {
  muons: string;
  sort: 'dr' | 'pt';
  corrected: boolean;
}

export interface RefEvent {
  EFlowTrack: { PT: number; Eta: number; Phi: number; X: number; Y: number; Z: number; PID: number; Charge: number }[];
  EFlowPhoton: { ET: number; Eta: number; Phi: number }[];
  EFlowNeutralHadron: { ET: number; Eta: number; Phi: number }[];
  Electron: { PT: number; Eta: number; Phi: number; Charge: number }[];
  Muon: { PT: number; Eta: number; Phi: number; Charge: number }[];
  MissingET: { MET: number; Phi: number }[];
  Jet: { PT: number; Eta: number; BTag: number }[];
}

/** The spec's LorentzVector helper (§3.1). */
class LorentzVector {
  x = 0;
  y = 0;
  z = 0;
  t = 0;
  static ptEtaPhiM(pt: number, eta: number, phi: number, m: number): LorentzVector {
    const v = new LorentzVector();
    pt = Math.abs(pt);
    v.x = pt * Math.cos(phi);
    v.y = pt * Math.sin(phi);
    v.z = pt * Math.sinh(eta);
    const p2 = v.x ** 2 + v.y ** 2 + v.z ** 2;
    v.t = m >= 0 ? Math.sqrt(p2 + m ** 2) : Math.sqrt(Math.max(p2 - m ** 2, 0));
    return v;
  }
  static pxPyPzE(px: number, py: number, pz: number, e: number): LorentzVector {
    const v = new LorentzVector();
    v.x = px;
    v.y = py;
    v.z = pz;
    v.t = e;
    return v;
  }
  P(): number {
    return Math.sqrt(this.x ** 2 + this.y ** 2 + this.z ** 2);
  }
  Pt(): number {
    return Math.sqrt(this.x ** 2 + this.y ** 2);
  }
  Phi(): number {
    return Math.atan2(this.y, this.x);
  }
  Eta(): number {
    const p = this.P();
    const c = p === 0 ? 1 : this.z / p;
    if (c ** 2 < 1) return -0.5 * Math.log((1 - c) / (1 + c));
    if (this.z === 0) return 0;
    throw new Error('Eta undefined');
  }
  DeltaR(o: LorentzVector): number {
    const deta = this.Eta() - o.Eta();
    let dphi = this.Phi() - o.Phi();
    while (dphi > Math.PI) dphi -= 2 * Math.PI;
    while (dphi < -Math.PI) dphi += 2 * Math.PI;
    return Math.sqrt(deta ** 2 + dphi ** 2);
  }
}

type Triplet = [number, number, number, number]; // eta, phi, pt, index in the collection

/** PFIso (§2): Σ pT in the cone / pT, −1 when subtracting; `skip` leaves one map entry out (corrected). */
function PFIso(p: LorentzVector, DR: number, map: Triplet[], subtract: boolean, properWrap: boolean, skip = -1): number {
  if (p.Pt() <= 0) return 0;
  const eta = p.Eta();
  const phi = p.Phi();
  const lim = properWrap ? Math.PI : 2 * Math.PI;
  let sum = 0;
  map.forEach((m, i) => {
    if (i === skip) return;
    const deta = m[0] - eta;
    let dphi = m[1] - phi;
    dphi = dphi - 2 * Math.PI * (dphi > lim ? 1 : 0) + 2 * Math.PI * (dphi < -lim ? 1 : 0);
    if (dphi ** 2 + deta ** 2 < DR ** 2) sum += m[2];
  });
  const iso = sum / p.Pt();
  return subtract ? iso - 1 : iso;
}

export interface RefResult {
  hlf: number[];
  /** 801 × 19, sorted and standardized. */
  gru: number[][];
  nParticles: number;
  mask?: number[];
}

/** One event → features, or the reason it was rejected. */
export function referenceFeatures(ev: RefEvent, o: RefOptions): RefResult | 'empty-map' | 'no-lepton' | 'not-isolated' {
  const C = o.corrected;
  const TrkMap: Triplet[] = [];
  ev.EFlowTrack.forEach((t, i) => t.PT > 0.5 && TrkMap.push([t.Eta, t.Phi, t.PT, i]));
  const NeuMap: Triplet[] = [];
  ev.EFlowNeutralHadron.forEach((t, i) => t.ET > 1.0 && NeuMap.push([t.Eta, t.Phi, t.ET, i]));
  const PhoMap: Triplet[] = [];
  ev.EFlowPhoton.forEach((t, i) => t.ET > 1.0 && PhoMap.push([t.Eta, t.Phi, t.ET, i]));
  if (TrkMap.length === 0 || NeuMap.length === 0 || PhoMap.length === 0) return 'empty-map';
  if (ev.Electron.length === 0 && ev.Muon.length === 0) return 'no-lepton';

  const leptonRow = (coll: RefEvent['Electron'], isEle: boolean): number[] | null => {
    for (const e of coll) {
      if (e.PT <= 23) continue;
      const l = LorentzVector.ptEtaPhiM(e.PT, e.Eta, e.Phi, 0);
      let own = -1;
      if (C) {
        own = TrkMap.findIndex((m) => {
          let dphi = m[1] - l.Phi();
          while (dphi > Math.PI) dphi -= 2 * Math.PI;
          while (dphi < -Math.PI) dphi += 2 * Math.PI;
          return Math.sqrt((m[0] - l.Eta()) ** 2 + dphi ** 2) <= 0.0001;
        });
      }
      const ChIso = PFIso(l, 0.3, TrkMap, !C, C, own);
      const NeuIso = PFIso(l, 0.3, NeuMap, false, C);
      const GamIso = PFIso(l, 0.3, PhoMap, false, C);
      if (ChIso + NeuIso + GamIso < 0.45) {
        return [l.t, l.x, l.y, l.z, l.Pt(), l.Eta(), l.Phi(), 0, 0, 0, ChIso, GamIso, NeuIso, 0, 0, 0, isEle ? 1 : 0, isEle ? 0 : 1, e.Charge];
      }
    }
    return null;
  };
  const foundEle = leptonRow(ev.Electron, true);
  const foundMuon = leptonRow(ev.Muon, false);
  let lep: number[];
  if (foundEle && foundMuon) {
    const k = C ? 4 : 5;
    lep = foundEle[k]! > foundMuon[k]! ? foundEle : foundMuon;
  } else if (foundEle) lep = foundEle;
  else if (foundMuon) lep = foundMuon;
  else return 'not-isolated';

  const lepMomentum = LorentzVector.pxPyPzE(lep[1]!, lep[2]!, lep[3]!, lep[0]!);
  const tracks: number[][] = [];
  ev.EFlowTrack.forEach((t, i) => {
    if (t.PT <= 0.5 || tracks.length >= 450) return;
    const q = LorentzVector.ptEtaPhiM(t.PT, t.Eta, t.Phi, 0);
    if (!(lepMomentum.DeltaR(q) > 0.0001)) return;
    const own = TrkMap.findIndex((m) => m[3] === i);
    const charge = C ? Math.sign(t.Charge) : Math.sign(t.PID);
    tracks.push([q.t, q.x, q.y, q.z, t.PT, t.Eta, t.Phi, t.X, t.Y, t.Z,
      PFIso(q, 0.3, TrkMap, !C, C, C ? own : -1), PFIso(q, 0.3, PhoMap, false, C), PFIso(q, 0.3, NeuMap, false, C),
      1, 0, 0, 0, 0, charge]);
  });
  const photons: number[][] = [];
  ev.EFlowPhoton.forEach((t, i) => {
    if (t.ET <= 1 || photons.length >= 150) return;
    const q = LorentzVector.ptEtaPhiM(t.ET, t.Eta, t.Phi, 0);
    const own = PhoMap.findIndex((m) => m[3] === i);
    photons.push([q.t, q.x, q.y, q.z, t.ET, t.Eta, t.Phi, 0, 0, 0,
      PFIso(q, 0.3, TrkMap, !C, C), PFIso(q, 0.3, PhoMap, false, C, C ? own : -1), PFIso(q, 0.3, NeuMap, false, C),
      0, 0, 1, 0, 0, 0]);
  });
  const neutrals: number[][] = [];
  ev.EFlowNeutralHadron.forEach((t, i) => {
    if (t.ET <= 1 || neutrals.length >= 200) return;
    const q = LorentzVector.ptEtaPhiM(t.ET, t.Eta, t.Phi, 0);
    const own = NeuMap.findIndex((m) => m[3] === i);
    neutrals.push([q.t, q.x, q.y, q.z, t.ET, t.Eta, t.Phi, 0, 0, 0,
      PFIso(q, 0.3, TrkMap, !C, C), PFIso(q, 0.3, PhoMap, false, C), PFIso(q, 0.3, NeuMap, false, C, C ? own : -1),
      0, 1, 0, 0, 0, 0]);
  });
  const zero = () => new Array<number>(19).fill(0);
  const real = [lep, ...tracks, ...photons, ...neutrals];
  const nParticles = real.length;

  // HLF (§5)
  let HT = 0;
  let nJets = 0;
  let nBjets = 0;
  for (const j of ev.Jet) {
    if (j.PT > 30 && Math.abs(j.Eta) < 2.6) {
      HT += j.PT;
      nJets += 1;
      if (j.BTag > 0) nBjets += 1;
    }
  }
  const MET = ev.MissingET[0]!.MET;
  const phiMET = ev.MissingET[0]!.Phi;
  let MT = 2 * MET * lepMomentum.Pt() * (1 - Math.cos(lepMomentum.Phi() - phiMET));
  if (C) MT = Math.sqrt(MT);
  const hlf = [HT, MET, phiMET, MT, nJets, nBjets, lep[4]!, lep[5]!, lep[6]!, lep[10]!, lep[11]!, lep[12]!, lep[18]!, lep[16]!];

  // ordering (§4): a stable sort by decreasing key, over all 801 rows (published) or the particles only
  const etaL = lep[5]!;
  const phiL = lep[6]!;
  const key = (r: number[]) => {
    if (o.sort === 'pt') return r[4]!;
    let dphi = phiL - r[6]!;
    while (dphi > Math.PI) dphi -= 2 * Math.PI;
    while (dphi < -Math.PI) dphi += 2 * Math.PI;
    return Math.sqrt((etaL - r[5]!) ** 2 + dphi ** 2);
  };
  let rows: number[][];
  if (!C) {
    // §3.3: lepton, tracks, photons, neutral hadrons, then all zero rows
    const padded = [...real, ...Array.from({ length: 801 - real.length }, zero)];
    rows = padded.map((r, i) => ({ r, k: key(r), i })).sort((a, b) => b.k - a.k || a.i - b.i).map((x) => x.r);
  } else {
    rows = real.map((r, i) => ({ r, k: key(r), i })).sort((a, b) => b.k - a.k || a.i - b.i).map((x) => x.r);
  }
  // per-event StandardScaler over the rows taking part
  const N = rows.length;
  const out = rows.map((r) => r.slice());
  for (let j = 0; j < 19; j++) {
    let s = 0;
    for (const r of rows) s += r[j]!;
    const mean = s / N;
    let v = 0;
    for (const r of rows) v += (r[j]! - mean) ** 2;
    v /= N;
    const constant = v <= N * Number.EPSILON * v + (N * mean * Number.EPSILON) ** 2;
    const scale = constant ? 1 : Math.sqrt(v);
    for (const r of out) r[j] = (r[j]! - mean) / scale;
  }
  if (C) {
    while (out.length < 801) out.push(zero());
    return { hlf, gru: out, nParticles, mask: out.map((_, i) => (i < nParticles ? 1 : 0)) };
  }
  return { hlf, gru: out, nParticles };
}
