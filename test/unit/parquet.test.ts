/**
 * Parquet writer and reader (src/convert/parquet.ts) through each other: every column kind, every
 * codec, row groups, metadata, temp files, errors, bounded memory. Independent readers (DuckDB,
 * hyparquet) check the same files in test/integration/parquet-interop.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { isParquetFile, openParquetSource, openParquetWriter, PARQUET_ROW_GROUP_BYTES } from '../../src/convert/parquet.js';
import { planRowGroup, readFooter } from '../../src/convert/parquet-footer.js';
import { decodeStruct, encodeStruct } from '../../src/convert/parquet-thrift.js';
import type { Compression, Field } from '../../src/convert/types.js';
import { type ColumnBatch, type ColumnData, type ColumnType, columnRows, columnType, concatColumns, formatColumnType, sliceRows } from '../../src/root/columns.js';
import { CorruptDataError, InputNotFoundError, IoError, SchemaMismatchError, UnsupportedError, UsageError } from '../../src/errors.js';
import { offsetsOf, rng, sampleBatch } from '../fixtures/columnar-data.js';

// ---------------------------------------------------------------------------------------------------
// helpers

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CODECS: Compression[] = ['none', 'snappy', 'zstd', 'gzip'];
const f32: ColumnType = { kind: 'primitive', dtype: 'float32' };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-parquet-'));
}

function fieldsOf(b: ColumnBatch): Field[] {
  return b.columns.map((c) => ({ name: c.name, type: columnType(c.data) }));
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Bitwise equality (NaN payloads included); bools as 0/1; offsets compared relative to their start. */
function assertColumnEqual(actual: ColumnData, expected: ColumnData, path: string): void {
  assert.equal(formatColumnType(columnType(actual)), formatColumnType(columnType(expected)), `${path}: type`);
  assert.equal(columnRows(actual), columnRows(expected), `${path}: rows`);
  switch (expected.kind) {
    case 'primitive': {
      const a = actual as typeof expected;
      assert.equal(a.values.constructor, expected.values.constructor, `${path}: array class`);
      if (expected.dtype === 'bool') {
        assert.deepEqual(Array.from(a.values as Uint8Array, (v) => (v ? 1 : 0)), Array.from(expected.values as Uint8Array, (v) => (v ? 1 : 0)), `${path}: bools`);
      } else {
        assert.ok(bytesOf(a.values).equals(bytesOf(expected.values)), `${path}: values differ`);
      }
      return;
    }
    case 'fixed':
      return assertColumnEqual((actual as typeof expected).child, expected.child, `${path}.element`);
    case 'list':
    case 'utf8': {
      const a = actual as typeof expected;
      const e0 = expected.offsets[0]!;
      const a0 = a.offsets[0]!;
      assert.deepEqual(Array.from(a.offsets, (o) => o - a0), Array.from(expected.offsets, (o) => o - e0), `${path}: offsets`);
      if (expected.kind === 'utf8') {
        const ab = (a as typeof expected).bytes.subarray(a0, a.offsets[a.offsets.length - 1]);
        assert.ok(Buffer.from(ab).equals(Buffer.from(expected.bytes.subarray(e0, expected.offsets[expected.offsets.length - 1]))), `${path}: bytes`);
        return;
      }
      const ac = sliceRows((a as typeof expected).child, a0, a.offsets[a.offsets.length - 1]!);
      const ec = sliceRows(expected.child, e0, expected.offsets[expected.offsets.length - 1]!);
      return assertColumnEqual(ac, ec, `${path}[]`);
    }
  }
}

/** All rows of several batches as one batch. */
function joinBatches(batches: ColumnBatch[], fields: Field[]): { name: string; data: ColumnData }[] {
  return fields.map((f, i) => ({ name: f.name, data: concatColumns(batches.map((b) => b.columns[i]!.data)) }));
}

async function writeFile(path: string, batches: ColumnBatch[], opts: Parameters<typeof openParquetWriter>[2] = {}, fields = fieldsOf(batches[0]!)) {
  const w = await openParquetWriter(path, fields, opts);
  for (const b of batches) await w.write(b);
  return w.close();
}

async function readAll(path: string) {
  const src = await openParquetSource(path);
  const batches: ColumnBatch[] = [];
  for await (const b of src.batches()) batches.push(b);
  return { src, batches };
}

