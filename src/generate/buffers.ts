/**
 * Growable per-batch column buffers for the generator: one set of typed arrays per Delphes collection,
 * appended to one object at a time, and turned into exact-length fresh arrays at the end of the batch.
 */
import type { ColumnData, DType, NumericArray } from '../root/columns.js';
import type { Rng } from './rng.js';

/** The largest float32 below π: φ is clamped to ±PHI_MAX so that the stored float32 stays within [−π, π]. */
export const PHI_MAX = new Float32Array(new Uint32Array([0x40490fda]).buffer)[0]!;

/** Wraps an azimuth into [−π, π] and keeps its float32 rounding inside that interval. */
export function wrapPhi(phi: number): number {
  if (phi > Math.PI) phi -= 2 * Math.PI;
  else if (phi < -Math.PI) phi += 2 * Math.PI;
  if (phi > PHI_MAX) return PHI_MAX;
  if (phi < -PHI_MAX) return -PHI_MAX;
  return phi;
}

function grownF32(a: Float32Array, cap: number): Float32Array {
  const b = new Float32Array(cap);
  b.set(a);
  return b;
}
function grownI32(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}
function grownU32(a: Uint32Array, cap: number): Uint32Array {
  const b = new Uint32Array(cap);
  b.set(a);
  return b;
}

export function listColumn(offsets: Int32Array, dtype: DType, values: NumericArray): ColumnData {
  return { kind: 'list', offsets: offsets.slice(), child: { kind: 'primitive', dtype, values } };
}

export function primitiveColumn(dtype: DType, values: NumericArray): ColumnData {
  return { kind: 'primitive', dtype, values };
}

/** Per-event offsets (rows + 1) and sizes of one collection. */
class Offsets {
  readonly offsets: Int32Array;
  readonly sizes: Int32Array;
  private row = 0;
  constructor(rows: number) {
    this.offsets = new Int32Array(rows + 1);
    this.sizes = new Int32Array(rows);
  }
  /** Closes the current event at `n` objects in total. */
  close(n: number): void {
    const r = this.row++;
    this.offsets[r + 1] = n;
    this.sizes[r] = n - this.offsets[r]!;
  }
}

/** EFlowTrack: PID, Charge, PT, Eta, Phi, X, Y, Z. */
export class TrackBuffer {
  n = 0;
  private cap: number;
  pid: Int32Array;
  charge: Int32Array;
  pt: Float32Array;
  eta: Float32Array;
  phi: Float32Array;
  x: Float32Array;
  y: Float32Array;
  z: Float32Array;
  readonly rows: Offsets;

  constructor(rows: number, cap: number) {
    this.cap = Math.max(cap, 16);
    this.pid = new Int32Array(this.cap);
    this.charge = new Int32Array(this.cap);
    this.pt = new Float32Array(this.cap);
    this.eta = new Float32Array(this.cap);
    this.phi = new Float32Array(this.cap);
    this.x = new Float32Array(this.cap);
    this.y = new Float32Array(this.cap);
    this.z = new Float32Array(this.cap);
    this.rows = new Offsets(rows);
  }

  reserve(k: number): void {
    if (this.n + k <= this.cap) return;
    const c = Math.max(this.cap * 2, this.n + k);
    this.pid = grownI32(this.pid, c);
    this.charge = grownI32(this.charge, c);
    this.pt = grownF32(this.pt, c);
    this.eta = grownF32(this.eta, c);
    this.phi = grownF32(this.phi, c);
    this.x = grownF32(this.x, c);
    this.y = grownF32(this.y, c);
    this.z = grownF32(this.z, c);
    this.cap = c;
  }

  /** Appends one track (capacity reserved by the caller); φ must already be wrapped. */
  push(pid: number, charge: number, pt: number, eta: number, phi: number): void {
    const i = this.n++;
    this.pid[i] = pid;
    this.charge[i] = charge;
    this.pt[i] = pt;
    this.eta[i] = eta;
    this.phi[i] = phi;
  }

  /** Shuffles tracks [from, n) (Fisher–Yates) and sets their vertex. */
  finishEvent(from: number, rng: Rng, vx: number, vy: number, vz: number): void {
    const { pid, charge, pt, eta, phi } = this;
    for (let i = this.n - 1; i > from; i--) {
      const j = from + Math.floor(rng.uniform() * (i - from + 1));
      if (j === i) continue;
      let t = pid[i]!;
      pid[i] = pid[j]!;
      pid[j] = t;
      t = charge[i]!;
      charge[i] = charge[j]!;
      charge[j] = t;
      t = pt[i]!;
      pt[i] = pt[j]!;
      pt[j] = t;
      t = eta[i]!;
      eta[i] = eta[j]!;
      eta[j] = t;
      t = phi[i]!;
      phi[i] = phi[j]!;
      phi[j] = t;
    }
    this.x.fill(vx, from, this.n);
    this.y.fill(vy, from, this.n);
    this.z.fill(vz, from, this.n);
    this.rows.close(this.n);
  }

