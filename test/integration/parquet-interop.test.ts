/**
 * Parquet files written by src/convert/parquet.ts, read by two independent readers: DuckDB
 * (@duckdb/node-api, C++) and hyparquet (pure JS). Checked: logical types (FLOAT[] not DOUBLE[], the
 * standard 3-level LIST), codecs, PLAIN/RLE encodings only (no dictionary, no BYTE_STREAM_SPLIT), data
 * page V1 in every page header, footer key-value metadata, and every value of every row against the
 * source, plus sums over all values. Also the other direction: files DuckDB writes (no ARROW:schema,
 * dictionary pages, several row groups) through our reader.
 *
 * DuckDB is skipped, loudly, only if @duckdb/node-api cannot be loaded.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { openParquetSource, openParquetWriter } from '../../src/convert/parquet.js';
import { decodeStruct, encodeStruct, getInt, getStruct } from '../../src/convert/parquet-thrift.js';
import type { Compression, Field } from '../../src/convert/types.js';
import { type ColumnBatch, type ColumnData, columnType, concatColumns, formatColumnType } from '../../src/root/columns.js';
import { UnsupportedError } from '../../src/errors.js';
import { offsetsOf, rng, sampleBatch } from '../fixtures/columnar-data.js';

// ---------------------------------------------------------------------------------------------------
// DuckDB, if it loads

type Duck = { runAndReadAll(sql: string): Promise<{ getRowsJS(): unknown[][]; getRowObjectsJS(): Record<string, unknown>[] }> };
let duck: Duck | undefined;
let duckError: string | undefined;
let duckClose: (() => void) | undefined;
try {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const con = await inst.connect();
  duck = con as unknown as Duck;
  duckClose = () => {
    con.closeSync?.();
    inst.closeSync?.();
  };
} catch (e) {
  duckError = `@duckdb/node-api cannot be loaded here (${e instanceof Error ? e.message : String(e)}): the DuckDB checks are SKIPPED`;
  console.error(`# ${duckError}`);
}

function sqlStr(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

async function q(sql: string): Promise<Record<string, unknown>[]> {
  return (await duck!.runAndReadAll(sql)).getRowObjectsJS();
}

// ---------------------------------------------------------------------------------------------------
// Data and expectations

const CODECS: Compression[] = ['none', 'snappy', 'zstd', 'gzip'];
const CODEC_NAME: Record<Compression, string> = { none: 'UNCOMPRESSED', snappy: 'SNAPPY', zstd: 'ZSTD', gzip: 'GZIP' };

/** Random float32 of any finite bit pattern (exercises exactness), never NaN/Inf. */
function randomFloats(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let bits: number;
    do bits = Math.floor(r() * 2 ** 32) >>> 0;
    while (((bits >>> 23) & 0xff) === 0xff);
    u[i] = bits;
  }
  return new Float32Array(u.buffer);
}

/**
 * The recipe's features: HLF_input fixed<14, f32> (arbitrary finite floats), GRU_input
 * fixed<15219, f32> (80 % zeros, the rest multiples of 1/16 in ±1000, so that any summation order is
 * exact), encoded_label fixed<3, f32> one-hot, label int32.
 */
function featuresBatch(start: number, rows: number): ColumnBatch {
  const r = rng(start + 17);
  const gru = new Float32Array(rows * 15219);
  for (let i = 0; i < gru.length; i++) if (r() < 0.2) gru[i] = Math.round((r() - 0.5) * 32000) / 16;
  const lab = new Float32Array(rows * 3);
  const label = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    label[i] = (start + i) % 3;
    lab[i * 3 + label[i]!] = 1;
  }
  const f = (size: number, values: Float32Array): ColumnData => ({ kind: 'fixed', size, child: { kind: 'primitive', dtype: 'float32', values } });
  return {
    entryStart: start,
    entryStop: start + rows,
    columns: [
      { name: 'HLF_input', data: f(14, randomFloats(rows * 14, start + 1)) },
      { name: 'GRU_input', data: f(15219, gru) },
      { name: 'encoded_label', data: f(3, lab) },
      { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: label } },
    ],
  };
}

