/**
 * The physics model of `hep-ml generate`: toy Delphes events for lepton-filtered QCD, semileptonic-dominated
 * tt̄ and W(→ℓν)+jets. Plausible, not a simulation: the hard process is built from two-body decays with
 * Breit–Wigner masses (tt̄, W), jets shower into collimated EFlow constituents, an underlying event /
 * pile-up fills the detector, and detector effects are Gaussian smearings and flat efficiencies. The
 * model is described, with the numbers it produces, in docs/commands/generate.md.
 *
 * Hot path: no per-particle objects. Objects go straight into the batch's typed-array buffers; per-event
 * scratch lives in preallocated Float64Arrays; 4-vectors live in numbered slots of one Float64Array.
 */
import type { ColumnData } from '../root/columns.js';
import { ObjectBuffer, TowerBuffer, TrackBuffer, wrapPhi } from './buffers.js';
import { Rng } from './rng.js';

export type Process = 'qcd' | 'ttbar' | 'wjets';

/** The process's stream number in the per-event seed. */
export const PROCESS_CODE: Record<Process, number> = { qcd: 0, ttbar: 1, wjets: 2 };

// ---------------------------------------------------------------------------------------------------
// Model constants (docs/commands/generate.md quotes them)

/** EFlow objects per event (tracks + photons + neutral hadrons), inclusive bounds. */
export const EFLOW_MIN = 100;
export const EFLOW_MAX = 600;
/** At most this many EFlow objects are jet constituents; the rest (at least EFLOW_MIN in all) is underlying event. */
const HARD_MAX = 420;
/** Median number of underlying-event / pile-up EFlow objects (log-normal spread 0.3). */
const UE_MEDIAN: Record<Process, number> = { qcd: 210, ttbar: 230, wjets: 190 };
const UE_SPREAD = 0.3;
/** Fractions of underlying-event objects that are tracks and photons (the rest: neutral hadrons). */
const UE_TRACK = 0.42;
const UE_PHOTON = 0.3;

/** Stored jets: reconstructed PT above this and |Eta| below JET_ETA_MAX. */
const JET_PT_MIN = 20;
const JET_ETA_MAX = 4.7;
/** Tracker acceptance: tracks and b-tagging. */
const TRACKER_ETA = 2.5;
/** Calorimeter acceptance: photons and neutral hadrons. */
const CALO_ETA = 4.99;
const ELECTRON_ETA = 2.5;
const MUON_ETA = 2.4;
/** Stored leptons: PT above this (their track is kept whatever their PT). */
const LEPTON_PT_MIN = 10;
/** The generator-level lepton filter: the prompt lepton has PT above this and lies in acceptance. */
const FILTER_PT = 20;
/** b-tagging efficiency by flavour (light, c, b), within the tracker. */
const BTAG_EFF = { light: 0.015, c: 0.12, b: 0.7 };
/** Lepton inside a b/c jet (QCD, hadronic tt̄): hadronic PT around it = r × lepton PT, r log-normal (median, σ). */
const HF_R_MEDIAN = 2.0;
const HF_R_SIGMA = 1.2;
/** The neutrino of that decay: PT = lepton PT × Exp(HF_NU_LEP). */
const HF_NU_LEP = 0.45;
/** Other b / c jets: probability of a semileptonic decay whose neutrino takes PT × Exp(0.12) (at most half). */
const HF_NU_B = 0.2;
const HF_NU_C = 0.1;

/** tt̄ decay modes: semileptonic (e/μ/τ→ℓ), dileptonic; the rest hadronic with a lepton from a b decay. */
const TT_SEMI = 0.66;
const TT_DI = 0.12;
/** Fraction of W → ℓν decays (W+jets, tt̄) that go through a τ: W → τν, τ → ℓνν (e or μ). */
const TAU_FRACTION = 0.12;
/** Probability of a collinear photon next to an electron / a muon, with ET = PT × Exp(0.08) (at most half). */
const FSR_E = 0.4;
const FSR_MU = 0.2;
/** Soft pile-up / multi-parton minijets: Poisson(mean), PT 3 + Exp(6) GeV, flat in |η| < 4. */
const MINIJETS = 1.2;
/** MET soft term: Gaussian of σ = MET_SOFT × √(Σ ET of the underlying event) per component. */
const MET_SOFT = 1.0;

