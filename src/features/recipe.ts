/**
 * The SparkDLTrigger feature recipe (Nguyen et al. 2019, as implemented in cerndb/SparkDLTrigger): per
 * Delphes event, the isolated-lepton selection, the 801×19 low-level particle matrix (LLF), the 14
 * high-level features (HLF), the particle ordering and the per-event standardization.
 *
 * `sparkdltrigger` reproduces the published notebooks, quirks included; `corrected` fixes each quirk.
 * Every difference is a separate option (`RecipeOptions`) and is listed in docs/features.md.
 *
 * Hot path: one event at a time over the batch's typed arrays, into reusable float64 scratch; the
 * output is written straight into float32 column buffers.
 */
import { UsageError } from '../errors.js';
import { etaOf, IsoMap, jetSums, masslessP4, phiOf, ptOf, transverseMass, wrapPhi } from './physics.js';

export const MAX_TRACKS = 450;
export const MAX_PHOTONS = 150;
export const MAX_NEUTRALS = 200;
/** Rows of the particle matrix: the lepton + 450 tracks + 150 photons + 200 neutral hadrons. */
export const N_PARTICLES = 1 + MAX_TRACKS + MAX_PHOTONS + MAX_NEUTRALS;
export const N_LLF = 19;
export const N_HLF = 14;
export const GRU_WIDTH = N_PARTICLES * N_LLF;
export const N_CLASSES = 3;

export const LLF_NAMES = [
  'Energy', 'Px', 'Py', 'Pz', 'Pt', 'Eta', 'Phi', 'vtxX', 'vtxY', 'vtxZ',
  'ChPFIso', 'GammaPFIso', 'NeuPFIso', 'isChHad', 'isNeuHad', 'isGamma', 'isEle', 'isMu', 'Charge',
] as const;
export const HLF_NAMES = [
  'HT', 'MET', 'phiMET', 'MT', 'nJets', 'nBjets', 'LepPt', 'LepEta', 'LepPhi',
  'LepIsoCh', 'LepIsoGamma', 'LepIsoNeu', 'LepCharge', 'LepIsEle',
] as const;
/** Labels of the three samples (features-spec §6). */
export const CLASS_LABELS: Record<string, number> = { qcd: 0, ttbar: 1, tt: 1, wjets: 2, w: 2, wlnu: 2 };

export const LEPTON_PT_MIN = 23;
export const ISOLATION_MAX = 0.45;
export const CONE = 0.3;
export const TRACK_PT_MIN = 0.5;
export const TOWER_ET_MIN = 1.0;
/** A track closer than this to the selected lepton is the lepton's own track and is not a particle row. */
export const LEPTON_TRACK_DR = 0.0001;

export type RecipeName = 'sparkdltrigger' | 'corrected';

export interface RecipeOptions {
  recipe: RecipeName;
  /** The muon collection: `MuonTight` (the published samples) or e.g. `Muon`. */
  muons: string;
  /** Particle order: decreasing ΔR from the lepton (published) or decreasing pT. */
  sort: 'dr' | 'pt';
  /** The `label` written to every row; −1 = unlabelled (encoded_label all zero). */
  label: number;
  /** Isolation cones wrap Δφ at ±π (corrected) instead of ±2π, i.e. never (quirk 1). */
  coneWrap: boolean;
  /** With both an isolated electron and muon: keep the larger η (quirk 2) or the larger pT. */
  leptonChoice: 'eta' | 'pt';
  /** HLF MT = sqrt(2·MET·pT·(1−cos Δφ)) instead of its square (quirk 3). */
  mtSqrt: boolean;
  /** Track charge from sign(PID) (quirk 4) or from the `Charge` leaf. */
  trackCharge: 'pid' | 'leaf';
  /** Isolation self-removal: −1 on ChPFIso for every object (quirk 5) or leave out the object's own entry. */
  isolationSelf: 'subtract-one' | 'exclude-own';
  /**
   * Padding: zero rows sorted with the particles and standardized with them (quirks 6, 7), or put after
   * the sorted particles, left at zero, excluded from the standardization and marked by `GRU_mask`.
   */
  masked: boolean;
}

