/**
 * Reading entry ranges of a tree's branches into columns: fetch the overlapping baskets (coalesced
 * reads), decompress them natively, decode big-endian values straight into typed arrays.
 * Object-valued branches that the bulk decoder does not handle go through jsroot (jsroot-read.ts).
 */
import { CorruptDataError, EntryRangeError, UnsupportedError, UsageError, type ErrorContext } from '../errors.js';
import { allocTyped, type ColumnBatch, type ColumnData, type ColumnType, type DType, type NumericArray } from './columns.js';
import { basketFromObject, basketHead, basketsFor, unpackBasket, unpackHead, unpackEmbedded, type BasketHead, type BasketLocation, type RawBasket } from './basket.js';
import { countBits, decodeBits, decodeValues, nativeValues, stringLength } from './decode.js';
import { readWithJsroot } from './jsroot-read.js';
import { LocalFileSource } from './source.js';
import type { BranchInfo, ReadPlan, Tree } from './tree.js';
import { poolCodec, unzipPoolFor, wantsPool, type UnzipPool } from './unzip-pool.js';

export interface ReadStats {
  /** Bytes fetched from the source for baskets (compressed). */
  compressedBytes: number;
  /** Bytes of basket payload after decompression. */
  uncompressedBytes: number;
  baskets: number;
}

/** `1000` → 1000 entries; `"100 MB"`, `"64MiB"`, `"1.5 GB"` → bytes. */
export function parseStepSize(s: string | number): { entries?: number; bytes?: number } {
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s <= 0) throw new UsageError(`step size must be a positive integer, got ${s}`);
    return { entries: s };
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(s);
  if (!m) throw new UsageError(`cannot parse step size '${s}': use a number of entries (10000) or a size ("100 MB")`);
  const v = Number(m[1]);
  if (!m[2]) {
    if (!Number.isInteger(v) || v <= 0) throw new UsageError(`step size must be a positive integer, got '${s}'`);
    return { entries: v };
  }
  const unit = m[2].toLowerCase();
  const pow = { b: 0, kb: 1, mb: 2, gb: 3, tb: 4, kib: 1, mib: 2, gib: 3, tib: 4 }[unit]!;
  const base = unit.includes('i') ? 1024 : 1000;
  const bytes = Math.floor(v * base ** pow);
  if (bytes <= 0) throw new UsageError(`step size must be positive, got '${s}'`);
  return { bytes };
}

/**
 * Checks an entry range against `n` entries and clips the stop to n; undefined bounds mean all entries.
 * A start beyond the last entry, a negative or fractional bound, or stop < start is an EntryRangeError.
 */
export function checkEntryRange(n: number, entryStart: number | undefined, entryStop: number | undefined, ctx: ErrorContext): [number, number] {
  const start = entryStart ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new EntryRangeError(`entry start ${start} must be a non-negative integer`, ctx);
  if (entryStop !== undefined && (!Number.isInteger(entryStop) || entryStop < 0)) {
    throw new EntryRangeError(`entry stop ${entryStop} must be a non-negative integer`, ctx);
  }
  if (start > n || (start === n && entryStart !== undefined && n > 0)) {
    throw new EntryRangeError(`entry start ${start} is beyond the last entry (there are ${n} entries: 0..${n - 1})`, ctx);
  }
  const stop = entryStop === undefined ? n : Math.min(entryStop, n);
  if (stop < start) throw new EntryRangeError(`entry stop ${entryStop} is before entry start ${start}`, ctx);
  return [start, stop];
}

/** One array from per-basket pieces: the piece itself when there is one, else a copy of all. */
function joinParts(dtype: DType, parts: NumericArray[]): NumericArray {
  if (parts.length === 1) return parts[0]!;
  const out = allocTyped(dtype, parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    (out as Uint8Array).set(p as Uint8Array, o);
    o += p.length;
  }
  return out;
}

function wrapValues(type: ColumnType, values: NumericArray): ColumnData {
  if (type.kind === 'fixed') return { kind: 'fixed', size: type.size, child: wrapValues(type.child, values) };
  if (type.kind === 'primitive') return { kind: 'primitive', dtype: type.dtype, values };
  throw new Error(`cannot wrap values as ${type.kind}`);
}

export interface TreeReaderOptions {
  /**
   * Fetch the next step's baskets while the current one is unpacked, assembled and consumed (in
   * `batches()`). Default: on for every source but a local file, whose reads are synchronous and
   * cannot overlap with anything.
   */
  readAhead?: boolean;
}