const MAX_JETS = 32;
const MAX_LEPTONS = 8;
const MAX_SPLIT = 96;
const LIGHT = 0;
const CHARM = 4;
const BOTTOM = 5;
const TRACK = 0;
const PHOTON = 1;
const NEUTRAL = 2;

const M_W = 80.38;
const G_W = 2.09;
const M_TOP = 172.5;
const G_TOP = 1.42;
const M_B = 4.8;

/** 4-vector slots: px, py, pz, E, m. */
const SLOT = 5;

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Generates events into per-batch buffers: begin(rows), event(...) × rows, end() → the columns.
 * One instance per generateEvents() call (it holds the buffers of the current batch).
 */
export class EventModel {
  private readonly rng = new Rng();
  private trk!: TrackBuffer;
  private pho!: TowerBuffer;
  private nh!: TowerBuffer;
  private jet!: ObjectBuffer;
  private ele!: ObjectBuffer;
  private mu!: ObjectBuffer;
  private met!: ObjectBuffer;

  // per-event scratch
  private nJ = 0;
  private readonly jPt = new Float64Array(MAX_JETS);
  private readonly jEta = new Float64Array(MAX_JETS);
  private readonly jPhi = new Float64Array(MAX_JETS);
  private readonly jTag = new Int32Array(MAX_JETS);
  private nL = 0;
  private readonly lPt = new Float64Array(MAX_LEPTONS);
  private readonly lEta = new Float64Array(MAX_LEPTONS);
  private readonly lPhi = new Float64Array(MAX_LEPTONS);
  private readonly lQ = new Int32Array(MAX_LEPTONS);
  private readonly lMu = new Uint8Array(MAX_LEPTONS);
  private readonly order = new Int32Array(MAX_JETS);
  private readonly w = new Float64Array(MAX_SPLIT);
  private readonly tmp = new Float64Array(4 * 8);
  private readonly p = new Float64Array(16 * SLOT);
  private nuX = 0;
  private nuY = 0;
  private misX = 0;
  private misY = 0;
  private hard = 0;
  private trk0 = 0;
  private pho0 = 0;
  private nh0 = 0;

  begin(rows: number): void {
    this.trk = new TrackBuffer(rows, rows * 200);
    this.pho = new TowerBuffer(rows, rows * 120);
    this.nh = new TowerBuffer(rows, rows * 110);
    this.jet = new ObjectBuffer(rows, rows * 4, 'uint32');
    this.ele = new ObjectBuffer(rows, rows, 'int32');
    this.mu = new ObjectBuffer(rows, rows, 'int32');
    this.met = new ObjectBuffer(rows, rows, null);
  }

  /** Columns of the batch, in the tree's order (see generatorFields). */
  end(muons: string): { name: string; data: ColumnData }[] {
    return [
      ...this.trk.columns('EFlowTrack'),
      ...this.pho.columns('EFlowPhoton'),
      ...this.nh.columns('EFlowNeutralHadron'),
      ...this.jet.columns('Jet', ['PT', 'Eta', 'Phi'], 'BTag'),
      ...this.ele.columns('Electron', ['PT', 'Eta', 'Phi'], 'Charge'),
      ...this.mu.columns(muons, ['PT', 'Eta', 'Phi'], 'Charge'),
      ...this.met.columns('MissingET', ['MET', 'Eta', 'Phi']),
    ];
  }

  event(process: Process, seed: number, index: number): void {
    this.rng.reseed(seed, PROCESS_CODE[process], index);
    this.nJ = 0;
    this.nL = 0;
    this.nuX = this.nuY = this.misX = this.misY = 0;
    this.hard = 0;
    this.trk.reserve(EFLOW_MAX + MAX_LEPTONS);
    this.pho.reserve(EFLOW_MAX);
    this.nh.reserve(EFLOW_MAX);
    this.jet.reserve(MAX_JETS);
    this.ele.reserve(MAX_LEPTONS);
    this.mu.reserve(MAX_LEPTONS);
    this.met.reserve(1);
    this.trk0 = this.trk.n;
    this.pho0 = this.pho.n;
    this.nh0 = this.nh.n;
    if (process === 'qcd') this.qcd();
    else if (process === 'ttbar') this.ttbar();
    else this.wjets();
    this.finish(process);
  }

