/**
 * HTTP byte-range helpers: `Content-Range` parsing and a strict `multipart/byteranges` parser (RFC 9110
 * §14.6). Servers differ in the details, so the parser takes:
 *
 * - the boundary from Content-Type, quoted or not (XrdHttp: `123456`, EOS: `EOSMULTIPARTBOUNDARY`);
 * - a preamble before the first boundary (XrdHttp starts the body with CRLF);
 * - part header names in any case (XrdHttp writes `Content-range`), CRLF or bare LF line ends;
 * - parts in any order, overlapping or merged: each part's own Content-Range says what it holds.
 *
 * It is strict about what would silently corrupt data: every part must have a Content-Range, its data
 * must be followed by the next boundary, and the closing boundary must be there. XrdHttp 5.5.3 writes a
 * second HTTP response (`HTTP/1.1 500 ... Read vector is too long`) into the body when a request has too
 * many pieces; that fails here as garbled instead of being read as data.
 */

export interface ContentRange {
  /** First and last byte (inclusive), as in the header. */
  start: number;
  end: number;
  /** Complete length, or undefined for `*`. */
  total: number | undefined;
}

/** `bytes 0-99/1234`, `bytes 0-99/*`; undefined for anything else (including `bytes * /1234`). */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*\/\s*(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  return { start, end, total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The complete length of a Content-Range (`bytes a-b/N`, or the unsatisfied-range form of a 416 answer). */
export function contentRangeTotal(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /\/\s*(\d+)\s*$/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/** The boundary parameter of a `multipart/byteranges` Content-Type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/byteranges\s*(;|$)/i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType);
  const b = m ? (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]) : undefined;
  return b && b.length <= 200 ? b : undefined;
}

export interface BytePart extends ContentRange {
  data: Uint8Array;
}

/** Thrown for a body that is not a well-formed multipart/byteranges answer. */
export class MultipartError extends Error {}

const CR = 13;
const LF = 10;

function indexOf(buf: Uint8Array, needle: Uint8Array, from: number): number {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).indexOf(needle, from);
}

/** Position after the line end at `pos` (CRLF or LF), or -1 when there is none. */
function skipLineEnd(buf: Uint8Array, pos: number): number {
  if (buf[pos] === CR && buf[pos + 1] === LF) return pos + 2;
  if (buf[pos] === LF) return pos + 1;
  return -1;
}

/**
 * Splits a multipart/byteranges body into its parts (in body order; data are views into `body`).
 * Throws MultipartError when the body is truncated or garbled.
 */
export function parseMultipart(body: Uint8Array, boundary: string): BytePart[] {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const parts: BytePart[] = [];
  let pos = indexOf(body, delim, 0);
  if (pos < 0) throw new MultipartError(`no boundary '${boundary}' in the body`);
  // the preamble, if any, must end with a line break (or be empty)
  if (pos > 0 && body[pos - 1] !== LF) throw new MultipartError('boundary not at the start of a line');
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++; // transport padding
    const headStart = skipLineEnd(body, pos);
    if (headStart < 0) throw new MultipartError(pos >= body.length ? 'truncated after a boundary' : 'garbage after a boundary');
    // part headers, up to an empty line
    let range: ContentRange | undefined;
    let line = headStart;
    let dataStart = -1;
    for (let n = 0; n < 64; n++) {
      let eol = line;
      while (eol < body.length && body[eol] !== LF) eol++;
      if (eol >= body.length) throw new MultipartError('truncated part headers');
      const text = Buffer.from(body.buffer, body.byteOffset + line, eol - line).toString('latin1').replace(/\r$/, '');
      if (text === '') {
        dataStart = eol + 1;
        break;
      }
      const m = /^content-range\s*:\s*(.*)$/i.exec(text);
      if (m) {
        range = parseContentRange(m[1]);
        if (!range) throw new MultipartError(`unreadable part Content-Range '${m[1]!.slice(0, 80)}'`);
      }
      line = eol + 1;
    }
    if (dataStart < 0) throw new MultipartError('part headers too long');
    if (!range) throw new MultipartError('a part without Content-Range');
    const dataEnd = dataStart + (range.end - range.start + 1);
    if (dataEnd > body.length) throw new MultipartError(`part ${range.start}-${range.end} truncated (${body.length - dataStart} of ${dataEnd - dataStart} bytes)`);
    parts.push({ ...range, data: body.subarray(dataStart, dataEnd) });
    // the data is followed by a line break and the next delimiter
    const next = skipLineEnd(body, dataEnd);
    if (next < 0 || !Buffer.from(body.buffer, body.byteOffset + next, Math.min(delim.length, body.length - next)).equals(delim)) {
      throw new MultipartError(
        next >= 0 && next + delim.length > body.length ? 'truncated: no boundary after the last part' : `no boundary after part ${range.start}-${range.end}`,
      );
    }
    pos = next;
  }
}
