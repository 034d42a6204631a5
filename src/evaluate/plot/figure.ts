/**
 * A small chart library for publication-style figures: a grid of panels with linear or log axes,
 * line, step-histogram and heatmap series, legends and colorbars. One layout renders two ways:
 * SVG with real text (`toSvg`) and PNG through SVG with text as glyph outlines (`toPng`).
 */
import { svgToPng } from './png.js';
import {
  CAP_HEIGHT,
  DESCENT,
  FONT_FAMILY,
  SUP_RISE,
  SUP_SCALE,
  escapeXml,
  measure,
  num,
  outline,
  plainText,
  svgText,
  type Anchor,
  type RichText,
} from './text.js';
import { formatDecade, formatLinearTicks, formatLogMinor, linearTicks, logTicks } from './ticks.js';

// ------------------------------------------------------------------------------------------------
// Public types

/** Axis scale. */
export type ScaleKind = 'linear' | 'log';

/** One axis of a panel. */
export interface AxisOptions {
  label?: RichText;
  /** Default linear. On a log axis, values ≤ 0 are dropped. */
  scale?: ScaleKind;
  /** Explicit [min, max]; otherwise the data range plus `margin`. */
  domain?: readonly [number, number];
  /** Fraction of the data range added on both sides when the domain is automatic (default 0.05). */
  margin?: number;
  /** Integer ticks only (epochs, counts). */
  integer?: boolean;
}

/** Options of a panel (one set of axes). */
export interface PanelOptions {
  title?: RichText;
  x?: AxisOptions;
  y?: AxisOptions;
  /** Light grid lines at the major ticks (default true). */
  grid?: boolean;
}

/** A polyline. */
export interface LineOptions {
  label?: string;
  /** CSS color; default: the next color of the tab10 cycle. */
  color?: string;
  /** Stroke width in px (default 2). */
  width?: number;
  /** Dash pattern in px, e.g. [6, 4]. */
  dash?: readonly number[];
  opacity?: number;
  /** Draw a dot at every point. */
  markers?: boolean;
}

/** A step histogram (outline of the bins, sides down to zero). */
export interface StepOptions {
  label?: string;
  color?: string;
  width?: number;
  dash?: readonly number[];
  /** Fill under the steps with the line color at `fillOpacity` (default 0.15). */
  fill?: boolean;
  fillOpacity?: number;
}

/** Colormaps for heatmaps. */
export type ColormapName = 'viridis' | 'Blues';

/** A matrix drawn as colored cells, row 0 at the top (imshow-style), with categorical axes. */
export interface HeatmapOptions {
  /** Labels of the columns (x axis, left to right) and rows (y axis, top to bottom). */
  xCategories: readonly string[];
  yCategories: readonly string[];
  colormap?: ColormapName;
  /** Color scale range; default the finite min and max of the values. */
  domain?: readonly [number, number];
  /** Text lines written in each cell (annotations[row][col]), e.g. ["0.93", "(9,312)"]. */
  annotations?: readonly (readonly (readonly string[])[])[];
  /** Draw a colorbar at the right (default true), with this label. */
  colorbar?: boolean;
  colorbarLabel?: RichText;
}

/** Legend placement, as matplotlib's `loc`. */
export type LegendLoc =
  | 'best'
  | 'upper right'
  | 'upper left'
  | 'lower left'
  | 'lower right'
  | 'center left'
  | 'center right'
  | 'lower center'
  | 'upper center'
  | 'center';

export interface LegendOptions {
  loc?: LegendLoc;
  title?: string;
  fontSize?: number;
}

export interface FigureOptions {
  rows?: number;
  cols?: number;
  /** Size of one panel cell in px (default 560 × 420). */
  panelWidth?: number;
  panelHeight?: number;
  /** Figure title above all panels. */
  title?: RichText;
  /** Prefix of element ids (clip paths, gradients); default derived from the titles. */
  idPrefix?: string;
}

/** matplotlib's default color cycle (tab10). */
export const TAB10: readonly string[] = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

// ------------------------------------------------------------------------------------------------
// Style (px at scale 1)

const FS_TICK = 11.5;
const FS_LABEL = 13;
const FS_TITLE = 14;
const FS_SUPTITLE = 16;
const FS_LEGEND = 11.5;
const PAD = 10;
const TICK_LEN = 5;
const MINOR_LEN = 2.5;
const TICK_PAD = 3.5;
const LABEL_PAD = 6;
const TITLE_PAD = 9;
const INK = '#1a1a1a';
const FRAME = '#333333';
const GRID = '#e3e3e3';

// ------------------------------------------------------------------------------------------------
// Colors

/** Control points of the colormaps (matplotlib viridis at 0, 0.1, …, 1; ColorBrewer Blues). */
const COLORMAPS: Record<ColormapName, readonly string[]> = {
  viridis: [
    '#440154', '#482475', '#414487', '#355f8d', '#2a788e', '#21918c',
    '#22a884', '#44bf70', '#7ad151', '#bddf26', '#fde725',
  ],
  Blues: ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'],
};