  // -------------------------------------------------------------------------------------------------
  // Processes

  /** W(→eν/μν) + 0–4 mostly soft jets; W⁺:W⁻ = 58:42; the W recoils against the jets. */
  private wjets(): void {
    const r = this.rng;
    const u = r.uniform();
    const nj = u < 0.38 ? 0 : u < 0.68 ? 1 : u < 0.85 ? 2 : u < 0.95 ? 3 : 4;
    const isMu = r.uniform() < 0.5;
    const q = r.sign(0.58);
    let rx = 0;
    let ry = 0;
    let x = 1;
    // jets first (kinematics only: the W recoils against them); they are emitted after the lepton
    const t = this.tmp;
    for (let j = 0; j < nj; j++) {
      const pt = 15 + r.exp(35);
      const phi = r.phi();
      const f = r.uniform();
      t[4 * j] = pt;
      t[4 * j + 1] = clamp(1.8 * r.normal(), -4.5, 4.5);
      t[4 * j + 2] = phi;
      t[4 * j + 3] = f < 0.05 ? BOTTOM : f < 0.17 ? CHARM : LIGHT;
      rx += pt * Math.cos(phi);
      ry += pt * Math.sin(phi);
    }
    for (let attempt = 0; attempt < 64; attempt++) {
      const wpx = -rx + 5 * r.normal();
      const wpy = -ry + 5 * r.normal();
      const y = clamp(1.9 * r.normal(), -4, 4);
      const m = r.breitWigner(M_W, G_W, 50, 110);
      x = this.tauFraction();
      this.setPxPyYM(0, wpx, wpy, y, m);
      this.decay2(0, 0, 0, 1, 2);
      if (this.accepted(1, isMu, x)) break;
    }
    this.addLeptonSlot(1, q, isMu, x);
    this.addNeutrino(2);
    for (let j = 0; j < nj; j++) this.addJet(t[4 * j]!, t[4 * j]!, t[4 * j + 1]!, t[4 * j + 2]!, t[4 * j + 3]!);
  }

  /**
   * tt̄: 66 % semileptonic, 12 % dileptonic (e/μ, or τ → e/μ), 22 % hadronic with a lepton from a b decay
   * inside a jet (non-prompt, like QCD); plus Poisson(0.8) ISR/FSR jets.
   */
  private ttbar(): void {
    const r = this.rng;
    const u = r.uniform();
    const mode = u < TT_SEMI ? 1 : u < TT_SEMI + TT_DI ? 2 : 0; // leptonic W count; 0 = hadronic with a b→ℓ lepton
    const lepFirst = r.uniform() < 0.5; // semileptonic: which W decays leptonically
    const mu0 = r.uniform() < 0.5;
    const mu1 = r.uniform() < 0.5;
    let x0 = 1;
    let x1 = 1;
    const lep0 = mode === 2 || (mode === 1 && lepFirst);
    const lep1 = mode === 2 || (mode === 1 && !lepFirst);
    let hfB = -1;
    for (let attempt = 0; attempt < 64; attempt++) {
      x0 = this.tauFraction();
      x1 = this.tauFraction();
      const pt = r.gammaInt(2, 55);
      const phi = r.phi();
      const ytt = 0.9 * r.normal();
      const dy = 1.2 * r.normal();
      const px = pt * Math.cos(phi);
      const py = pt * Math.sin(phi);
      this.setPxPyYM(0, px, py, ytt + dy / 2, r.breitWigner(M_TOP, G_TOP, 150, 195));
      this.setPxPyYM(1, -px + 15 * r.normal(), -py + 15 * r.normal(), ytt - dy / 2, r.breitWigner(M_TOP, G_TOP, 150, 195));
      this.decay2(0, M_B, r.breitWigner(M_W, G_W, 50, 110), 2, 3); // t → b W⁺
      this.decay2(1, M_B, r.breitWigner(M_W, G_W, 50, 110), 4, 5); // t̄ → b̄ W⁻
      this.decay2(3, 0, 0, 6, 7);
      this.decay2(5, 0, 0, 8, 9);
      let ok: boolean;
      if (mode === 0) {
        const a0 = Math.abs(this.eta(2)) < MUON_ETA;
        const a1 = Math.abs(this.eta(4)) < MUON_ETA;
        hfB = a0 && a1 ? (r.uniform() < 0.5 ? 2 : 4) : a0 ? 2 : a1 ? 4 : -1;
        ok = hfB >= 0;
      } else {
        ok = (lep0 && this.accepted(6, mu0, x0)) || (lep1 && this.accepted(8, mu1, x1));
      }
      if (ok) break;
    }
    if (lep0) {
      this.addLeptonSlot(6, 1, mu0, x0);
      this.addNeutrino(7);
    }
    if (lep1) {
      this.addLeptonSlot(8, -1, mu1, x1);
      this.addNeutrino(9);
    }
    // b jets
    for (let b = 2; b <= 4; b += 2) {
      if (b === hfB) {
        this.hfLeptonJet(this.eta(b), this.phiOf(b), BOTTOM, r.uniform() < 0.5, r.sign());
      } else {
        this.addJetSlot(b, BOTTOM);
      }
    }
    // hadronic W decays: W → ud̄ or cs̄ (half of them carry a c quark)
    if (!lep0) {
      const c = r.uniform() < 0.5;
      this.addJetSlot(6, c ? CHARM : LIGHT);
      this.addJetSlot(7, LIGHT);
    }
    if (!lep1) {
      const c = r.uniform() < 0.5;
      this.addJetSlot(8, c ? CHARM : LIGHT);
      this.addJetSlot(9, LIGHT);
    }
    this.extraJets(0.8, 25, 2.0);
  }

