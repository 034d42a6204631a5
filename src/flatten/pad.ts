/**
 * Pass 2 of flatten: jagged columns → fixed-size Float32 tensors plus masks, using pass 1's specs.
 *
 * Output columns, in input order:
 *   jagged `b` (list<T>)            `b`       fixed<W, float32>       values, padding after each list's end
 *                                   `b.mask`  fixed<W, uint8>         1 = real value, 0 = padding
 *   jagged `b` (list<fixed<k, T>>)  `b`       fixed<W*k, float32>     element j's k scalars at [j*k, j*k + k)
 *                                   `b.mask`  fixed<W, uint8>         one byte per list element (not per scalar):
 *                                                                     the mask says which objects are real; all k
 *                                                                     scalars of an element share its mask byte
 *   group `g` of branches b1..bm    `g`       fixed<W*K, float32>     K = sum of the members' inner sizes;
 *   (at the first member's place;             row-major [W][K]:       element j of member i at [j*K + c_i, ... + k_i)
 *   the other members are dropped)  `g.mask`  fixed<W, uint8>         one shared mask; every member must have the
 *                                                                     same count in each entry
 *   flat (numeric primitive)        unchanged; with normalize: float32, (x - min) / (max - min)
 *   other (utf8, list<utf8>, list<list<..>>, top-level fixed<..>)    unchanged (the same arrays)
 *
 * W (slots per row) = maxLen[b or g] when given, else the specs' jdim (for a group the largest member jdim);
 * at least 1: a branch whose lists are all empty (jdim 0), or --max-len 0, gets one slot that is always
 * padding (mask 0), because FixedSizeList of size 0 is not supported by src/columnar (and poorly by other
 * Arrow tools). maxLen larger than jdim pads further. Lists longer than W (from --max-len, or from data longer
 * than the specs' jdim when the specs were scanned from another input) are truncated and counted.
 *
 * Values become float32 (int64/uint64 via Number, bool as 0/1). The pad value (NaN by default) is written into
 * the padding only, never normalized. With normalize 'minmax' each value is (x - min) / (max - min) with the
 * branch's pass-1 min/max, computed in double and rounded once to float32; a branch whose min/max are null,
 * equal, or not finite is left unchanged. For list<fixed<k>> branches min/max span all k components.
 *
 * The output arrays are new for every batch (the IPC writer may still hold earlier ones).
 */
import type { ColumnBatch, ColumnData, ColumnType, NumericArray } from '../root/columns.js';
import { formatColumnType } from '../root/columns.js';
import { globToRegExp } from '../root/glob.js';
import { SchemaMismatchError, SelectionError, UsageError } from '../errors.js';
import { classifyColumn, listLeaf, type ColumnClass } from './scan.js';
import { SPECS_FORMAT, SPECS_VERSION, type PadOptions, type Specs, type TruncationReport } from './types.js';

/** Runs at least this long are copied with set(subarray) / fill; shorter ones with a plain loop. */
const BULK = 24;

interface Norm {
  min: number;
  /** max - min */
  span: number;
}

interface Member {
  name: string;
  /** Input column index. */
  index: number;
  /** Scalars per list element. */
  inner: number;
  /** Offset of this member's scalars inside one group element (0 for a single branch). */
  col: number;
  norm: Norm | null;
}

interface Tensor {
  name: string;
  members: Member[];
  /** Scalars per slot (sum of member inner sizes). */
  k: number;
  /** Slots per row (at least 1). */
  width: number;
  /** Real elements kept per row: maxLen, or jdim (may be 0, then the one slot is always padding). */
  cap: number;
  truncEntries: number;
  truncValues: number;
}

type Step =
  | { kind: 'tensor'; t: Tensor }
  | { kind: 'norm'; index: number; name: string; norm: Norm | null }
  | { kind: 'pass'; index: number; name: string };

const F32: ColumnType = { kind: 'primitive', dtype: 'float32' };
const U8: ColumnType = { kind: 'primitive', dtype: 'uint8' };

