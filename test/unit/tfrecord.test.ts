import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import {
  decodeExample,
  encodeExample,
  frameRecord,
  isTfRecordPath,
  maskCrc,
  maskedCrc32c,
  openTfRecordSource,
  openTfRecordWriter,
  readTfRecords,
  unmaskCrc,
  type TfRecordWriteOptions,
} from '../../src/convert/tfrecord.js';
import type { Field } from '../../src/convert/types.js';
import {
  type ColumnBatch,
  type ColumnData,
  type ColumnType,
  columnType,
  concatColumns,
  formatColumnType,
} from '../../src/root/columns.js';
import { CorruptDataError, SchemaMismatchError, UnsupportedError, UsageError } from '../../src/errors.js';
import { offsetsOf, rng, sampleBatch, utf8Column } from '../fixtures/columnar-data.js';

const dir = mkdtempSync(join(tmpdir(), 'hepml-tfrecord-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (ext = '.tfrecord') => join(dir, `f${fileNo++}${ext}`);

// ---------------------------------------------------------------------------------------------------
// helpers

function fieldsOf(b: ColumnBatch): Field[] {
  return b.columns.map((c) => ({ name: c.name, type: columnType(c.data) }));
}

function withoutColumns(b: ColumnBatch, names: string[]): ColumnBatch {
  return { ...b, columns: b.columns.filter((c) => !names.includes(c.name)) };
}

async function writeTf(path: string, batches: ColumnBatch[], fields: Field[], opts?: TfRecordWriteOptions) {
  const w = await openTfRecordWriter(path, fields, opts);
  for (const b of batches) await w.write(b);
  return w.close();
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readColumns(path: string, opts: Parameters<typeof openTfRecordSource>[1] = {}) {
  const src = await openTfRecordSource(path, opts);
  const batches = await collect(src.batches());
  const columns = src.fields.map((f, i) => ({
    name: f.name,
    data: batches.length ? concatColumns(batches.map((b) => b.columns[i]!.data)) : undefined,
  }));
  return { src, batches, columns };
}

/** Row `row` of a column as flat values, the way an Example holds them (numbers/bigints/strings). */
function flatRow(c: ColumnData, row: number): (number | bigint | string)[] {
  const out: (number | bigint | string)[] = [];
  const dec = new TextDecoder();
  const walk = (d: ColumnData, s: number, e: number): void => {
    switch (d.kind) {
      case 'primitive':
        for (let i = s; i < e; i++) out.push(d.values[i]!);
        return;
      case 'fixed':
        return walk(d.child, s * d.size, e * d.size);
      case 'list':
        return walk(d.child, d.offsets[s]!, d.offsets[e]!);
      case 'utf8':
        for (let i = s; i < e; i++) out.push(dec.decode(d.bytes.subarray(d.offsets[i]!, d.offsets[i + 1]!)));
        return;
    }
  };
  walk(c, row, row + 1);
  return out;
}

function leafOf(t: ColumnType): ColumnType {
  while (t.kind === 'fixed' || t.kind === 'list') t = t.child;
  return t;
}

/** What an Example holds for one value of a column of type t. */
function expectedValue(t: ColumnType, v: number | bigint | string): number | bigint | string {
  const leaf = leafOf(t);
  if (leaf.kind === 'utf8') return v;
  if (leaf.dtype === 'float32' || leaf.dtype === 'float64') return Math.fround(v as number);
  if (leaf.dtype === 'bool') return v ? 1n : 0n;
  return BigInt.asIntN(64, BigInt(v));
}

function sameNumber(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

function assertFeatureRow(got: ReturnType<typeof decodeExample>, batch: ColumnBatch, row: number): void {
  assert.deepEqual([...got.keys()], batch.columns.map((c) => c.name), 'keys in column order');
  for (const col of batch.columns) {
    const t = columnType(col.data);
    const leaf = leafOf(t);
    const f = got.get(col.name)!;
    const kind = leaf.kind === 'utf8' ? 'bytes' : leaf.dtype === 'float32' || leaf.dtype === 'float64' ? 'float' : 'int64';
    assert.equal(f.kind, kind, `${col.name}: kind`);
    const want = flatRow(col.data, row).map((v) => expectedValue(t, v));
    const have =
      f.kind === 'bytes' ? (f.values as Uint8Array[]).map((b) => new TextDecoder().decode(b)) : Array.from(f.values as Float32Array | BigInt64Array);
    assert.equal(have.length, want.length, `${col.name} row ${row}: count`);
    for (let i = 0; i < want.length; i++) {
      const a = have[i]!;
      const b = want[i]!;
      if (typeof b === 'number') assert.ok(sameNumber(a as number, b), `${col.name} row ${row} [${i}]: ${String(a)} vs ${b}`);
      else assert.equal(a, b, `${col.name} row ${row} [${i}]`);
    }
  }
}

/** Columns compared value by value; floats with Object.is (NaN = NaN); float32 bit-exact. */
function assertColumnsEqual(actual: ColumnData, expected: ColumnData, path: string): void {
  assert.equal(formatColumnType(columnType(actual)), formatColumnType(columnType(expected)), `${path}: type`);
  switch (expected.kind) {
    case 'primitive': {
      const a = actual as typeof expected;
      assert.equal(a.values.constructor, expected.values.constructor, `${path}: array class`);
      assert.equal(a.values.length, expected.values.length, `${path}: length`);
      if (expected.dtype === 'float32') {
        assert.ok(
          Buffer.from(a.values.buffer, a.values.byteOffset, a.values.byteLength).equals(
            Buffer.from(expected.values.buffer, expected.values.byteOffset, expected.values.byteLength),
          ),
          `${path}: float32 bits`,
        );
      } else if (expected.dtype === 'float64') {
        for (let i = 0; i < expected.values.length; i++) {
          assert.ok(sameNumber(a.values[i] as number, Math.fround(expected.values[i] as number)), `${path}[${i}]`);
        }
      } else if (expected.dtype === 'bool') {
        assert.deepEqual(Array.from(a.values as Uint8Array), Array.from(expected.values as Uint8Array, (v) => (v ? 1 : 0)), path);
      } else {
        assert.deepEqual(Array.from(a.values as Int32Array), Array.from(expected.values as Int32Array), path);
      }
      return;
    }
    case 'fixed':
      return assertColumnsEqual((actual as typeof expected).child, expected.child, `${path}.item`);
    case 'list': {
      const a = actual as typeof expected;
      assert.deepEqual(Array.from(a.offsets), Array.from(expected.offsets, (o) => o - expected.offsets[0]!), `${path}: offsets`);
      return assertColumnsEqual(a.child, expected.child, `${path}.item`);
    }
    case 'utf8': {
      const a = actual as typeof expected;
      assert.deepEqual(Array.from(a.offsets), Array.from(expected.offsets), `${path}: offsets`);
      assert.ok(Buffer.from(a.bytes).equals(Buffer.from(expected.bytes)), `${path}: bytes`);
      return;
    }
  }
}

/** Start offsets of the records of a plain TFRecord file (parsed here, trusting the lengths). */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  let p = 0;
  while (p < buf.length) {
    out.push(p);
    p += 16 + Number(buf.readBigUInt64LE(p));
  }
  return out;
}

async function expectReject(p: Promise<unknown>, cls: Function, re: RegExp): Promise<Error> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  assert.match((err as Error).message, re);
  return err as Error;
}

const f32Batch = (name: string, lengths: number[], seed = 1, entryStart = 0): ColumnBatch => {
  const r = rng(seed);
  const o = offsetsOf(lengths);
  return {
    entryStart,
    entryStop: entryStart + lengths.length,
    columns: [{ name, data: { kind: 'list', offsets: o, child: { kind: 'primitive', dtype: 'float32', values: Float32Array.from({ length: o[lengths.length]! }, () => r()) } } }],
  };
};

const scalarBatch = (cols: Record<string, ColumnData>, rows: number): ColumnBatch => ({
  entryStart: 0,
  entryStop: rows,
  columns: Object.entries(cols).map(([name, data]) => ({ name, data })),
});

// ---------------------------------------------------------------------------------------------------

describe('TFRecord framing and CRC', () => {
  test('crc32c check value; mask and unmask are inverse', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    for (const c of [0, 1, 0xe3069283, 0xffffffff, 0x12345678]) {
      assert.equal(unmaskCrc(maskCrc(c)), c);
      assert.notEqual(maskCrc(c), c);
    }
    // mask = rotr15(crc) + 0xa282ead8, worked by hand for crc = 1: rotr15(1) = 0x00020000
    assert.equal(maskCrc(1), (0x00020000 + 0xa282ead8) >>> 0);
  });

  test('frameRecord: uint64 length, masked CRCs of length and data', () => {
    const payload = Buffer.from('hello, tfrecord');
    const f = frameRecord(payload);
    assert.equal(f.length, payload.length + 16);
    assert.equal(f.readBigUInt64LE(0), BigInt(payload.length));
    assert.equal(f.readUInt32LE(8), maskedCrc32c(f.subarray(0, 8)));
    assert.ok(f.subarray(12, 12 + payload.length).equals(payload));
    assert.equal(f.readUInt32LE(12 + payload.length), maskedCrc32c(payload));
  });

  test('isTfRecordPath', () => {
    for (const p of ['a.tfrecord', 'x/y.tfrecords', 'd.tfr', 'a.tfrecord.gz', 'A.TFRecord', 'train.tfrecord-00001-of-00010', 'train.tfrecord-00001-of-00010.gz']) {
      assert.ok(isTfRecordPath(p), p);
    }
    for (const p of ['a.parquet', 'a.arrow', 'tfrecord', 'a.tfrecord.zst', 'a.tfrecordx', 'a.gz']) assert.ok(!isTfRecordPath(p), p);
  });
});

describe('Example encoding', () => {
  test('encodeExample → decodeExample round trip for every column type', () => {
    const batch = sampleBatch(40, 7);
    for (let row = 0; row < 40; row++) assertFeatureRow(decodeExample(encodeExample(batch, row)), batch, row);
  });

  test('empty lists keep their kind; an Example without columns is features {}', () => {
    const batch = f32Batch('x', [0, 2]);
    const e = decodeExample(encodeExample(batch, 0));
    assert.equal(e.get('x')!.kind, 'float');
    assert.equal((e.get('x')!.values as Float32Array).length, 0);
    const none = encodeExample({ entryStart: 0, entryStop: 1, columns: [] }, 0);
    assert.deepEqual(Array.from(none), [0x0a, 0x00]);
    assert.equal(decodeExample(none).size, 0);
  });

  test('wire bytes of a small Example are what protobuf writes', () => {
    const b = scalarBatch(
      {
        a: { kind: 'primitive', dtype: 'float32', values: Float32Array.of(1) },
        n: { kind: 'primitive', dtype: 'int32', values: Int32Array.of(-1) },
        s: utf8Column(['hi']),
      },
      1,
    );
    const hex = Buffer.from(encodeExample(b, 0)).toString('hex');
    // Example{features{feature{key:"a" value{float_list{value:1}}} feature{key:"n" value{int64_list{value:-1}}} feature{key:"s" value{bytes_list{value:"hi"}}}}}
    const a = '0a0161' + '12' + '08' + '12' + '06' + '0a04' + '0000803f';
    // int64 -1: ten bytes, ff×9 01
    const n = '0a016e' + '12' + '0e' + '1a' + '0c' + '0a0a' + 'ffffffffffffffffff01';
    const s = '0a0173' + '12' + '06' + '0a' + '04' + '0a02' + '6869';
    const entries = [a, n, s].map((e) => '0a' + (e.length / 2).toString(16).padStart(2, '0') + e).join('');
    assert.equal(hex, '0a' + (entries.length / 2).toString(16).padStart(2, '0') + entries);
  });

  test('decodeExample rejects bytes that are not an Example', () => {
    assert.throws(() => decodeExample(Uint8Array.of(0x0a, 0x05, 0x0a)), CorruptDataError);
    assert.throws(() => decodeExample(Uint8Array.of(0x0b)), CorruptDataError);
  });

  test('duplicate column names are refused', async () => {
    const t: ColumnType = { kind: 'primitive', dtype: 'float32' };
    await expectReject(
      openTfRecordWriter(tmp(), [
        { name: 'a', type: t },
        { name: 'a', type: t },
      ]),
      SchemaMismatchError,
      /duplicate column name 'a'/,
    );
  });
});

describe('TFRecord writer and source', () => {
  const full = [sampleBatch(17, 1), sampleBatch(0, 2, 17), sampleBatch(40, 3, 17)];
  const fields = fieldsOf(full[0]!);

  test('with fields: every type reads back as written (float64 through float32)', async () => {
    const path = tmp();
    const res = await writeTf(path, full, fields);
    assert.equal(res.rows, 57);
    assert.equal(res.bytes, readFileSync(path).length);
    const readable = fields.filter((f) => f.name !== 'jag2');
    const { src, batches, columns } = await readColumns(path, { fields: readable, batchRows: 16 });
    assert.equal(src.rows, undefined);
    assert.deepEqual(
      batches.map((b) => [b.entryStart, b.entryStop]),
      [
        [0, 16],
        [16, 32],
        [32, 48],
        [48, 57],
      ],
    );
    for (const [i, f] of readable.entries()) {
      const expected = concatColumns(full.map((b) => b.columns.find((c) => c.name === f.name)!.data));
      let exp = expected;
      // float64 comes back as float64 holding the float32 values
      assertColumnsEqual(columns[i]!.data!, exp, f.name);
    }
  });

  test('list<list<int32>> is written flattened: refused as such, readable as list<int32>', async () => {
    const path = tmp();
    await writeTf(path, full, fields);
    await expectReject(
      openTfRecordSource(path, { fields: [fields.find((f) => f.name === 'jag2')!] }),
      UnsupportedError,
      /column 'jag2' is list<list<int32>>.*read it as list<int32>/,
    );
    const { columns } = await readColumns(path, { fields: [{ name: 'jag2', type: { kind: 'list', child: { kind: 'primitive', dtype: 'int32' } } }] });
    const src = concatColumns(full.map((b) => b.columns.find((c) => c.name === 'jag2')!.data));
    const got = columns[0]!.data!;
    for (let r = 0; r < 57; r++) assert.deepEqual(flatRow(got, r), flatRow(src, r), `row ${r}`);
  });

  test('without fields: the schema is inferred from the first batch', async () => {
    const path = tmp();
    await writeTf(path, full, fields);
    const { src, columns } = await readColumns(path, { batchRows: 8 });
    const types = Object.fromEntries(src.fields.map((f) => [f.name, formatColumnType(f.type)]));
    assert.deepEqual(types, {
      b: 'int64', i8: 'int64', u8: 'int64', i16: 'int64', u16: 'int64', i32: 'int64', u32: 'int64', i64: 'int64', u64: 'int64',
      f32: 'float32', f64: 'float32', fsl2: 'fixed<20, float32>', fslb: 'fixed<3, int64>',
      jag: 'list<float32>', jag2: 'list<int64>', jagb: 'list<int64>', s: 'utf8', ls: 'list<utf8>',
    });
    const source = full;
    for (const [i, f] of src.fields.entries()) {
      const orig = concatColumns(source.map((b) => b.columns.find((c) => c.name === f.name)!.data));
      const t = columnType(orig);
      for (let r = 0; r < 57; r++) {
        const want = flatRow(orig, r).map((v) => expectedValue(t, v));
        const got = flatRow(columns[i]!.data!, r);
        assert.equal(got.length, want.length, `${f.name} row ${r}`);
        for (let k = 0; k < want.length; k++) {
          if (typeof want[k] === 'number') assert.ok(sameNumber(got[k] as number, want[k] as number), `${f.name} row ${r}`);
          else assert.equal(got[k], want[k], `${f.name} row ${r}`);
        }
      }
    }
  });

  test('inference: a later record with another length contradicts a scalar', async () => {
    const path = tmp();
    await writeTf(path, [f32Batch('x', [1, 1, 1, 1, 1, 2])], [{ name: 'x', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }]);
    const src = await openTfRecordSource(path, { batchRows: 4 });
    assert.equal(formatColumnType(src.fields[0]!.type), 'float32');
    const e = await expectReject(collect(src.batches()), SchemaMismatchError, /record 5 at byte \d+: feature 'x' has 2 values, expected a float_list with exactly 1 float value \(float32, inferred from records 0–3\)/);
    assert.ok((e as CorruptDataError).describe().startsWith(path));
  });

  test('inference: constant length → fixed, a later different length is an error', async () => {
    const path = tmp();
    await writeTf(path, [f32Batch('x', [3, 3, 3, 3, 4])], [{ name: 'x', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }]);
    const src = await openTfRecordSource(path, { batchRows: 4 });
    assert.equal(formatColumnType(src.fields[0]!.type), 'fixed<3, float32>');
    await expectReject(collect(src.batches()), SchemaMismatchError, /record 4 .*'x' has 4 values, expected .*exactly 3/);
  });

  test('inference: contradictions inside the first batch, kind changes, missing and extra keys', async () => {
    const a = tmp();
    const b = tmp();
    const c = tmp();
    await writeTf(a, [scalarBatch({ x: { kind: 'primitive', dtype: 'float32', values: Float32Array.of(1, 2, 3) }, y: utf8Column(['p', 'q', 'r']) }, 3)], [
      { name: 'x', type: { kind: 'primitive', dtype: 'float32' } },
      { name: 'y', type: { kind: 'utf8' } },
    ]);
    await writeTf(b, [scalarBatch({ x: { kind: 'primitive', dtype: 'int32', values: Int32Array.of(7) }, y: utf8Column(['s']) }, 1)], [
      { name: 'x', type: { kind: 'primitive', dtype: 'int32' } },
      { name: 'y', type: { kind: 'utf8' } },
    ]);
    await writeTf(c, [scalarBatch({ x: { kind: 'primitive', dtype: 'float32', values: Float32Array.of(9) } }, 1)], [{ name: 'x', type: { kind: 'primitive', dtype: 'float32' } }]);
    const cat = (...ps: string[]) => {
      const p = tmp();
      writeFileSync(p, Buffer.concat(ps.map((x) => readFileSync(x))));
      return p;
    };
    // kind change in a later batch
    const src = await openTfRecordSource(cat(a, b), { batchRows: 2 });
    await expectReject(collect(src.batches()), SchemaMismatchError, /record 3 at byte \d+: feature 'x' is a int64_list of 1 values, expected a float_list/);
    // kind change within the first batch (inference)
    await expectReject(openTfRecordSource(cat(a, b)), SchemaMismatchError, /record 3 .*feature 'x' is a int64_list, record 0 has a float_list/);
    // missing key
    await expectReject(openTfRecordSource(cat(a, c)), SchemaMismatchError, /record 3 .*feature 'y' is missing/);
    const later = await openTfRecordSource(cat(a, c), { batchRows: 2 });
    await expectReject(collect(later.batches()), SchemaMismatchError, /record 3 .*feature 'y' is missing/);
    // extra key: an error when inferring, ignored with fields
    await expectReject(openTfRecordSource(cat(c, a)), SchemaMismatchError, /record 1 .*feature 'y' does not appear in record 0/);
    const extra = await openTfRecordSource(cat(c, a), { batchRows: 1 });
    await expectReject(collect(extra.batches()), SchemaMismatchError, /record 1 .*feature 'y' is not in the schema/);
    const { columns } = await readColumns(cat(c, a), { fields: [{ name: 'x', type: { kind: 'primitive', dtype: 'float32' } }] });
    assert.deepEqual(Array.from(columns[0]!.data!.kind === 'primitive' ? columns[0]!.data!.values : []), [9, 1, 2, 3]);
    // missing key with fields
    await expectReject(
      readColumns(cat(a, c), { fields: [{ name: 'y', type: { kind: 'utf8' } }] }),
      SchemaMismatchError,
      /record 3 .*feature 'y' is missing \(expected a bytes_list with exactly 1 bytes value \(utf8\)\)/,
    );
  });

  test('with fields: sizes, kinds and integer ranges are checked', async () => {
    const path = tmp();
    const data: ColumnData = { kind: 'fixed', size: 3, child: { kind: 'primitive', dtype: 'int32', values: Int32Array.of(1, 2, 3, 4, 300, 6) } };
    await writeTf(path, [scalarBatch({ v: data }, 2)], [{ name: 'v', type: columnType(data) }]);
    const fixed = (size: number, dtype: 'int8' | 'int16' | 'float32'): Field[] => [{ name: 'v', type: { kind: 'fixed', size, child: { kind: 'primitive', dtype } } }];
    await expectReject(readColumns(path, { fields: fixed(4, 'int16') }), SchemaMismatchError, /record 0 at byte 0: feature 'v' has 3 values, expected a int64_list with exactly 4 int64 values \(fixed<4, int16>\)/);
    await expectReject(readColumns(path, { fields: fixed(3, 'float32') }), SchemaMismatchError, /record 0 .*is a int64_list of 3 values, expected a float_list/);
    await expectReject(readColumns(path, { fields: fixed(3, 'int8') }), SchemaMismatchError, /record 1 .*'v': value 300 does not fit int8/);
    const { columns } = await readColumns(path, { fields: fixed(3, 'int16') });
    assert.deepEqual(flatRow(columns[0]!.data!, 1), [4, 300, 6]);
    const lists = await readColumns(path, { fields: [{ name: 'v', type: { kind: 'list', child: { kind: 'fixed', size: 3, child: { kind: 'primitive', dtype: 'int64' } } } }] });
    const l = lists.columns[0]!.data! as Extract<ColumnData, { kind: 'list' }>;
    assert.deepEqual(Array.from(l.offsets), [0, 1, 2]);
    await expectReject(
      readColumns(path, { fields: [{ name: 'v', type: { kind: 'list', child: { kind: 'fixed', size: 2, child: { kind: 'primitive', dtype: 'int64' } } } }] }),
      SchemaMismatchError,
      /has 3 values, expected a int64_list with a multiple of 2 int64 values/,
    );
  });

  test('64-bit integers: extremes survive int64 and uint64', async () => {
    const path = tmp();
    const i64 = BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, 2n ** 53n + 1n);
    const u64 = BigUint64Array.of(2n ** 64n - 1n, 2n ** 63n, 0n, 1n, 2n ** 53n + 1n);
    const b = scalarBatch({ a: { kind: 'primitive', dtype: 'int64', values: i64 }, u: { kind: 'primitive', dtype: 'uint64', values: u64 } }, 5);
    await writeTf(path, [b], fieldsOf(b));
    const { columns } = await readColumns(path, { fields: fieldsOf(b) });
    assert.deepEqual(Array.from((columns[0]!.data as { values: BigInt64Array }).values), Array.from(i64));
    assert.deepEqual(Array.from((columns[1]!.data as { values: BigUint64Array }).values), Array.from(u64));
    const inferred = await readColumns(path);
    assert.deepEqual(Array.from((inferred.columns[1]!.data as { values: BigInt64Array }).values), Array.from(u64, (v) => BigInt.asIntN(64, v)));
  });

  test('writing a batch that is not the schema is refused', async () => {
    const w = await openTfRecordWriter(tmp(), [{ name: 'x', type: { kind: 'primitive', dtype: 'float32' } }]);
    await expectReject(w.write(scalarBatch({ y: { kind: 'primitive', dtype: 'float32', values: Float32Array.of(1) } }, 1)), SchemaMismatchError, /'y'.*'x'/);
    await expectReject(w.write(scalarBatch({ x: { kind: 'primitive', dtype: 'float64', values: Float64Array.of(1) } }, 1)), SchemaMismatchError, /float64.*float32/);
    await w.abort();
  });

  test('zero records: an empty file, read as no batches', async () => {
    const path = tmp();
    const res = await writeTf(path, [], fields);
    assert.deepEqual(res, { bytes: 0, rows: 0 });
    assert.equal(readFileSync(path).length, 0);
    assert.deepEqual(await collect(readTfRecords(path)), []);
    const withFields = await readColumns(path, { fields: [fields[0]!] });
    assert.equal(withFields.batches.length, 0);
    assert.equal(withFields.src.fields.length, 1);
    const inferred = await readColumns(path);
    assert.deepEqual(inferred.src.fields, []);
    assert.equal(inferred.batches.length, 0);
    const gz = tmp('.tfrecord.gz');
    await writeTf(gz, [sampleBatch(0)], fields, { gzip: true });
    assert.equal(gunzipSync(readFileSync(gz)).length, 0);
    assert.deepEqual(await collect(readTfRecords(gz)), []);
  });

  test('gzip: one gzip stream of the plain file, read back by auto-detection', async () => {
    const plain = tmp();
    const gz = tmp('.tfrecord.gz');
    const gz1 = tmp('.tfrecord.gz');
    await writeTf(plain, full, fields);
    const res = await writeTf(gz, full, fields, { gzip: true });
    await writeTf(gz1, full, fields, { gzip: true, gzipLevel: 1 });
    const bytes = readFileSync(gz);
    assert.equal(res.bytes, bytes.length);
    assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b]);
    assert.ok(gunzipSync(bytes).equals(readFileSync(plain)));
    assert.ok(gunzipSync(readFileSync(gz1)).equals(readFileSync(plain)));
    const a = await collect(readTfRecords(plain));
    const b = await collect(readTfRecords(gz));
    assert.equal(b.length, 57);
    for (let i = 0; i < a.length; i++) assert.ok(Buffer.from(a[i]!).equals(Buffer.from(b[i]!)), `record ${i}`);
    const readable = fields.filter((f) => f.name !== 'jag2');
    const x = await readColumns(gz, { fields: readable });
    const y = await readColumns(plain, { fields: readable });
    for (let i = 0; i < readable.length; i++) assertColumnsEqual(x.columns[i]!.data!, y.columns[i]!.data!, readable[i]!.name);
    await expectReject(openTfRecordWriter(tmp(), fields, { gzip: true, gzipLevel: 12 }), UsageError, /gzip level/);
  });

  test('reading from a stream in tiny chunks (records straddle chunks)', async () => {
    const path = tmp();
    await writeTf(path, full, fields);
    const bytes = readFileSync(path);
    const chunks: Buffer[] = [];
    for (let p = 0; p < bytes.length; p += 7) chunks.push(bytes.subarray(p, p + 7));
    const fromStream = await collect(readTfRecords(Readable.from(chunks)));
    const fromFile = await collect(readTfRecords(path));
    assert.equal(fromStream.length, 57);
    for (let i = 0; i < 57; i++) assert.ok(Buffer.from(fromStream[i]!).equals(Buffer.from(fromFile[i]!)));
    const gzChunks: Buffer[] = [];
    const gz = gzipSync(bytes);
    for (let p = 0; p < gz.length; p += 5) gzChunks.push(gz.subarray(p, p + 5));
    assert.equal((await collect(readTfRecords(Readable.from(gzChunks)))).length, 57);
  });
});