  /**
   * Lepton-filtered QCD: a b (65 %) or c jet with a semileptonic decay whose lepton (PT 20 + Exp(9)) sits
   * inside the jet, with hadronic activity r × PT around it; a recoiling jet; Poisson(0.9) extra jets.
   */
  private qcd(): void {
    const r = this.rng;
    const isMu = r.uniform() < 0.5;
    const etaMax = isMu ? MUON_ETA : ELECTRON_ETA;
    let eta = 0;
    for (let i = 0; i < 16; i++) {
      eta = 1.3 * r.normal();
      if (Math.abs(eta) < etaMax) break;
      eta = 0;
    }
    const phi = r.phi();
    const fl = r.uniform() < 0.65 ? BOTTOM : CHARM;
    const jetPt = this.hfLeptonJet(eta, phi, fl, isMu, r.sign());
    // the recoiling jet, heavy flavour half of the time, sometimes with its own soft lepton
    const rpt = jetPt * Math.exp(0.25 * r.normal());
    const rphi = wrapPhi(phi + Math.PI + 0.3 * r.normal());
    const reta = clamp(1.8 * r.normal(), -4.5, 4.5);
    const f = r.uniform();
    const rfl = f < 0.45 ? BOTTOM : f < 0.6 ? CHARM : LIGHT;
    if (rfl !== LIGHT && r.uniform() < 0.12 && Math.abs(reta) < TRACKER_ETA) {
      const lpt = Math.min(4 + r.exp(8), 0.8 * rpt);
      this.addLepton(lpt, reta + 0.05 * r.normal(), wrapPhi(rphi + 0.05 * r.normal()), r.sign(), r.uniform() < 0.5);
      this.addJet(rpt, rpt - lpt, reta, rphi, rfl);
    } else {
      this.addJet(rpt, rpt, reta, rphi, rfl);
    }
    this.extraJets(0.9, 22, 2.0);
  }

  // -------------------------------------------------------------------------------------------------
  // Building blocks

  /**
   * A heavy-flavour jet around a lepton from its semileptonic decay (QCD, hadronic tt̄): lepton PT
   * 20 + Exp(9) GeV along (eta, phi); jet axis 0.05 away; hadronic PT r × lepton PT with r log-normal;
   * a neutrino along the axis. Returns the jet's true PT (lepton + hadrons).
   */
  private hfLeptonJet(eta: number, phi: number, flavour: number, isMu: boolean, q: number): number {
    const r = this.rng;
    const lpt = FILTER_PT + r.exp(9);
    this.addLepton(lpt, eta, phi, q, isMu);
    const ax = clamp(eta + 0.05 * r.normal(), -JET_ETA_MAX, JET_ETA_MAX);
    const ay = wrapPhi(phi + 0.05 * r.normal());
    const h = lpt * HF_R_MEDIAN * Math.exp(HF_R_SIGMA * r.normal());
    const nu = lpt * r.exp(HF_NU_LEP);
    this.nuX += nu * Math.cos(ay);
    this.nuY += nu * Math.sin(ay);
    this.addJet(lpt + h, h, ax, ay, flavour, false);
    return lpt + h;
  }

