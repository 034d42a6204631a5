#!/usr/bin/env node
// Generates src/evaluate/plot/glyphs.ts: the glyph outlines, advance widths and kerning pairs of
// DejaVu Sans (regular and bold) for the characters the plots use, so text can be measured exactly
// and drawn as outlines without any font installed at run time.
//
// Usage: node scripts/gen-glyphs.mjs [fontDir] [outFile]
//   fontDir defaults to /usr/share/fonts/truetype/dejavu (Debian: fonts-dejavu-core).
//
// A minimal TrueType reader: head, hhea, maxp, cmap (format 4), loca, glyf (simple and composite
// glyphs), hmtx and kern (format 0). Quadratic outlines become SVG paths in font units (y down, so a
// glyph is drawn with `scale(size / unitsPerEm)` at the baseline), integers only, relative commands.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fontDir = process.argv[2] ?? '/usr/share/fonts/truetype/dejavu';
const outFile = process.argv[3] ?? join(here, '..', 'src', 'evaluate', 'plot', 'glyphs.ts');

/** Printable ASCII plus the extras physics labels use. */
const EXTRAS =
  'ε×−·≈≤≥µ±°‰²³⁰¹⁴⁵⁶⁷⁸⁹⁻⁺→←↔…–—√∞ℓ' +
  'αβγδζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ' +
  // combining accents (zero advance, drawn over the previous letter): tt̄, bb̄, é via NFD
  '\u0300\u0301\u0302\u0303\u0304\u0307\u0308';
const CHARS = [];
for (let c = 32; c <= 126; c++) CHARS.push(String.fromCharCode(c));
for (const ch of EXTRAS) if (!CHARS.includes(ch)) CHARS.push(ch);

