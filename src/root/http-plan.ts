/**
 * How a set of byte ranges becomes HTTP requests: coalescing tuned for remote reads, splitting of very
 * large reads, and packing into multi-range requests that stay below server limits.
 *
 * Coalescing. Over the network every byte counts, so neighbouring ranges are merged only while the
 * bytes read in between stay small: always across a gap of at most `tinyGap` bytes (cheaper than the
 * ~100 bytes of part headers a multipart answer spends per range), and across a gap of at most `maxGap`
 * only while the gaps in the merged read stay within `slack` × the bytes actually wanted. With slack 0.2
 * a merged read carries at most 20 % of unwanted bytes (the 1.2× bytes-fetched target).
 *
 * Packing (multi-range). A request holds at most `maxRanges` ranges, a Range header of at most
 * `maxHeaderBytes`, at most `maxChunks` pieces of 128 KiB (XrdHttp 5.5 splits each range into 128 KiB
 * readv chunks and answers `500 Read vector is too long` in the middle of the body past 1,024), and, once
 * it has something, no more than `targetBytes`, so that a large read is spread over parallel connections.
 */

export interface CoalesceOptions {
  /** Gaps up to this size are always read through. */
  tinyGap: number;
  /** Gaps larger than this are never read through. */
  maxGap: number;
  /** Unwanted bytes allowed in one merged read, as a fraction of its wanted bytes. */
  slack: number;
}

/** With multi-range requests: a range costs ~120 bytes (its part headers and its text in the Range header). */
export const MULTI_RANGE_COALESCE: CoalesceOptions = { tinyGap: 96, maxGap: 32 * 1024, slack: 0.05 };
/** With one range per request: a range costs a round trip. */
export const SINGLE_RANGE_COALESCE: CoalesceOptions = { tinyGap: 4096, maxGap: 1024 * 1024, slack: 0.2 };

export interface Group {
  start: number;
  /** Exclusive. */
  end: number;
  /** Indices into the input ranges, in file order. */
  members: number[];
  /** Bytes wanted (the union of the members). */
  wanted: number;
}

/** Groups ranges (pos, len) into reads (in file order); zero-length ranges are left out. */
export function coalesceRemote(ranges: readonly (readonly [number, number])[], o: CoalesceOptions): Group[] {
  const order = ranges
    .map((_, i) => i)
    .filter((i) => ranges[i]![1] > 0)
    .sort((a, b) => ranges[a]![0] - ranges[b]![0] || ranges[a]![1] - ranges[b]![1]);
  const groups: Group[] = [];
  let cur: Group | undefined;
  for (const i of order) {
    const [pos, len] = ranges[i]!;
    const end = pos + len;
    if (cur) {
      const gap = pos - cur.end;
      const waste = cur.end - cur.start - cur.wanted;
      const newWanted = Math.max(0, end - Math.max(pos, cur.end));
      if (gap <= 0 || gap <= o.tinyGap || (gap <= o.maxGap && waste + gap <= o.slack * (cur.wanted + newWanted))) {
        cur.wanted += newWanted;
        cur.end = Math.max(cur.end, end);
        cur.members.push(i);
        continue;
      }
    }
    cur = { start: pos, end, members: [i], wanted: len };
    groups.push(cur);
  }
  return groups;
}

/** A contiguous byte range [start, end) fetched as one range of a request. */
export interface Unit {
  start: number;
  end: number;
}

/** Splits reads larger than `piece` into equal pieces (fetched in parallel). */
export function splitUnits(groups: readonly { start: number; end: number }[], piece: number): Unit[][] {
  return groups.map((g) => {
    const len = g.end - g.start;
    if (len <= piece) return [{ start: g.start, end: g.end }];
    const n = Math.ceil(len / piece);
    const size = Math.ceil(len / n);
    const out: Unit[] = [];
    for (let a = g.start; a < g.end; a += size) out.push({ start: a, end: Math.min(g.end, a + size) });
    return out;
  });
}

export interface PackOptions {
  maxRanges: number;
  maxHeaderBytes: number;
  /** Σ ceil(len / 128 KiB) per request. */
  maxChunks: number;
  targetBytes: number;
}

/** XrdHttp's readv chunk. */
export const READV_CHUNK = 128 * 1024;

export function rangeSpec(u: Unit): string {
  return `${u.start}-${u.end - 1}`;
}

/** `bytes=a-b,c-d` */
export function rangeHeader(units: readonly Unit[]): string {
  return `bytes=${units.map(rangeSpec).join(',')}`;
}

/** Packs units (in file order) into requests. */
export function packRequests(units: readonly Unit[], o: PackOptions): Unit[][] {
  const out: Unit[][] = [];
  let cur: Unit[] = [];
  let header = 'bytes='.length;
  let chunks = 0;
  let bytes = 0;
  for (const u of units) {
    const len = u.end - u.start;
    const h = rangeSpec(u).length + 1;
    const c = Math.ceil(len / READV_CHUNK);
    if (
      cur.length > 0 &&
      (cur.length + 1 > o.maxRanges || header + h > o.maxHeaderBytes || chunks + c > o.maxChunks || bytes + len > o.targetBytes)
    ) {
      out.push(cur);
      cur = [];
      header = 'bytes='.length;
      chunks = 0;
      bytes = 0;
    }
    cur.push(u);
    header += h;
    chunks += c;
    bytes += len;
  }
  if (cur.length) out.push(cur);
  return out;
}
