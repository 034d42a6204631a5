/**
 * Output layouts. `default` writes every column as it is. `sparkdltrigger` writes exactly the columns of
 * the published CERN datasets (features-spec §8, "Inclusive-classifier datasets"): `HLF_input` (14),
 * `GRU_input` flattened row-major (15 219 = 801 × 19) and `encoded_label` (3), as Spark stored them —
 * `array<double>` in Parquet, fixed-length FloatList in TFRecord (the connector's cast to float32), FixedSizeList<Float32> in Arrow.
 */
import { SchemaMismatchError, UsageError } from '../errors.js';
import type { ColumnBatch, ColumnData, ColumnType } from '../root/columns.js';
import type { Field, OutputFormat } from './types.js';

export type Layout = 'default' | 'sparkdltrigger';

const PUBLISHED: { name: string; size: number }[] = [
  { name: 'HLF_input', size: 14 },
  { name: 'GRU_input', size: 801 * 19 },
  { name: 'encoded_label', size: 3 },
];

export function parseLayout(s: string | undefined): Layout {
  if (s === undefined || s === 'default') return 'default';
  if (s === 'sparkdltrigger') return s;
  throw new UsageError(`unknown layout '${s}' (default or sparkdltrigger)`);
}

/** Number of float values per row of a fixed-size float column (nested FixedSizeLists flatten), or -1. */
function fixedFloatWidth(t: ColumnType): number {
  let w = 1;
  let c: ColumnType = t;
  while (c.kind === 'fixed') {
    w *= c.size;
    c = c.child;
  }
  if (c.kind !== 'primitive' || (c.dtype !== 'float32' && c.dtype !== 'float64') || t.kind !== 'fixed') return -1;
  return w;
}

function leafValues(d: ColumnData): Float32Array | Float64Array {
  let c = d;
  while (c.kind === 'fixed') c = c.child;
  if (c.kind !== 'primitive') throw new Error('not a fixed-size float column');
  return c.values as Float32Array | Float64Array;
}

/** A batch transform and the fields it produces. */
export interface LayoutPlan {
  fields: Field[];
  apply(batch: ColumnBatch): ColumnBatch;
}

export function planLayout(layout: Layout, fields: Field[], to: OutputFormat, source: string): LayoutPlan {
  if (layout === 'default') return { fields, apply: (b) => b };
  const byName = new Map(fields.map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const p of PUBLISHED) {
    const f = byName.get(p.name);
    if (!f) problems.push(`${p.name} is missing`);
    else if (fixedFloatWidth(f.type) !== p.size) problems.push(`${p.name} must be ${p.size} floats per row`);
  }
  if (problems.length) {
    throw new SchemaMismatchError(
      `--layout sparkdltrigger needs the columns of hep-ml features (HLF_input[14], GRU_input[15219], encoded_label[3]): ${problems.join('; ')}`,
      { file: source },
    );
  }
  // Parquet: Spark's array<double>. TFRecord: FloatList (float32) with fixed lengths (FixedLenFeature); Arrow: the same.
  const spark = to === 'parquet';
  const dtype = spark ? 'float64' : 'float32';
  const out: Field[] = PUBLISHED.map((p) => ({
    name: p.name,
    type: spark ? { kind: 'list', child: { kind: 'primitive', dtype } } : { kind: 'fixed', size: p.size, child: { kind: 'primitive', dtype } },
  }));
  return {
    fields: out,
    apply(batch) {
      const rows = batch.entryStop - batch.entryStart;
      const columns = PUBLISHED.map((p) => {
        const d = batch.columns.find((c) => c.name === p.name)!.data;
        const src = leafValues(d);
        const values = dtype === 'float64' ? Float64Array.from(src) : src instanceof Float32Array ? src : Float32Array.from(src);
        let data: ColumnData;
        if (spark) {
          const offsets = new Int32Array(rows + 1);
          for (let i = 1; i <= rows; i++) offsets[i] = i * p.size;
          data = { kind: 'list', offsets, child: { kind: 'primitive', dtype, values } };
        } else data = { kind: 'fixed', size: p.size, child: { kind: 'primitive', dtype, values } };
        return { name: p.name, data };
      });
      return { entryStart: batch.entryStart, entryStop: batch.entryStop, columns };
    },
  };
}