export function recipeOptions(o: Partial<RecipeOptions> = {}): RecipeOptions {
  const recipe = o.recipe ?? 'sparkdltrigger';
  if (recipe !== 'sparkdltrigger' && recipe !== 'corrected') throw new UsageError(`unknown recipe '${recipe}' (sparkdltrigger or corrected)`);
  const c = recipe === 'corrected';
  const r: RecipeOptions = {
    recipe,
    muons: o.muons ?? 'MuonTight',
    sort: o.sort ?? 'dr',
    label: o.label ?? -1,
    coneWrap: o.coneWrap ?? c,
    leptonChoice: o.leptonChoice ?? (c ? 'pt' : 'eta'),
    mtSqrt: o.mtSqrt ?? c,
    trackCharge: o.trackCharge ?? (c ? 'leaf' : 'pid'),
    isolationSelf: o.isolationSelf ?? (c ? 'exclude-own' : 'subtract-one'),
    masked: o.masked ?? c,
  };
  if (r.sort !== 'dr' && r.sort !== 'pt') throw new UsageError(`unknown sort '${r.sort}' (dr or pt)`);
  if (!Number.isInteger(r.label) || r.label < -1) throw new UsageError(`label must be an integer ≥ 0 (or −1 for none), got ${r.label}`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(r.muons)) throw new UsageError(`bad muon collection name '${r.muons}'`);
  return r;
}

/** The Delphes leaves the recipe reads, by role. */
export function recipeBranches(o: RecipeOptions): Record<string, string> {
  const m = o.muons;
  const b: Record<string, string> = {
    trkPt: 'EFlowTrack.PT', trkEta: 'EFlowTrack.Eta', trkPhi: 'EFlowTrack.Phi',
    trkX: 'EFlowTrack.X', trkY: 'EFlowTrack.Y', trkZ: 'EFlowTrack.Z', trkPid: 'EFlowTrack.PID',
    phoEt: 'EFlowPhoton.ET', phoEta: 'EFlowPhoton.Eta', phoPhi: 'EFlowPhoton.Phi',
    neuEt: 'EFlowNeutralHadron.ET', neuEta: 'EFlowNeutralHadron.Eta', neuPhi: 'EFlowNeutralHadron.Phi',
    elePt: 'Electron.PT', eleEta: 'Electron.Eta', elePhi: 'Electron.Phi', eleCharge: 'Electron.Charge',
    muPt: `${m}.PT`, muEta: `${m}.Eta`, muPhi: `${m}.Phi`, muCharge: `${m}.Charge`,
    met: 'MissingET.MET', metPhi: 'MissingET.Phi',
    jetPt: 'Jet.PT', jetEta: 'Jet.Eta', jetBtag: 'Jet.BTag',
  };
  if (o.trackCharge === 'leaf') b.trkCharge = 'EFlowTrack.Charge';
  return b;
}

/** Jagged input columns by role: offsets and values of each leaf. */
export type EventColumns = Record<string, { offsets: Int32Array; values: ArrayLike<number> }>;

/** Why an event produced no row. */
export const Reject = {
  EMPTY_MAP: -1,
  NO_LEPTON: -2,
  NOT_ISOLATED: -3,
  /** Not a selection outcome: the event has no MissingET entry (the caller reports it as corrupt input). */
  NO_MET: -4,
} as const;

/** The column roles of one lepton collection (no string building per event). */
interface LeptonRoles {
  pt: string;
  eta: string;
  phi: string;
  charge: string;
}
const ELECTRON: LeptonRoles = { pt: 'elePt', eta: 'eleEta', phi: 'elePhi', charge: 'eleCharge' };
const MUON: LeptonRoles = { pt: 'muPt', eta: 'muEta', phi: 'muPhi', charge: 'muCharge' };