  /** Poisson(mean) extra jets, PT 20 + Exp(ptMean), η ~ N(0, etaSigma), 90 % light, 6 % c, 4 % b. */
  private extraJets(mean: number, ptMean: number, etaSigma: number): void {
    const r = this.rng;
    const n = r.poisson(mean);
    for (let i = 0; i < n; i++) {
      const pt = 20 + r.exp(ptMean);
      const f = r.uniform();
      this.addJet(pt, pt, clamp(etaSigma * r.normal(), -4.5, 4.5), r.phi(), f < 0.04 ? BOTTOM : f < 0.1 ? CHARM : LIGHT);
    }
  }

  /** A jet from a quark in slot `s`: particle-level PT = quark PT × N(0.96, 0.05). */
  private addJetSlot(s: number, flavour: number): void {
    const pt = this.ptOf(s) * (0.96 + 0.05 * this.rng.normal());
    if (pt <= 0) return;
    this.addJet(pt, pt, clamp(this.eta(s), -CALO_ETA, CALO_ETA), this.phiOf(s), flavour);
  }

  /**
   * A jet of true PT `ptTrue`: reconstructed PT smeared by sqrt(0.8²/PT + 0.05²), stored when above
   * JET_PT_MIN within |η| < JET_ETA_MAX; b-tagged by flavour; `ptConst` GeV of EFlow constituents emitted
   * around its axis. The mismeasurement enters the MET.
   */
  private addJet(ptTrue: number, ptConst: number, eta: number, phi: number, flavour: number, semileptonic = true): void {
    const r = this.rng;
    const c = Math.cos(phi);
    const s = Math.sin(phi);
    // semileptonic b/c decays: a neutrino takes part of the jet's momentum
    if (semileptonic && flavour !== LIGHT && r.uniform() < (flavour === BOTTOM ? HF_NU_B : HF_NU_C)) {
      const nu = ptTrue * Math.min(0.5, r.exp(0.12));
      ptTrue -= nu;
      ptConst = Math.max(0, ptConst - nu);
      this.nuX += nu * c;
      this.nuY += nu * s;
    }
    const res = Math.sqrt(0.64 / ptTrue + 0.0025);
    // Gaussian response, with a 5 % tail of jets measured low (cracks, dead cells, punch-through)
    const tail = r.uniform() < 0.05 ? 0.5 + 0.35 * r.uniform() : 1;
    const reco = Math.max(0, ptTrue * tail * (1 + res * r.normal()));
    this.misX += (reco - ptTrue) * c;
    this.misY += (reco - ptTrue) * s;
    const tagU = r.uniform();
    if (reco > JET_PT_MIN && Math.abs(eta) < JET_ETA_MAX && this.nJ < MAX_JETS) {
      const eff = Math.abs(eta) >= TRACKER_ETA ? 0 : flavour === BOTTOM ? BTAG_EFF.b : flavour === CHARM ? BTAG_EFF.c : BTAG_EFF.light;
      const j = this.nJ++;
      this.jPt[j] = reco;
      this.jEta[j] = eta;
      this.jPhi[j] = phi;
      this.jTag[j] = tagU < eff ? 1 : 0;
    }
    this.constituents(ptConst, eta, phi);
  }

  /**
   * The fraction of a τ's momentum its lepton carries in W → τν, τ → ℓνν (collinear approximation,
   * x = √u), for TAU_FRACTION of the W decays; 1 for W → eν/μν.
   */
  private tauFraction(): number {
    const r = this.rng;
    return r.uniform() < TAU_FRACTION ? Math.sqrt(r.uniform()) : 1;
  }

