/**
 * Classes and labels for `prepare`: `--class NAME=PATH[,PATH...]` and `--class NAME:LABEL=PATH...`.
 *
 * Default labels follow the published SparkDLTrigger mapping (features-spec §6): qcd → 0, ttbar (tt) → 1,
 * wjets (w, wlnu) → 2. Other names get the smallest free label, in order of appearance. The labels must be
 * exactly 0..K-1.
 */
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';

/** A class as given: a name, an optional explicit label, and its files. */
export interface PrepareClassSpec {
  name: string;
  label?: number;
  files: string[];
}

/** A class with its label resolved. */
export interface PrepareClass {
  name: string;
  label: number;
  files: string[];
}

/** The published names (case-insensitive) and their canonical name and default label. */
const ALIASES: Record<string, { canonical: string; label: number }> = {
  qcd: { canonical: 'qcd', label: 0 },
  ttbar: { canonical: 'ttbar', label: 1 },
  tt: { canonical: 'ttbar', label: 1 },
  wjets: { canonical: 'wjets', label: 2 },
  w: { canonical: 'wjets', label: 2 },
  wlnu: { canonical: 'wjets', label: 2 },
};

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.+-]*$/;

/** The default label of a class name, if it is one of the published ones. */
export function defaultLabel(name: string): number | undefined {
  return ALIASES[name.toLowerCase()]?.label;
}

/** Class identity: aliases of a published class are the same class (tt and ttbar). */
function classKey(name: string): string {
  return ALIASES[name.toLowerCase()]?.canonical ?? name;
}

/** Parses `NAME=PATH[,PATH...]` or `NAME:LABEL=PATH[,PATH...]` (one --class value). */
export function parseClassArg(arg: string): PrepareClassSpec {
  const eq = arg.indexOf('=');
  if (eq < 0) throw new UsageError(`--class takes NAME=PATH[,PATH...] or NAME:LABEL=PATH[,PATH...], got '${arg}'`);
  const head = arg.slice(0, eq).trim();
  const paths = arg
    .slice(eq + 1)
    .split(',')
    .map((p) => p.trim());
  const m = /^([^:]+?)(?::\s*(\S+))?$/.exec(head);
  const name = m?.[1]?.trim() ?? '';
  if (!m || !NAME_RE.test(name)) {
    throw new UsageError(`--class '${arg}': the class name must start with a letter or '_' and hold only letters, digits, '_', '.', '+', '-'`);
  }
  let label: number | undefined;
  if (m[2] !== undefined) {
    if (!/^\d+$/.test(m[2])) throw new UsageError(`--class '${arg}': the label after ':' must be a non-negative integer, got '${m[2]}'`);
    label = Number(m[2]);
  }
  if (paths.length === 0 || paths.some((p) => p === '')) throw new UsageError(`--class '${arg}': empty file path (give NAME=PATH[,PATH...])`);
  if (paths.includes('-')) throw new UsageError(`--class '${arg}': prepare reads each input twice; stdin ('-') is not supported, give files`);
  return label === undefined ? { name, files: paths } : { name, label, files: paths };
}

/**
 * Merges repeated classes (same name, or aliases of the same published class: their files are appended) and
 * assigns labels: explicit ones first, then the published defaults, then the smallest free label in order
 * of appearance. Returns the classes sorted by label. UsageError for conflicting or gapped labels.
 */