/** Where one event's features go: row `row` of the output buffers. */
export interface FeatureSink {
  hlf: Float32Array;
  gru: Float32Array;
  /** Only with `masked`. */
  mask?: Uint8Array;
  row: number;
}

/**
 * Computes the features of one event at a time. Not thread-safe (reuses scratch); cheap to construct.
 */
export class FeatureExtractor {
  readonly opts: RecipeOptions;
  private readonly trk = new IsoMap();
  private readonly pho = new IsoMap();
  private readonly neu = new IsoMap();
  /** The particle matrix in build order: lepton, tracks, photons, neutral hadrons (float64). */
  private readonly m = new Float64Array(GRU_WIDTH);
  private readonly keys = new Float64Array(N_PARTICLES);
  private readonly order: number[] = [];
  private readonly mean = new Float64Array(N_LLF);
  private readonly scale = new Float64Array(N_LLF);
  private readonly v4 = new Float64Array(4);
  private readonly ele = new Float64Array(N_LLF);
  private readonly mu = new Float64Array(N_LLF);
  private readonly jets = new Float64Array(3);
  /** The HLF of the last accepted event (float64, before the float32 store). */
  readonly hlf = new Float64Array(N_HLF);
  /** Real rows of the last accepted event. */
  nParticles = 0;

  constructor(opts: Partial<RecipeOptions> = {}) {
    this.opts = recipeOptions(opts);
  }

  /** Isolation of a massless object against a map: Σ pT in the 0.3 cone / pT (− 1 if `subtract`). */
  private iso(map: IsoMap, pt: number, eta: number, phi: number, subtract: boolean, skip: number): number {
    if (pt <= 0) return 0;
    const s = map.coneSum(eta, phi, CONE, this.opts.coneWrap, skip) / pt;
    return subtract ? s - 1 : s;
  }

  /**
   * Looks for the first isolated lepton of a collection (pT > 23 GeV, relative isolation < 0.45);
   * fills `row` with its LLF row and returns true when found.
   */
  private findLepton(c: EventColumns, roles: LeptonRoles, e: number, row: Float64Array, isEle: boolean): boolean {
    const P = c[roles.pt]!;
    const lo = P.offsets[e]!;
    const hi = P.offsets[e + 1]!;
    const pt = P.values;
    const eta = c[roles.eta]!.values;
    const phi = c[roles.phi]!.values;
    const charge = c[roles.charge]!.values;
    const v = this.v4;
    const exclude = this.opts.isolationSelf === 'exclude-own';
    for (let j = lo; j < hi; j++) {
      if (!(pt[j]! > LEPTON_PT_MIN)) continue;
      masslessP4(pt[j]!, eta[j]!, phi[j]!, v);
      const lpt = ptOf(v[1]!, v[2]!);
      const leta = etaOf(v[1]!, v[2]!, v[3]!);
      const lphi = phiOf(v[1]!, v[2]!);
      const own = exclude ? this.ownTrack(leta, lphi) : -1;
      const ch = this.iso(this.trk, lpt, leta, lphi, !exclude, own);
      const neu = this.iso(this.neu, lpt, leta, lphi, false, -1);
      const gam = this.iso(this.pho, lpt, leta, lphi, false, -1);
      if (ch + neu + gam < ISOLATION_MAX) {
        row.fill(0);
        row[0] = v[0]!;
        row[1] = v[1]!;
        row[2] = v[2]!;
        row[3] = v[3]!;
        row[4] = lpt;
        row[5] = leta;
        row[6] = lphi;
        row[10] = ch;
        row[11] = gam;
        row[12] = neu;
        row[isEle ? 16 : 17] = 1;
        row[18] = charge[j]!;
        return true;
      }
    }
    return false;
  }