  /**
   * The charged lepton of a W decay in slot `s`; for a τ (x < 1) the lepton carries x of its momentum
   * and the τ's two neutrinos the rest, along the same direction.
   */
  private addLeptonSlot(s: number, q: number, isMu: boolean, x: number): void {
    const pt = this.ptOf(s);
    const phi = this.phiOf(s);
    this.addLepton(x * pt, this.eta(s), phi, q, isMu);
    if (x < 1) {
      this.nuX += (1 - x) * pt * Math.cos(phi);
      this.nuY += (1 - x) * pt * Math.sin(phi);
    }
  }

  /**
   * A lepton: PT smeared by 1.5 %; stored in Electron/Muon when PT > 10 GeV within acceptance; its track
   * (PID ±11/±13, the same PT/Eta/Phi) is added to EFlowTrack when within the tracker.
   */
  private addLepton(pt: number, eta: number, phi: number, q: number, isMu: boolean): void {
    const r = this.rng;
    pt *= 1 + 0.015 * r.normal();
    phi = wrapPhi(phi);
    // collinear radiation (bremsstrahlung for electrons): a photon close to the lepton
    if (r.uniform() < (isMu ? FSR_MU : FSR_E)) {
      const et = pt * Math.min(0.5, r.exp(0.08));
      pt -= et;
      this.pho.push(et, clamp(eta + 0.04 * r.normal(), -CALO_ETA, CALO_ETA), wrapPhi(phi + 0.04 * r.normal()));
    }
    if (Math.abs(eta) < TRACKER_ETA) this.trk.push((isMu ? -13 : -11) * q, q, pt, eta, phi);
    if (pt > LEPTON_PT_MIN && Math.abs(eta) < (isMu ? MUON_ETA : ELECTRON_ETA) && this.nL < MAX_LEPTONS) {
      const i = this.nL++;
      this.lPt[i] = pt;
      this.lEta[i] = eta;
      this.lPhi[i] = phi;
      this.lQ[i] = q;
      this.lMu[i] = isMu ? 1 : 0;
    }
  }

  private addNeutrino(s: number): void {
    const o = s * SLOT;
    this.nuX += this.p[o]!;
    this.nuY += this.p[o + 1]!;
  }

  /** The generator-level lepton filter on slot `s`. */
  private accepted(s: number, isMu: boolean, x: number): boolean {
    return x * this.ptOf(s) > FILTER_PT && Math.abs(this.eta(s)) < (isMu ? MUON_ETA : ELECTRON_ETA);
  }

  /**
   * EFlow constituents of a jet: charged/photon/neutral-hadron fractions ≈ 62/25/13 % (varying per jet),
   * 1 + Poisson(0.9, 0.6, 0.35 × √PT) objects of each kind sharing that PT (flat Dirichlet), at
   * Gaussian (Δη, Δφ) offsets of width min(0.2, 0.04 + 2/PT) around the axis; charged ones outside the
   * tracker become neutral hadrons.
   */
  private constituents(pt: number, eta: number, phi: number): void {
    if (pt <= 0) return;
    const r = this.rng;
    const sig = Math.min(0.2, 0.04 + 2 / pt);
    const fc = clamp(0.62 + 0.12 * r.normal(), 0.15, 0.92);
    const fp = (1 - fc) * clamp(0.66 + 0.15 * r.normal(), 0.2, 0.95);
    const fn = 1 - fc - fp;
    const sq = Math.sqrt(pt);
    const nc = 1 + r.poisson(0.9 * sq);
    const np = 1 + r.poisson(0.6 * sq);
    const nn = 1 + r.poisson(0.35 * sq);
    this.share(TRACK, nc, fc * pt, eta, phi, sig);
    this.share(PHOTON, np, fp * pt, eta, phi, sig);
    this.share(NEUTRAL, nn, fn * pt, eta, phi, sig);
  }

