/**
 * Axis tick positions and labels: linear "nice" ticks (1, 2, 2.5, 5 × 10^k, as matplotlib's
 * AutoLocator) and log10 decades with minor ticks at 2…9 × 10^k.
 */
import type { RichText, TextRun } from './text.js';

/** Rounds away binary floating-point noise (3 × 0.1 → 0.3). */
export function cleanNumber(v: number): number {
  return v === 0 ? 0 : Number.parseFloat(v.toPrecision(12));
}

/**
 * Nice linear tick values within [lo, hi]: at most `nbins` intervals, steps of 1, 2, 2.5 or 5 × 10^k
 * (1, 2, 5 × 10^k, k ≥ 0, when `integer`).
 */
export function linearTicks(lo: number, hi: number, nbins: number, integer = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [cleanNumber(lo)];
  const step = niceStep(lo, hi, nbins, integer);
  const k0 = Math.ceil(lo / step - 1e-9);
  const k1 = Math.floor(hi / step + 1e-9);
  const out: number[] = [];
  for (let k = k0; k <= k1; k++) out.push(cleanNumber(k * step));
  return out;
}

/** The step linearTicks uses. */
export function niceStep(lo: number, hi: number, nbins: number, integer = false): number {
  const raw = (hi - lo) / Math.max(1, nbins);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const mantissas = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = 10 * mag;
  for (const m of mantissas) {
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  }
  step = cleanNumber(step);
  return integer ? Math.max(1, Math.round(step)) : step;
}

/** Fewest decimals that write `step` exactly (0.25 → 2, 0.2 → 1, 5 → 0). */
function decimalsOf(step: number): number {
  for (let d = 0; d <= 12; d++) {
    if (Math.abs(Number(step.toFixed(d)) - step) <= Math.abs(step) * 1e-9) return d;
  }
  return 12;
}

/** Replaces ASCII hyphen-minus by the typographic minus sign (U+2212). */
function minus(s: string): string {
  return s.replace(/^-/, '\u2212');
}

/**
 * Labels of linear ticks, all with the decimals of the step ("0.0", "0.2", …; "−1" for negatives);
 * very large or small values as mantissa × 10^k ("2.5×10⁻⁵").
 */
export function formatLinearTicks(values: readonly number[]): RichText[] {
  if (values.length === 0) return [];
  const step = values.length > 1 ? cleanNumber(Math.abs((values[1] as number) - (values[0] as number))) : 0;
  const maxAbs = Math.max(...values.map(Math.abs));
  if (maxAbs >= 1e6 || (maxAbs > 0 && maxAbs < 1e-3) || (step > 0 && step < 1e-5)) return values.map(formatScientific);
  const d = step > 0 ? decimalsOf(step) : decimalsOf(values[0] as number);
  return values.map((v) => {
    const s = v.toFixed(d);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : minus(s);
  });
}

/** A number as mantissa × 10^k with a superscript exponent (0 as "0"; mantissa 1 omitted). */
export function formatScientific(v: number): RichText {
  if (v === 0 || !Number.isFinite(v)) return v === 0 ? '0' : String(v);
  const [m, e] = cleanNumber(v).toExponential().split('e') as [string, string];
  const mant = minus(String(Number(m)));
  const exp = minus(String(Number(e)));
  const runs: TextRun[] = [];
  if (mant === '1') runs.push({ text: '10' });
  else if (mant === '\u22121') runs.push({ text: '\u221210' });
  else runs.push({ text: `${mant}\u00d710` });
  runs.push({ text: exp, sup: true });
  return runs;
}

/** Major (labelled) and minor tick values of a log10 axis over [lo, hi] (lo > 0). */
export interface LogTicks {
  major: number[];
  minor: number[];
}

/** 10^e written exactly. */
function pow10(e: number): number {
  return Number(`1e${e}`);
}

/**
 * Log ticks: majors at decades (every `stride`-th decade when there are more than `maxMajor`),
 * minors at 2…9 × 10^k (or at the skipped decades when stride > 1).
 */
export function logTicks(lo: number, hi: number, maxMajor = 9): LogTicks {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) return { major: [], minor: [] };
  if (hi < lo) [lo, hi] = [hi, lo];
  const tol = 1e-9;
  const e0 = Math.ceil(Math.log10(lo) - tol);
  const e1 = Math.floor(Math.log10(hi) + tol);
  const decades = e1 - e0 + 1;
  const stride = Math.max(1, Math.ceil(decades / Math.max(1, maxMajor)));
  const major: number[] = [];
  const minor: number[] = [];
  for (let e = e0; e <= e1; e++) {
    if (((e % stride) + stride) % stride === 0) major.push(pow10(e));
    else minor.push(pow10(e));
  }
  if (stride === 1) {
    const inRange = (v: number): boolean => v >= lo * (1 - tol) && v <= hi * (1 + tol);
    for (let e = Math.floor(Math.log10(lo) + tol); e <= e1; e++) {
      for (let m = 2; m <= 9; m++) {
        const v = Number(`${m}e${e}`);
        if (inRange(v)) minor.push(v);
      }
    }
    minor.sort((a, b) => a - b);
  }
  return { major, minor };
}

/** The label of a decade: 10 with a superscript exponent (10⁻³ as "10" + sup "−3"). */
export function formatDecade(v: number): RichText {
  const e = Math.round(Math.log10(v));
  const runs: TextRun[] = [{ text: '10' }, { text: minus(String(e)), sup: true }];
  return runs;
}

/** The label of a non-decade log tick: 0.2, 30, 5×10⁻⁵. */
export function formatLogMinor(v: number): RichText {
  const c = cleanNumber(v);
  if (c >= 1e-4 && c < 1e6) return minus(String(c));
  return formatScientific(c);
}