  /** The track-map entry of a lepton's own track (the first within ΔR ≤ 10⁻⁴), or −1. */
  private ownTrack(eta: number, phi: number): number {
    const t = this.trk;
    for (let i = 0; i < t.size; i++) {
      const de = t.eta[i]! - eta;
      const dp = wrapPhi(t.phi[i]! - phi);
      if (Math.sqrt(de * de + dp * dp) <= LEPTON_TRACK_DR) return i;
    }
    return -1;
  }

  /** Loads one event's entries of a collection above `min` into an isolation map, in stored order. */
  private fillMap(map: IsoMap, col: EventColumns[string], eta: ArrayLike<number>, phi: ArrayLike<number>, e: number, min: number): void {
    const pt = col.values;
    const hi = col.offsets[e + 1]!;
    map.clear();
    for (let j = col.offsets[e]!; j < hi; j++) if (pt[j]! > min) map.push(eta[j]!, phi[j]!, pt[j]!, j);
    map.index();
  }

  /**
   * Processes event `e` (index within the batch's columns). Returns the number of real particle rows
   * (> 0) when the event is selected, after writing its features into `out`; else a `Reject` code.
   */
  process(c: EventColumns, e: number, out: FeatureSink): number {
    const o = this.opts;
    const exclude = o.isolationSelf === 'exclude-own';
    this.fillMap(this.trk, c.trkPt!, c.trkEta!.values, c.trkPhi!.values, e, TRACK_PT_MIN);
    this.fillMap(this.neu, c.neuEt!, c.neuEta!.values, c.neuPhi!.values, e, TOWER_ET_MIN);
    this.fillMap(this.pho, c.phoEt!, c.phoEta!.values, c.phoPhi!.values, e, TOWER_ET_MIN);
    if (this.trk.size === 0 || this.neu.size === 0 || this.pho.size === 0) return Reject.EMPTY_MAP;

    const eleOff = c.elePt!.offsets;
    const muOff = c.muPt!.offsets;
    if (eleOff[e + 1]! - eleOff[e]! === 0 && muOff[e + 1]! - muOff[e]! === 0) return Reject.NO_LEPTON;
    const hasEle = this.findLepton(c, ELECTRON, e, this.ele, true);
    const hasMu = this.findLepton(c, MUON, e, this.mu, false);
    if (!hasEle && !hasMu) return Reject.NOT_ISOLATED;
    let lep: Float64Array;
    if (hasEle && hasMu) {
      const k = o.leptonChoice === 'eta' ? 5 : 4;
      lep = this.ele[k]! > this.mu[k]! ? this.ele : this.mu;
    } else lep = hasEle ? this.ele : this.mu;

    const m = this.m;
    m.fill(0);
    m.set(lep, 0);
    let n = 1;
    const lepEta = etaOf(lep[1]!, lep[2]!, lep[3]!);
    const lepPhi = phiOf(lep[1]!, lep[2]!);
    const v = this.v4;

    // tracks: pT > 0.5, not the lepton's own, first 450 in stored order
    {
      const P = c.trkPt!;
      const lo = P.offsets[e]!;
      const hi = P.offsets[e + 1]!;
      const pt = P.values;
      const eta = c.trkEta!.values;
      const phi = c.trkPhi!.values;
      const X = c.trkX!.values;
      const Y = c.trkY!.values;
      const Z = c.trkZ!.values;
      const chg = o.trackCharge === 'leaf' ? c.trkCharge!.values : c.trkPid!.values;
      let kept = 0;
      let mapIndex = -1;
      for (let j = lo; j < hi && kept < MAX_TRACKS; j++) {
        const p = pt[j]!;
        if (!(p > TRACK_PT_MIN)) continue;
        mapIndex++;
        masslessP4(p, eta[j]!, phi[j]!, v);
        const qeta = etaOf(v[1]!, v[2]!, v[3]!);
        const qphi = phiOf(v[1]!, v[2]!);
        const de = lepEta - qeta;
        const dp = wrapPhi(lepPhi - qphi);
        if (!(Math.sqrt(de * de + dp * dp) > LEPTON_TRACK_DR)) continue;
        const qpt = ptOf(v[1]!, v[2]!);
        const r = n * N_LLF;
        m[r] = v[0]!;
        m[r + 1] = v[1]!;
        m[r + 2] = v[2]!;
        m[r + 3] = v[3]!;
        m[r + 4] = p;
        m[r + 5] = eta[j]!;
        m[r + 6] = phi[j]!;
        m[r + 7] = X[j]!;
        m[r + 8] = Y[j]!;
        m[r + 9] = Z[j]!;
        m[r + 10] = this.iso(this.trk, qpt, qeta, qphi, !exclude, exclude ? mapIndex : -1);
        m[r + 11] = this.iso(this.pho, qpt, qeta, qphi, false, -1);
        m[r + 12] = this.iso(this.neu, qpt, qeta, qphi, false, -1);
        m[r + 13] = 1;
        m[r + 18] = Math.sign(chg[j]!);
        n++;
        kept++;
      }
    }
    // photons (ET > 1, first 150), then neutral hadrons (ET > 1, first 200): their maps hold exactly them
    n = this.towers(this.pho, MAX_PHOTONS, 15, n, exclude);
    n = this.towers(this.neu, MAX_NEUTRALS, 14, n, exclude);
    this.nParticles = n;

    // high-level features
    const h = this.hlf;
    const J = c.jetPt!;
    jetSums(J.values, c.jetEta!.values, c.jetBtag!.values, J.offsets[e]!, J.offsets[e + 1]!, this.jets);
    const M = c.met!;
    const mlo = M.offsets[e]!;
    if (M.offsets[e + 1]! <= mlo) return Reject.NO_MET;
    const met = M.values[mlo]!;
    const metPhi = c.metPhi!.values[mlo]!;
    h[0] = this.jets[0]!;
    h[1] = met;
    h[2] = metPhi;
    h[3] = transverseMass(met, metPhi, ptOf(lep[1]!, lep[2]!), lepPhi, o.mtSqrt);
    h[4] = this.jets[1]!;
    h[5] = this.jets[2]!;
    h[6] = lep[4]!;
    h[7] = lep[5]!;
    h[8] = lep[6]!;
    h[9] = lep[10]!;
    h[10] = lep[11]!;
    h[11] = lep[12]!;
    h[12] = lep[18]!;
    h[13] = lep[16]!;
    out.hlf.set(h, out.row * N_HLF);

    this.sortAndStandardize(n, out);
    return n;
  }