/** Parses the tables of a TrueType font that outline extraction needs. */
function parseFont(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const numTables = dv.getUint16(4);
  const tables = {};
  for (let i = 0; i < numTables; i++) {
    const o = 12 + 16 * i;
    const tag = String.fromCharCode(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]);
    tables[tag] = { offset: dv.getUint32(o + 8), length: dv.getUint32(o + 12) };
  }
  const need = (t) => {
    if (!tables[t]) throw new Error(`font has no ${t} table`);
    return tables[t].offset;
  };
  const head = need('head');
  const unitsPerEm = dv.getUint16(head + 18);
  const indexToLocFormat = dv.getInt16(head + 50);
  const hhea = need('hhea');
  const ascender = dv.getInt16(hhea + 4);
  const descender = dv.getInt16(hhea + 6);
  const numberOfHMetrics = dv.getUint16(hhea + 34);
  const numGlyphs = dv.getUint16(need('maxp') + 4);

  // hmtx
  const hmtx = need('hmtx');
  const advance = (g) => dv.getUint16(hmtx + 4 * Math.min(g, numberOfHMetrics - 1));

  // loca
  const loca = need('loca');
  const glyf = need('glyf');
  const glyphRange = (g) => {
    if (g < 0 || g >= numGlyphs) throw new Error(`glyph ${g} out of range`);
    const [a, b] =
      indexToLocFormat === 0
        ? [dv.getUint16(loca + 2 * g) * 2, dv.getUint16(loca + 2 * g + 2) * 2]
        : [dv.getUint32(loca + 4 * g), dv.getUint32(loca + 4 * g + 4)];
    return [glyf + a, glyf + b];
  };

  // cmap: the (3, 1) Unicode BMP subtable, format 4
  const cmap = need('cmap');
  let sub = -1;
  for (let i = 0, n = dv.getUint16(cmap + 2); i < n; i++) {
    const p = dv.getUint16(cmap + 4 + 8 * i);
    const e = dv.getUint16(cmap + 6 + 8 * i);
    const off = dv.getUint32(cmap + 8 + 8 * i);
    if (dv.getUint16(cmap + off) === 4 && ((p === 3 && e === 1) || (p === 0 && sub < 0))) sub = cmap + off;
  }
  if (sub < 0) throw new Error('font has no cmap format 4 subtable');
  const segX2 = dv.getUint16(sub + 6);
  const endCodes = sub + 14;
  const startCodes = endCodes + segX2 + 2;
  const idDeltas = startCodes + segX2;
  const idRangeOffsets = idDeltas + segX2;
  const glyphOf = (code) => {
    for (let i = 0; i < segX2 / 2; i++) {
      const end = dv.getUint16(endCodes + 2 * i);
      if (code > end) continue;
      const start = dv.getUint16(startCodes + 2 * i);
      if (code < start) return 0;
      const delta = dv.getInt16(idDeltas + 2 * i);
      const ro = dv.getUint16(idRangeOffsets + 2 * i);
      if (ro === 0) return (code + delta) & 0xffff;
      const at = idRangeOffsets + 2 * i + ro + 2 * (code - start);
      const g = dv.getUint16(at);
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };

  /** Contours of glyph g: arrays of {x, y, on} in font units (y up). */
  const contours = (g, depth = 0) => {
    if (depth > 8) throw new Error('composite glyph nesting too deep');
    const [start, end] = glyphRange(g);
    if (end <= start) return [];
    let p = start;
    const nContours = dv.getInt16(p);
    p += 10;
    if (nContours >= 0) {
      const endPts = [];
      for (let i = 0; i < nContours; i++) endPts.push(dv.getUint16(p + 2 * i));
      p += 2 * nContours;
      const nPts = nContours ? endPts[nContours - 1] + 1 : 0;
      p += 2 + dv.getUint16(p); // instructions
      const flags = [];
      while (flags.length < nPts) {
        const f = buf[p++];
        flags.push(f);
        if (f & 8) {
          let r = buf[p++];
          while (r-- > 0) flags.push(f);
        }
      }
      const xs = new Array(nPts);
      const ys = new Array(nPts);
      let v = 0;
      for (let i = 0; i < nPts; i++) {
        const f = flags[i];
        if (f & 2) {
          const d = buf[p++];
          v += f & 16 ? d : -d;
        } else if (!(f & 16)) {
          v += dv.getInt16(p);
          p += 2;
        }
        xs[i] = v;
      }
      v = 0;
      for (let i = 0; i < nPts; i++) {
        const f = flags[i];
        if (f & 4) {
          const d = buf[p++];
          v += f & 32 ? d : -d;
        } else if (!(f & 32)) {
          v += dv.getInt16(p);
          p += 2;
        }
        ys[i] = v;
      }
      const out = [];
      let s = 0;
      for (const e of endPts) {
        const c = [];
        for (let i = s; i <= e; i++) c.push({ x: xs[i], y: ys[i], on: (flags[i] & 1) === 1 });
        out.push(c);
        s = e + 1;
      }
      return out;
    }
    // composite
    const out = [];
    for (;;) {
      const flags = dv.getUint16(p);
      const comp = dv.getUint16(p + 2);
      p += 4;
      let dx;
      let dy;
      if (flags & 1) {
        dx = dv.getInt16(p);
        dy = dv.getInt16(p + 2);
        p += 4;
      } else {
        dx = dv.getInt8(p);
        dy = dv.getInt8(p + 1);
        p += 2;
      }
      if (!(flags & 2)) throw new Error(`glyph ${g}: point-matched composite components are not supported`);
      let a = 1, b = 0, c = 0, d = 1;
      const f2dot14 = (o) => dv.getInt16(o) / 16384;
      if (flags & 8) {
        a = d = f2dot14(p);
        p += 2;
      } else if (flags & 0x40) {
        a = f2dot14(p);
        d = f2dot14(p + 2);
        p += 4;
      } else if (flags & 0x80) {
        a = f2dot14(p);
        b = f2dot14(p + 2);
        c = f2dot14(p + 4);
        d = f2dot14(p + 6);
        p += 8;
      }
      for (const contour of contours(comp, depth + 1)) {
        out.push(contour.map((q) => ({ x: a * q.x + c * q.y + dx, y: b * q.x + d * q.y + dy, on: q.on })));
      }
      if (!(flags & 0x20)) break;
    }
    return out;
  };

  // kern: format 0 pairs of the first horizontal subtable
  const kern = new Map();
  if (tables.kern) {
    const k = tables.kern.offset;
    if (dv.getUint16(k) === 0) {
      let q = k + 4;
      for (let t = 0, n = dv.getUint16(k + 2); t < n; t++) {
        const len = dv.getUint16(q + 2);
        const coverage = dv.getUint16(q + 4);
        if (coverage >> 8 === 0 && (coverage & 1) === 1) {
          const nPairs = dv.getUint16(q + 6);
          for (let i = 0; i < nPairs; i++) {
            const o = q + 14 + 6 * i;
            kern.set(dv.getUint16(o) * 65536 + dv.getUint16(o + 2), dv.getInt16(o + 4));
          }
        }
        q += len;
      }
    }
  }
  return { unitsPerEm, ascender, descender, glyphOf, advance, contours, kern };
}