function describeClass(c: ColumnClass): string {
  return c.kind === 'other' ? 'neither jagged nor flat' : c.kind;
}

/** Pass 2: `new Padder(inputFields, specs, opts)`, then pad() each batch; `fields` is the output schema. */
export class Padder {
  /** The output columns, in order (see the module comment). */
  readonly fields: { name: string; type: ColumnType }[];
  private readonly inputNames: string[];
  private readonly steps: Step[];
  private readonly tensors: Tensor[];
  private readonly padValue: number;
  private truncEntries = 0;
  private truncValues = 0;
  /** Rows of the current batch with a truncated list (allocated on the first truncation). */
  private cut: Uint8Array | null = null;

  constructor(fields: { name: string; type: ColumnType }[], specs: Specs, opts: PadOptions) {
    if (specs.format !== SPECS_FORMAT || specs.version !== SPECS_VERSION) {
      throw new SchemaMismatchError(`specs of format '${String(specs.format)}' version ${String(specs.version)}; expected '${SPECS_FORMAT}' version ${SPECS_VERSION}`);
    }
    if (typeof opts.pad !== 'number') throw new UsageError(`the pad value must be a number, got ${String(opts.pad)}`);
    this.padValue = opts.pad;
    this.inputNames = fields.map((f) => f.name);
    const classes = fields.map((f) => classifyColumn(f.type));
    const jkeys = new Set(specs.jkeys);
    const fkeys = new Set(specs.fkeys);
    const from = specs.source ? ` (specs scanned from ${specs.source})` : '';
    const normalize = opts.normalize === 'minmax';
    if (opts.normalize !== undefined && !normalize) throw new UsageError(`unknown normalization '${String(opts.normalize)}' (known: minmax)`);

    const normOf = (name: string): Norm | null => {
      if (!normalize) return null;
      const min = specs.minv[name];
      const max = specs.maxv[name];
      if (typeof min !== 'number' || typeof max !== 'number' || !Number.isFinite(min) || !Number.isFinite(max) || max === min) return null;
      return { min, span: max - min };
    };

    // Every input column against the specs.
    fields.forEach((f, i) => {
      const c = classes[i]!;
      const specKind = jkeys.has(f.name) ? 'jagged' : fkeys.has(f.name) ? 'flat' : undefined;
      const type = formatColumnType(f.type);
      if (c.kind === 'jagged') {
        if (specKind === undefined) throw new SchemaMismatchError(`the specs have no jagged branch '${f.name}'${from}; scan this input again`);
        if (specKind !== 'jagged') throw new SchemaMismatchError(`'${f.name}' is jagged (${type}) in the input but ${specKind} in the specs${from}`);
        const jdim = specs.jdim[f.name];
        if (typeof jdim !== 'number' || !Number.isInteger(jdim) || jdim < 0) {
          throw new SchemaMismatchError(`the specs give no valid jdim for '${f.name}' (${String(jdim)})`);
        }
        const inner = specs.inner?.[f.name] ?? 1;
        if (inner !== c.inner) {
          throw new SchemaMismatchError(`'${f.name}' has ${c.inner} values per list element (${type}) in the input but ${inner} in the specs${from}`);
        }
      } else if (c.kind === 'flat') {
        if (specKind === 'jagged') throw new SchemaMismatchError(`'${f.name}' is flat (${type}) in the input but jagged in the specs${from}`);
        if (normalize && specKind === undefined) {
          throw new SchemaMismatchError(`the specs have no flat branch '${f.name}'${from}, needed to normalize it; scan this input again`);
        }
      } else if (specKind !== undefined) {
        throw new SchemaMismatchError(`'${f.name}' (${type}) is ${describeClass(c)} in the input but ${specKind} in the specs${from}`);
      }
    });

    // Groups.
    const groupOf = new Map<number, number>(); // input column → group index
    const groupMembers: number[][] = [];
    const groupNames = new Set<string>();
    opts.groups.forEach((g, gi) => {
      if (!g.name) throw new UsageError(`a group needs a name (group '${g.glob}')`);
      if (groupNames.has(g.name)) throw new UsageError(`group '${g.name}' is given twice`);
      groupNames.add(g.name);
      const re = globToRegExp(g.glob);
      const members: number[] = [];
      fields.forEach((f, i) => {
        if (!re.test(f.name)) return;
        const c = classes[i]!;
        if (c.kind !== 'jagged') {
          throw new UsageError(`group '${g.name}' ('${g.glob}') matches '${f.name}', which is not jagged (${formatColumnType(f.type)}); narrow the glob`);
        }
        const prev = groupOf.get(i);
        if (prev !== undefined) throw new UsageError(`'${f.name}' matches both group '${opts.groups[prev]!.name}' and group '${g.name}'`);
        groupOf.set(i, gi);
        members.push(i);
      });
      if (members.length === 0) {
        const jagged = fields.filter((_, i) => classes[i]!.kind === 'jagged').map((f) => f.name);
        throw new SelectionError(
          `group '${g.name}': no jagged branch matches '${g.glob}' (${jagged.length} jagged branches${jagged.length ? `; e.g. ${jagged.slice(0, 5).join(', ')}` : ''})`,
        );
      }
      groupMembers.push(members);
    });

    // --max-len keys: a group, or a jagged branch outside every group.
    for (const [key, n] of Object.entries(opts.maxLen)) {
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--max-len ${key}=${n}: the length must be a non-negative integer`);
      if (groupNames.has(key)) continue;
      const i = this.inputNames.indexOf(key);
      if (i < 0 || classes[i]!.kind !== 'jagged') {
        const known = [...groupNames, ...fields.filter((_, j) => classes[j]!.kind === 'jagged' && !groupOf.has(j)).map((f) => f.name)];
        throw new UsageError(`--max-len ${key}: no jagged branch or group '${key}'${known.length ? ` (known: ${known.slice(0, 8).join(', ')}${known.length > 8 ? ', ...' : ''})` : ''}`);
      }
      const gi = groupOf.get(i);
      if (gi !== undefined) {
        const g = opts.groups[gi]!.name;
        throw new UsageError(`--max-len ${key}: '${key}' is stacked in group '${g}'; give the group's length (--max-len ${g}=N)`);
      }
    }