  /** Rows of the EFlow towers of one map (photons or neutral hadrons): ET, η, φ raw; no vertex. */
  private towers(map: IsoMap, cap: number, flag: number, n: number, exclude: boolean): number {
    const m = this.m;
    const v = this.v4;
    const k = Math.min(map.size, cap);
    const self = map === this.pho ? 11 : 12;
    for (let i = 0; i < k; i++) {
      const et = map.pt[i]!;
      const eta = map.eta[i]!;
      const phi = map.phi[i]!;
      masslessP4(et, eta, phi, v);
      const qpt = ptOf(v[1]!, v[2]!);
      const qeta = etaOf(v[1]!, v[2]!, v[3]!);
      const qphi = phiOf(v[1]!, v[2]!);
      const r = n * N_LLF;
      m[r] = v[0]!;
      m[r + 1] = v[1]!;
      m[r + 2] = v[2]!;
      m[r + 3] = v[3]!;
      m[r + 4] = et;
      m[r + 5] = eta;
      m[r + 6] = phi;
      m[r + 10] = this.iso(this.trk, qpt, qeta, qphi, !exclude, -1);
      m[r + 11] = this.iso(this.pho, qpt, qeta, qphi, false, exclude && self === 11 ? i : -1);
      m[r + 12] = this.iso(this.neu, qpt, qeta, qphi, false, exclude && self === 12 ? i : -1);
      m[r + flag] = 1;
      n++;
    }
    return n;
  }