function parseHex(c: string): [number, number, number] {
  const h = c.replace('#', '');
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

function toHex([r, g, b]: readonly [number, number, number]): string {
  const h = (v: number): string => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0');
  return `#${h(r)}${h(g)}${h(b)}`;
}

/** The color of a colormap at t ∈ [0, 1] (linear interpolation between control points). */
export function colormap(name: ColormapName, t: number): string {
  const stops = COLORMAPS[name];
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = parseHex(stops[i] as string);
  const b = parseHex(stops[i + 1] as string);
  return toHex([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]);
}

/** Relative luminance (WCAG) of a #rrggbb color. */
function luminance(c: string): number {
  const lin = (v: number): number => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = parseHex(c);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Black or white, whichever reads better on `background`. */
export function contrastText(background: string): string {
  return luminance(background) > 0.33 ? '#000000' : '#ffffff';
}

// ------------------------------------------------------------------------------------------------
// Internal series

interface LineSeries extends LineOptions {
  kind: 'line';
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: string;
}
interface StepSeries extends StepOptions {
  kind: 'step';
  edges: ArrayLike<number>;
  counts: ArrayLike<number>;
  color: string;
}
interface HeatmapSeries extends HeatmapOptions {
  kind: 'heatmap';
  values: readonly (readonly number[])[];
}
type Series = LineSeries | StepSeries | HeatmapSeries;

/** How text is written: SVG text elements, or glyph outlines. */
export type TextMode = 'text' | 'outline';

/** State of one rendering pass (exported for Panel.render's signature only). */
export interface RenderContext {
  mode: TextMode;
  defs: string[];
  id: string;
}

interface TextStyle {
  size: number;
  anchor?: Anchor;
  bold?: boolean;
  rotate?: number;
  color?: string;
}

function drawText(ctx: RenderContext, text: RichText, x: number, y: number, s: TextStyle): string {
  const f = ctx.mode === 'text' ? svgText : outline;
  return f(text, x, y, s.size, s.anchor ?? 'start', s.bold ?? false, s.rotate ?? 0, s.color);
}

/** Height above the baseline of a text (capitals; superscripts rise higher). */
function ascent(text: RichText, size: number): number {
  if (typeof text !== 'string' && text.some((r) => r.sup)) return size * (SUP_RISE + SUP_SCALE * CAP_HEIGHT);
  return size * CAP_HEIGHT;
}

function isEmpty(t: RichText | undefined): boolean {
  return t === undefined || plainText(t).length === 0;
}

/** Text shrunk (down to 10 px) and then shortened with an ellipsis to fit `maxW` px. */
function fitText(text: RichText, size: number, maxW: number, bold = false): { text: RichText; size: number } {
  const w = measure(text, size, bold);
  if (w <= maxW) return { text, size };
  const s = Math.max(10, (size * maxW) / w);
  if (measure(text, s, bold) <= maxW) return { text, size: s };
  const chars = [...plainText(text)];
  while (chars.length > 1 && measure(chars.join('') + '\u2026', s, bold) > maxW) chars.pop();
  return { text: chars.join('') + '\u2026', size: s };
}

/** A panel title centered over the plot area, kept inside the panel's box. */
function drawTitle(ctx: RenderContext, title: RichText, area: Rect, box: Rect, baseline: number): string {
  const f = fitText(title, FS_TITLE, box.w - 2 * PAD);
  const half = measure(f.text, f.size) / 2;
  const cx = Math.min(box.x + box.w - PAD - half, Math.max(box.x + PAD + half, area.x + area.w / 2));
  return drawText(ctx, f.text, cx, baseline, { size: f.size, anchor: 'middle' });
}

/** Snaps to the half pixel (a device pixel at 2×), for crisp 1-px lines. */
function snap(v: number): number {
  return Math.round(v * 2) / 2;
}

/** A rectangle in px. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

// ------------------------------------------------------------------------------------------------
// Scales and ticks

interface Scale {
  kind: ScaleKind;
  lo: number;
  hi: number;
  /** Pixel positions of lo and hi. */
  p0: number;
  p1: number;
}

function project(s: Scale, v: number): number {
  return projector(s)(v);
}

/** The data → px function of a scale (NaN for values ≤ 0 on a log scale). */
function projector(s: Scale): (v: number) => number {
  if (s.kind === 'log') {
    const a = Math.log10(s.lo);
    const k = (s.p1 - s.p0) / (Math.log10(s.hi) - a);
    const p0 = s.p0;
    return (v) => (v > 0 ? p0 + (Math.log10(v) - a) * k : Number.NaN);
  }
  const k = (s.p1 - s.p0) / (s.hi - s.lo);
  const p0 = s.p0 - s.lo * k;
  return (v) => p0 + v * k;
}

interface Tick {
  value: number;
  label: RichText;
}
interface AxisTicks {
  major: Tick[];
  minor: number[];
}

/** Ticks for an axis of `length` px whose labels do not overlap. */
function axisTicks(s: Scale, opts: AxisOptions, horizontal: boolean): AxisTicks {
  const length = Math.abs(s.p1 - s.p0);
  const fits = (ticks: Tick[]): boolean => {
    for (let i = 1; i < ticks.length; i++) {
      const a = ticks[i - 1] as Tick;
      const b = ticks[i] as Tick;
      const gap = Math.abs(project(s, b.value) - project(s, a.value));
      const need = horizontal
        ? (measure(a.label, FS_TICK) + measure(b.label, FS_TICK)) / 2 + 8
        : FS_TICK * 1.3;
      if (gap < need) return false;
    }
    return true;
  };
  if (s.kind === 'log') {
    const maxMajor = Math.max(2, Math.min(9, Math.floor(length / (horizontal ? FS_TICK * 3 : FS_TICK * 2))));
    for (let m = maxMajor; m >= 1; m--) {
      const lt = logTicks(s.lo, s.hi, m);
      let major: Tick[] = lt.major.map((v) => ({ value: v, label: formatDecade(v) }));
      let minor = lt.minor;
      if (major.length < 2) {
        // Less than a decade: label the 2…9 × 10^k ticks as plain numbers (a subset if crowded).
        const all = [...lt.major, ...lt.minor].sort((a, b) => a - b);
        for (const subs of [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 5], [1, 3], [1]]) {
          const pick = all.filter((v) => subs.includes(Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9))));
          const t = pick.map((v) => ({ value: v, label: lt.major.includes(v) ? formatDecade(v) : formatLogMinor(v) }));
          if (fits(t) || subs.length === 1) {
            major = t;
            minor = all.filter((v) => !pick.includes(v));
            break;
          }
        }
        return { major, minor };
      }
      if (fits(major) || m === 1) return { major, minor };
    }
    return { major: [], minor: [] };
  }
  // at most 8 intervals (matplotlib's AutoLocator allows 9; a little sparser reads cleaner)
  const nb0 = Math.max(1, Math.min(8, Math.floor(length / (FS_TICK * (horizontal ? 4 : 3.5)))));
  let last: Tick[] = [];
  for (let nb = nb0; nb >= 1; nb--) {
    const values = linearTicks(s.lo, s.hi, nb, opts.integer);
    const labels = formatLinearTicks(values);
    last = values.map((v, i) => ({ value: v, label: labels[i] ?? '' }));
    if (fits(last)) break;
  }
  return { major: last, minor: [] };
}

// ------------------------------------------------------------------------------------------------
// Geometry helpers

/**
 * Splits a polyline into runs of finite points, in px, dropping points closer than 0.3 px to the
 * previously kept one (a run's last point is always kept): millions of ROC points stay cheap.
 */
function pixelRuns(xs: ArrayLike<number>, ys: ArrayLike<number>, sx: Scale, sy: Scale): number[][] {
  const runs: number[][] = [];
  let cur: number[] = [];
  let lx = 0;
  let ly = 0;
  let px0 = 0;
  let py0 = 0;
  let pending = false; // a skipped point that must end the run if it is the last
  const close = (): void => {
    if (pending) cur.push(px0, py0);
    pending = false;
    if (cur.length) runs.push(cur);
    cur = [];
  };
  const fx = projector(sx);
  const fy = projector(sy);
  const n = Math.min(xs.length, ys.length);
  for (let i = 0; i < n; i++) {
    const px = fx(xs[i] as number);
    const py = fy(ys[i] as number);
    if (!Number.isFinite(px) || !Number.isFinite(py)) {
      close();
      continue;
    }
    if (cur.length === 0 || (px - lx) ** 2 + (py - ly) ** 2 >= 0.09) {
      cur.push(px, py);
      lx = px;
      ly = py;
      pending = false;
    } else {
      px0 = px;
      py0 = py;
      pending = true;
    }
  }
  close();
  return runs;
}

/**
 * The parts of a polyline inside `r` (Liang–Barsky per segment). Series are clipped geometrically,
 * so the PNG needs no clip path (a clip path costs resvg a full-canvas mask).
 */