/** list<float32> (30 % empty) and list<list<int32>> (empty outer and inner lists). */
function jaggedBatch(start: number, rows: number): ColumnBatch {
  const r = rng(start + 5);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const l1 = offsetsOf(Array.from({ length: rows }, () => (r() < 0.3 ? 0 : int(1, 40))));
  const outer = offsetsOf(Array.from({ length: rows }, () => int(0, 4)));
  const inner = offsetsOf(Array.from({ length: outer[rows]! }, () => int(0, 5)));
  return {
    entryStart: start,
    entryStop: start + rows,
    columns: [
      { name: 'pt', data: { kind: 'list', offsets: l1, child: { kind: 'primitive', dtype: 'float32', values: randomFloats(l1[rows]!, start + 9) } } },
      {
        name: 'hits',
        data: { kind: 'list', offsets: outer, child: { kind: 'list', offsets: inner, child: { kind: 'primitive', dtype: 'int32', values: Int32Array.from({ length: inner[inner.length - 1]! }, () => int(-(2 ** 31), 2 ** 31 - 1)) } } },
      },
    ],
  };
}

function fieldsOf(b: ColumnBatch): Field[] {
  return b.columns.map((c) => ({ name: c.name, type: columnType(c.data) }));
}

function joined(batches: ColumnBatch[]): { name: string; data: ColumnData }[] {
  return batches[0]!.columns.map((c, i) => ({ name: c.name, data: concatColumns(batches.map((b) => b.columns[i]!.data)) }));
}

/** Row `row` of a column as the JS value a reader returns: numbers, bigints, booleans, strings, arrays. */
function valueAt(c: ColumnData, row: number): unknown {
  switch (c.kind) {
    case 'primitive':
      return c.dtype === 'bool' ? c.values[row] !== 0 : c.values[row];
    case 'fixed': {
      const out = new Array(c.size);
      for (let k = 0; k < c.size; k++) out[k] = valueAt(c.child, row * c.size + k);
      return out;
    }
    case 'list': {
      const out = [];
      for (let k = c.offsets[row]!; k < c.offsets[row + 1]!; k++) out.push(valueAt(c.child, k));
      return out;
    }
    case 'utf8':
      return Buffer.from(c.bytes.subarray(c.offsets[row]!, c.offsets[row + 1]!)).toString('utf8');
  }
}