  /**
   * Orders the rows (decreasing ΔR from the lepton, or decreasing pT; ties keep build order) and
   * standardizes each column per event (population σ; constant columns get scale 1, as sklearn's
   * StandardScaler), writing float32 into `out.gru`.
   */
  private sortAndStandardize(n: number, out: FeatureSink): void {
    const o = this.opts;
    const m = this.m;
    const keys = this.keys;
    const lepEta = m[5]!;
    const lepPhi = m[6]!;
    const byDr = o.sort === 'dr';
    for (let i = 0; i < n; i++) {
      if (byDr) {
        const de = lepEta - m[i * N_LLF + 5]!;
        const dp = wrapPhi(lepPhi - m[i * N_LLF + 6]!);
        keys[i] = Math.sqrt(de * de + dp * dp);
      } else keys[i] = m[i * N_LLF + 4]!;
    }
    const order = this.order;
    order.length = n;
    for (let i = 0; i < n; i++) order[i] = i;
    // decreasing key; equal keys keep build order (Python's stable sort with reverse=True)
    order.sort((a, b) => keys[b]! - keys[a]! || a - b);

    // Where the zero rows go: in the published recipe they are sorted with the particles. They all share
    // one key and come after every particle in build order, so they form one block after the particles
    // whose key is ≥ theirs.
    let padAt = n;
    if (!o.masked && n < N_PARTICLES) {
      let padKey: number;
      if (byDr) {
        const dp = wrapPhi(lepPhi - 0);
        padKey = Math.sqrt(lepEta * lepEta + dp * dp);
      } else padKey = 0;
      padAt = 0;
      while (padAt < n && keys[order[padAt]!]! >= padKey) padAt++;
    }

    // per-column mean and σ over the rows that take part: all 801 (published) or the n real ones
    const rows = o.masked ? n : N_PARTICLES;
    const mean = this.mean;
    const scale = this.scale;
    const eps = Number.EPSILON;
    for (let j = 0; j < N_LLF; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += m[i * N_LLF + j]!;
      const mu = s / rows;
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const d = m[i * N_LLF + j]! - mu;
        ss += d * d;
      }
      ss += (rows - n) * mu * mu; // the zero rows
      const variance = ss / rows;
      // sklearn ≥ 1.0 `_is_constant_feature`: variance within rounding error of zero
      const bound = rows * eps * variance + (rows * mu * eps) ** 2;
      mean[j] = mu;
      scale[j] = variance <= bound ? 1 : Math.sqrt(variance);
    }

    const gru = out.gru;
    const base = out.row * GRU_WIDTH;
    let r = 0;
    const emit = (src: number) => {
      const d = base + r * N_LLF;
      if (src < 0) {
        for (let j = 0; j < N_LLF; j++) gru[d + j] = (0 - mean[j]!) / scale[j]!;
      } else {
        const s0 = src * N_LLF;
        for (let j = 0; j < N_LLF; j++) gru[d + j] = (m[s0 + j]! - mean[j]!) / scale[j]!;
      }
      r++;
    };
    for (let k = 0; k < padAt; k++) emit(order[k]!);
    if (!o.masked) for (let k = n; k < N_PARTICLES; k++) emit(-1);
    for (let k = padAt; k < n; k++) emit(order[k]!);
    if (o.masked) {
      gru.fill(0, base + n * N_LLF, base + GRU_WIDTH);
      const mask = out.mask!;
      const mb = out.row * N_PARTICLES;
      mask.fill(1, mb, mb + n);
      mask.fill(0, mb + n, mb + N_PARTICLES);
    }
  }
}