describe('corrupt input', () => {
  /** 6 records of different sizes. */
  async function sample(): Promise<{ path: string; bytes: Buffer; offsets: number[] }> {
    const path = tmp();
    await writeTf(path, [f32Batch('x', [3, 10, 0, 50, 7, 20])], [{ name: 'x', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }]);
    const bytes = readFileSync(path);
    return { path, bytes, offsets: recordOffsets(bytes) };
  }
  const variant = (bytes: Buffer, edit: (b: Buffer) => Buffer | void): string => {
    const b = Buffer.from(bytes);
    const out = edit(b) ?? b;
    const p = tmp();
    writeFileSync(p, out);
    return p;
  };

  test('a flipped byte in a payload: CorruptDataError naming the record, after the good ones', async () => {
    const { bytes, offsets } = await sample();
    const p = variant(bytes, (b) => {
      b[offsets[3]! + 12 + 20]! ^= 0x40;
    });
    const got: Uint8Array[] = [];
    const e = await expectReject(
      (async () => {
        for await (const r of readTfRecords(p)) got.push(r);
      })(),
      CorruptDataError,
      new RegExp(`^record 3 at byte ${offsets[3]}: corrupted record: data CRC mismatch`),
    );
    assert.equal(got.length, 3);
    assert.equal((e as CorruptDataError).context.file, p);
    assert.match((e as CorruptDataError).describe(), new RegExp(`^${p}: record 3 at byte ${offsets[3]}`));
    // without verification the record comes through
    assert.equal((await collect(readTfRecords(p, { verify: false }))).length, 6);
    // the source reports it the same way
    await expectReject(readColumns(p), CorruptDataError, /^record 3 at byte \d+: corrupted record: data CRC/);
  });

  test('a flipped byte in a stored CRC or a length', async () => {
    const { bytes, offsets } = await sample();
    const crc = variant(bytes, (b) => {
      b[offsets[1]! + 12 + 10 * 4 + 2 + 2]! ^= 1; // inside the data CRC (after the Example)
    });
    await expectReject(collect(readTfRecords(crc)), CorruptDataError, new RegExp(`^record 1 at byte ${offsets[1]}: corrupted record: data CRC`));
    const len = variant(bytes, (b) => {
      b[offsets[4]!]! ^= 0x01;
    });
    await expectReject(collect(readTfRecords(len)), CorruptDataError, new RegExp(`^record 4 at byte ${offsets[4]}: corrupted record header: length CRC mismatch`));
    const hi = variant(bytes, (b) => {
      b[offsets[2]! + 6]! ^= 0x80;
    });
    await expectReject(collect(readTfRecords(hi)), CorruptDataError, /^record 2 at byte \d+: corrupted record header/);
    const lenCrc = variant(bytes, (b) => {
      b[offsets[5]! + 9]! ^= 0x10;
    });
    await expectReject(collect(readTfRecords(lenCrc)), CorruptDataError, /^record 5 .*length CRC mismatch/);
  });

  test('truncation mid-record and mid-header', async () => {
    const { bytes, offsets } = await sample();
    const mid = variant(bytes, (b) => b.subarray(0, offsets[4]! + 30));
    await expectReject(collect(readTfRecords(mid)), CorruptDataError, new RegExp(`^record 4 at byte ${offsets[4]}: truncated record`));
    const head = variant(bytes, (b) => b.subarray(0, offsets[5]! + 5));
    await expectReject(collect(readTfRecords(head)), CorruptDataError, new RegExp(`^record 5 at byte ${offsets[5]}: truncated record: the input ends 5 bytes into the 12-byte record header`));
    const crcCut = variant(bytes, (b) => b.subarray(0, b.length - 2));
    await expectReject(collect(readTfRecords(crcCut)), CorruptDataError, /^record 5 .*truncated record/);
    // from a stream (no file size to compare with), and through gzip
    await expectReject(collect(readTfRecords(Readable.from([bytes.subarray(0, offsets[4]! + 30)]))), CorruptDataError, /^record 4 at byte \d+: truncated record.*input ends 18 bytes after the header/);
    await expectReject(
      collect(readTfRecords(Readable.from([gzipSync(bytes.subarray(0, offsets[4]! + 30))]))),
      CorruptDataError,
      /^record 4 at byte \d+ of the decompressed stream: truncated record/,
    );
    const gz = gzipSync(bytes);
    const cutGz = variant(gz, (b) => b.subarray(0, b.length - 30));
    await expectReject(collect(readTfRecords(cutGz)), CorruptDataError, /bad gzip data \(unexpected end of file\) while reading record \d+/);
  });

  test('corruption inside gzip data names the record in the decompressed stream', async () => {
    const { bytes, offsets } = await sample();
    const bad = Buffer.from(bytes);
    bad[offsets[2]! + 14]! ^= 0xff;
    const p = tmp('.tfrecord.gz');
    writeFileSync(p, gzipSync(bad));
    await expectReject(collect(readTfRecords(p)), CorruptDataError, new RegExp(`^record 2 at byte ${offsets[2]} of the decompressed stream: corrupted record: data CRC`));
    // a plain file read as gzip, and a gzip file read as plain
    const plain = variant(bytes, () => undefined);
    await expectReject(collect(readTfRecords(plain, { gzip: true })), CorruptDataError, /bad gzip data/);
    await expectReject(collect(readTfRecords(p, { gzip: false })), CorruptDataError, /^record 0 at byte 0: corrupted record header.*starts like gzip/);
  });

  test('a record that is not an Example', async () => {
    const p = tmp();
    writeFileSync(p, Buffer.concat([frameRecord(encodeExample(f32Batch('x', [2]), 0)), frameRecord(Buffer.from([0x0a, 0x09, 0x0a, 0x01]))]));
    await expectReject(readColumns(p), CorruptDataError, /^record 1 at byte \d+: not a valid tf.train.Example/);
  });

  test('missing file', async () => {
    await assert.rejects(collect(readTfRecords(join(dir, 'nope.tfrecord'))), { name: 'InputNotFoundError' });
    await assert.rejects(openTfRecordSource(join(dir, 'nope.tfrecord')), { name: 'InputNotFoundError' });
  });
});

