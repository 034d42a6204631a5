/**
 * TBasket: locating, fetching and unpacking one basket of one branch into its data bytes and
 * per-entry byte offsets. No values are decoded here (see decode.ts).
 */
import { CorruptDataError, HepMlError, type ErrorContext } from '../errors.js';
import { rootUnzip } from './decompress.js';
import type { BranchInfo } from './tree.js';

/** One basket, decompressed: `data` holds the entries' bytes; entry i spans offsets[i]..offsets[i+1]. */
export interface RawBasket {
  index: number;
  entryStart: number;
  entryStop: number;
  data: Uint8Array;
  /** Per-entry start offsets into `data` (length nev+1); absent for fixed-size entries. */
  offsets?: Int32Array;
  /** True when `data` is a buffer of our own (decompressed output) that may be byte-swapped in place. */
  owned: boolean;
  /** The basket's values in native byte order, once decoded (see decode.ts nativeValues). */
  native?: import('./columns.js').NumericArray;
}

/** Where a basket lives: on disk at seek/bytes, or inside the TTree object (recovered baskets). */
export interface BasketLocation {
  index: number;
  entryStart: number;
  entryStop: number;
  seek: number;
  bytes: number;
  embedded?: unknown;
}

const tables = new WeakMap<object, BasketLocation[]>();

/** Every basket of a branch, in entry order (computed once per branch from jsroot's metadata). */
export function basketTable(b: BranchInfo): BasketLocation[] {
  const js = b.js;
  const cached = tables.get(js);
  if (cached) return cached;
  const nWritten = Number(js.fWriteBasket ?? 0);
  const entries = Number(js.fEntries);
  const embedded: unknown[] = js.fBaskets?.arr ?? [];
  const firstEntry: ArrayLike<number> = js.fBasketEntry ?? [];
  const out: BasketLocation[] = [];
  const n = Math.max(nWritten, embedded.length);
  for (let k = 0; k < n; k++) {
    const seek = Number(js.fBasketSeek?.[k] ?? 0);
    const emb = embedded[k];
    if (k >= nWritten && !emb) continue;
    const entryStart = Number(firstEntry[k] ?? 0);
    let entryStop = k + 1 < n && firstEntry[k + 1] !== undefined && (k + 1 < nWritten || embedded[k + 1]) ? Number(firstEntry[k + 1]) : entries;
    if (emb && (emb as { fNevBuf?: number }).fNevBuf !== undefined) entryStop = entryStart + Number((emb as { fNevBuf: number }).fNevBuf);
    if (entryStop <= entryStart) continue;
    if (seek > 0 && k < nWritten) out.push({ index: k, entryStart, entryStop, seek, bytes: Number(js.fBasketBytes[k]) });
    else if (emb) out.push({ index: k, entryStart, entryStop, seek: 0, bytes: 0, embedded: emb });
    else throw new CorruptDataError(`basket ${k} has no location`, { branch: b.name });
  }
  tables.set(js, out);
  return out;
}

/** The baskets of a branch that overlap entries [start, stop). */
export function basketsFor(b: BranchInfo, start: number, stop: number): BasketLocation[] {
  const all = basketTable(b);
  // first basket ending after `start` (binary search), then walk while baskets start before `stop`
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid]!.entryStop <= start) lo = mid + 1;
    else hi = mid;
  }
  const out: BasketLocation[] = [];
  for (let k = lo; k < all.length && all[k]!.entryStart < stop; k++) out.push(all[k]!);
  return out;
}

/** Parses a basket's key header + TBasket header and unpacks its payload. */
export function unpackBasket(raw: Uint8Array, loc: BasketLocation, ctx: ErrorContext): RawBasket {
  try {
    return unpack(head(raw, loc, ctx), loc, ctx);
  } catch (e) {
    throw withBasket(e, loc);
  }
}

/** A basket's headers, checked: its payload is the object itself, or compressed to objlen bytes. */
export interface BasketHead {
  keylen: number;
  last: number;
  objlen: number;
  payload: Uint8Array;
  compressed: boolean;
}

/** unpackBasket in two halves: the checked headers (errors name the basket) ... */
export function basketHead(raw: Uint8Array, loc: BasketLocation, ctx: ErrorContext): BasketHead {
  try {
    return head(raw, loc, ctx);
  } catch (e) {
    throw withBasket(e, loc);
  }
}

/** ... and the rest: decompression (when compressed) and the split into data and entry offsets. */
export function unpackHead(h: BasketHead, loc: BasketLocation, ctx: ErrorContext): RawBasket {
  try {
    return unpack(h, loc, ctx);
  } catch (e) {
    throw withBasket(e, loc);
  }
}

function unpack(h: BasketHead, loc: BasketLocation, ctx: ErrorContext): RawBasket {
  const obj = h.compressed ? rootUnzip(h.payload, h.objlen, ctx) : h.payload;
  return splitPayload(obj, h.keylen, h.last, loc.entryStop - loc.entryStart, loc, ctx, h.compressed);
}

/**
 * The second half of unpackBasket, given the basket's object bytes (the payload itself or its
 * decompressed form); `owned` says whether they are a buffer of our own that may be swapped in place.
 */
export function basketFromObject(h: BasketHead, obj: Uint8Array, loc: BasketLocation, ctx: ErrorContext, owned: boolean): RawBasket {
  try {
    return splitPayload(obj, h.keylen, h.last, loc.entryStop - loc.entryStart, loc, ctx, owned);
  } catch (e) {
    throw withBasket(e, loc);
  }
}