export function clipPolyline(pts: readonly number[], r: Rect): number[][] {
  const x0 = r.x;
  const x1 = r.x + r.w;
  const y0 = r.y;
  const y1 = r.y + r.h;
  const runs: number[][] = [];
  let cur: number[] = [];
  if (pts.length === 2) {
    const x = pts[0] as number;
    const y = pts[1] as number;
    return x >= x0 && x <= x1 && y >= y0 && y <= y1 ? [[x, y]] : [];
  }
  for (let i = 0; i + 3 < pts.length; i += 2) {
    const ax = pts[i] as number;
    const ay = pts[i + 1] as number;
    const dx = (pts[i + 2] as number) - ax;
    const dy = (pts[i + 3] as number) - ay;
    let t0 = 0;
    let t1 = 1;
    let visible = true;
    for (const [p, q] of [
      [-dx, ax - x0],
      [dx, x1 - ax],
      [-dy, ay - y0],
      [dy, y1 - ay],
    ] as const) {
      if (p === 0) {
        if (q < 0) {
          visible = false;
          break;
        }
      } else {
        const t = q / p;
        if (p < 0) {
          if (t > t1) {
            visible = false;
            break;
          }
          if (t > t0) t0 = t;
        } else {
          if (t < t0) {
            visible = false;
            break;
          }
          if (t < t1) t1 = t;
        }
      }
    }
    if (!visible) {
      if (cur.length) runs.push(cur);
      cur = [];
      continue;
    }
    if (cur.length && t0 > 0) {
      runs.push(cur);
      cur = [];
    }
    if (cur.length === 0) cur.push(ax + t0 * dx, ay + t0 * dy);
    cur.push(ax + t1 * dx, ay + t1 * dy);
    if (t1 < 1) {
      runs.push(cur);
      cur = [];
    }
  }
  if (cur.length) runs.push(cur);
  return runs;
}

/** Douglas–Peucker simplification in px: drops points within `eps` of the kept polyline. */
function simplify(pts: number[], eps: number): number[] {
  const n = pts.length / 2;
  if (n <= 2) return pts;
  const keep = new Uint8Array(n);
  keep[0] = 1;
  keep[n - 1] = 1;
  const stack: number[] = [0, n - 1];
  const eps2 = eps * eps;
  while (stack.length) {
    const b = stack.pop() as number;
    const a = stack.pop() as number;
    const ax = pts[2 * a] as number;
    const ay = pts[2 * a + 1] as number;
    const dx = (pts[2 * b] as number) - ax;
    const dy = (pts[2 * b + 1] as number) - ay;
    const len2 = dx * dx + dy * dy;
    let worst = -1;
    let worstD = eps2;
    for (let i = a + 1; i < b; i++) {
      const px = (pts[2 * i] as number) - ax;
      const py = (pts[2 * i + 1] as number) - ay;
      // squared distance to the segment a–b
      const t = len2 > 0 ? Math.max(0, Math.min(1, (px * dx + py * dy) / len2)) : 0;
      const d = (px - t * dx) ** 2 + (py - t * dy) ** 2;
      if (d > worstD) {
        worstD = d;
        worst = i;
      }
    }
    if (worst >= 0) {
      keep[worst] = 1;
      stack.push(a, worst, worst, b);
    }
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) out.push(pts[2 * i] as number, pts[2 * i + 1] as number);
  return out;
}

function pathOf(pts: readonly number[]): string {
  let d = '';
  for (let i = 0; i < pts.length; i += 2) d += `${i === 0 ? 'M' : 'L'}${num(pts[i] as number)} ${num(pts[i + 1] as number)}`;
  return d;
}

/** Points along a polyline, at most `step` px apart (for legend placement). */
function samplePolyline(pts: readonly number[], step: number, out: number[]): void {
  for (let i = 0; i + 1 < pts.length; i += 2) {
    const x = pts[i] as number;
    const y = pts[i + 1] as number;
    out.push(x, y);
    if (i + 3 < pts.length) {
      const dx = (pts[i + 2] as number) - x;
      const dy = (pts[i + 3] as number) - y;
      const k = Math.min(200, Math.floor(Math.hypot(dx, dy) / step));
      for (let j = 1; j < k; j++) out.push(x + (dx * j) / k, y + (dy * j) / k);
    }
  }
}

/** Points of a drawn series in px, and how much covering them matters. */
interface Sample {
  pts: number[];
  weight: number;
}

/** Grid points inside the area under a step outline (x-monotone polygon closed at its baseline). */
function sampleFill(outlinePts: readonly number[], area: Rect, step: number): number[] {
  const out: number[] = [];
  const bottom = area.y + area.h;
  for (let i = 0; i + 3 < outlinePts.length; i += 2) {
    const x0 = outlinePts[i] as number;
    const y0 = outlinePts[i + 1] as number;
    const x1 = outlinePts[i + 2] as number;
    const y1 = outlinePts[i + 3] as number;
    if (y0 !== y1 || x1 <= x0) continue; // horizontal tops only
    const top = Math.max(area.y, y0);
    for (let x = Math.ceil(x0 / step) * step; x < x1; x += step) {
      for (let y = bottom - step / 2; y > top; y -= step) out.push(x, y);
    }
  }
  return out;
}

function dashAttr(dash: readonly number[] | undefined): string {
  return dash && dash.length ? ` stroke-dasharray="${dash.map(num).join(' ')}"` : '';
}