    const memberOf = (i: number, col: number): Member => {
      const f = fields[i]!;
      return { name: f.name, index: i, inner: (classes[i] as { inner: number }).inner, col, norm: normOf(f.name) };
    };
    const tensorOf = (name: string, idx: number[]): Tensor => {
      let k = 0;
      const members = idx.map((i) => {
        const m = memberOf(i, k);
        k += m.inner;
        return m;
      });
      const jdim = Math.max(...members.map((m) => specs.jdim[m.name]!));
      const cap = opts.maxLen[name] ?? jdim;
      return { name, members, k, width: Math.max(1, cap), cap, truncEntries: 0, truncValues: 0 };
    };

    this.steps = [];
    this.tensors = [];
    fields.forEach((f, i) => {
      const c = classes[i]!;
      if (c.kind === 'jagged') {
        const gi = groupOf.get(i);
        let t: Tensor;
        if (gi === undefined) t = tensorOf(f.name, [i]);
        else if (groupMembers[gi]![0] === i) t = tensorOf(opts.groups[gi]!.name, groupMembers[gi]!);
        else return;
        this.tensors.push(t);
        this.steps.push({ kind: 'tensor', t });
      } else if (c.kind === 'flat' && normalize) this.steps.push({ kind: 'norm', index: i, name: f.name, norm: normOf(f.name) });
      else this.steps.push({ kind: 'pass', index: i, name: f.name });
    });