/** Exact equality: Object.is for numbers (so -0 ≠ 0), NaN equals NaN (payloads are not visible in JS numbers). */
function sameValue(actual: unknown, expected: unknown, path: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${typeof actual}`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    for (let i = 0; i < expected.length; i++) sameValue(actual[i], expected[i], `${path}[${i}]`);
    return;
  }
  if (typeof expected === 'number' && Number.isNaN(expected)) {
    assert.ok(typeof actual === 'number' && Number.isNaN(actual), `${path}: expected NaN, got ${String(actual)}`);
    return;
  }
  if (!Object.is(actual, expected)) assert.fail(`${path}: expected ${String(expected)} (${typeof expected}), got ${String(actual)} (${typeof actual})`);
}

function checkRows(rows: Record<string, unknown>[], cols: { name: string; data: ColumnData }[], who: string): void {
  for (let r = 0; r < rows.length; r++) {
    for (const c of cols) sameValue(rows[r]![c.name], valueAt(c.data, r), `${who} row ${r} ${c.name}`);
  }
}

/** Sum of all float values of a fixed/list column (exact for the 1/16-grid data). */
function sumValues(c: ColumnData): number {
  if (c.kind === 'primitive') {
    let s = 0;
    for (const v of c.values as Float32Array) s += v;
    return s;
  }
  if (c.kind === 'fixed' || c.kind === 'list') return sumValues(c.child);
  return 0;
}

async function writeParquet(path: string, batches: ColumnBatch[], compression: Compression, rowGroupSize?: number): Promise<void> {
  const w = await openParquetWriter(path, fieldsOf(batches[0]!), {
    compression,
    rowGroupSize,
    metadata: { 'hep-ml.source': 'interop-test', 'hep-ml.features': '{"HLF_input":14}' },
  });
  for (const b of batches) await w.write(b);
  await w.close();
}

/**
 * Every page header of every column chunk, walked from the offsets hyparquet reads in the footer:
 * [page type, encoding] (0 = DATA_PAGE, 2 = DICTIONARY_PAGE, 3 = DATA_PAGE_V2).
 */
async function pageTypes(path: string): Promise<{ types: Set<number>; encodings: Set<number>; pages: number }> {
  const bytes = readFileSync(path);
  const md = await parquetMetadataAsync(await asyncBufferFromFile(path));
  const types = new Set<number>();
  const encodings = new Set<number>();
  let pages = 0;
  for (const rg of md.row_groups) {
    for (const cc of rg.columns) {
      const m = cc.meta_data!;
      let pos = Number(m.dictionary_page_offset ?? m.data_page_offset);
      const end = pos + Number(m.total_compressed_size);
      while (pos < end) {
        const { value: h, end: n } = decodeStruct(bytes.subarray(pos, end));
        types.add(getInt(h, 1)!);
        const dp = getStruct(h, 5) ?? getStruct(h, 8);
        if (dp) encodings.add(getInt(dp, 2)!);
        pos += n + getInt(h, 3)!;
        pages++;
      }
      assert.equal(pos, end, 'pages fill the column chunk exactly');
    }
  }
  return { types, encodings, pages };
}

// ---------------------------------------------------------------------------------------------------

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hepml-parquet-interop-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  duckClose?.();
});

describe('features-like files (fixed<14>, fixed<15219>, fixed<3> float32, int32), every codec', () => {
  const batches = [featuresBatch(0, 120), featuresBatch(120, 80), featuresBatch(200, 100)];
  const cols = joined(batches);
  const gruSum = sumValues(cols[1]!.data);
  const hlfSum = sumValues(cols[0]!.data);

  for (const codec of CODECS) {
    const name = () => join(dir, `features-${codec}.parquet`);

    test(`${codec}: written in 3 row groups of 100; pages are V1 data pages, PLAIN (+ RLE levels), no dictionary`, async () => {
      await writeParquet(name(), batches, codec, 100);
      const { types, encodings, pages } = await pageTypes(name());
      assert.deepEqual([...types], [0], 'every page is a DATA_PAGE (V1)');
      assert.deepEqual([...encodings], [0], 'every data page is PLAIN');
      assert.ok(pages >= 12);
      const md = await parquetMetadataAsync(await asyncBufferFromFile(name()));
      assert.deepEqual(md.row_groups.map((g) => Number(g.num_rows)), [100, 100, 100]);
      for (const g of md.row_groups) {
        for (const cc of g.columns) {
          assert.equal(cc.meta_data!.codec, CODEC_NAME[codec]);
          assert.equal(cc.meta_data!.dictionary_page_offset, undefined);
          for (const s of cc.meta_data!.encoding_stats ?? []) assert.equal(s.page_type, 'DATA_PAGE');
        }
      }
    });

    test(`${codec}: DuckDB sees FLOAT[] / INTEGER, the 3-level LIST, the codec, no dictionary, the metadata, and every value`, async (t) => {
      if (!duck) return t.skip(duckError);
      const p = sqlStr(name());
      const desc = await q(`DESCRIBE SELECT * FROM read_parquet(${p})`);
      assert.deepEqual(
        desc.map((d) => `${String(d.column_name)} ${String(d.column_type)}`),
        ['HLF_input FLOAT[]', 'GRU_input FLOAT[]', 'encoded_label FLOAT[]', 'label INTEGER'],
      );
      const schema = await q(`SELECT name, type, repetition_type, converted_type FROM parquet_schema(${p})`);
      const at = schema.findIndex((s) => s.name === 'GRU_input');
      assert.deepEqual(schema.slice(at, at + 3).map((s) => [s.name, s.type, s.repetition_type, s.converted_type]), [
        ['GRU_input', null, 'REQUIRED', 'LIST'],
        ['list', null, 'REPEATED', null],
        ['element', 'FLOAT', 'REQUIRED', null],
      ]);
      const meta = await q(`SELECT DISTINCT compression, encodings, dictionary_page_offset FROM parquet_metadata(${p})`);
      for (const m of meta) {
        assert.equal(m.compression, CODEC_NAME[codec]);
        assert.equal(m.dictionary_page_offset, null);
        for (const e of String(m.encodings).split(', ')) assert.ok(['PLAIN', 'RLE'].includes(e), `encoding ${String(m.encodings)}`);
      }
      const kv = await q(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${p})`);
      const kvMap = new Map(kv.map((r) => [r.key as string, r.value as string]));
      assert.equal(kvMap.get('hep-ml.source'), 'interop-test');
      assert.equal(kvMap.get('hep-ml.features'), '{"HLF_input":14}');
      assert.ok(kvMap.has('ARROW:schema'));

      const rows = await q(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(${p}, file_row_number = true) ORDER BY file_row_number`);
      assert.equal(rows.length, 300);
      checkRows(rows, cols, 'duckdb');

      const [sums] = await q(`SELECT count(*) AS n, sum(g) AS g FROM (SELECT unnest(GRU_input)::DOUBLE AS g FROM read_parquet(${p}))`);
      assert.equal(Number(sums!.n), 300 * 15219);
      assert.equal(sums!.g, gruSum, 'sum of all 4.6 M GRU values');
      const [h] = await q(`SELECT sum(x) AS s, count(*) AS n FROM (SELECT unnest(HLF_input)::DOUBLE AS x FROM read_parquet(${p}))`);
      assert.equal(Number(h!.n), 300 * 14);
      assert.ok(Math.abs((h!.s as number) - hlfSum) <= 1e-9 * Math.abs(hlfSum) + 1e-300, 'sum of all HLF values');
      const [l] = await q(`SELECT sum(label) AS s, sum(list_sum(encoded_label)) AS e FROM read_parquet(${p})`);
      assert.equal(Number(l!.s), cols[3]!.data.kind === 'primitive' ? Array.from(cols[3]!.data.values as Int32Array).reduce((a, b) => a + b, 0) : NaN);
      assert.equal(Number(l!.e), 300);
    });

    test(`${codec}: hyparquet reads every value`, async () => {
      const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(name()), compressors })) as Record<string, unknown>[];
      assert.equal(rows.length, 300);
      checkRows(rows, cols, 'hyparquet');
    });

    test(`${codec}: our reader restores the fixed sizes and the metadata`, async () => {
      const src = await openParquetSource(name());
      assert.deepEqual(src.fields.map((f) => formatColumnType(f.type)), ['fixed<14, float32>', 'fixed<15219, float32>', 'fixed<3, float32>', 'int32']);
      assert.deepEqual(src.metadata, { 'hep-ml.source': 'interop-test', 'hep-ml.features': '{"HLF_input":14}' });
      let n = 0;
      for await (const b of src.batches()) n += b.entryStop - b.entryStart;
      assert.equal(n, 300);
    });
  }
});

describe('jagged file: list<float32> and list<list<int32>>, empty lists included', () => {
  const batches = [jaggedBatch(0, 333), jaggedBatch(333, 167)];
  const cols = joined(batches);
  const path = () => join(dir, 'jagged.parquet');

  test('DuckDB: FLOAT[] and INTEGER[][], nested 3-level LIST, every value', async (t) => {
    await writeParquet(path(), batches, 'snappy', 128);
    const { types } = await pageTypes(path());
    assert.deepEqual([...types], [0]);
    if (!duck) return t.skip(duckError);
    const p = sqlStr(path());
    const desc = await q(`DESCRIBE SELECT * FROM read_parquet(${p})`);
    assert.deepEqual(desc.map((d) => `${String(d.column_name)} ${String(d.column_type)}`), ['pt FLOAT[]', 'hits INTEGER[][]']);
    const schema = await q(`SELECT name, type, repetition_type, converted_type FROM parquet_schema(${p})`);
    const at = schema.findIndex((s) => s.name === 'hits');
    assert.deepEqual(schema.slice(at, at + 5).map((s) => [s.name, s.type, s.repetition_type, s.converted_type]), [
      ['hits', null, 'REQUIRED', 'LIST'],
      ['list', null, 'REPEATED', null],
      ['element', null, 'REQUIRED', 'LIST'],
      ['list', null, 'REPEATED', null],
      ['element', 'INT32', 'REQUIRED', null],
    ]);
    const rows = await q(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(${p}, file_row_number = true) ORDER BY file_row_number`);
    assert.equal(rows.length, 500);
    checkRows(rows, cols, 'duckdb');
    const [c] = await q(`SELECT sum(len(pt)) AS npt, sum(len(flatten(hits))) AS nh, sum(len(hits)) AS nl FROM read_parquet(${p})`);
    const pt = cols[0]!.data as Extract<ColumnData, { kind: 'list' }>;
    const hits = cols[1]!.data as Extract<ColumnData, { kind: 'list' }>;
    const inner = hits.child as Extract<ColumnData, { kind: 'list' }>;
    assert.equal(Number(c!.npt), pt.offsets[500]);
    assert.equal(Number(c!.nl), hits.offsets[500]);
    assert.equal(Number(c!.nh), inner.offsets[inner.offsets.length - 1]);
  });

  test('hyparquet reads every value', async () => {
    const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(path()), compressors })) as Record<string, unknown>[];
    assert.equal(rows.length, 500);
    checkRows(rows, cols, 'hyparquet');
  });
});