/** FNV-1a hash, base 36: stable element ids. */
function hashId(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** Width and height in px of a legend box. */
function legendSize(entries: readonly (LineSeries | StepSeries)[], opts: LegendOptions, fs: number): { w: number; h: number } {
  const pad = 0.5 * fs;
  const handle = 2 * fs;
  const gap = 0.7 * fs;
  const rowH = 1.45 * fs;
  const titleH = opts.title ? 1.45 * fs : 0;
  const textW = Math.max(...entries.map((e) => measure(e.label ?? '', fs)));
  const titleW = opts.title ? measure(opts.title, fs) : 0;
  return {
    w: Math.ceil(Math.max(handle + gap + textW, titleW) + 2 * pad),
    h: Math.ceil(titleH + entries.length * rowH + 2 * pad - (rowH - fs * 1.15)),
  };
}

/** A legend box at (x, y): swatches (line, dashed line, or filled patch) and labels. */
function drawLegend(
  ctx: RenderContext,
  entries: readonly (LineSeries | StepSeries)[],
  opts: LegendOptions,
  fs: number,
  x: number,
  y: number,
  w: number,
  h: number,
): string {
  const pad = 0.5 * fs;
  const handle = 2 * fs;
  const gap = 0.7 * fs;
  const rowH = 1.45 * fs;
  const titleH = opts.title ? 1.45 * fs : 0;
  const parts: string[] = [
    `<rect x="${num(x)}" y="${num(y)}" width="${w}" height="${h}" rx="3" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc" stroke-width="1"/>`,
  ];
  let ty = y + pad;
  const texts: string[] = [];
  if (opts.title) {
    texts.push(drawText(ctx, opts.title, x + w / 2, ty + fs * CAP_HEIGHT, { size: fs, anchor: 'middle' }));
    ty += titleH;
  }
  for (const e of entries) {
    const mid = ty + (fs * 1.15) / 2;
    const hx = x + pad;
    const color = escapeXml(e.color);
    if (e.kind === 'step' && e.fill) {
      parts.push(
        `<rect x="${num(hx)}" y="${num(mid - fs * 0.35)}" width="${num(handle)}" height="${num(fs * 0.7)}" fill="${color}" fill-opacity="${num(e.fillOpacity ?? 0.15)}" stroke="${color}" stroke-width="${num(e.width ?? 1.75)}"/>`,
      );
    } else {
      parts.push(
        `<path d="M${num(hx)} ${num(mid)}h${num(handle)}" stroke="${color}" stroke-width="${num(e.width ?? 2)}"${dashAttr(e.dash)} fill="none"/>`,
      );
      if (e.kind === 'line' && e.markers) {
        parts.push(`<circle cx="${num(hx + handle / 2)}" cy="${num(mid)}" r="${num((e.width ?? 2) * 1.3)}" fill="${color}"/>`);
      }
    }
    texts.push(drawText(ctx, e.label ?? '', hx + handle + gap, mid + (fs * CAP_HEIGHT) / 2, { size: fs }));
    ty += rowH;
  }
  return `<g>${parts.join('')}<g fill="${INK}">${texts.join('')}</g></g>`;
}

// ------------------------------------------------------------------------------------------------
// Panel

/** One set of axes of a figure. Add series, then a legend. */
export class Panel {
  readonly options: PanelOptions;
  private readonly series: Series[] = [];
  private legendOptions: LegendOptions | undefined;
  /** A legend-only cell: the legend of another panel. */
  private legendSource: Panel | undefined;
  private colorIndex = 0;
  private geometryCache: { key: string; body: string; samples: Sample[] } | undefined;

  constructor(options: PanelOptions = {}) {
    this.options = options;
  }

  private nextColor(): string {
    return TAB10[this.colorIndex++ % TAB10.length] as string;
  }

  /** A polyline through (x[i], y[i]); non-finite points (and ≤ 0 on log axes) break the line. */
  line(x: ArrayLike<number>, y: ArrayLike<number>, options: LineOptions = {}): this {
    this.series.push({ ...options, kind: 'line', x, y, color: options.color ?? this.nextColor() });
    this.geometryCache = undefined;
    return this;
  }

  /** A step histogram: `counts[i]` over [edges[i], edges[i + 1]]. */
  step(edges: ArrayLike<number>, counts: ArrayLike<number>, options: StepOptions = {}): this {
    this.series.push({ ...options, kind: 'step', edges, counts, color: options.color ?? this.nextColor() });
    this.geometryCache = undefined;
    return this;
  }

  /** A heatmap of `values[row][col]` (the panel's axes become categorical). */
  heatmap(values: readonly (readonly number[])[], options: HeatmapOptions): this {
    this.series.push({ ...options, kind: 'heatmap', values });
    return this;
  }

  /** Shows a legend of the labelled series. */
  legend(options: LegendOptions = {}): this {
    this.legendOptions = options;
    return this;
  }

  /** Makes this panel a cell showing only the legend of `source` (one legend for many panels). */
  legendOf(source: Panel, options: LegendOptions = {}): this {
    this.legendSource = source;
    this.legendOptions = options;
    return this;
  }

  /** The SVG of this panel drawn inside `box`. */
  render(ctx: RenderContext, box: Rect, index: number): string {
    if (this.legendSource) {
      const entries = this.legendSource.legendEntries();
      if (entries.length === 0) return '';
      const opts = this.legendOptions ?? {};
      const fs = opts.fontSize ?? FS_LABEL;
      const { w, h } = legendSize(entries, opts, fs);
      return drawLegend(ctx, entries, opts, fs, Math.round(box.x + (box.w - w) / 2), Math.round(box.y + (box.h - h) / 2), w, h);
    }
    const hm = this.series.find((s): s is HeatmapSeries => s.kind === 'heatmap');
    return hm ? this.renderHeatmap(ctx, box, hm, index) : this.renderXY(ctx, box, index);
  }

  // ----------------------------------------------------------------------------------------------
  // x/y panels

  /** Automatic or explicit domain of one axis. */
  private domain(axis: 'x' | 'y'): [number, number] {
    const opts = (axis === 'x' ? this.options.x : this.options.y) ?? {};
    const log = opts.scale === 'log';
    if (opts.domain) {
      const [a, b] = opts.domain;
      if (Number.isFinite(a) && Number.isFinite(b) && a !== b && (!log || (a > 0 && b > 0))) return [a, b];
    }
    let lo = Infinity;
    let hi = -Infinity;
    let stickyLo = Infinity;
    let stickyHi = -Infinity;
    const see = (v: number): void => {
      if (!Number.isFinite(v) || (log && v <= 0)) return;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    };
    for (const s of this.series) {
      if (s.kind === 'line') {
        const src = axis === 'x' ? s.x : s.y;
        const other = axis === 'x' ? s.y : s.x;
        for (let i = 0; i < Math.min(src.length, other.length); i++) {
          if (Number.isFinite(other[i] as number)) see(src[i] as number);
        }
      } else if (s.kind === 'step') {
        if (axis === 'x') {
          for (let i = 0; i < s.edges.length; i++) see(s.edges[i] as number);
          stickyLo = Math.min(stickyLo, lo);
          stickyHi = Math.max(stickyHi, hi);
        } else {
          for (let i = 0; i < s.counts.length; i++) see(s.counts[i] as number);
          if (!log) stickyLo = Math.min(stickyLo, 0);
        }
      }
    }
    if (!(hi >= lo)) return log ? [0.1, 1] : [0, 1];
    if (!log && stickyLo <= lo) lo = Math.min(lo, stickyLo);
    const m = opts.margin ?? 0.05;
    if (log) {
      let a = Math.log10(lo);
      let b = Math.log10(hi);
      if (a === b) {
        a -= 1;
        b += 1;
      }
      const r = b - a;
      return [10 ** (a - m * r), 10 ** (b + m * r)];
    }
    if (lo === hi) {
      const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      return [lo - d, hi + d];
    }
    const r = hi - lo;
    const a = lo === stickyLo ? lo : lo - m * r;
    const b = hi === stickyHi ? hi : hi + m * r;
    return [a, b];
  }

  private renderXY(ctx: RenderContext, box: Rect, index: number): string {
    const xo = this.options.x ?? {};
    const yo = this.options.y ?? {};
    const [xlo, xhi] = this.domain('x');
    const [ylo, yhi] = this.domain('y');
    const title = this.options.title;
    const hasTitle = !isEmpty(title);
    // Layout: guess the plot area, place ticks, measure their labels, refine the margins.
    let area: Rect = { x: box.x + 70, y: box.y + 40, w: box.w - 90, h: box.h - 90 };
    let xt: AxisTicks = { major: [], minor: [] };
    let yt: AxisTicks = { major: [], minor: [] };
    let sx: Scale = { kind: xo.scale ?? 'linear', lo: xlo, hi: xhi, p0: 0, p1: 1 };
    let sy: Scale = { kind: yo.scale ?? 'linear', lo: ylo, hi: yhi, p0: 0, p1: 1 };
    for (let iter = 0; iter < 3; iter++) {
      sx = { ...sx, p0: area.x, p1: area.x + area.w };
      sy = { ...sy, p0: area.y + area.h, p1: area.y };
      xt = axisTicks(sx, xo, true);
      yt = axisTicks(sy, yo, false);
      const yTickW = Math.max(0, ...yt.major.map((t) => measure(t.label, FS_TICK)));
      const xTickA = Math.max(FS_TICK * CAP_HEIGHT, ...xt.major.map((t) => ascent(t.label, FS_TICK)));
      const left =
        PAD + (isEmpty(yo.label) ? 0 : FS_LABEL * (CAP_HEIGHT + DESCENT) + LABEL_PAD) + yTickW + TICK_PAD + TICK_LEN;
      const bottom = PAD + (isEmpty(xo.label) ? 0 : FS_LABEL * (CAP_HEIGHT + DESCENT) + LABEL_PAD) +
        xTickA + FS_TICK * 0.15 + TICK_PAD + TICK_LEN;
      const topTick = yt.major.length ? ascent(yt.major[yt.major.length - 1]?.label ?? '', FS_TICK) / 2 : 0;
      const top = PAD + (hasTitle ? ascent(title ?? '', FS_TITLE) + FS_TITLE * DESCENT + TITLE_PAD : topTick);
      let right = PAD;
      const lastX = xt.major[xt.major.length - 1];
      if (lastX) {
        const over = project(sx, lastX.value) + measure(lastX.label, FS_TICK) / 2 - (area.x + area.w);
        right = Math.max(PAD, over + 4);
      }
      area = {
        x: Math.round(box.x + left),
        y: Math.round(box.y + top),
        w: Math.max(10, Math.round(box.w - left - right)),
        h: Math.max(10, Math.round(box.h - top - bottom)),
      };
    }
    sx = { ...sx, p0: area.x, p1: area.x + area.w };
    sy = { ...sy, p0: area.y + area.h, p1: area.y };
    xt = axisTicks(sx, xo, true);
    yt = axisTicks(sy, yo, false);

    const out: string[] = [];
    const clipId = `${ctx.id}-clip${index}`;
    if (ctx.mode === 'text') {
      ctx.defs.push(`<clipPath id="${clipId}"><rect x="${area.x}" y="${area.y}" width="${area.w}" height="${area.h}"/></clipPath>`);
    }

    // grid
    if (this.options.grid !== false) {
      let g = '';
      for (const t of xt.major) {
        const p = snap(project(sx, t.value));
        if (p > area.x + 0.5 && p < area.x + area.w - 0.5) g += `M${num(p)} ${area.y}V${area.y + area.h}`;
      }
      for (const t of yt.major) {
        const p = snap(project(sy, t.value));
        if (p > area.y + 0.5 && p < area.y + area.h - 0.5) g += `M${area.x} ${num(p)}H${area.x + area.w}`;
      }
      if (g) out.push(`<path d="${g}" fill="none" stroke="${GRID}" stroke-width="1"/>`);
    }

    // Series, clipped geometrically to the area. The clip path stays in the editable SVG (exact
    // stroke ends, a safety net for editors); the PNG skips it (resvg renders it as a full mask).
    const { body, samples } = this.seriesGeometry(area, sx, sy);
    out.push(ctx.mode === 'text' ? `<g clip-path="url(#${clipId})">${body}</g>` : `<g>${body}</g>`);

    // frame and ticks
    out.push(
      `<rect x="${area.x}" y="${area.y}" width="${area.w}" height="${area.h}" fill="none" stroke="${FRAME}" stroke-width="1"/>`,
    );
    let ticks = '';
    const by = area.y + area.h;
    for (const t of xt.major) ticks += `M${num(snap(project(sx, t.value)))} ${by}v${TICK_LEN}`;
    for (const v of xt.minor) ticks += `M${num(snap(project(sx, v)))} ${by}v${MINOR_LEN}`;
    for (const t of yt.major) ticks += `M${area.x} ${num(snap(project(sy, t.value)))}h${-TICK_LEN}`;
    for (const v of yt.minor) ticks += `M${area.x} ${num(snap(project(sy, v)))}h${-MINOR_LEN}`;
    if (ticks) out.push(`<path d="${ticks}" stroke="${FRAME}" stroke-width="1" fill="none"/>`);

    // tick labels
    const labels: string[] = [];
    const xTickA = Math.max(FS_TICK * CAP_HEIGHT, ...xt.major.map((t) => ascent(t.label, FS_TICK)));
    const xBase = by + TICK_LEN + TICK_PAD + xTickA;
    for (const t of xt.major) {
      labels.push(drawText(ctx, t.label, project(sx, t.value), xBase, { size: FS_TICK, anchor: 'middle' }));
    }
    let yTickW = 0;
    for (const t of yt.major) {
      yTickW = Math.max(yTickW, measure(t.label, FS_TICK));
      const base = project(sy, t.value) + (FS_TICK * CAP_HEIGHT) / 2;
      labels.push(drawText(ctx, t.label, area.x - TICK_LEN - TICK_PAD, base, { size: FS_TICK, anchor: 'end' }));
    }
    // axis labels and title
    if (!isEmpty(xo.label)) {
      const base = xBase + FS_TICK * 0.15 + LABEL_PAD + ascent(xo.label ?? '', FS_LABEL);
      labels.push(drawText(ctx, xo.label ?? '', area.x + area.w / 2, base, { size: FS_LABEL, anchor: 'middle' }));
    }
    if (!isEmpty(yo.label)) {
      const base = area.x - TICK_LEN - TICK_PAD - yTickW - LABEL_PAD - FS_LABEL * DESCENT;
      labels.push(
        drawText(ctx, yo.label ?? '', base, area.y + area.h / 2, { size: FS_LABEL, anchor: 'middle', rotate: -90 }),
      );
    }
    if (hasTitle) labels.push(drawTitle(ctx, title ?? '', area, box, area.y - TITLE_PAD - FS_TITLE * DESCENT));
    out.push(`<g fill="${INK}">${labels.join('')}</g>`);

    // legend
    if (this.legendOptions) out.push(this.renderLegend(ctx, area, samples));
    return out.join('\n');
  }

  /** The series in px inside `area` (SVG elements and legend samples); the same for both text modes. */
  private seriesGeometry(area: Rect, sx: Scale, sy: Scale): { body: string; samples: Sample[] } {
    const key = `${area.x},${area.y},${area.w},${area.h}`;
    if (this.geometryCache?.key === key) return this.geometryCache;
    // points of the drawn series (px), with weights, for the legend's 'best' placement
    const samples: Sample[] = [];
    const body: string[] = [];
    for (const s of this.series) {
      const pts: number[] = [];
      if (s.kind === 'line') {
        const raw = pixelRuns(s.x, s.y, sx, sy);
        const runs = raw.flatMap((r) => clipPolyline(r, area)).map((r) => simplify(r, 0.2));
        const w = s.width ?? 2;
        const op = s.opacity !== undefined ? ` stroke-opacity="${num(s.opacity)}"` : '';
        const d = runs.filter((r) => r.length >= 4).map(pathOf).join('');
        if (d) {
          body.push(
            `<path d="${d}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="${num(w)}"${op}${dashAttr(s.dash)} stroke-linejoin="round" stroke-linecap="${s.dash ? 'butt' : 'round'}"/>`,
          );
        }
        if (s.markers) {
          let c = '';
          for (const r of raw) {
            for (let i = 0; i < r.length; i += 2) {
              const x = r[i] as number;
              const y = r[i + 1] as number;
              if (x >= area.x && x <= area.x + area.w && y >= area.y && y <= area.y + area.h) {
                c += `<circle cx="${num(x)}" cy="${num(y)}" r="${num(w * 1.3)}"/>`;
              }
            }
          }
          if (c) body.push(`<g fill="${escapeXml(s.color)}">${c}</g>`);
        }
        for (const r of runs) samplePolyline(r, 4, pts);
      } else if (s.kind === 'step') {
        const d = this.stepPath(s, sx, sy, area);
        if (d.pts.length) {
          const w = s.width ?? 1.75;
          if (s.fill) {
            // a rectilinear polygon: clamping its vertices to the area clips it exactly
            const clamped = d.pts.map((v, i) =>
              i % 2 === 0 ? Math.min(area.x + area.w, Math.max(area.x, v)) : Math.min(area.y + area.h, Math.max(area.y, v)),
            );
            body.push(
              `<path d="${pathOf(clamped)}Z" fill="${escapeXml(s.color)}" fill-opacity="${num(s.fillOpacity ?? 0.15)}" stroke="none"/>`,
            );
          }
          const dd = clipPolyline(d.pts, area).map(pathOf).join('');
          if (dd) {
            body.push(
              `<path d="${dd}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="${num(w)}"${dashAttr(s.dash)} stroke-linejoin="miter"/>`,
            );
          }
          samplePolyline(d.pts, 4, pts);
          if (s.fill) samples.push({ pts: sampleFill(d.pts, area, 8), weight: 0.25 });
        }
      }
      samples.push({ pts, weight: 1 });
    }
    this.geometryCache = { key, body: body.join(''), samples };
    return this.geometryCache;
  }

  /** The outline of a step histogram in px: sides down to the baseline (0, or below a log axis). */
  private stepPath(s: StepSeries, sx: Scale, sy: Scale, area: Rect): { pts: number[] } {
    const n = Math.min(s.counts.length, s.edges.length - 1);
    const pts: number[] = [];
    if (n <= 0) return { pts };
    // Off-plot baseline for zero/non-finite bins: just below the frame (clipped away).
    const below = area.y + area.h + 10;
    const base = sy.kind === 'log' ? below : Math.min(below, Math.max(area.y - 10, project(sy, 0)));
    const yOf = (c: number): number => {
      const p = Number.isFinite(c) ? project(sy, c) : Number.NaN;
      if (!Number.isFinite(p)) return base;
      return Math.min(area.y + area.h + 10, Math.max(area.y - 10, p));
    };
    const xOf = (e: number): number => Math.min(area.x + area.w + 10, Math.max(area.x - 10, project(sx, e)));
    let started = false;
    for (let i = 0; i < n; i++) {
      const x0 = xOf(s.edges[i] as number);
      const x1 = xOf(s.edges[i + 1] as number);
      if (!Number.isFinite(x0) || !Number.isFinite(x1)) continue;
      const y = yOf(s.counts[i] as number);
      if (!started) {
        pts.push(x0, base);
        started = true;
      }
      pts.push(x0, y, x1, y);
    }
    if (started) pts.push(pts[pts.length - 2] as number, base);
    // merge collinear points (equal neighbouring bins)
    const out: number[] = [];
    for (let i = 0; i < pts.length; i += 2) {
      const x = pts[i] as number;
      const y = pts[i + 1] as number;
      const m = out.length;
      if (m >= 2 && out[m - 2] === x && out[m - 1] === y) continue;
      if (m >= 4) {
        const ax = out[m - 4] as number;
        const ay = out[m - 3] as number;
        const bx = out[m - 2] as number;
        const by = out[m - 1] as number;
        if ((ax === bx && bx === x) || (ay === by && by === y)) {
          out[m - 2] = x;
          out[m - 1] = y;
          continue;
        }
      }
      out.push(x, y);
    }
    return { pts: out };
  }

  /** The labelled series, in the order they were added. */
  private legendEntries(): Array<LineSeries | StepSeries> {
    return this.series.filter((s): s is LineSeries | StepSeries => s.kind !== 'heatmap' && !!s.label);
  }

  private renderLegend(ctx: RenderContext, area: Rect, samples: readonly Sample[]): string {
    const opts = this.legendOptions ?? {};
    const entries = this.legendEntries();
    if (entries.length === 0) return '';
    const fs = opts.fontSize ?? FS_LEGEND;
    const { w, h } = legendSize(entries, opts, fs);
    const inset = 0.5 * fs;
    const place = (loc: Exclude<LegendLoc, 'best'>): { x: number; y: number } => {
      const l = area.x + inset;
      const r = area.x + area.w - inset - w;
      const cx = area.x + (area.w - w) / 2;
      const t = area.y + inset;
      const b = area.y + area.h - inset - h;
      const cy = area.y + (area.h - h) / 2;
      switch (loc) {
        case 'upper right':
          return { x: r, y: t };
        case 'upper left':
          return { x: l, y: t };
        case 'lower left':
          return { x: l, y: b };
        case 'lower right':
          return { x: r, y: b };
        case 'center left':
          return { x: l, y: cy };
        case 'center right':
          return { x: r, y: cy };
        case 'lower center':
          return { x: cx, y: b };
        case 'upper center':
          return { x: cx, y: t };
        case 'center':
          return { x: cx, y: cy };
      }
    };
    let loc = opts.loc ?? 'best';
    if (loc === 'best') {
      const order: Exclude<LegendLoc, 'best'>[] = [
        'upper right', 'upper left', 'lower left', 'lower right', 'center right',
        'center left', 'lower center', 'upper center', 'center',
      ];
      let best = order[0] as Exclude<LegendLoc, 'best'>;
      let bestScore = Infinity;
      for (const cand of order) {
        // points under the box count fully, points close to it (within 15 px) a little
        const p = place(cand);
        let score = 0;
        for (const { pts, weight } of samples) {
          for (let i = 0; i < pts.length; i += 2) {
            const dx = Math.max(p.x - (pts[i] as number), (pts[i] as number) - p.x - w, 0);
            const dy = Math.max(p.y - (pts[i + 1] as number), (pts[i + 1] as number) - p.y - h, 0);
            const d = Math.max(dx, dy);
            if (d <= 2) score += weight;
            else if (d < 15) score += (weight * 0.02 * (15 - d)) / 13;
          }
        }
        if (score < bestScore) {
          bestScore = score;
          best = cand;
        }
      }
      loc = best;
    }
    const { x, y } = place(loc);
    return drawLegend(ctx, entries, opts, fs, x, y, w, h);
  }

  // ----------------------------------------------------------------------------------------------
  // heatmap panels

  private renderHeatmap(ctx: RenderContext, box: Rect, hm: HeatmapSeries, index: number): string {
    const rows = hm.values.length;
    const cols = Math.max(0, ...hm.values.map((r) => r.length));
    const cmap = hm.colormap ?? 'viridis';
    let vmin = Infinity;
    let vmax = -Infinity;
    for (const r of hm.values) {
      for (const v of r) {
        if (!Number.isFinite(v)) continue;
        vmin = Math.min(vmin, v);
        vmax = Math.max(vmax, v);
      }
    }
    if (hm.domain && Number.isFinite(hm.domain[0]) && Number.isFinite(hm.domain[1])) [vmin, vmax] = hm.domain;
    if (!(vmax >= vmin)) [vmin, vmax] = [0, 1];
    if (vmax === vmin) vmax = vmin + 1;
    const xo = this.options.x ?? {};
    const yo = this.options.y ?? {};
    const title = this.options.title;
    const hasTitle = !isEmpty(title);
    const withBar = hm.colorbar !== false;
    const xCats = hm.xCategories;
    const yCats = hm.yCategories;

    // margins: category labels at the left, colorbar (ticks measured at a nominal height) at the right
    const barW = 16;
    const barGap = 18;
    const yCatW = Math.max(0, ...yCats.map((c) => measure(c, FS_TICK)));
    const xCatW = Math.max(0, ...xCats.map((c) => measure(c, FS_TICK)));
    const labelH = FS_LABEL * (CAP_HEIGHT + DESCENT) + LABEL_PAD;
    const top = PAD + (hasTitle ? ascent(title ?? '', FS_TITLE) + FS_TITLE * DESCENT + TITLE_PAD : FS_TICK);
    const left0 = PAD + (isEmpty(yo.label) ? 0 : labelH) + yCatW + TICK_PAD + TICK_LEN;
    let cbScale: Scale = { kind: 'linear', lo: vmin, hi: vmax, p0: 300, p1: 0 };
    let cbTicks = axisTicks(cbScale, {}, false);
    const cbTickW = Math.max(0, ...cbTicks.major.map((t) => measure(t.label, FS_TICK)));
    const right =
      PAD + (withBar ? barGap + barW + TICK_LEN + TICK_PAD + cbTickW + (isEmpty(hm.colorbarLabel) ? 0 : labelH) : 0);
    /** Height of the x category labels, upright or rotated by 45°. */
    const catLabelsHeight = (rotated: boolean): number =>
      rotated ? (xCatW + FS_TICK * (0.5 + CAP_HEIGHT)) * Math.SQRT1_2 : FS_TICK * (CAP_HEIGHT + 0.2);
    // cell size, with x labels rotated when they do not fit under their cells
    let rotate = false;
    let cell = 0;
    let bottom = 0;
    for (let iter = 0; iter < 2; iter++) {
      const xLabH = catLabelsHeight(rotate);
      bottom = PAD + (isEmpty(xo.label) ? 0 : labelH) + xLabH + TICK_PAD + TICK_LEN;
      const availW = box.w - left0 - right;
      const availH = box.h - top - bottom;
      cell = Math.max(4, Math.floor(Math.min(availW / Math.max(1, cols), availH / Math.max(1, rows))));
      const wasRotated: boolean = rotate;
      rotate = xCatW > cell - 6;
      if (rotate === wasRotated) break;
    }
    const gw = cell * cols;
    const gh = cell * rows;
    const availW = box.w - left0 - right;
    const availH = box.h - top - bottom;
    const area: Rect = {
      x: Math.round(box.x + left0 + Math.max(0, (availW - gw) / 2)),
      y: Math.round(box.y + top + Math.max(0, (availH - gh) / 2)),
      w: gw,
      h: gh,
    };

    const out: string[] = [];
    // cells
    let cells = '';
    const colors: string[][] = [];
    for (let r = 0; r < rows; r++) {
      const rowColors: string[] = [];
      for (let c = 0; c < cols; c++) {
        const v = hm.values[r]?.[c] ?? Number.NaN;
        const color = Number.isFinite(v) ? colormap(cmap, (v - vmin) / (vmax - vmin)) : '#ffffff';
        rowColors.push(color);
        cells += `<rect x="${area.x + c * cell}" y="${area.y + r * cell}" width="${cell}" height="${cell}" fill="${color}"/>`;
      }
      colors.push(rowColors);
    }
    out.push(`<g shape-rendering="crispEdges">${cells}</g>`);

    // annotations, sized to fit the cells
    const texts: string[] = [];
    if (hm.annotations) {
      let maxW1 = 0;
      let maxLines = 1;
      for (const row of hm.annotations) {
        for (const lines of row) {
          maxLines = Math.max(maxLines, lines.length);
          lines.forEach((l, i) => {
            maxW1 = Math.max(maxW1, measure(l, i === 0 ? 1 : 0.85));
          });
        }
      }
      const fs = Math.max(6, Math.min(13, (cell * 0.82) / Math.max(maxW1, 0.1), (cell * 0.8) / (maxLines * 1.3)));
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const lines = hm.annotations[r]?.[c];
          if (!lines || lines.length === 0) continue;
          const color = contrastText(colors[r]?.[c] ?? '#ffffff');
          const sizes = lines.map((_, i) => (i === 0 ? fs : fs * 0.85));
          const gaps = sizes.slice(1).map((s) => s * 0.45);
          const block = sizes.reduce((a, s) => a + s * CAP_HEIGHT, 0) + gaps.reduce((a, g) => a + g, 0);
          let yb = area.y + r * cell + (cell - block) / 2;
          lines.forEach((l, i) => {
            const s = sizes[i] as number;
            yb += s * CAP_HEIGHT;
            texts.push(drawText(ctx, l, area.x + (c + 0.5) * cell, yb, { size: s, anchor: 'middle', color, bold: i === 0 }));
            yb += gaps[i] ?? 0;
          });
        }
      }
    }

    // frame and category ticks
    out.push(`<rect x="${area.x}" y="${area.y}" width="${area.w}" height="${area.h}" fill="none" stroke="${FRAME}" stroke-width="1"/>`);
    let ticks = '';
    const by = area.y + area.h;
    for (let c = 0; c < cols; c++) ticks += `M${num(snap(area.x + (c + 0.5) * cell))} ${by}v${TICK_LEN}`;
    for (let r = 0; r < rows; r++) ticks += `M${area.x} ${num(snap(area.y + (r + 0.5) * cell))}h${-TICK_LEN}`;
    const labels: string[] = [];
    xCats.forEach((c, i) => {
      const x = area.x + (i + 0.5) * cell;
      if (rotate) {
        const y = by + TICK_LEN + TICK_PAD + 2;
        const dx = (FS_TICK * CAP_HEIGHT * Math.SQRT1_2) / 2;
        labels.push(drawText(ctx, c, x + dx, y + dx, { size: FS_TICK, anchor: 'end', rotate: -45 }));
      } else {
        labels.push(drawText(ctx, c, x, by + TICK_LEN + TICK_PAD + FS_TICK * CAP_HEIGHT, { size: FS_TICK, anchor: 'middle' }));
      }
    });
    yCats.forEach((c, i) => {
      const y = area.y + (i + 0.5) * cell + (FS_TICK * CAP_HEIGHT) / 2;
      labels.push(drawText(ctx, c, area.x - TICK_LEN - TICK_PAD, y, { size: FS_TICK, anchor: 'end' }));
    });
    const xLabH = catLabelsHeight(rotate);
    if (!isEmpty(xo.label)) {
      const base = by + TICK_LEN + TICK_PAD + xLabH + LABEL_PAD + ascent(xo.label ?? '', FS_LABEL);
      labels.push(drawText(ctx, xo.label ?? '', area.x + area.w / 2, base, { size: FS_LABEL, anchor: 'middle' }));
    }
    if (!isEmpty(yo.label)) {
      const base = area.x - TICK_LEN - TICK_PAD - yCatW - LABEL_PAD - FS_LABEL * DESCENT;
      labels.push(drawText(ctx, yo.label ?? '', base, area.y + area.h / 2, { size: FS_LABEL, anchor: 'middle', rotate: -90 }));
    }
    if (hasTitle) labels.push(drawTitle(ctx, title ?? '', area, box, area.y - TITLE_PAD - FS_TITLE * DESCENT));

    // colorbar
    if (withBar) {
      const bx = area.x + area.w + barGap;
      cbScale = { kind: 'linear', lo: vmin, hi: vmax, p0: area.y + area.h, p1: area.y };
      cbTicks = axisTicks(cbScale, {}, false);
      const gid = `${ctx.id}-cmap${index}`;
      const stops = COLORMAPS[cmap]
        .map((c, i, a) => `<stop offset="${num(i / (a.length - 1))}" stop-color="${c}"/>`)
        .join('');
      ctx.defs.push(`<linearGradient id="${gid}" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient>`);
      out.push(`<rect x="${bx}" y="${area.y}" width="${barW}" height="${area.h}" fill="url(#${gid})" stroke="${FRAME}" stroke-width="1"/>`);
      let w = 0;
      for (const t of cbTicks.major) {
        const p = snap(project(cbScale, t.value));
        ticks += `M${bx + barW} ${num(p)}h${TICK_LEN}`;
        w = Math.max(w, measure(t.label, FS_TICK));
        labels.push(drawText(ctx, t.label, bx + barW + TICK_LEN + TICK_PAD, p + (FS_TICK * CAP_HEIGHT) / 2, { size: FS_TICK }));
      }
      if (!isEmpty(hm.colorbarLabel)) {
        const base = bx + barW + TICK_LEN + TICK_PAD + w + LABEL_PAD + ascent(hm.colorbarLabel ?? '', FS_LABEL);
        labels.push(
          drawText(ctx, hm.colorbarLabel ?? '', base, area.y + area.h / 2, { size: FS_LABEL, anchor: 'middle', rotate: -90 }),
        );
      }
    }
    out.push(`<path d="${ticks}" stroke="${FRAME}" stroke-width="1" fill="none"/>`);
    out.push(`<g fill="${INK}">${labels.join('')}</g>`);
    out.push(`<g>${texts.join('')}</g>`);
    return out.join('\n');
  }
}