  private share(kind: number, n: number, total: number, eta0: number, phi0: number, sig: number): void {
    const room = HARD_MAX - this.hard;
    if (n > room) n = room;
    if (n > MAX_SPLIT) n = MAX_SPLIT;
    if (n <= 0) return;
    const r = this.rng;
    const w = this.w;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = -Math.log(r.open());
      w[i] = x;
      sum += x;
    }
    const k = total / sum;
    for (let i = 0; i < n; i++) {
      const pt = w[i]! * k;
      let eta = eta0 + sig * r.normal();
      const phi = wrapPhi(phi0 + sig * r.normal());
      if (kind === TRACK && eta < TRACKER_ETA && eta > -TRACKER_ETA) {
        this.pushHadronTrack(pt, eta, phi);
      } else {
        eta = clamp(eta, -CALO_ETA, CALO_ETA);
        if (kind === PHOTON) this.pho.push(pt, eta, phi);
        else this.nh.push(pt, eta, phi);
      }
    }
    this.hard += n;
  }

  /** A charged hadron: π± 84 %, K± 11 %, p/p̄ 5 %; PID sign = charge. */
  private pushHadronTrack(pt: number, eta: number, phi: number): void {
    const r = this.rng;
    const u = r.uniform();
    const q = u < 0.5 ? 1 : -1;
    const v = r.uniform();
    const pid = v < 0.84 ? 211 : v < 0.95 ? 321 : 2212;
    this.trk.push(q * pid, q, pt, eta, phi);
  }

  /**
   * Underlying event and pile-up: tracks (PT 0.3 + Exp(0.7), 4 % with Exp(4): most below 2 GeV, a
   * quarter below 0.5; |η| < 2.5), photons (ET 0.2 + Exp(0.5)) and neutral hadrons (ET 0.2 + Exp(0.7))
   * flat in |η| < 5. Returns their scalar PT sum.
   */
  private underlyingEvent(n: number): number {
    const r = this.rng;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      const phi = wrapPhi(r.phi());
      if (u < UE_TRACK) {
        const pt = 0.3 + r.exp(u < 0.04 * UE_TRACK ? 4 : 0.7);
        this.pushHadronTrack(pt, r.range(-TRACKER_ETA, TRACKER_ETA), phi);
        sum += pt;
      } else if (u < UE_TRACK + UE_PHOTON) {
        const et = 0.2 + r.exp(0.5);
        this.pho.push(et, r.range(-CALO_ETA, CALO_ETA), phi);
        sum += et;
      } else {
        const et = 0.2 + r.exp(0.7);
        this.nh.push(et, r.range(-CALO_ETA, CALO_ETA), phi);
        sum += et;
      }
    }
    return sum;
  }

  /** Underlying event, MET, shuffles, vertex; jets and leptons sorted by PT into their collections. */
  private finish(process: Process): void {
    const r = this.rng;
    const nmj = r.poisson(MINIJETS);
    for (let i = 0; i < nmj; i++) {
      const pt = 3 + r.exp(6);
      this.addJet(pt, pt, r.range(-4, 4), r.phi(), LIGHT);
    }
    const hard = this.trk.n - this.trk0 + (this.pho.n - this.pho0) + (this.nh.n - this.nh0);
    let nue = Math.round(UE_MEDIAN[process] * Math.exp(UE_SPREAD * r.normal()));
    nue = Math.max(EFLOW_MIN - hard, Math.min(EFLOW_MAX - hard, nue));
    const sumUE = this.underlyingEvent(Math.max(0, nue));

    // MET = Σν − jet mismeasurement + a Gaussian soft term
    const sig = MET_SOFT * Math.sqrt(sumUE);
    const mx = this.nuX - this.misX + sig * r.normal();
    const my = this.nuY - this.misY + sig * r.normal();
    this.met.push(Math.hypot(mx, my), clamp(3 * r.normal(), -7, 7), wrapPhi(Math.atan2(my, mx)), 0);
    this.met.closeEvent();

    // EFlow collections in random order; the event's tracks share one vertex
    const vx = 1.03 + 0.01 * r.normal();
    const vy = 1.7 + 0.01 * r.normal();
    const vz = 50 * r.normal();
    this.trk.finishEvent(this.trk0, r, vx, vy, vz);
    this.pho.finishEvent(this.pho0, r);
    this.nh.finishEvent(this.nh0, r);

    // jets by decreasing PT
    const ord = this.order;
    const nj = this.nJ;
    for (let i = 0; i < nj; i++) {
      let k = i;
      const v = this.jPt[i]!;
      while (k > 0 && this.jPt[ord[k - 1]!]! < v) {
        ord[k] = ord[k - 1]!;
        k--;
      }
      ord[k] = i;
    }
    for (let i = 0; i < nj; i++) {
      const j = ord[i]!;
      this.jet.push(this.jPt[j]!, this.jEta[j]!, this.jPhi[j]!, this.jTag[j]!);
    }
    this.jet.closeEvent();

    // leptons by decreasing PT
    const nl = this.nL;
    for (let i = 0; i < nl; i++) {
      let k = i;
      const v = this.lPt[i]!;
      while (k > 0 && this.lPt[ord[k - 1]!]! < v) {
        ord[k] = ord[k - 1]!;
        k--;
      }
      ord[k] = i;
    }
    for (let i = 0; i < nl; i++) {
      const j = ord[i]!;
      (this.lMu[j] ? this.mu : this.ele).push(this.lPt[j]!, this.lEta[j]!, this.lPhi[j]!, this.lQ[j]!);
    }
    this.ele.closeEvent();
    this.mu.closeEvent();
  }

  // -------------------------------------------------------------------------------------------------
  // 4-vectors in slots

  private setPxPyYM(s: number, px: number, py: number, y: number, m: number): void {
    const o = s * SLOT;
    const p = this.p;
    const mt = Math.sqrt(px * px + py * py + m * m);
    p[o] = px;
    p[o + 1] = py;
    p[o + 2] = mt * Math.sinh(y);
    p[o + 3] = mt * Math.cosh(y);
    p[o + 4] = m;
  }

  /** Isotropic two-body decay of slot `a` into slots `b` (mass m1) and `c` (mass m2). */
  private decay2(a: number, m1: number, m2: number, b: number, c: number): void {
    const p = this.p;
    const r = this.rng;
    const o = a * SLOT;
    const M = p[o + 4]!;
    if (m1 + m2 >= M) m2 = Math.max(0, M - m1 - 1e-3);
    const pstar = Math.sqrt(Math.max(0, (M * M - (m1 + m2) ** 2) * (M * M - (m1 - m2) ** 2))) / (2 * M);
    const ct = 2 * r.uniform() - 1;
    const st = Math.sqrt(Math.max(0, 1 - ct * ct));
    const ph = r.phi();
    const qx = pstar * st * Math.cos(ph);
    const qy = pstar * st * Math.sin(ph);
    const qz = pstar * ct;
    const E = p[o + 3]!;
    const bx = p[o]! / E;
    const by = p[o + 1]! / E;
    const bz = p[o + 2]! / E;
    this.boostInto(b, qx, qy, qz, Math.sqrt(pstar * pstar + m1 * m1), m1, bx, by, bz);
    this.boostInto(c, -qx, -qy, -qz, Math.sqrt(pstar * pstar + m2 * m2), m2, bx, by, bz);
  }

  private boostInto(s: number, x: number, y: number, z: number, e: number, m: number, bx: number, by: number, bz: number): void {
    const b2 = bx * bx + by * by + bz * bz;
    const o = s * SLOT;
    const p = this.p;
    if (b2 <= 0) {
      p[o] = x;
      p[o + 1] = y;
      p[o + 2] = z;
      p[o + 3] = e;
      p[o + 4] = m;
      return;
    }
    const g = 1 / Math.sqrt(1 - Math.min(b2, 1 - 1e-12));
    const bp = bx * x + by * y + bz * z;
    const g2 = (g - 1) / b2;
    p[o] = x + g2 * bp * bx + g * bx * e;
    p[o + 1] = y + g2 * bp * by + g * by * e;
    p[o + 2] = z + g2 * bp * bz + g * bz * e;
    p[o + 3] = g * (e + bp);
    p[o + 4] = m;
  }

  private ptOf(s: number): number {
    const o = s * SLOT;
    return Math.hypot(this.p[o]!, this.p[o + 1]!);
  }

  private eta(s: number): number {
    const o = s * SLOT;
    const pt = Math.hypot(this.p[o]!, this.p[o + 1]!);
    return pt > 0 ? Math.asinh(this.p[o + 2]! / pt) : 0;
  }

  private phiOf(s: number): number {
    const o = s * SLOT;
    return wrapPhi(Math.atan2(this.p[o + 1]!, this.p[o]!));
  }
}