/** Writes, reads back, and checks every value, the fields, row numbering and the row count. */
async function roundTrip(batches: ColumnBatch[], opts: Parameters<typeof openParquetWriter>[2] = {}, fields = fieldsOf(batches[0]!)) {
  const dir = tmp();
  try {
    const path = join(dir, 'x.parquet');
    const total = batches.reduce((s, b) => s + b.entryStop - b.entryStart, 0);
    const res = await writeFile(path, batches, opts, fields);
    assert.equal(res.rows, total);
    assert.equal(res.bytes, statSync(path).size);
    const { src, batches: got } = await readAll(path);
    assert.deepEqual(src.fields, fields);
    assert.equal(src.rows, total);
    let next = 0;
    for (const b of got) {
      assert.equal(b.entryStart, next, 'batches are numbered contiguously from 0');
      next = b.entryStop;
    }
    assert.equal(next, total);
    if (total > 0) {
      const want = joinBatches(batches.filter((b) => b.entryStop > b.entryStart), fields);
      const have = joinBatches(got, fields);
      for (let i = 0; i < fields.length; i++) assertColumnEqual(have[i]!.data, want[i]!.data, fields[i]!.name);
    } else {
      assert.equal(got.length, 0);
    }
    const fh = await open(path, 'r');
    const footer = await readFooter(fh, statSync(path).size);
    await fh.close();
    return { path, dir, src, got, footer, bytes: res.bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fixedF32(rows: number, size: number, seed: number): ColumnData {
  const r = rng(seed);
  return { kind: 'fixed', size, child: { kind: 'primitive', dtype: 'float32', values: Float32Array.from({ length: rows * size }, () => (r() < 0.8 ? 0 : r() * 100 - 20)) } };
}

/** HLF_input fixed<14>, GRU_input fixed<15219>, encoded_label fixed<3>, label int32 (the recipe's features). */
function featuresBatch(start: number, rows: number, seed = start + 1): ColumnBatch {
  const lab = new Float32Array(rows * 3);
  const label = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    label[i] = (start + i) % 3;
    lab[i * 3 + label[i]!] = 1;
  }
  return {
    entryStart: start,
    entryStop: start + rows,
    columns: [
      { name: 'HLF_input', data: fixedF32(rows, 14, seed) },
      { name: 'GRU_input', data: fixedF32(rows, 15219, seed + 7) },
      { name: 'encoded_label', data: { kind: 'fixed', size: 3, child: { kind: 'primitive', dtype: 'float32', values: lab } } },
      { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: label } },
    ],
  };
}

function splitBatch(b: ColumnBatch, sizes: number[]): ColumnBatch[] {
  const out: ColumnBatch[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push({ entryStart: b.entryStart + at, entryStop: b.entryStart + at + n, columns: b.columns.map((c) => ({ name: c.name, data: sliceRows(c.data, at, at + n) })) });
    at += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

describe('isParquetFile', () => {
  test('PAR1 magic', () => {
    assert.equal(isParquetFile(Buffer.from('PAR1xxxx')), true);
    assert.equal(isParquetFile(Buffer.from('PAR')), false);
    assert.equal(isParquetFile(Buffer.from('ARROW1')), false);
    assert.equal(isParquetFile(new Uint8Array(0)), false);
  });
});

describe('round trips through our writer and reader', () => {
  test('every dtype, bool, utf8, list<utf8>, list<float32>, list<list<int32>>, list<bool>, fixed<4, fixed<5>>, fixed<3, bool>; NaN payloads kept', async () => {
    const b = sampleBatch(300, 3);
    // Batches of uneven sizes, some sliced out of the middle (list offsets not starting at 0), one empty.
    const parts = splitBatch(b, [1, 0, 120, 7, 172]);
    const r = await roundTrip(parts, { rowGroupSize: 64 });
    assert.deepEqual(r.footer.rowGroupRows, [64, 64, 64, 64, 44]);
  });

  for (const codec of CODECS) {
    test(`codec ${codec}: every column kind`, async () => {
      const r = await roundTrip([sampleBatch(200, 11)], { compression: codec, rowGroupSize: 90 });
      const plan = planRowGroup(r.footer, 0);
      assert.ok(plan.chunkBytes > 0);
    });
  }

  test('fixed<15219, float32>, fixed<14>, fixed<3, float32> and int32 keep their fixed sizes', async () => {
    const r = await roundTrip([featuresBatch(0, 30), featuresBatch(30, 25)], { rowGroupSize: 20 });
    assert.deepEqual(
      r.src.fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`),
      ['HLF_input: fixed<14, float32>', 'GRU_input: fixed<15219, float32>', 'encoded_label: fixed<3, float32>', 'label: int32'],
    );
  });

  test('fixed of fixed of fixed, list of fixed, fixed of list', async () => {
    const rows = 40;
    const r = rng(5);
    const lens = Array.from({ length: rows * 2 }, () => Math.floor(r() * 4));
    const lo = offsetsOf(lens);
    const cols: { name: string; data: ColumnData }[] = [
      { name: 'f3', data: { kind: 'fixed', size: 2, child: { kind: 'fixed', size: 3, child: fixedF32(rows * 6, 4, 1) } } },
      { name: 'lf', data: { kind: 'list', offsets: offsetsOf(lens.slice(0, rows)), child: fixedF32(lo[rows]!, 3, 2) } },
      { name: 'fl', data: { kind: 'fixed', size: 2, child: { kind: 'list', offsets: lo, child: { kind: 'primitive', dtype: 'int64', values: BigInt64Array.from({ length: lo[rows * 2]! }, (_, i) => BigInt(i) * 3n ** 30n) } } } },
    ];
    await roundTrip([{ entryStart: 0, entryStop: rows, columns: cols }], { rowGroupSize: 16 });
  });

  test('empty lists everywhere, and lists of empty lists', async () => {
    const rows = 50;
    const outer = offsetsOf(Array.from({ length: rows }, (_, i) => i % 3));
    const cols: { name: string; data: ColumnData }[] = [
      { name: 'allEmpty', data: { kind: 'list', offsets: new Int32Array(rows + 1), child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(0) } } },
      {
        name: 'emptyInner',
        data: { kind: 'list', offsets: outer, child: { kind: 'list', offsets: new Int32Array(outer[rows]! + 1), child: { kind: 'primitive', dtype: 'int32', values: new Int32Array(0) } } },
      },
      { name: 's', data: { kind: 'utf8', offsets: new Int32Array(rows + 1), bytes: new Uint8Array(0) } },
    ];
    await roundTrip([{ entryStart: 0, entryStop: rows, columns: cols }], { rowGroupSize: 20 });
  });

  test('zero rows: a valid file with the schema and no row groups (no writes, or only empty batches)', async () => {
    const fields = fieldsOf(sampleBatch(1));
    for (const batches of [[], [sampleBatch(0)]]) {
      const r = await roundTrip(batches, {}, fields);
      assert.equal(r.src.rows, 0);
      assert.deepEqual(r.footer.rowGroupRows, []);
      assert.ok(r.bytes > 12);
    }
  });

  test('many row groups: rowGroupSize 1 and 7', async () => {
    const b = sampleBatch(23, 9);
    const r1 = await roundTrip([b], { rowGroupSize: 1 });
    assert.equal(r1.footer.rowGroupRows.length, 23);
    assert.equal(r1.got.length, 23, 'one batch per row group');
    const r7 = await roundTrip(splitBatch(b, [5, 5, 13]), { rowGroupSize: 7 });
    assert.deepEqual(r7.footer.rowGroupRows, [7, 7, 7, 2]);
  });

  test('default row group size: about 64 MiB of uncompressed data', async () => {
    const rowBytes = (14 + 15219 + 3) * 4 + 4;
    const perGroup = Math.floor(PARQUET_ROW_GROUP_BYTES / rowBytes);
    const rows = perGroup + 300;
    const batches = [featuresBatch(0, 400), featuresBatch(400, 400), featuresBatch(800, rows - 800)];
    const r = await roundTrip(batches, { compression: 'zstd' });
    assert.deepEqual(r.footer.rowGroupRows, [perGroup, rows - perGroup]);
    // a tiny row: at least one row group of many rows, never 0 rows per group
    const small = await roundTrip([{ entryStart: 0, entryStop: 3, columns: [{ name: 'x', data: { kind: 'primitive', dtype: 'int8', values: new Int8Array(3) } }] }]);
    assert.deepEqual(small.footer.rowGroupRows, [3]);
  });
});

describe('big batches', () => {
  test('a batch over 32 MB goes to wasm in slices: fixed and list columns come back exact, row groups as asked', async () => {
    const rows = 700; // 700 × 60,940 B ≈ 42.7 MB
    const b = featuresBatch(0, rows);
    const lens = Array.from({ length: rows }, (_, i) => (i * 7919) % 30000);
    const lo = offsetsOf(lens);
    const r = rng(3);
    b.columns.push({ name: 'jag', data: { kind: 'list', offsets: lo, child: { kind: 'primitive', dtype: 'float32', values: Float32Array.from({ length: lo[rows]! }, () => r()) } } });
    const res = await roundTrip([b], { rowGroupSize: 300, compression: 'snappy' });
    assert.deepEqual(res.footer.rowGroupRows, [300, 300, 100]);
  });
});

describe('metadata', () => {
  test('opts.metadata is in the footer key-value metadata next to ARROW:schema, and comes back as source.metadata', async () => {
    const metadata = { 'hep-ml.source': 'a.root', 'hep-ml.features': JSON.stringify({ HLF_input: ['pt', 'η'] }), 'unicode ключ': '日本語 🚀', empty: '' };
    const r = await roundTrip([featuresBatch(0, 5)], { metadata });
    const keys = r.footer.keyValue.map(([k]) => k);
    assert.ok(keys.includes('ARROW:schema'), 'ARROW:schema in the footer');
    for (const [k, v] of Object.entries(metadata)) assert.deepEqual(r.footer.keyValue.find(([kk]) => kk === k), [k, v]);
    assert.deepEqual(r.src.metadata, metadata);
  });

  test('without metadata: only ARROW:schema in the footer, {} as source.metadata', async () => {
    const r = await roundTrip([featuresBatch(0, 2)]);
    assert.deepEqual(r.footer.keyValue.map(([k]) => k), ['ARROW:schema']);
    assert.deepEqual(r.src.metadata, {});
  });

  test('the Thrift codec re-encodes a footer to the identical bytes', async () => {
    const dir = tmp();
    try {
      const path = join(dir, 'x.parquet');
      await writeFile(path, [sampleBatch(40, 2)], { rowGroupSize: 9, metadata: { a: 'b' } });
      const bytes = readFileSync(path);
      const len = bytes.readUInt32LE(bytes.length - 8);
      const footer = bytes.subarray(bytes.length - 8 - len, bytes.length - 8);
      const { value, end } = decodeStruct(footer);
      assert.equal(end, len);
      assert.ok(Buffer.from(encodeStruct(value)).equals(footer));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('files: temp name, rename, abort, stdout', () => {
  test('writes .<name>.<pid>.<rand>.part in the same directory, renames on close, removes nothing else', async () => {
    const dir = tmp();
    try {
      const path = join(dir, 'out.parquet');
      writeFileSync(path, 'old content');
      const w = await openParquetWriter(path, fieldsOf(sampleBatch(1)));
      await w.write(sampleBatch(10));
      const parts = readdirSync(dir).filter((f) => f.endsWith('.part'));
      assert.equal(parts.length, 1);
      assert.match(parts[0]!, new RegExp(`^\\.out\\.parquet\\.${process.pid}\\.[0-9a-f]{8}\\.part$`));
      assert.equal(readFileSync(path, 'utf8'), 'old content', 'the final path is untouched before close');
      await w.close();
      assert.deepEqual(readdirSync(dir), ['out.parquet']);
      assert.ok(isParquetFile(readFileSync(path)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('abort removes the temp file and leaves no output (before and after writes); twice is fine', async () => {
    const dir = tmp();
    try {
      const path = join(dir, 'out.parquet');
      const w0 = await openParquetWriter(path, fieldsOf(sampleBatch(1)));
      await w0.abort();
      await w0.abort();
      assert.deepEqual(readdirSync(dir), []);
      const w = await openParquetWriter(path, fieldsOf(featuresBatch(0, 1)), { rowGroupSize: 10 });
      for (let i = 0; i < 5; i++) await w.write(featuresBatch(i * 20, 20));
      await w.abort();
      assert.deepEqual(readdirSync(dir), []);
      await assert.rejects(w.write(featuresBatch(0, 1)));
      await assert.rejects(w.close());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an interrupt (SIGINT) before close removes the temp file', async (t) => {
    if (process.platform === 'win32') return t.skip('POSIX signals');
    const dir = tmp();
    try {
      const script = join(dir, 'child.mjs');
      writeFileSync(
        script,
        `const { openParquetWriter } = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'src/convert/parquet.ts')).href)});
        const w = await openParquetWriter(process.argv[2], [{ name: 'x', type: { kind: 'primitive', dtype: 'int32' } }], { rowGroupSize: 10 });
        for (let i = 0; i < 5; i++) await w.write({ entryStart: 0, entryStop: 100, columns: [{ name: 'x', data: { kind: 'primitive', dtype: 'int32', values: new Int32Array(100) } }] });
        console.log((await import('node:fs')).readdirSync(process.argv[3]).join(','));
        process.kill(process.pid, 'SIGINT');
        setTimeout(() => console.log('still alive'), 5000);`,
      );
      mkdirSync(join(dir, 'out'));
      const r = spawnSync(process.execPath, ['--import', 'tsx', script, join(dir, 'out', 'x.parquet'), join(dir, 'out')], { cwd: repoRoot, encoding: 'utf8' });
      assert.equal(r.signal, 'SIGINT', r.stderr);
      assert.match(r.stdout, /^\.x\.parquet\.\d+\.[0-9a-f]{8}\.part\n$/, 'the temp file existed before the signal');
      assert.deepEqual(readdirSync(join(dir, 'out')), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("'-' writes a complete file to the stdout stream, row group by row group (before close), and leaves it open", async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const fields = fieldsOf(featuresBatch(0, 1));
    const w = await openParquetWriter('-', fields, { stdout: out, rowGroupSize: 10 });
    for (let i = 0; i < 4; i++) await w.write(featuresBatch(i * 10, 10));
    await new Promise((r) => setImmediate(r));
    assert.ok(chunks.length > 0, 'row groups are written before close');
    const res = await w.close();
    assert.equal(out.writableEnded, false);
    const bytes = Buffer.concat(chunks);
    assert.equal(res.bytes, bytes.length);
    const dir = tmp();
    try {
      writeFileSync(join(dir, 'x.parquet'), bytes);
      const { src, batches } = await readAll(join(dir, 'x.parquet'));
      assert.equal(src.rows, 40);
      assert.equal(batches.length, 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a slow consumer holds the writer back (backpressure), and the output is complete', async () => {
    let held = 0;
    let maxHeld = 0;
    const chunks: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        held += chunk.length;
        maxHeld = Math.max(maxHeld, held);
        chunks.push(chunk);
        setTimeout(() => {
          held -= chunk.length;
          cb();
        }, 5);
      },
    });
    const w = await openParquetWriter('-', fieldsOf(featuresBatch(0, 1)), { stdout: slow, rowGroupSize: 5, compression: 'none' });
    for (let i = 0; i < 12; i++) await w.write(featuresBatch(i * 5, 5));
    await w.close();
    const rowGroupBytes = 5 * 15240 * 4;
    assert.ok(maxHeld < 3 * rowGroupBytes, `the sink never held more than a few row groups (${maxHeld} bytes)`);
    const dir = tmp();
    try {
      writeFileSync(join(dir, 'x.parquet'), Buffer.concat(chunks));
      const { src } = await readAll(join(dir, 'x.parquet'));
      assert.equal(src.rows, 60);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('errors', () => {
  test('UsageError for column types Parquet cannot take, no columns, duplicates, bad options', async () => {
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      await assert.rejects(openParquetWriter(p, [{ name: 'a', type: { kind: 'fixed', size: 0, child: f32 } }]), (e: unknown) => e instanceof UsageError && /column 'a'.*size/.test(e.message));
      await assert.rejects(openParquetWriter(p, [{ name: 'a', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float16' as never } } }]), (e: unknown) => e instanceof UsageError && /float16/.test(e.message));
      await assert.rejects(openParquetWriter(p, []), UsageError);
      await assert.rejects(openParquetWriter(p, [{ name: 'a', type: f32 }, { name: 'a', type: f32 }]), UsageError);
      await assert.rejects(openParquetWriter(p, [{ name: 'a', type: f32 }], { rowGroupSize: 0 }), UsageError);
      await assert.rejects(openParquetWriter(p, [{ name: 'a', type: f32 }], { compression: 'lzo' as never }), UsageError);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SchemaMismatchError for a batch that does not match the fields; the writer can still be aborted', async () => {
    const dir = tmp();
    try {
      const w = await openParquetWriter(join(dir, 'x.parquet'), [{ name: 'a', type: f32 }]);
      await assert.rejects(w.write({ entryStart: 0, entryStop: 2, columns: [{ name: 'a', data: { kind: 'primitive', dtype: 'float64', values: new Float64Array(2) } }] }), SchemaMismatchError);
      await w.abort();
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('IoError when the output cannot be created, or when a write to the stream fails (ENOSPC)', async () => {
    const dir = tmp();
    try {
      await assert.rejects(openParquetWriter(join(dir, 'no', 'such', 'dir.parquet'), [{ name: 'a', type: f32 }]), IoError);
      const full = new Writable({
        write(_c, _e, cb) {
          cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
        },
      });
      full.on('error', () => undefined);
      const w = await openParquetWriter('-', fieldsOf(featuresBatch(0, 1)), { stdout: full, rowGroupSize: 2 });
      const attempt = async () => {
        for (let i = 0; i < 10; i++) await w.write(featuresBatch(i * 2, 2));
        await w.close();
      };
      await assert.rejects(attempt(), (e: unknown) => e instanceof IoError && /ENOSPC|no space/.test(e.message));
      await w.abort();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file that cannot grow (EFBIG under ulimit -f, like a full disk) is an IoError and leaves no file behind', async (t) => {
    if (process.platform !== 'linux') return t.skip('needs bash ulimit and SIGXFSZ');
    const dir = tmp();
    try {
      const script = join(dir, 'child.mjs');
      writeFileSync(
        script,
        `process.on('SIGXFSZ', () => {}); // so that write() fails with EFBIG instead of the signal killing us
        const { openParquetWriter } = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'src/convert/parquet.ts')).href)});
        const out = process.argv[2];
        const w = await openParquetWriter(out, [{ name: 'x', type: { kind: 'primitive', dtype: 'float64' } }], { compression: 'none', rowGroupSize: 10000 });
        try {
          for (let i = 0; i < 50; i++) await w.write({ entryStart: 0, entryStop: 10000, columns: [{ name: 'x', data: { kind: 'primitive', dtype: 'float64', values: new Float64Array(10000).fill(i) } }] });
          await w.close();
          console.log('no error');
        } catch (e) { console.log(e.constructor.name + ' ' + e.describe()); }`,
      );
      const out = join(dir, 'out', 'big.parquet');
      mkdirSync(join(dir, 'out'));
      const r = spawnSync('bash', ['-c', 'ulimit -f 100 && exec "$0" --import tsx "$1" "$2"', process.execPath, script, out], { cwd: repoRoot, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^IoError .*big\.parquet: write failed: EFBIG/);
      assert.deepEqual(readdirSync(join(dir, 'out')), [], 'no output and no temp file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reader: InputNotFoundError for a missing file or a directory', async () => {
    const dir = tmp();
    try {
      await assert.rejects(openParquetSource(join(dir, 'missing.parquet')), (e: unknown) => e instanceof InputNotFoundError && e.context.file === join(dir, 'missing.parquet'));
      await assert.rejects(openParquetSource(dir), InputNotFoundError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reader: CorruptDataError naming the file for empty, text, truncated and corrupt files', async () => {
    const dir = tmp();
    try {
      const good = join(dir, 'good.parquet');
      await writeFile(good, [featuresBatch(0, 20)], { rowGroupSize: 10, compression: 'gzip' });
      const bytes = readFileSync(good);
      const cases: [string, Uint8Array][] = [
        ['empty', new Uint8Array(0)],
        ['text', Buffer.from('hello, this is not a parquet file\n'.repeat(4))],
        ['no-footer', bytes.subarray(0, bytes.length - 100)],
        ['half', bytes.subarray(0, bytes.length >> 1)],
        ['bad-footer-length', Buffer.concat([bytes.subarray(0, bytes.length - 8), Buffer.from([0xff, 0xff, 0xff, 0x00]), Buffer.from('PAR1')])],
      ];
      // gzip pages carry a CRC: flipping bytes inside a page is always detected
      const fh = await open(good, 'r');
      const footer = await readFooter(fh, bytes.length);
      await fh.close();
      const plan = planRowGroup(footer, 1);
      const flipped = Buffer.from(bytes);
      const at = plan.copies[0]!.from + Math.floor(plan.copies[0]!.length / 2);
      for (let i = 0; i < 64; i++) flipped[at + i] ^= 0x5a;
      cases.push(['corrupt-page', flipped]);
      for (const [name, data] of cases) {
        const p = join(dir, `${name}.parquet`);
        writeFileSync(p, data);
        const attempt = async () => {
          const src = await openParquetSource(p);
          for await (const _ of src.batches());
        };
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(e instanceof CorruptDataError, `${name}: ${String(e)}`);
          assert.equal(e.context.file, p);
          return true;
        });
      }
      // the reader (and wasm) still work afterwards
      const { src } = await readAll(good);
      assert.equal(src.rows, 20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reader: the name option names the file in errors and as source.name', async () => {
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      await writeFile(p, [featuresBatch(0, 2)]);
      const src = await openParquetSource(p, { name: 'shard 3' });
      assert.equal(src.name, 'shard 3');
      await src.close();
      writeFileSync(p, 'PAR1 garbage garbage PAR1');
      await assert.rejects(openParquetSource(p, { name: 'shard 3' }), (e: unknown) => e instanceof CorruptDataError && e.context.file === 'shard 3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('reader', () => {
  test('reads a file without ARROW:schema from the Parquet schema (LIST → list; dictionary pages; several row groups)', async () => {
    // Write with parquet-wasm directly: dictionary on, no Arrow schema stored, Arrow child named "item".
    const n = 300;
    const vals = Float32Array.from({ length: n * 2 }, (_, i) => i % 17);
    const list = arrow.makeData({
      type: new arrow.List(new arrow.Field('item', new arrow.Float32(), true)),
      length: n,
      nullCount: 0,
      valueOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i * 2),
      child: arrow.makeData({ type: new arrow.Float32(), length: n * 2, nullCount: 0, data: vals }),
    });
    const s = arrow.makeData({ type: new arrow.Utf8(), length: n, nullCount: 0, valueOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i), data: Buffer.from('ab'.repeat(n)) });
    const table = new arrow.Table({ v: arrow.makeVector(list), s: arrow.makeVector(s) });
    const wt = pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
    const props = new pw.WriterPropertiesBuilder().setMaxRowGroupSize(128).setDictionaryEnabled(true).setKeyValueMetadata(new Map([['k', 'v']])).build();
    const bytes = pw.writeParquet(wt, props); // consumes wt and props
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      writeFileSync(p, bytes);
      const { src, batches } = await readAll(p);
      assert.deepEqual(src.fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`), ['v: list<float32>', 's: utf8']);
      assert.equal(src.metadata.k, 'v');
      assert.equal(src.rows, n);
      const v = concatColumns(batches.map((b) => b.columns[0]!.data)) as Extract<ColumnData, { kind: 'list' }>;
      assert.deepEqual(Array.from(v.offsets), Array.from({ length: n + 1 }, (_, i) => i * 2));
      assert.ok(bytesOf((v.child as Extract<ColumnData, { kind: 'primitive' }>).values).equals(bytesOf(vals)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('large and dictionary types in ARROW:schema (polars, pandas categoricals) read as utf8/list; fixed stays fixed', async () => {
    const n = 4;
    const ls = arrow.vectorFromArray(['a', 'bb', 'ccc', ''], new arrow.LargeUtf8());
    const dict = arrow.vectorFromArray(['x', 'y', 'x', 'x'], new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()));
    const ll = arrow.makeData({
      type: new arrow.LargeList(new arrow.Field('item', new arrow.Float32(), true)),
      length: n,
      nullCount: 0,
      valueOffsets: BigInt64Array.from([0n, 1n, 3n, 3n, 6n]),
      child: arrow.makeData({ type: new arrow.Float32(), length: 6, nullCount: 0, data: Float32Array.from([1, 2, 3, 4, 5, 6]) }),
    });
    const fsl = arrow.makeData({
      type: new arrow.FixedSizeList(3, new arrow.Field('item', new arrow.Float32(), true)),
      length: n,
      nullCount: 0,
      child: arrow.makeData({ type: new arrow.Float32(), length: 12, nullCount: 0, data: Float32Array.from({ length: 12 }, (_, i) => i) }),
    });
    const table = new arrow.Table({ ls, dict, ll: arrow.makeVector(ll), fsl: arrow.makeVector(fsl) });
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      writeFileSync(p, pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'))));
      const { src, batches } = await readAll(p);
      assert.deepEqual(src.fields.map((f) => `${f.name}: ${formatColumnType(f.type)}`), ['ls: utf8', 'dict: utf8', 'll: list<float32>', 'fsl: fixed<3, float32>']);
      assert.equal(batches.length, 1);
      const [a, b, c] = batches[0]!.columns.map((x) => x.data);
      assert.equal(Buffer.from((a as Extract<ColumnData, { kind: 'utf8' }>).bytes).toString(), 'abbccc');
      assert.equal(Buffer.from((b as Extract<ColumnData, { kind: 'utf8' }>).bytes).toString(), 'xyxx');
      assert.deepEqual(Array.from((c as Extract<ColumnData, { kind: 'list' }>).offsets), [0, 1, 3, 3, 6]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a column type hep-ml cannot hold (timestamp) is an UnsupportedError naming the column and file', async () => {
    const ts = arrow.vectorFromArray([1, 2, 3], new arrow.TimestampMillisecond());
    const table = new arrow.Table({ when: ts, x: arrow.vectorFromArray([1, 2, 3], new arrow.Float32()) });
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      writeFileSync(p, pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'))));
      await assert.rejects(openParquetSource(p), (e: unknown) => e instanceof UnsupportedError && e.context.file === p && /column 'when'/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('breaking out of batches() closes the file; close() twice is fine', async () => {
    const dir = tmp();
    try {
      const p = join(dir, 'x.parquet');
      await writeFile(p, [featuresBatch(0, 30)], { rowGroupSize: 10 });
      const src = await openParquetSource(p);
      for await (const b of src.batches()) {
        assert.equal(b.entryStart, 0);
        break;
      }
      await src.close();
      await src.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bounded memory', () => {
  test('writing ~600 MB and reading it back keeps RSS bounded (row groups stream through)', async () => {
    const dir = tmp();
    try {
      const p = join(dir, 'big.parquet');
      const rowsPerBatch = 250;
      const batches = 40; // 10,000 rows × 60,960 B ≈ 610 MB of float32
      const fields = fieldsOf(featuresBatch(0, 1));
      // One batch's arrays, refilled in place: the writer copies what it needs before write() resolves.
      const b = featuresBatch(0, rowsPerBatch, 99);
      const gru = ((b.columns[1]!.data as Extract<ColumnData, { kind: 'fixed' }>).child as Extract<ColumnData, { kind: 'primitive' }>).values as Float32Array;
      let peak = 0;
      const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
      const timer = setInterval(sample, 10);
      const before = process.memoryUsage().rss;
      const w = await openParquetWriter(p, fields, { compression: 'none' });
      let expectSum = 0;
      for (let i = 0; i < batches; i++) {
        gru[0] = i;
        gru[gru.length - 1] = -i;
        b.entryStart = i * rowsPerBatch;
        b.entryStop = b.entryStart + rowsPerBatch;
        await w.write(b);
        sample();
      }
      const res = await w.close();
      const writePeak = peak;
      let rows = 0;
      const src = await openParquetSource(p);
      for await (const rb of src.batches()) {
        const v = ((rb.columns[1]!.data as Extract<ColumnData, { kind: 'fixed' }>).child as Extract<ColumnData, { kind: 'primitive' }>).values as Float32Array;
        expectSum += v[0]! + v[v.length - 1]!;
        rows += rb.entryStop - rb.entryStart;
        sample();
      }
      clearInterval(timer);
      sample();
      const mb = (x: number) => Math.round(x / 1e6);
      console.log(`# wrote ${mb(res.bytes)} MB; RSS before ${mb(before)} MB, peak while writing ${mb(writePeak)} MB, peak overall ${mb(peak)} MB`);
      assert.equal(rows, rowsPerBatch * batches);
      assert.ok(res.bytes > 600e6);
      assert.ok(Number.isFinite(expectSum));
      assert.ok(peak < 1.5e9, `peak RSS ${mb(peak)} MB`);
      assert.ok(writePeak - before < res.bytes * 0.8, 'the writer does not hold the file in memory');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