/**
 * The raw (compressed) bytes of one step's baskets, requested ahead of the step and not yet unpacked.
 * `raws` never rejects unobserved: a handler is attached when it is made, and the error is thrown again
 * when the step that needs the bytes awaits them.
 */
interface StepFetch {
  /** Per branch: basket index → its position in `raws`. */
  slots: Map<BranchInfo, Map<number, number>>;
  raws: Promise<Uint8Array[]>;
}

const ignore = () => {};

/**
 * Lets the event loop turn before the CPU-bound work of a step (unpacking, assembling, the consumer's own
 * work on the batch, none of which yields): an HTTP client only puts a request on the wire a turn or two
 * after it was asked (Node's fetch: two setImmediate turns, measured), so without this the request made
 * ahead would leave only when the consumer next waits, and overlap nothing. Costs microseconds.
 */
async function requestsOut(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

export class TreeReader {
  readonly stats: ReadStats = { compressedBytes: 0, uncompressedBytes: 0, baskets: 0 };
  /** Whether `batches()` reads ahead (see TreeReaderOptions.readAhead). */
  readonly readAhead: boolean;
  private readonly cache = new Map<BranchInfo, Map<number, RawBasket>>();
  private readonly bulk: BranchInfo[];
  private readonly viaJsroot: BranchInfo[];

  constructor(
    readonly tree: Tree,
    readonly branches: BranchInfo[],
    opts: TreeReaderOptions = {},
  ) {
    for (const b of branches) {
      if (!b.type || !b.plan) {
        throw new UnsupportedError(b.unsupported ?? 'cannot be read', { file: tree.location, tree: tree.name, branch: b.name });
      }
    }
    this.bulk = branches.filter((b) => b.plan!.kind !== 'jsroot');
    this.viaJsroot = branches.filter((b) => b.plan!.kind === 'jsroot');
    this.readAhead = opts.readAhead ?? !(tree.file.source instanceof LocalFileSource);
  }

  private readonly contexts = new Map<BranchInfo | undefined, ErrorContext>();
  /** The error context of a branch (one object per branch: copy it before adding to it). */
  private ctx(b?: BranchInfo): ErrorContext {
    let c = this.contexts.get(b);
    if (!c) this.contexts.set(b, (c = { file: this.tree.location, tree: this.tree.name, branch: b?.name }));
    return c;
  }

  /** Uncompressed bytes per entry of the selected branches (from ROOT's own totals). */
  bytesPerEntry(): number {
    if (this.tree.entries === 0) return 0;
    return this.branches.reduce((s, b) => s + b.totBytes, 0) / this.tree.entries;
  }

  /** Entries per step for a step size given in entries or bytes. */
  stepEntries(step: { entries?: number; bytes?: number }): number {
    if (step.entries) return step.entries;
    const per = this.bytesPerEntry();
    return Math.max(1, per > 0 ? Math.floor(step.bytes! / per) : 100000);
  }

  /**
   * Batches of at most `stepEntries` entries covering [start, stop).
   *
   * With read-ahead (TreeReaderOptions.readAhead), the basket bytes of step k+1 are requested as soon as
   * those of step k have arrived, so that their transfer overlaps with the unpacking and assembling of
   * step k and with whatever the consumer does with batch k. One step ahead at most: the request for step
   * k+2 is made only once step k+1's bytes are in and the consumer has asked for batch k+1. The memory
   * this costs is one step's compressed basket bytes (as the source delivers them, coalescing gaps
   * included) on top of what reading without read-ahead holds: while batch k is consumed, step k+1's raw
   * bytes (arriving or arrived); while step k+1 is unpacked, step k+2's. With the default step of 100 MB
   * of uncompressed input that is 100 MB / the compression ratio (typically 20-50 MB).
   *
   * Results and errors are those of reading without read-ahead: an error of the early request is thrown
   * when step k+1 is read (never earlier), and when the consumer stops early the request is left to
   * finish and its bytes (or its error) are dropped.
   */
  async *batches(start: number, stop: number, stepEntries: number): AsyncGenerator<ColumnBatch> {
    let ahead: StepFetch | undefined;
    for (let a = start; a < stop; a += stepEntries) {
      const b = Math.min(stop, a + stepEntries);
      let pre = ahead;
      ahead = undefined;
      const next = this.readAhead && b < stop ? () => (ahead = this.requestAhead(a, b, Math.min(stop, b + stepEntries))) !== undefined : undefined;
      const batch = await this.readStep(a, b, pre, next);
      pre = undefined; // this step's raw bytes are not held while the consumer has the batch
      yield batch;
    }
  }

  /** Reads entries [start, stop) of every selected branch. Calls must come in increasing entry order. */
  async read(start: number, stop: number): Promise<ColumnBatch> {
    return this.readStep(start, stop);
  }

  /**
   * One step: `pre` holds bytes requested ahead for it; `onBytes` is called once the step's own basket
   * bytes are in (before they are unpacked), to request the next step's (it says whether it did).
   */
  private async readStep(start: number, stop: number, pre?: StepFetch, onBytes?: () => boolean): Promise<ColumnBatch> {
    await this.fetch(start, stop, pre, onBytes);
    const columns: { name: string; data: ColumnData }[] = [];
    const jsCols = this.viaJsroot.length ? await readWithJsroot(this.tree, this.viaJsroot, start, stop) : new Map();
    for (const b of this.branches) {
      const data = b.plan!.kind === 'jsroot' ? jsCols.get(b)! : this.assemble(b, start, stop);
      columns.push({ name: b.name, data });
    }
    // Keep only the baskets that straddle the end of this range (the next step starts in them).
    for (const m of this.cache.values()) for (const [k, rb] of m) if (!(rb.entryStart < stop && rb.entryStop > stop)) m.delete(k);
    return { entryStart: start, entryStop: stop, columns };
  }

  /**
   * Requests the bytes of the baskets of step [start, stop) that neither the cache nor the step before it,
   * [prevStart, start), provides (that step reads every basket overlapping it and keeps those that
   * straddle its end). Undefined when there is nothing to request, or when working out the baskets fails:
   * the step itself then finds (and reports) the same problem when it is read.
   */
  private requestAhead(prevStart: number, start: number, stop: number): StepFetch | undefined {
    const slots = new Map<BranchInfo, Map<number, number>>();
    const ranges: [number, number][] = [];
    try {
      for (const b of this.bulk) {
        const m = this.cache.get(b);
        let s: Map<number, number> | undefined;
        for (const loc of basketsFor(b, start, stop)) {
          if (loc.embedded || m?.has(loc.index)) continue;
          if (loc.entryStart < start && loc.entryStop > prevStart) continue;
          if (!s) slots.set(b, (s = new Map()));
          s.set(loc.index, ranges.length);
          ranges.push([loc.seek, loc.bytes]);
        }
      }
    } catch {
      return undefined;
    }
    if (ranges.length === 0) return undefined;
    let raws: Promise<Uint8Array[]>;
    try {
      raws = this.tree.file.source.readMany(ranges);
    } catch (e) {
      raws = Promise.reject(e);
    }
    raws.catch(ignore);
    return { slots, raws };
  }

  private async fetch(start: number, stop: number, pre?: StepFetch, onBytes?: () => boolean): Promise<void> {
    const wantedBranch: BranchInfo[] = [];
    const wantedLoc: BasketLocation[] = [];
    const ranges: [number, number][] = [];
    /** Per wanted basket: its position in pre's bytes, or -1 - (its position in `ranges`). */
    const from: number[] = [];
    for (const b of this.bulk) {
      let m = this.cache.get(b);
      if (!m) this.cache.set(b, (m = new Map()));
      const s = pre?.slots.get(b);
      for (const loc of basketsFor(b, start, stop)) {
        if (m.has(loc.index)) continue;
        if (loc.embedded) {
          m.set(loc.index, unpackEmbedded(loc, this.ctx(b)));
          continue;
        }
        wantedBranch.push(b);
        wantedLoc.push(loc);
        const slot = s?.get(loc.index);
        if (slot !== undefined) from.push(slot);
        else {
          from.push(-1 - ranges.length);
          ranges.push([loc.seek, loc.bytes]);
        }
      }
    }
    if (wantedLoc.length === 0) {
      if (onBytes?.()) await requestsOut();
      return;
    }
    let raws: Uint8Array[];
    if (!pre) raws = await this.tree.file.source.readMany(ranges);
    else {
      // Normally every basket was requested ahead; any that was not is read now, at the same time.
      const [early, late] = await Promise.all([pre.raws, ranges.length ? this.tree.file.source.readMany(ranges) : []]);
      raws = from.map((k) => (k >= 0 ? early[k]! : late[-1 - k]!));
    }
    if (onBytes?.()) await requestsOut();
    const pool = unzipPoolFor(this.poolBytes(wantedLoc, raws));
    if (pool) return this.unpackParallel(pool, wantedBranch, wantedLoc, raws, stop);
    for (let i = 0; i < raws.length; i++) {
      const b = wantedBranch[i]!;
      const loc = wantedLoc[i]!;
      this.keep(b, loc, unpackBasket(raws[i]!, loc, this.ctx(b)));
    }
  }

  /** Compressed bytes of the baskets the unzip pool would share out (0 when the step is too small anyway). */
  private poolBytes(locs: BasketLocation[], raws: Uint8Array[]): number {
    let total = 0;
    for (const loc of locs) total += loc.bytes;
    if (!wantsPool(total)) return 0;
    let bytes = 0;
    for (let i = 0; i < raws.length; i++) {
      const raw = raws[i]!;
      if (raw.length < 18) continue;
      const objlen = ((raw[6]! << 24) | (raw[7]! << 16) | (raw[8]! << 8) | raw[9]!) | 0;
      const keylen = (raw[14]! << 8) | raw[15]!;
      if (objlen > raw.length - keylen && poolCodec(raw, keylen)) bytes += raw.length;
    }
    return bytes;
  }

  private keep(b: BranchInfo, loc: BasketLocation, rb: RawBasket): void {
    this.stats.compressedBytes += loc.bytes;
    this.stats.uncompressedBytes += rb.data.length;
    this.stats.baskets++;
    this.cache.get(b)!.set(loc.index, rb);
  }

  /**
   * unpackBasket for every basket of a step, with the compressed ones shared between this thread and the
   * pool's workers (unzip-pool.ts). The outcome is the synchronous loop's: the same baskets, or the error
   * of the first basket (in the same order) that fails.
   */
  private async unpackParallel(pool: UnzipPool, branches: BranchInfo[], locs: BasketLocation[], raws: Uint8Array[], stop: number): Promise<void> {
    const n = raws.length;
    const heads: (BasketHead | undefined)[] = new Array(n);
    const done: (RawBasket | undefined)[] = new Array(n);
    const errors: unknown[] = [];
    const failed: number[] = [];
    const fail = (i: number, e: unknown) => {
      if (errors[i] === undefined) failed.push(i);
      errors[i] = e;
    };
    const jobIdx: number[] = [];
    const payloads: Uint8Array[] = [];
    const objlens: number[] = [];
    for (let i = 0; i < n; i++) {
      try {
        const h = basketHead(raws[i]!, locs[i]!, this.ctx(branches[i]));
        heads[i] = h;
        if (h.compressed && poolCodec(h.payload)) {
          jobIdx.push(i);
          payloads.push(h.payload);
          objlens.push(h.objlen);
        }
      } catch (e) {
        fail(i, e);
      }
    }
    const unpack = (i: number) => {
      try {
        done[i] = unpackHead(heads[i]!, locs[i]!, this.ctx(branches[i]));
      } catch (e) {
        fail(i, e);
      }
    };
    const job = jobIdx.length ? pool.start(payloads, objlens) : undefined;
    // while the workers start on the job: the baskets it does not include, then a share of its baskets
    for (let i = 0, k = 0; i < n; i++) {
      if (k < jobIdx.length && jobIdx[k] === i) k++;
      else if (heads[i]) unpack(i);
    }
    if (job) {
      for (let k = job.claim(); k >= 0; k = job.claim()) unpack(jobIdx[k]!);
      const objects = await job.collect();
      for (let k = 0; k < jobIdx.length; k++) {
        const i = jobIdx[k]!;
        let obj = objects[k];
        if (!obj) {
          if (!done[i] && errors[i] === undefined) unpack(i); // left by the workers: the synchronous path decides
          continue;
        }
        const loc = locs[i]!;
        // A basket that the next step reads again is kept in the cache: give it its own buffer, so that it does
        // not hold the whole of this step's shared buffer.
        if (loc.entryStop > stop) obj = obj.slice();
        try {
          done[i] = basketFromObject(heads[i]!, obj, loc, this.ctx(branches[i]), true);
        } catch (e) {
          fail(i, e);
        }
      }
    }
    if (failed.length) throw errors[Math.min(...failed)];
    for (let i = 0; i < n; i++) this.keep(branches[i]!, locs[i]!, done[i]!);
  }

  private overlapping(b: BranchInfo, start: number, stop: number): RawBasket[] {
    const m = this.cache.get(b)!;
    const list = [...m.values()].filter((rb) => rb.entryStop > start && rb.entryStart < stop).sort((x, y) => x.entryStart - y.entryStart);
    let next = start;
    for (const rb of list) {
      if (rb.entryStart > next) break;
      next = Math.max(next, rb.entryStop);
    }
    if (next < stop) {
      throw new CorruptDataError(`no basket holds entry ${next} (the branch's basket list has a gap)`, { ...this.ctx(b), entry: next });
    }
    return list;
  }

  private assemble(b: BranchInfo, start: number, stop: number): ColumnData {
    const plan = b.plan as Exclude<ReadPlan, { kind: 'jsroot' }>;
    const baskets = this.overlapping(b, start, stop);
    switch (plan.kind) {
      case 'fixed':
        return this.assembleFixed(b, plan, baskets, start, stop);
      case 'jagged':
        return this.assembleJagged(b, plan, baskets, start, stop);
      case 'string':
        return this.assembleStrings(b, plan, baskets, start, stop);
    }
  }

  private assembleFixed(b: BranchInfo, plan: Extract<ReadPlan, { kind: 'fixed' }>, baskets: RawBasket[], start: number, stop: number): ColumnData {
    const per = plan.perEntry;
    const entryBytes = per * plan.value.bytes;
    const parts: NumericArray[] = [];
    const out = plan.value.kind === 'plain' ? undefined : allocTyped(plan.value.dtype, (stop - start) * per);
    for (const rb of baskets) {
      const lo = Math.max(start, rb.entryStart);
      const hi = Math.min(stop, rb.entryStop);
      const nev = rb.entryStop - rb.entryStart;
      if (rb.data.length !== nev * entryBytes && !(rb.offsets && rb.data.length >= nev * entryBytes)) {
        throw new CorruptDataError(
          `basket holds ${rb.data.length} bytes for ${nev} entries of ${entryBytes} bytes`,
          { ...this.ctx(b), basket: rb.index, entry: rb.entryStart },
        );
      }
      const pos = rb.offsets ? rb.offsets[lo - rb.entryStart]! : (lo - rb.entryStart) * entryBytes;
      if (rb.offsets && rb.offsets[hi - rb.entryStart]! - pos !== (hi - lo) * entryBytes) {
        throw new CorruptDataError('entries are not of the expected fixed size', { ...this.ctx(b), basket: rb.index, entry: lo });
      }
      if (plan.value.kind === 'plain') {
        const first = pos / plan.value.bytes;
        parts.push(nativeValues(rb, plan.value).subarray(first, first + (hi - lo) * per) as NumericArray);
      } else decodeValues(plan.value, rb.data, pos, (hi - lo) * per, out!, (lo - start) * per);
    }
    return wrapValues(b.type!, out ?? joinParts(plan.value.dtype, parts));
  }

  private assembleJagged(b: BranchInfo, plan: Extract<ReadPlan, { kind: 'jagged' }>, baskets: RawBasket[], start: number, stop: number): ColumnData {
    const rows = stop - start;
    const offsets = new Int32Array(rows + 1);
    const elemBytes = plan.inner * plan.value.bytes;
    const bits = plan.value.kind === 'bits';
    let total = 0;
    for (const rb of baskets) {
      const lo = Math.max(start, rb.entryStart);
      const hi = Math.min(stop, rb.entryStop);
      const off = rb.offsets;
      if (!off) {
        if (rb.entryStop - rb.entryStart === 1) {
          rb.offsets = Int32Array.of(0, rb.data.length);
        } else {
          throw new UnsupportedError('basket has no entry offsets (reading counts from the counter branch is not implemented)', {
            ...this.ctx(b),
            basket: rb.index,
          });
        }
      }
      const o = rb.offsets!;
      const es = rb.entryStart;
      if (plan.header === 0 && !bits && (elemBytes & (elemBytes - 1)) === 0) {
        // Fast path (X[n] leaves, collection members): element counts straight from the byte offsets.
        const shift = Math.log2(elemBytes);
        const mask = elemBytes - 1;
        const o0 = o[lo - es]!;
        let misaligned = 0;
        for (let e = lo; e < hi; e++) {
          const d = o[e - es + 1]! - o0;
          misaligned |= d & mask;
          offsets[e - start + 1] = total + (d >> shift);
        }
        if (misaligned) {
          throw new CorruptDataError(`entry sizes are not multiples of the ${elemBytes}-byte element size`, { ...this.ctx(b), basket: rb.index });
        }
        total = offsets[hi - start]!;
        continue;
      }
      for (let e = lo; e < hi; e++) {
        const i = e - rb.entryStart;
        const size = o[i + 1]! - o[i]! - plan.header;
        let count: number;
        if (size <= 0) count = 0;
        else if (bits) count = countBits(rb.data, o[i]! + plan.header, o[i + 1]!, this.ctx(b));
        else {
          count = size / elemBytes;
          if (!Number.isInteger(count)) {
            throw new CorruptDataError(`entry holds ${size} bytes, not a multiple of the ${elemBytes}-byte element size`, {
              ...this.ctx(b),
              basket: rb.index,
              entry: e,
            });
          }
        }
        total += count;
        offsets[e - start + 1] = total;
      }
    }
    if (plan.header === 0 && plan.value.kind === 'plain') {
      const codec = plan.value;
      const parts = baskets.map((rb) => {
        const lo = Math.max(start, rb.entryStart);
        const hi = Math.min(stop, rb.entryStop);
        const o = rb.offsets!;
        return nativeValues(rb, codec).subarray(o[lo - rb.entryStart]! / codec.bytes, o[hi - rb.entryStart]! / codec.bytes) as NumericArray;
      });
      const listType = b.type as Extract<ColumnType, { kind: 'list' }>;
      return { kind: 'list', offsets, child: wrapValues(listType.child, joinParts(codec.dtype, parts)) };
    }
    const values = allocTyped(plan.value.dtype, total * plan.inner);
    for (const rb of baskets) {
      const lo = Math.max(start, rb.entryStart);
      const hi = Math.min(stop, rb.entryStop);
      const o = rb.offsets!;
      const first = offsets[lo - start]! * plan.inner;
      if (plan.header === 0 && !bits) {
        const n = (offsets[hi - start]! - offsets[lo - start]!) * plan.inner;
        decodeValues(plan.value, rb.data, o[lo - rb.entryStart]!, n, values, first);
        continue;
      }
      for (let e = lo; e < hi; e++) {
        const i = e - rb.entryStart;
        const n = (offsets[e - start + 1]! - offsets[e - start]!) * plan.inner;
        if (n === 0) continue;
        const p = o[i]! + plan.header;
        if (bits) decodeBits(rb.data, p, o[i + 1]!, values as Uint32Array, offsets[e - start]!);
        else decodeValues(plan.value, rb.data, p, n, values, offsets[e - start]! * plan.inner);
      }
    }
    const listType = b.type as Extract<ColumnType, { kind: 'list' }>;
    return { kind: 'list', offsets, child: wrapValues(listType.child, values) };
  }

  private assembleStrings(b: BranchInfo, plan: Extract<ReadPlan, { kind: 'string' }>, baskets: RawBasket[], start: number, stop: number): ColumnData {
    const rows = stop - start;
    const offsets = new Int32Array(rows + 1);
    const spans = new Int32Array(rows);
    let total = 0;
    for (const rb of baskets) {
      const lo = Math.max(start, rb.entryStart);
      const hi = Math.min(stop, rb.entryStop);
      if (!rb.offsets && rb.entryStop - rb.entryStart === 1) rb.offsets = Int32Array.of(0, rb.data.length);
      const o = rb.offsets;
      if (!o) throw new CorruptDataError('string basket has no entry offsets', { ...this.ctx(b), basket: rb.index });
      for (let e = lo; e < hi; e++) {
        const i = e - rb.entryStart;
        const end = o[i + 1]!;
        let len = 0;
        let p = o[i]!;
        if (end > p) {
          [len, p] = stringLength(rb.data, p + plan.header);
          if (p + len > end) {
            throw new CorruptDataError(`string of ${len} bytes overruns its entry`, { ...this.ctx(b), basket: rb.index, entry: e });
          }
        }
        spans[e - start] = p;
        total += len;
        offsets[e - start + 1] = total;
      }
    }
    const bytes = new Uint8Array(total);
    for (const rb of baskets) {
      const lo = Math.max(start, rb.entryStart);
      const hi = Math.min(stop, rb.entryStop);
      for (let e = lo; e < hi; e++) {
        const r = e - start;
        const len = offsets[r + 1]! - offsets[r]!;
        if (len) bytes.set(rb.data.subarray(spans[r]!, spans[r]! + len), offsets[r]!);
      }
    }
    return { kind: 'utf8', offsets, bytes };
  }
}
