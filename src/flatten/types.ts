/**
 * The flatten stage's contracts: the specs file written by pass 1 (scan) and read by pass 2 (pad).
 *
 * The specs keep MLaaS4HEP's top-level keys (`jdim`, `minv`, `maxv`, `fkeys`, `jkeys`, `nans`, each keyed by
 * branch) so that its tools can read them, and add hep-ml's own: format/version, source, entries, per-branch
 * value counts, length histograms and Arrow value types. Format documented in docs/formats/flatten-specs.md.
 */
export const SPECS_FORMAT = 'hep-ml/flatten-specs';
export const SPECS_VERSION = 1;

export interface Specs {
  format: typeof SPECS_FORMAT;
  version: typeof SPECS_VERSION;
  /** hep-ml version that wrote the file. */
  hepml_version: string;
  /** Where the scanned stream came from (its `hep-ml.source` metadata, or the input path). */
  source: string;
  created: string;
  /** Rows (events) scanned. */
  entries: number;
  /** Jagged branches (List<T> columns), in input order. */
  jkeys: string[];
  /** Flat numeric branches (passed through by pad), in input order. */
  fkeys: string[];
  /** Maximum list length per jagged branch (0 when every list is empty). */
  jdim: Record<string, number>;
  /** Minimum / maximum over all non-NaN values, per branch (jagged and flat); null when there is none. */
  minv: Record<string, number | null>;
  maxv: Record<string, number | null>;
  /** NaN count per branch. */
  nans: Record<string, number>;
  /** Number of values per branch (all list elements for a jagged branch). */
  values: Record<string, number>;
  /** Length histogram per jagged branch: hist[b][n] = number of entries whose list has n elements. */
  hist: Record<string, number[]>;
  /** Inner fixed size per jagged branch (List<FixedSizeList<k>> → k; 1 for List<T>). */
  inner: Record<string, number>;
  /** Arrow value type per branch as hep-ml names it (`float32`, `list<float32>`, ...). */
  types: Record<string, string>;
}

export interface GroupOption {
  /** Output column name. */
  name: string;
  /** Glob over jagged branch names (`Muon_*`). */
  glob: string;
}

export interface PadOptions {
  /** Value written past each list's end: NaN (default), 0, or any number. */
  pad: number;
  /** Per-branch (or per-group) length overrides: longer lists are truncated. */
  maxLen: Record<string, number>;
  /** Scale values to [0, 1] with pass-1 min/max ((x - min) / (max - min); unchanged when max == min). */
  normalize?: 'minmax';
  /** Stack the jagged branches matching each glob into one FixedSizeList<Float32>[jdim * k] column. */
  groups: GroupOption[];
}

/** What truncation (--max-len) cut, per output column and in total. */
export interface TruncationReport {
  entries: number;
  values: number;
  perColumn: Record<string, { entries: number; values: number }>;
}