// ------------------------------------------------------------------------------------------------
// Figure

/** A figure: a rows × cols grid of panels and an optional title. */
export class Figure {
  readonly rows: number;
  readonly cols: number;
  readonly width: number;
  readonly height: number;
  readonly title: RichText | undefined;
  private readonly panels: (Panel | undefined)[];
  private readonly panelWidth: number;
  private readonly panelHeight: number;
  private readonly titleHeight: number;
  private readonly idPrefix: string | undefined;

  constructor(options: FigureOptions = {}) {
    this.rows = Math.max(1, Math.floor(options.rows ?? 1));
    this.cols = Math.max(1, Math.floor(options.cols ?? 1));
    this.panelWidth = options.panelWidth ?? 560;
    this.panelHeight = options.panelHeight ?? 420;
    this.title = options.title;
    this.titleHeight = isEmpty(options.title) ? 0 : Math.round(PAD + FS_SUPTITLE * (CAP_HEIGHT + DESCENT) + 4);
    this.width = this.cols * this.panelWidth;
    this.height = this.rows * this.panelHeight + this.titleHeight;
    this.panels = new Array<Panel | undefined>(this.rows * this.cols).fill(undefined);
    this.idPrefix = options.idPrefix;
  }

  /** A cell at (row, col) that shows only the legend of `source`. */
  legendPanel(row: number, col: number, source: Panel, options: LegendOptions = {}): Panel {
    return this.panel(row, col, {}).legendOf(source, options);
  }

