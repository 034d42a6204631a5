/**
 * Text measured with the embedded DejaVu Sans metrics (so layout is exact), written either as SVG
 * `<text>` (editable) or as glyph outlines (no font needed to rasterize).
 */
import { BOLD, REGULAR, UNITS_PER_EM, type Face, type Glyph } from './glyphs.js';

/** A run of text; `sup` runs are drawn smaller and raised (exponents: 10⁻³). */
export interface TextRun {
  text: string;
  sup?: boolean;
}
/** Plain text, or runs of normal and superscript text. */
export type RichText = string | readonly TextRun[];
/** Horizontal alignment of text at its anchor point (SVG text-anchor). */
export type Anchor = 'start' | 'middle' | 'end';

/** Superscript runs: size factor and baseline rise (in em of the base size). */
export const SUP_SCALE = 0.7;
export const SUP_RISE = 0.42;
/** Height of capitals and depth of descenders, in em (DejaVu Sans: 1493 and ~483 units). */
export const CAP_HEIGHT = 1493 / UNITS_PER_EM;
export const DESCENT = 483 / UNITS_PER_EM;

const kernCache = new WeakMap<Face, Map<string, number>>();
function kernTable(face: Face): Map<string, number> {
  let m = kernCache.get(face);
  if (!m) {
    m = new Map();
    for (const entry of face.kern.split('\u0001')) {
      if (entry.length > 2) m.set(entry.slice(0, 2), Number(entry.slice(2)));
    }
    kernCache.set(face, m);
  }
  return m;
}

/** The glyphs drawn for a character: itself, its NFD decomposition (base + accents), or '?'. */
function glyphsOf(face: Face, ch: string): Glyph[] {
  const g = face.glyphs[ch];
  if (g) return [g];
  if (ch === '\u03bc' && face.glyphs['\u00b5']) return [face.glyphs['\u00b5']];
  const parts = [...ch.normalize('NFD')];
  if (parts.length > 1) {
    const gs = parts.map((p) => face.glyphs[p] ?? face.glyphs[p.normalize('NFKD')]);
    if (gs.every((x): x is Glyph => x !== undefined)) return gs;
    const base = face.glyphs[parts[0] as string];
    if (base) return [base]; // drop accents we do not have
  }
  return [face.glyphs['?'] as Glyph];
}

function runsOf(text: RichText): readonly TextRun[] {
  return typeof text === 'string' ? [{ text }] : text;
}

/** Plain string of rich text (superscripts inline), e.g. for titles of SVG elements. */
export function plainText(text: RichText): string {
  return runsOf(text)
    .map((r) => r.text)
    .join('');
}

/** Advance of a string in font units, kerning included; the glyphs with their pen positions. */
function layoutRun(text: string, bold: boolean): { width: number; glyphs: Array<[number, Glyph]> } {
  const face = bold ? BOLD : REGULAR;
  const kern = kernTable(face);
  const glyphs: Array<[number, Glyph]> = [];
  let pen = 0;
  let prev = '';
  let prevAdvance = 0;
  for (const ch of text) {
    if (prev) pen += kern.get(prev + ch) ?? 0;
    for (const g of glyphsOf(face, ch)) {
      if (g[0] === 0 && prevAdvance > 0) {
        // combining mark: over the middle of the previous glyph
        glyphs.push([pen - prevAdvance / 2, g]);
        continue;
      }
      glyphs.push([pen, g]);
      pen += g[0];
      prevAdvance = g[0];
    }
    prev = ch;
  }
  return { width: pen, glyphs };
}

/** Width in px of `text` at font size `size` px (DejaVu Sans advances and kerning). */
export function measure(text: RichText, size: number, bold = false): number {
  let w = 0;
  for (const r of runsOf(text)) {
    const s = r.sup ? size * SUP_SCALE : size;
    w += (layoutRun(r.text, bold).width * s) / UNITS_PER_EM;
  }
  return w;
}

/** Escapes text for XML character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** A number for SVG attributes: at most 2 decimals, no trailing zeros. */
export function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** Where and how a piece of text is drawn. */
export interface TextStyle {
  size: number;
  anchor?: Anchor;
  bold?: boolean;
  /** Rotation in degrees about the anchor point (clockwise, as SVG): -90 reads bottom to top. */
  rotate?: number;
  /** Fill color (default: inherited). */
  color?: string;
}

function startOffset(width: number, anchor: Anchor): number {
  return anchor === 'middle' ? -width / 2 : anchor === 'end' ? -width : 0;
}

/**
 * Text as glyph outlines: SVG `<path>` elements (one per run) whose baseline starts at (x, y)
 * shifted by the anchor, rotated by `rotate` degrees about (x, y).
 */
export function outline(
  text: RichText,
  x: number,
  y: number,
  size: number,
  anchor: Anchor = 'start',
  bold = false,
  rotate = 0,
  color?: string,
): string {
  const total = measure(text, size, bold);
  let pen = startOffset(total, anchor);
  const base = `translate(${num(x)} ${num(y)})${rotate ? ` rotate(${num(rotate)})` : ''}`;
  const fill = color ? ` fill="${escapeXml(color)}"` : '';
  let out = '';
  for (const r of runsOf(text)) {
    const s = r.sup ? size * SUP_SCALE : size;
    const dy = r.sup ? -size * SUP_RISE : 0;
    const { width, glyphs } = layoutRun(r.text, bold);
    let d = '';
    for (const [gx, [, path]] of glyphs) {
      if (!path) continue;
      // Each glyph path starts with an absolute "M x y" followed by relative commands only.
      const m = /^M(-?\d+)(?: |(?=-))(-?\d+)/.exec(path);
      if (!m) continue;
      d += `M${Number(m[1]) + gx} ${m[2]}${path.slice(m[0].length)}`;
    }
    if (d) {
      const scale = s / UNITS_PER_EM;
      out += `<path${fill} transform="${base} translate(${num(pen)} ${num(dy)}) scale(${+scale.toPrecision(6)})" d="${d}"/>`;
    }
    pen += (width * s) / UNITS_PER_EM;
  }
  return out;
}

/** The font stack of SVG text: DejaVu Sans first (the metrics used for layout), then look-alikes. */
export const FONT_FAMILY = 'DejaVu Sans, Bitstream Vera Sans, Verdana, Helvetica, Arial, sans-serif';

/** Text as an SVG `<text>` element (superscripts as raised `<tspan>`s), anchored at (x, y). */
export function svgText(
  text: RichText,
  x: number,
  y: number,
  size: number,
  anchor: Anchor = 'start',
  bold = false,
  rotate = 0,
  color?: string,
): string {
  let attrs = `x="${num(x)}" y="${num(y)}" font-size="${num(size)}"`;
  if (anchor !== 'start') attrs += ` text-anchor="${anchor}"`;
  if (bold) attrs += ' font-weight="bold"';
  if (color) attrs += ` fill="${escapeXml(color)}"`;
  if (rotate) attrs += ` transform="rotate(${num(rotate)} ${num(x)} ${num(y)})"`;
  let body = '';
  let raised = false;
  for (const r of runsOf(text)) {
    const t = escapeXml(r.text);
    if (r.sup) {
      body += `<tspan dy="${num(-size * SUP_RISE)}" font-size="${num(size * SUP_SCALE)}">${t}</tspan>`;
      raised = true;
    } else if (raised) {
      body += `<tspan dy="${num(size * SUP_RISE)}">${t}</tspan>`;
      raised = false;
    } else {
      body += t;
    }
  }
  return `<text ${attrs}>${body}</text>`;
}