describe('writer lifecycle', () => {
  const b = sampleBatch(30, 5);
  const fields = fieldsOf(b);
  const leftovers = (name: string) => readdirSync(dir).filter((f) => f.includes(name));

  test('abort leaves no file and no temp file; an existing target is untouched', async () => {
    const path = join(dir, 'aborted.tfrecord');
    const w = await openTfRecordWriter(path, fields);
    await w.write(b);
    assert.equal(leftovers('aborted.tfrecord').length, 1); // the .part file
    await w.abort();
    await w.abort();
    assert.ok(!existsSync(path));
    assert.deepEqual(leftovers('aborted.tfrecord'), []);
    await assert.rejects(w.close(), /already aborted/);

    const kept = join(dir, 'kept.tfrecord');
    writeFileSync(kept, 'old');
    const w2 = await openTfRecordWriter(kept, fields, { gzip: true });
    await w2.write(b);
    await w2.abort();
    assert.equal(readFileSync(kept, 'utf8'), 'old');
    assert.deepEqual(leftovers('kept.tfrecord'), ['kept.tfrecord']);
    const w3 = await openTfRecordWriter(kept, fields);
    await w3.abort();
    assert.equal(readFileSync(kept, 'utf8'), 'old');
  });

  test("'-' writes the same bytes to stdout; abort poisons the stream", async () => {
    const path = tmp();
    await writeTf(path, [b], fields);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const res = await writeTf('-', [b], fields, { stdout: out });
    assert.ok(Buffer.concat(chunks).equals(readFileSync(path)));
    assert.equal(res.bytes, readFileSync(path).length);
    assert.ok(!out.writableEnded, 'stdout stays open');

    for (const gzip of [false, true]) {
      const o = new PassThrough();
      const got: Buffer[] = [];
      o.on('data', (c: Buffer) => got.push(c));
      const w = await openTfRecordWriter('-', fields, { stdout: o, gzip });
      await w.write(b);
      await w.abort();
      let bytes = Buffer.concat(got);
      if (gzip) bytes = gunzipSync(bytes);
      const recs: Uint8Array[] = [];
      await expectReject(
        (async () => {
          for await (const r of readTfRecords(Readable.from([bytes]))) recs.push(r);
        })(),
        CorruptDataError,
        /^record 30 at byte \d+: corrupted record header/,
      );
      assert.equal(recs.length, 30);
    }
  });

  test("'-' with gzip and end: a complete gzip stream, ended", async () => {
    const o = new PassThrough();
    const got: Buffer[] = [];
    o.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise((res) => o.on('end', res));
    await writeTf('-', [b], fields, { stdout: o, gzip: true, end: true });
    await ended;
    const recs = await collect(readTfRecords(Readable.from([Buffer.concat(got)])));
    assert.equal(recs.length, 30);
  });

  test('write() waits for the output to drain (backpressure)', async () => {
    const o = new PassThrough({ highWaterMark: 1024 });
    const big = f32Batch('x', Array.from({ length: 200 }, () => 10_000)); // ~8 MB: two 4 MiB chunks
    const w = await openTfRecordWriter('-', [{ name: 'x', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }], { stdout: o });
    let done = false;
    const p = w.write(big).then(() => {
      done = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(done, false, 'write resolved although nobody reads the output');
    let n = 0;
    o.on('data', (c: Buffer) => (n += c.length));
    await p;
    const res = await w.close();
    assert.equal(res.rows, 200);
    assert.equal(n, res.bytes);
  });

  test('a batch object reused with new arrays is encoded afresh', async () => {
    const path = tmp();
    const batch = scalarBatch({ x: { kind: 'primitive', dtype: 'int32', values: Int32Array.of(1, 2) } }, 2);
    const w = await openTfRecordWriter(path, fieldsOf(batch));
    await w.write(batch);
    batch.columns = [{ name: 'x', data: { kind: 'primitive', dtype: 'int32', values: Int32Array.of(3, 4) } }];
    await w.write(batch);
    await w.close();
    const { columns } = await readColumns(path, { fields: fieldsOf(batch) });
    assert.deepEqual(Array.from((columns[0]!.data as { values: Int32Array }).values), [1, 2, 3, 4]);
  });

  test('a broken pipe fails the write', async () => {
    const o = new PassThrough({ highWaterMark: 1024 });
    const w = await openTfRecordWriter('-', fields, { stdout: o });
    o.destroy();
    await assert.rejects(w.write(b), { name: 'BrokenPipeError' });
    await w.abort();
  });
});