  /** The panel at (row, col), created on first use. */
  panel(row = 0, col = 0, options?: PanelOptions): Panel {
    if (row < 0 || row >= this.rows || col < 0 || col >= this.cols) {
      throw new RangeError(`panel (${row}, ${col}) outside a ${this.rows} × ${this.cols} figure`);
    }
    const i = row * this.cols + col;
    let p = this.panels[i];
    if (!p || options) {
      p = new Panel(options ?? {});
      this.panels[i] = p;
    }
    return p;
  }

  private render(mode: TextMode): string {
    const id =
      this.idPrefix ??
      `f${hashId([plainText(this.title ?? ''), ...this.panels.map((p) => plainText(p?.options.title ?? ''))].join('\u0000'))}`;
    const ctx: RenderContext = { mode, defs: [], id };
    const body: string[] = [];
    if (!isEmpty(this.title)) {
      const f = fitText(this.title ?? '', FS_SUPTITLE, this.width - 2 * PAD, true);
      const base = PAD + ascent(this.title ?? '', FS_SUPTITLE);
      body.push(`<g fill="${INK}">${drawText(ctx, f.text, this.width / 2, base, { size: f.size, anchor: 'middle', bold: true })}</g>`);
    }
    this.panels.forEach((p, i) => {
      if (!p) return;
      const r = Math.floor(i / this.cols);
      const c = i % this.cols;
      const box = { x: c * this.panelWidth, y: this.titleHeight + r * this.panelHeight, w: this.panelWidth, h: this.panelHeight };
      body.push(p.render(ctx, box, i));
    });
    const font = mode === 'text' ? ` font-family="${FONT_FAMILY}"` : '';
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" viewBox="0 0 ${this.width} ${this.height}"${font}>\n` +
      (isEmpty(this.title) ? '' : `<title>${escapeXml(plainText(this.title ?? ''))}</title>\n`) +
      `<rect width="${this.width}" height="${this.height}" fill="#ffffff"/>\n` +
      (ctx.defs.length ? `<defs>${ctx.defs.join('')}</defs>\n` : '') +
      body.join('\n') +
      '\n</svg>\n'
    );
  }

  /** SVG with text as `<text>` elements (editable, searchable). */
  toSvg(): string {
    return this.render('text');
  }

  /** SVG with text as glyph outlines (renders identically without any font installed). */
  toOutlinedSvg(): string {
    return this.render('outline');
  }

  /** PNG at `scale` × the figure size (default 2×), white background, no font needed. */
  toPng(scale = 2): Promise<Uint8Array> {
    return svgToPng(this.toOutlinedSvg(), scale);
  }
}