/**
 * The SVG path of a glyph, y flipped (y down): an absolute `M` to the first point, then relative
 * commands only, so a glyph is placed by rewriting that first `M`.
 */
function pathOf(contours) {
  let cx = 0;
  let cy = 0;
  let first = true;
  let out = '';
  let last = '';
  const num = (v) => {
    const s = String(v);
    // a separator only where the next number would otherwise merge with the previous one
    const sep = out.length === 0 || v < 0 || /[a-zA-Z]$/.test(out) ? '' : ' ';
    out += sep + s;
  };
  /** Writes a command letter unless it repeats the previous one (implicit repetition). */
  const cmd = (c) => {
    if (c !== last || c === 'M' || c === 'm' || c === 'z') out += c;
    last = c === 'M' || c === 'm' ? '' : c;
  };
  for (const contour0 of contours) {
    const pts = contour0.map((p) => ({ x: p.x, y: -p.y, on: p.on }));
    if (pts.length === 0) continue;
    // start on an on-curve point (or the midpoint of the first two off-curve points)
    let startIdx = pts.findIndex((p) => p.on);
    let start;
    let seq;
    if (startIdx >= 0) {
      start = pts[startIdx];
      seq = [...pts.slice(startIdx + 1), ...pts.slice(0, startIdx + 1)];
    } else {
      start = { x: (pts[0].x + pts[1 % pts.length].x) / 2, y: (pts[0].y + pts[1 % pts.length].y) / 2, on: true };
      seq = [...pts.slice(1), pts[0], start];
    }
    const R = (v) => Math.round(v);
    const sx = R(start.x);
    const sy = R(start.y);
    if (first) {
      cmd('M');
      num(sx);
      num(sy);
      first = false;
    } else {
      cmd('m');
      num(sx - cx);
      num(sy - cy);
    }
    cx = sx;
    cy = sy;
    let ctrl = null;
    for (const p of seq) {
      if (p.on) {
        const x = R(p.x);
        const y = R(p.y);
        if (ctrl) {
          cmd('q');
          num(ctrl.x - cx);
          num(ctrl.y - cy);
          num(x - cx);
          num(y - cy);
          ctrl = null;
        } else {
          if (x === cx && y === cy) continue;
          if (x === cx) {
            cmd('v');
            num(y - cy);
          } else if (y === cy) {
            cmd('h');
            num(x - cx);
          } else {
            cmd('l');
            num(x - cx);
            num(y - cy);
          }
        }
        cx = x;
        cy = y;
      } else if (ctrl) {
        const mx = R((ctrl.rx + p.x) / 2);
        const my = R((ctrl.ry + p.y) / 2);
        cmd('q');
        num(ctrl.x - cx);
        num(ctrl.y - cy);
        num(mx - cx);
        num(my - cy);
        cx = mx;
        cy = my;
        ctrl = { x: R(p.x), y: R(p.y), rx: p.x, ry: p.y };
      } else {
        ctrl = { x: R(p.x), y: R(p.y), rx: p.x, ry: p.y };
      }
    }
    if (ctrl) {
      cmd('q');
      num(ctrl.x - cx);
      num(ctrl.y - cy);
      num(sx - cx);
      num(sy - cy);
    }
    cmd('z');
    cx = sx;
    cy = sy;
  }
  return out;
}