describe('every dtype (bool, int8..uint64, float32/64 with NaN, utf8, list<utf8>, list<bool>, fixed<4, fixed<5>>)', () => {
  const batches = [sampleBatch(150, 21, 0), sampleBatch(90, 22, 150)];
  const cols = joined(batches);
  const path = () => join(dir, 'dtypes.parquet');

  test('DuckDB: logical types and every value', async (t) => {
    await writeParquet(path(), batches, 'zstd', 100);
    if (!duck) return t.skip(duckError);
    const p = sqlStr(path());
    const desc = await q(`DESCRIBE SELECT * FROM read_parquet(${p})`);
    assert.deepEqual(Object.fromEntries(desc.map((d) => [d.column_name, d.column_type])), {
      b: 'BOOLEAN', i8: 'TINYINT', u8: 'UTINYINT', i16: 'SMALLINT', u16: 'USMALLINT', i32: 'INTEGER', u32: 'UINTEGER',
      i64: 'BIGINT', u64: 'UBIGINT', f32: 'FLOAT', f64: 'DOUBLE', fsl2: 'FLOAT[][]', fslb: 'BOOLEAN[]', jag: 'FLOAT[]',
      jag2: 'INTEGER[][]', jagb: 'BOOLEAN[]', s: 'VARCHAR', ls: 'VARCHAR[]',
    });
    const rows = await q(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(${p}, file_row_number = true) ORDER BY file_row_number`);
    assert.equal(rows.length, 240);
    checkRows(rows, cols, 'duckdb');
  });

  test('hyparquet: every value', async () => {
    const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(path()), compressors })) as Record<string, unknown>[];
    assert.equal(rows.length, 240);
    checkRows(rows, cols, 'hyparquet');
  });
});

describe('files DuckDB writes, through our reader', () => {
  test('no ARROW:schema, dictionary-encoded strings, several row groups, zstd: types from the Parquet schema, every value', async (t) => {
    if (!duck) return t.skip(duckError);
    const p = join(dir, 'from-duckdb.parquet');
    await q(`COPY (
        SELECT i::INTEGER AS id,
               (i % 7)::FLOAT / 4 AS x,
               CASE WHEN i % 5 = 0 THEN []::FLOAT[] ELSE [i::FLOAT / 8, (i + 1)::FLOAT / 8] END AS v,
               [[i::INTEGER], []::INTEGER[], [i::INTEGER, -i::INTEGER]] AS vv,
               'cat-' || (i % 3)::VARCHAR AS s,
               i::BIGINT * 1000000007 AS big,
               i % 2 = 0 AS flag
        FROM range(5000) t(i)
      ) TO ${sqlStr(p)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`);
    const rgs = await q(`SELECT DISTINCT row_group_id FROM parquet_metadata(${sqlStr(p)})`);
    assert.ok(rgs.length >= 2, 'several row groups');
    const dict = await q(`SELECT count(*) AS n FROM parquet_metadata(${sqlStr(p)}) WHERE dictionary_page_offset IS NOT NULL`);
    assert.ok(Number(dict[0]!.n) > 0, 'DuckDB wrote dictionary pages');

    // Our Thrift codec re-encodes DuckDB's (C++ Thrift) footer to the identical bytes.
    const bytes = readFileSync(p);
    const len = bytes.readUInt32LE(bytes.length - 8);
    const footer = bytes.subarray(bytes.length - 8 - len, bytes.length - 8);
    assert.ok(Buffer.from(encodeStruct(decodeStruct(footer).value)).equals(footer));

    const src = await openParquetSource(p);
    assert.deepEqual(
      src.fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`),
      ['id: int32', 'x: float32', 'v: list<float32>', 'vv: list<list<int32>>', 's: utf8', 'big: int64', 'flag: bool'],
    );
    assert.equal(src.rows, 5000);
    const got: ColumnBatch[] = [];
    for await (const b of src.batches()) got.push(b);
    const mine = joined(got);
    const theirs = await q(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(${sqlStr(p)}, file_row_number = true) ORDER BY file_row_number`);
    checkRows(theirs, mine, 'ours vs duckdb');
  });

  test('a column with nulls is refused with UnsupportedError naming the file and column', async (t) => {
    if (!duck) return t.skip(duckError);
    const p = join(dir, 'nulls.parquet');
    await q(`COPY (SELECT CASE WHEN i = 3 THEN NULL ELSE i END::INTEGER AS maybe FROM range(10) t(i)) TO ${sqlStr(p)} (FORMAT parquet)`);
    const src = await openParquetSource(p);
    const attempt = async () => {
      for await (const _ of src.batches());
    };
    await assert.rejects(attempt(), (e: unknown) => e instanceof UnsupportedError && e.context.file === p && /maybe/.test(e.message) && /null/.test(e.message));
  });
});

test('sanity: the value comparison catches a float one ulp off', () => {
  const c = joined([featuresBatch(0, 2)]);
  const rows = [0, 1].map((r) => Object.fromEntries(c.map((x) => [x.name, valueAt(x.data, r)])));
  const hlf = rows[1]!.HLF_input as number[];
  const u = new Uint32Array(Float32Array.of(hlf[3]!).buffer);
  u[0]! += 1;
  hlf[3] = new Float32Array(u.buffer)[0]!;
  assert.throws(() => checkRows(rows, c, 'x'), /HLF_input\[3\]/);
});