/**
 * Adds the basket number to an error's context. The hot path passes one shared context object per branch
 * and allocates none, so the error gets a copy here (the shared object itself is never changed).
 */
export function withBasket(e: unknown, loc: BasketLocation): unknown {
  if (e instanceof HepMlError && e.context.basket === undefined) (e as { context: ErrorContext }).context = { ...e.context, basket: loc.index };
  return e;
}

function head(raw: Uint8Array, loc: BasketLocation, bctx: ErrorContext): BasketHead {
  if (raw.length < 40) throw new CorruptDataError(`basket header is too short (${raw.length} bytes)`, bctx);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const nbytes = v.getInt32(0);
  const version = v.getInt16(4);
  const objlen = v.getInt32(6);
  const keylen = v.getInt16(14);
  if (nbytes !== loc.bytes || keylen <= 0 || keylen > nbytes || objlen < 0) {
    throw new CorruptDataError(
      `basket key header is corrupt (fNbytes ${nbytes}, expected ${loc.bytes}; fKeylen ${keylen}; fObjlen ${objlen})`,
      bctx,
    );
  }
  // The key ends with the TBasket header: ..., fNevBuf (int32), fLast (int32), flag (int8).
  if (keylen < 18 + (version > 1000 ? 16 : 8) + 3 + 2 + 4 + 4 + 4 + 4 + 1 || keylen > raw.length) {
    throw new CorruptDataError(`basket key header is corrupt (fKeylen ${keylen})`, bctx);
  }
  const nevBuf = v.getInt32(keylen - 9);
  const last = v.getInt32(keylen - 5);
  const nev = loc.entryStop - loc.entryStart;
  if (nevBuf !== nev) {
    throw new CorruptDataError(`basket holds ${nevBuf} entries but the branch metadata says ${nev}`, bctx);
  }
  const payload = raw.subarray(keylen, nbytes);
  return { keylen, last, objlen, payload, compressed: objlen > payload.length };
}

/** A basket stored inside the TTree object (written when the file was closed without flushing it). */
export function unpackEmbedded(loc: BasketLocation, ctx: ErrorContext): RawBasket {
  const bctx = { ...ctx, basket: loc.index };
  const b = loc.embedded as {
    fKeylen: number;
    fLast: number;
    fNevBuf: number;
    fEntryOffset?: ArrayLike<number>;
    fBufferRef?: { arr?: DataView };
  };
  const dv = b.fBufferRef?.arr;
  const nev = loc.entryStop - loc.entryStart;
  // jsroot keeps no buffer for a basket whose entries hold no bytes at all (fLast == fKeylen).
  if (!dv && b.fLast > b.fKeylen) throw new CorruptDataError('basket stored in the TTree object has no data', bctx);
  const obj = dv ? new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength) : new Uint8Array(0);
  const basket = splitPayload(obj, b.fKeylen, b.fLast, nev, loc, bctx, false);
  // jsroot has already read the entry offsets (absolute positions) from the TBasket streamer.
  if (!basket.offsets && b.fEntryOffset && b.fEntryOffset.length >= nev && nev > 0) {
    const offsets = new Int32Array(nev + 1);
    for (let i = 0; i < nev; i++) offsets[i] = b.fEntryOffset[i]! - b.fKeylen;
    offsets[nev] = basket.data.length;
    for (let i = 0; i < nev; i++) {
      if (offsets[i]! < 0 || offsets[i]! > offsets[i + 1]!) throw new CorruptDataError(`entry offset ${i} is corrupt`, bctx);
    }
    basket.offsets = offsets;
  }
  return basket;
}

function splitPayload(obj: Uint8Array, keylen: number, last: number, nev: number, loc: BasketLocation, ctx: ErrorContext, owned: boolean): RawBasket {
  const dataLen = last - keylen;
  if (dataLen < 0 || dataLen > obj.length) {
    throw new CorruptDataError(`basket data length ${dataLen} does not fit its ${obj.length}-byte buffer`, ctx);
  }
  const data = obj.subarray(0, dataLen);
  let offsets: Int32Array | undefined;
  if (obj.length >= dataLen + 4) {
    const p = obj.byteOffset + dataLen;
    const n = ((obj[dataLen]! << 24) | (obj[dataLen + 1]! << 16) | (obj[dataLen + 2]! << 8) | obj[dataLen + 3]!) | 0;
    if (n > 0 && dataLen + 4 + 4 * n <= obj.length) {
      if (n < nev) throw new CorruptDataError(`basket has ${n} entry offsets for ${nev} entries`, ctx);
      // Copy the big-endian int32 array once, then swap and rebase it in one pass.
      offsets = new Int32Array(nev + 1);
      new Uint8Array(offsets.buffer, 0, 4 * nev).set(new Uint8Array(obj.buffer, p + 4, 4 * nev));
      let prev = 0;
      let bad = -1;
      for (let i = 0; i < nev; i++) {
        const x = offsets[i]!;
        const off = ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) - keylen;
        if (off < prev || off > dataLen) bad = bad < 0 ? i : bad;
        offsets[i] = off;
        prev = off;
      }
      if (bad >= 0) {
        throw new CorruptDataError(`entry offset ${bad} (${offsets[bad]}) is outside the basket data (${dataLen} bytes) or out of order`, ctx);
      }
      offsets[nev] = dataLen;
    }
  }
  return { index: loc.index, entryStart: loc.entryStart, entryStop: loc.entryStop, data, offsets, owned };
}