function build(file) {
  const font = parseFont(readFileSync(join(fontDir, file)));
  if (font.unitsPerEm !== 2048) throw new Error(`${file}: unitsPerEm ${font.unitsPerEm}, expected 2048`);
  const glyphs = {};
  const gids = new Map();
  for (const ch of CHARS) {
    const g = font.glyphOf(ch.codePointAt(0));
    if (g === 0) throw new Error(`${file}: no glyph for ${JSON.stringify(ch)} (U+${ch.codePointAt(0).toString(16)})`);
    gids.set(g, ch);
    let contours = font.contours(g);
    const advance = font.advance(g);
    if (advance === 0 && contours.length) {
      // a combining mark: centered on x = 0, the renderer centers it over the previous glyph
      const xs = contours.flat().map((p) => p.x);
      const cx = Math.round((Math.min(...xs) + Math.max(...xs)) / 2);
      contours = contours.map((c) => c.map((p) => ({ ...p, x: p.x - cx })));
    }
    glyphs[ch] = [advance, pathOf(contours)];
  }
  const kern = [];
  for (const [key, v] of font.kern) {
    const a = gids.get(Math.floor(key / 65536));
    const b = gids.get(key % 65536);
    if (a !== undefined && b !== undefined && v !== 0) kern.push([a + b, v]);
  }
  kern.sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0));
  return { ascender: font.ascender, descender: font.descender, glyphs, kern };
}

const regular = build('DejaVuSans.ttf');
const bold = build('DejaVuSans-Bold.ttf');

/** `{"A":[1401,"M..."],…}` as compact TypeScript source. */
function glyphTable(glyphs) {
  return (
    '{\n' +
    Object.entries(glyphs)
      .map(([ch, [adv, d]]) => `  ${JSON.stringify(ch)}: [${adv}, ${JSON.stringify(d)}],`)
      .join('\n') +
    '\n}'
  );
}
/** Kerning pairs as one string: "AV-123 ..." → two characters, then the adjustment in font units. */
function kernString(kern) {
  return JSON.stringify(kern.map(([pair, v]) => pair + v).join('\u0001'));
}

const src = `// Generated by scripts/gen-glyphs.mjs from DejaVu Sans and DejaVu Sans Bold — do not edit.
//
// Glyph outlines and metrics of the DejaVu fonts (https://dejavu-fonts.github.io/).
// Copyright (c) 2003 by Bitstream, Inc. All Rights Reserved. Bitstream Vera is a trademark of
// Bitstream, Inc. DejaVu changes are in public domain. Embedded under the Bitstream Vera Fonts
// license, which permits reproduction and distribution of the Font Software provided this notice
// is kept: "Permission is hereby granted, free of charge, to any person obtaining a copy of the
// fonts accompanying this license ("Fonts") and associated documentation files (the "Font
// Software"), to reproduce and distribute the Font Software, including without limitation the
// rights to use, copy, merge, publish, distribute, and/or sell copies of the Font Software, and to
// permit persons to whom the Font Software is furnished to do so, subject to the following
// conditions: The above copyright and trademark notices and this permission notice shall be
// included in all copies of one or more of the Font Software typefaces. [...] THE FONT SOFTWARE IS
// PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND." Full text: the Bitstream Vera license
// (e.g. /usr/share/doc/fonts-dejavu-core/copyright on Debian).
//
// Units: font units, ${2048} per em. Paths are y-down (draw with scale(size / 2048) at the baseline),
// start with an absolute M and use relative commands only. Combining marks (advance 0) are centered
// on x = 0, to be placed over the middle of the previous glyph.

/** One glyph: advance width and SVG path data, both in font units. */
export type Glyph = readonly [advance: number, path: string];

/** Metrics and outlines of one face. */
export interface Face {
  /** Ascender and descender (negative) in font units. */
  readonly ascender: number;
  readonly descender: number;
  readonly glyphs: Readonly<Record<string, Glyph>>;
  /** Kerning pairs: two characters then the adjustment, separated by U+0001. */
  readonly kern: string;
}

export const UNITS_PER_EM = 2048;

export const REGULAR: Face = {
  ascender: ${regular.ascender},
  descender: ${regular.descender},
  glyphs: ${glyphTable(regular.glyphs)},
  kern: ${kernString(regular.kern)},
};

export const BOLD: Face = {
  ascender: ${bold.ascender},
  descender: ${bold.descender},
  glyphs: ${glyphTable(bold.glyphs)},
  kern: ${kernString(bold.kern)},
};
`;
writeFileSync(outFile, src);
console.log(`${outFile}: ${CHARS.length} characters × 2 faces, ${regular.kern.length} + ${bold.kern.length} kerning pairs, ${src.length} bytes`);