  columns(prefix: string): { name: string; data: ColumnData }[] {
    const o = this.rows.offsets;
    const n = this.n;
    return [
      { name: `${prefix}.PID`, data: listColumn(o, 'int32', this.pid.slice(0, n)) },
      { name: `${prefix}.Charge`, data: listColumn(o, 'int32', this.charge.slice(0, n)) },
      { name: `${prefix}.PT`, data: listColumn(o, 'float32', this.pt.slice(0, n)) },
      { name: `${prefix}.Eta`, data: listColumn(o, 'float32', this.eta.slice(0, n)) },
      { name: `${prefix}.Phi`, data: listColumn(o, 'float32', this.phi.slice(0, n)) },
      { name: `${prefix}.X`, data: listColumn(o, 'float32', this.x.slice(0, n)) },
      { name: `${prefix}.Y`, data: listColumn(o, 'float32', this.y.slice(0, n)) },
      { name: `${prefix}.Z`, data: listColumn(o, 'float32', this.z.slice(0, n)) },
      { name: `${prefix}_size`, data: primitiveColumn('int32', this.rows.sizes) },
    ];
  }
}

/** EFlowPhoton / EFlowNeutralHadron: ET, Eta, Phi. */
export class TowerBuffer {
  n = 0;
  private cap: number;
  et: Float32Array;
  eta: Float32Array;
  phi: Float32Array;
  readonly rows: Offsets;

  constructor(rows: number, cap: number) {
    this.cap = Math.max(cap, 16);
    this.et = new Float32Array(this.cap);
    this.eta = new Float32Array(this.cap);
    this.phi = new Float32Array(this.cap);
    this.rows = new Offsets(rows);
  }

  reserve(k: number): void {
    if (this.n + k <= this.cap) return;
    const c = Math.max(this.cap * 2, this.n + k);
    this.et = grownF32(this.et, c);
    this.eta = grownF32(this.eta, c);
    this.phi = grownF32(this.phi, c);
    this.cap = c;
  }

  push(et: number, eta: number, phi: number): void {
    const i = this.n++;
    this.et[i] = et;
    this.eta[i] = eta;
    this.phi[i] = phi;
  }

  finishEvent(from: number, rng: Rng): void {
    const { et, eta, phi } = this;
    for (let i = this.n - 1; i > from; i--) {
      const j = from + Math.floor(rng.uniform() * (i - from + 1));
      if (j === i) continue;
      let t = et[i]!;
      et[i] = et[j]!;
      et[j] = t;
      t = eta[i]!;
      eta[i] = eta[j]!;
      eta[j] = t;
      t = phi[i]!;
      phi[i] = phi[j]!;
      phi[j] = t;
    }
    this.rows.close(this.n);
  }

  columns(prefix: string): { name: string; data: ColumnData }[] {
    const o = this.rows.offsets;
    const n = this.n;
    return [
      { name: `${prefix}.ET`, data: listColumn(o, 'float32', this.et.slice(0, n)) },
      { name: `${prefix}.Eta`, data: listColumn(o, 'float32', this.eta.slice(0, n)) },
      { name: `${prefix}.Phi`, data: listColumn(o, 'float32', this.phi.slice(0, n)) },
      { name: `${prefix}_size`, data: primitiveColumn('int32', this.rows.sizes) },
    ];
  }
}

/**
 * A small physics-object collection: PT, Eta, Phi and one integer leaf (Jet.BTag uint32, Charge int32),
 * MissingET (MET, Eta, Phi), all float32.
 */
export class ObjectBuffer {
  n = 0;
  private cap: number;
  pt: Float32Array;
  eta: Float32Array;
  phi: Float32Array;
  tag: Int32Array | Uint32Array;
  readonly rows: Offsets;

  constructor(
    rows: number,
    cap: number,
    private readonly tagType: 'int32' | 'uint32' | null,
  ) {
    this.cap = Math.max(cap, 16);
    this.pt = new Float32Array(this.cap);
    this.eta = new Float32Array(this.cap);
    this.phi = new Float32Array(this.cap);
    this.tag = tagType === 'uint32' ? new Uint32Array(this.cap) : new Int32Array(this.cap);
    this.rows = new Offsets(rows);
  }

  reserve(k: number): void {
    if (this.n + k <= this.cap) return;
    const c = Math.max(this.cap * 2, this.n + k);
    this.pt = grownF32(this.pt, c);
    this.eta = grownF32(this.eta, c);
    this.phi = grownF32(this.phi, c);
    this.tag = this.tag instanceof Uint32Array ? grownU32(this.tag, c) : grownI32(this.tag, c);
    this.cap = c;
  }

  push(pt: number, eta: number, phi: number, tag: number): void {
    const i = this.n++;
    this.pt[i] = pt;
    this.eta[i] = eta;
    this.phi[i] = phi;
    this.tag[i] = tag;
  }

  closeEvent(): void {
    this.rows.close(this.n);
  }

  /** Leaf names: [pt, eta, phi] (e.g. PT/Eta/Phi or MET/Eta/Phi) and the integer leaf's name. */
  columns(prefix: string, leaves: [string, string, string], tagLeaf?: string): { name: string; data: ColumnData }[] {
    const o = this.rows.offsets;
    const n = this.n;
    const cols = [
      { name: `${prefix}.${leaves[0]}`, data: listColumn(o, 'float32', this.pt.slice(0, n)) },
      { name: `${prefix}.${leaves[1]}`, data: listColumn(o, 'float32', this.eta.slice(0, n)) },
      { name: `${prefix}.${leaves[2]}`, data: listColumn(o, 'float32', this.phi.slice(0, n)) },
    ];
    if (tagLeaf && this.tagType) cols.push({ name: `${prefix}.${tagLeaf}`, data: listColumn(o, this.tagType, this.tag.slice(0, n)) });
    cols.push({ name: `${prefix}_size`, data: primitiveColumn('int32', this.rows.sizes) });
    return cols;
  }
}