    this.fields = [];
    for (const s of this.steps) {
      if (s.kind === 'tensor') {
        this.fields.push({ name: s.t.name, type: { kind: 'fixed', size: s.t.width * s.t.k, child: F32 } });
        this.fields.push({ name: `${s.t.name}.mask`, type: { kind: 'fixed', size: s.t.width, child: U8 } });
      } else if (s.kind === 'norm') this.fields.push({ name: s.name, type: F32 });
      else this.fields.push({ name: s.name, type: fields[s.index]!.type });
    }
    const seen = new Set<string>();
    for (const f of this.fields) {
      if (seen.has(f.name)) {
        const err = groupNames.has(f.name) || groupNames.has(f.name.replace(/\.mask$/, '')) ? UsageError : SchemaMismatchError;
        throw new err(`the output would have two columns named '${f.name}'`);
      }
      seen.add(f.name);
    }
  }

  /** What truncation cut so far: `entries` counts rows with at least one cut list (each row once). */
  get truncation(): TruncationReport {
    const perColumn: TruncationReport['perColumn'] = {};
    for (const t of this.tensors) perColumn[t.name] = { entries: t.truncEntries, values: t.truncValues };
    return { entries: this.truncEntries, values: this.truncValues, perColumn };
  }

  pad(batch: ColumnBatch): ColumnBatch {
    const rows = batch.entryStop - batch.entryStart;
    const cols = batch.columns;
    if (cols.length !== this.inputNames.length) {
      throw new SchemaMismatchError(`batch has ${cols.length} columns, the padder expects ${this.inputNames.length} (${this.inputNames.join(', ')})`);
    }
    for (let i = 0; i < cols.length; i++) {
      if (cols[i]!.name !== this.inputNames[i]) throw new SchemaMismatchError(`batch column ${i} is '${cols[i]!.name}', the padder expects '${this.inputNames[i]}'`);
    }
    this.cut = null;
    const out: { name: string; data: ColumnData }[] = [];
    for (const s of this.steps) {
      if (s.kind === 'pass') out.push({ name: s.name, data: cols[s.index]!.data });
      else if (s.kind === 'norm') {
        const d = cols[s.index]!.data;
        if (d.kind !== 'primitive' || d.values.length !== rows) throw new SchemaMismatchError(`column '${s.name}' is not a flat column of ${rows} rows`);
        out.push({ name: s.name, data: { kind: 'primitive', dtype: 'float32', values: toFloat32(d.values, 0, rows, s.norm) } });
      } else {
        const { values, mask } = this.padTensor(s.t, batch, rows);
        out.push({ name: s.t.name, data: { kind: 'fixed', size: s.t.width * s.t.k, child: { kind: 'primitive', dtype: 'float32', values } } });
        out.push({ name: `${s.t.name}.mask`, data: { kind: 'fixed', size: s.t.width, child: { kind: 'primitive', dtype: 'uint8', values: mask } } });
      }
    }
    if (this.cut) {
      let n = 0;
      for (let i = 0; i < rows; i++) n += this.cut[i]!;
      this.truncEntries += n;
    }
    return { entryStart: batch.entryStart, entryStop: batch.entryStop, columns: out };
  }

  private markCut(row: number, rows: number): void {
    (this.cut ??= new Uint8Array(rows))[row] = 1;
  }

  private padTensor(t: Tensor, batch: ColumnBatch, rows: number): { values: Float32Array; mask: Uint8Array } {
    const W = t.width;
    const cap = t.cap;
    const K = t.k;
    const values = new Float32Array(rows * W * K);
    if (!Object.is(this.padValue, 0)) values.fill(this.padValue);
    const mask = new Uint8Array(rows * W);
    const offs: Int32Array[] = [];
    const srcs: Float32Array[] = [];
    for (const m of t.members) {
      const leaf = listLeaf(batch.columns[m.index]!.data);
      if (!leaf || leaf.inner !== m.inner) throw new SchemaMismatchError(`column '${m.name}' is not a list of ${m.inner}-value elements`);
      if (leaf.offsets.length !== rows + 1) throw new SchemaMismatchError(`column '${m.name}' has ${leaf.offsets.length - 1} rows, the batch ${rows}`);
      offs.push(leaf.offsets);
      // src[0] is the first scalar of row 0's list
      srcs.push(toFloat32(leaf.values, leaf.offsets[0]! * m.inner, leaf.offsets[rows]! * m.inner, m.norm));
    }
    let te = 0;
    let tv = 0;
    if (t.members.length === 1) {
      // One branch: each row's scalars are contiguous in the source and in the output.
      const off = offs[0]!;
      const src = srcs[0]!;
      const o0 = off[0]!;
      const stride = W * K;
      for (let i = 0; i < rows; i++) {
        const s = off[i]!;
        let n = off[i + 1]! - s;
        if (n > cap) {
          te++;
          tv += (n - cap) * K;
          this.markCut(i, rows);
          n = cap;
        }
        const len = n * K;
        const a = (s - o0) * K;
        const o = i * stride;
        if (len >= BULK) values.set(src.subarray(a, a + len), o);
        else for (let j = 0; j < len; j++) values[o + j] = src[a + j]!;
        const mo = i * W;
        if (n >= BULK) mask.fill(1, mo, mo + n);
        else for (let j = 0; j < n; j++) mask[mo + j] = 1;
      }
    } else {
      const first = offs[0]!;
      const nm = t.members.length;
      for (let i = 0; i < rows; i++) {
        let n = first[i + 1]! - first[i]!;
        for (let m = 1; m < nm; m++) {
          const om = offs[m]!;
          const c = om[i + 1]! - om[i]!;
          if (c !== n) {
            throw new SchemaMismatchError(
              `group '${t.name}': entry ${batch.entryStart + i} has ${n} values in '${t.members[0]!.name}' but ${c} in '${t.members[m]!.name}' (a group's branches need equal counts in every entry)`,
            );
          }
        }
        if (n > cap) {
          te++;
          tv += (n - cap) * K;
          this.markCut(i, rows);
          n = cap;
        }
        const base = i * W * K;
        for (let m = 0; m < nm; m++) {
          const mem = t.members[m]!;
          const src = srcs[m]!;
          const om = offs[m]!;
          const k = mem.inner;
          const a = (om[i]! - om[0]!) * k;
          const o = base + mem.col;
          if (k === 1) for (let j = 0; j < n; j++) values[o + j * K] = src[a + j]!;
          else {
            for (let j = 0; j < n; j++) {
              const oj = o + j * K;
              const aj = a + j * k;
              for (let q = 0; q < k; q++) values[oj + q] = src[aj + q]!;
            }
          }
        }
        const mo = i * W;
        if (n >= BULK) mask.fill(1, mo, mo + n);
        else for (let j = 0; j < n; j++) mask[mo + j] = 1;
      }
    }
    t.truncEntries += te;
    t.truncValues += tv;
    this.truncValues += tv;
    return { values, mask };
  }
}

/**
 * values[from, to) as float32, normalized when `norm` is given. A float32 source without normalization is
 * returned as a view (no copy); other types are converted natively (typed-array constructor) or, for 64-bit
 * integers, through Number.
 */
export function toFloat32(values: NumericArray, from: number, to: number, norm: Norm | null): Float32Array {
  const n = to - from;
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    const f = new Float64Array(n);
    for (let i = 0; i < n; i++) f[i] = Number(values[from + i]!);
    return norm ? normalized(f, 0, n, norm) : new Float32Array(f);
  }
  if (norm) {
    if (values instanceof Float32Array || values instanceof Float64Array) return normalized(values, from, to, norm);
    return normalized(new Float64Array(values.subarray(from, to)), 0, n, norm);
  }
  if (values instanceof Float32Array) return values.subarray(from, to);
  return new Float32Array(values.subarray(from, to) as Exclude<NumericArray, BigInt64Array | BigUint64Array>);
}

function normalized(v: Float32Array | Float64Array, from: number, to: number, norm: Norm): Float32Array {
  const out = new Float32Array(to - from);
  const mn = norm.min;
  const span = norm.span;
  for (let i = from, o = 0; i < to; i++, o++) out[o] = (v[i]! - mn) / span;
  return out;
}