export function resolveClasses(specs: PrepareClassSpec[]): PrepareClass[] {
  if (specs.length === 0) throw new UsageError('no classes: give at least one --class NAME=PATH[,PATH...]');
  const merged: { key: string; name: string; label?: number; files: string[] }[] = [];
  const byKey = new Map<string, (typeof merged)[number]>();
  for (const s of specs) {
    if (!NAME_RE.test(s.name)) throw new UsageError(`class name '${s.name}' must start with a letter or '_' and hold only letters, digits, '_', '.', '+', '-'`);
    if (s.label !== undefined && (!Number.isInteger(s.label) || s.label < 0)) throw new UsageError(`class '${s.name}': label ${s.label} must be a non-negative integer`);
    if (s.files.length === 0) throw new UsageError(`class '${s.name}' has no files`);
    const key = classKey(s.name);
    const prev = byKey.get(key);
    if (prev) {
      if (s.label !== undefined && prev.label !== undefined && s.label !== prev.label) {
        throw new UsageError(`class '${prev.name}' is given labels ${prev.label} and ${s.label}`);
      }
      prev.label ??= s.label;
      prev.files.push(...s.files);
    } else {
      const c = { key, name: s.name, label: s.label, files: [...s.files] };
      merged.push(c);
      byKey.set(key, c);
    }
  }
  const owner = new Map<number, string>();
  const take = (label: number, name: string, how: string) => {
    const other = owner.get(label);
    if (other !== undefined) {
      throw new UsageError(`label ${label} is given to both '${other}' and '${name}'${how}: give each class its own label (--class NAME:LABEL=PATH)`);
    }
    owner.set(label, name);
  };
  for (const c of merged) if (c.label !== undefined) take(c.label, c.name, '');
  for (const c of merged) {
    if (c.label !== undefined) continue;
    const d = defaultLabel(c.name);
    if (d !== undefined) {
      take(d, c.name, ` (its default label as a published class)`);
      c.label = d;
    }
  }
  for (const c of merged) {
    if (c.label !== undefined) continue;
    let l = 0;
    while (owner.has(l)) l++;
    take(l, c.name, '');
    c.label = l;
  }
  const k = merged.length;
  const sorted = [...merged].sort((a, b) => a.label! - b.label!);
  sorted.forEach((c, i) => {
    if (c.label !== i) {
      const have = sorted.map((x) => `${x.name}=${x.label}`).join(', ');
      throw new UsageError(`labels must be 0..${k - 1} without gaps, got ${have}: give explicit labels (--class NAME:LABEL=PATH)`);
    }
  });
  // The same file in two places would duplicate its rows.
  const seen = new Map<string, string>();
  for (const c of sorted) {
    for (const f of c.files) {
      const key = resolve(f);
      const prev = seen.get(key);
      if (prev !== undefined) throw new UsageError(`file ${f} is given twice (${prev === c.name ? `in class '${c.name}'` : `in classes '${prev}' and '${c.name}'`})`);
      seen.set(key, c.name);
    }
  }
  return sorted.map((c) => ({ name: c.name, label: c.label!, files: c.files }));
}

/** `"1 GB"`, `"512 MB"`, `"64MiB"`, `"1.5 GiB"`, `"1000000"` (bytes) → bytes. */
export function parseSize(s: string | number, what = '--memory'): number {
  if (typeof s === 'number') {
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`${what} must be a positive number of bytes, got ${s}`);
    return Math.floor(s);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(s);
  if (!m) throw new UsageError(`cannot parse ${what} '${s}': use a size like "1 GB", "512 MB" or "256MiB"`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const pow = { b: 0, kb: 1, mb: 2, gb: 3, tb: 4, kib: 1, mib: 2, gib: 3, tib: 4 }[unit]!;
  const base = unit.includes('i') ? 1024 : 1000;
  const bytes = Math.floor(Number(m[1]) * base ** pow);
  if (bytes <= 0) throw new UsageError(`${what} must be positive, got '${s}'`);
  return bytes;
}

/** `--test-fraction`: a number in [0, 1). */
export function parseFraction(s: string | number, what = '--test-fraction'): number {
  const v = typeof s === 'number' ? s : s.trim() === '' ? NaN : Number(s);
  if (!Number.isFinite(v) || v < 0 || v >= 1) throw new UsageError(`${what} must be a number in [0, 1), got '${s}'`);
  return v;
}
