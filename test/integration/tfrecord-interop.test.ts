/**
 * TFRecord interop: files written by hep-ml's hand-rolled Example encoder are read back by an independent
 * decoder (protobufjs, built from TensorFlow's own example.proto/feature.proto text in
 * test/fixtures/tensorflow/) with an independent CRC-32C (table-driven, written here), and the framing is
 * parsed here too. Every record's two CRCs are checked and every value is compared with the source.
 * The other direction as well: Examples encoded by protobufjs, framed here, are read by hep-ml's reader.
 */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { openTfRecordSource, openTfRecordWriter, readTfRecords } from '../../src/convert/tfrecord.js';
import type { Field } from '../../src/convert/types.js';
import { type ColumnBatch, type ColumnData, columnType, concatColumns, formatColumnType } from '../../src/root/columns.js';
import { offsetsOf, rng, utf8Column } from '../fixtures/columnar-data.js';

const here = dirname(fileURLToPath(import.meta.url));
const protoDir = join(here, '..', 'fixtures', 'tensorflow');
const dir = mkdtempSync(join(tmpdir(), 'hepml-tfrecord-interop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------
// An independent CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), byte-at-a-time from a table.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32cRef(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TensorFlow's crc32c::Mask, written out as in crc32c.h: ((crc >> 15) | (crc << 17)) + kMaskDelta. */
function maskRef(crc: number): number {
  const rotated = Number((BigInt(crc) >> 15n) | ((BigInt(crc) << 17n) & 0xffffffffn));
  return (rotated + 0xa282ead8) % 2 ** 32;
}

/** The payloads of a plain TFRecord buffer, with both CRCs of every record checked. */
function framesRef(buf: Buffer): { payloads: Buffer[]; crcChecks: number } {
  const payloads: Buffer[] = [];
  let crcChecks = 0;
  let p = 0;
  while (p < buf.length) {
    assert.ok(buf.length - p >= 12, `record ${payloads.length}: truncated header`);
    const len = Number(buf.readBigUInt64LE(p));
    assert.equal(buf.readUInt32LE(p + 8), maskRef(crc32cRef(buf.subarray(p, p + 8))), `record ${payloads.length}: length CRC`);
    crcChecks++;
    const data = buf.subarray(p + 12, p + 12 + len);
    assert.equal(data.length, len, `record ${payloads.length}: truncated data`);
    assert.equal(buf.readUInt32LE(p + 12 + len), maskRef(crc32cRef(data)), `record ${payloads.length}: data CRC`);
    crcChecks++;
    payloads.push(data);
    p += 16 + len;
  }
  return { payloads, crcChecks };
}

function frameRef(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(payload.length + 16);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskRef(crc32cRef(out.subarray(0, 8))), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskRef(crc32cRef(payload)), 12 + payload.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// protobufjs from TensorFlow's .proto text

let Example: protobuf.Type;

function loadRoot(transform: (text: string) => string = (t) => t): protobuf.Root {
  const root = new protobuf.Root();
  for (const f of ['feature.proto', 'example.proto']) {
    protobuf.parse(transform(readFileSync(join(protoDir, f), 'utf8')), root, { keepCase: true });
  }
  root.resolveAll();
  return root;
}

interface FeatureObj {
  kind?: 'bytes_list' | 'float_list' | 'int64_list';
  bytes_list?: { value: Uint8Array[] };
  float_list?: { value: number[] };
  int64_list?: { value: string[] };
}

function decodeRef(payload: Uint8Array): Record<string, FeatureObj> {
  const msg = Example.decode(payload);
  const obj = Example.toObject(msg, { longs: String, arrays: true, objects: true, oneofs: true }) as {
    features: { feature: Record<string, FeatureObj> };
  };
  return obj.features.feature;
}

before(() => {
  Example = loadRoot().lookupType('tensorflow.Example');
});

// ---------------------------------------------------------------------------------------------------
// data

/** The SparkDLTrigger inclusive-classifier layout: HLF_input 14, GRU_input 801×19 flattened, encoded_label 3, label. */
function featuresBatch(rows: number, seed: number, entryStart: number): ColumnBatch {
  const r = rng(seed);
  const f32 = (n: number) => {
    const a = Float32Array.from({ length: n }, () => (r() - 0.5) * 200);
    // a few special values: signed zeros, infinities, the smallest subnormal, the largest float32
    const specials = [0, -0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38];
    for (let i = 0; i < specials.length && i < n; i++) if (r() < 0.3) a[Math.floor(r() * n)] = specials[i]!;
    return a;
  };
  const labels = Int32Array.from({ length: rows }, () => Math.floor(r() * 3));
  const onehot = new Float32Array(rows * 3);
  labels.forEach((l, i) => (onehot[3 * i + l] = 1));
  const fixed = (size: number, values: Float32Array): ColumnData => ({ kind: 'fixed', size, child: { kind: 'primitive', dtype: 'float32', values } });
  return {
    entryStart,
    entryStop: entryStart + rows,
    columns: [
      { name: 'HLF_input', data: fixed(14, f32(rows * 14)) },
      { name: 'GRU_input', data: fixed(15219, f32(rows * 15219)) },
      { name: 'encoded_label', data: fixed(3, onehot) },
      { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: labels } },
    ],
  };
}

/** Jagged columns: list<float32>, list<list<int32>>, int64 (negatives, extremes), bool, utf8. */
function jaggedBatch(rows: number, seed: number, entryStart: number): ColumnBatch {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const ptLen = Array.from({ length: rows }, () => (r() < 0.25 ? 0 : int(1, 9)));
  const ptOff = offsetsOf(ptLen);
  const outer = Array.from({ length: rows }, () => int(0, 4));
  const oo = offsetsOf(outer);
  const inner = Array.from({ length: oo[rows]! }, () => int(0, 5));
  const io = offsetsOf(inner);
  const special = [-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, -(2n ** 31n), 2n ** 53n + 1n];
  const words = ['', 'μ⁺μ⁻', 'jet', 'e±', '日本', 'b-tag', 'tab\there'];
  return {
    entryStart,
    entryStop: entryStart + rows,
    columns: [
      { name: 'pt', data: { kind: 'list', offsets: ptOff, child: { kind: 'primitive', dtype: 'float32', values: Float32Array.from({ length: ptOff[rows]! }, () => r() * 500) } } },
      {
        name: 'hits',
        data: {
          kind: 'list',
          offsets: oo,
          child: { kind: 'list', offsets: io, child: { kind: 'primitive', dtype: 'int32', values: Int32Array.from({ length: io[io.length - 1]! }, () => int(-2147483648, 2147483647)) } },
        },
      },
      { name: 'id', data: { kind: 'primitive', dtype: 'int64', values: BigInt64Array.from({ length: rows }, (_, i) => special[(i + seed) % special.length]! * BigInt(i % 2 ? 1 : -1) + BigInt(int(-5, 5)) * (i % 3 === 0 ? 0n : 1n)) } },
      { name: 'flag', data: { kind: 'primitive', dtype: 'bool', values: Uint8Array.from({ length: rows }, () => (r() < 0.5 ? 1 : 0)) } },
      { name: 'tag', data: utf8Column(Array.from({ length: rows }, (_, i) => words[i % words.length]! + (i % 4 === 0 ? `#${i}` : ''))) },
    ],
  };
}

function fieldsOf(b: ColumnBatch): Field[] {
  return b.columns.map((c) => ({ name: c.name, type: columnType(c.data) }));
}

/** Row `row` of a column, flattened row-major: numbers, bigints or strings. */
function flatRow(c: ColumnData, row: number): (number | bigint | string)[] {
  const out: (number | bigint | string)[] = [];
  const dec = new TextDecoder();
  const walk = (d: ColumnData, s: number, e: number): void => {
    if (d.kind === 'primitive') for (let i = s; i < e; i++) out.push(d.values[i]!);
    else if (d.kind === 'fixed') walk(d.child, s * d.size, e * d.size);
    else if (d.kind === 'list') walk(d.child, d.offsets[s]!, d.offsets[e]!);
    else for (let i = s; i < e; i++) out.push(dec.decode(d.bytes.subarray(d.offsets[i]!, d.offsets[i + 1]!)));
  };
  walk(c, row, row + 1);
  return out;
}

async function write(path: string, batches: ColumnBatch[], gzip: boolean): Promise<Buffer> {
  const w = await openTfRecordWriter(path, fieldsOf(batches[0]!), { gzip });
  for (const b of batches) await w.write(b);
  await w.close();
  const raw = readFileSync(path);
  if (gzip) {
    assert.deepEqual([raw[0], raw[1]], [0x1f, 0x8b], 'a gzip file');
    return gunzipSync(raw);
  }
  return raw;
}

/** Checks every record of `buf` against the source batches with the reference decoder. */
function checkAgainstSource(buf: Buffer, batches: ColumnBatch[]): { records: number; crcChecks: number; values: number } {
  const { payloads, crcChecks } = framesRef(buf);
  const rows = batches.reduce((s, b) => s + (b.entryStop - b.entryStart), 0);
  assert.equal(payloads.length, rows, 'one record per row');
  const names = batches[0]!.columns.map((c) => c.name);
  const columns = names.map((_, i) => concatColumns(batches.map((b) => b.columns[i]!.data)));
  let values = 0;
  payloads.forEach((payload, row) => {
    const feats = decodeRef(payload);
    assert.deepEqual(Object.keys(feats), names, `record ${row}: feature keys are exactly the column names, in order`);
    names.forEach((name, i) => {
      const col = columns[i]!;
      let leaf = columnType(col);
      while (leaf.kind === 'fixed' || leaf.kind === 'list') leaf = leaf.child;
      const want = flatRow(col, row);
      const f = feats[name]!;
      const where = `record ${row}, '${name}'`;
      if (leaf.kind === 'utf8') {
        assert.equal(f.kind, 'bytes_list', where);
        assert.deepEqual(
          f.bytes_list!.value.map((b) => Buffer.from(b).toString('utf8')),
          want,
          where,
        );
      } else if (leaf.dtype === 'float32' || leaf.dtype === 'float64') {
        assert.equal(f.kind, 'float_list', where);
        const got = f.float_list!.value;
        assert.equal(got.length, want.length, `${where}: count`);
        for (let k = 0; k < want.length; k++) {
          if (!Object.is(got[k], Math.fround(want[k] as number))) assert.fail(`${where}[${k}]: ${got[k]} != ${String(want[k])}`);
        }
      } else {
        assert.equal(f.kind, 'int64_list', where);
        assert.deepEqual(
          f.int64_list!.value.map((s) => BigInt(s)),
          want.map((v) => (leaf.kind === 'primitive' && leaf.dtype === 'bool' ? (v ? 1n : 0n) : BigInt.asIntN(64, BigInt(v)))),
          where,
        );
      }
      values += want.length;
    });
  });
  return { records: payloads.length, crcChecks, values };
}

// ---------------------------------------------------------------------------------------------------

describe('TFRecord interop with protobufjs and TensorFlow message definitions', () => {
  test('the reference CRC-32C passes its check value; the mask matches the formula', () => {
    assert.equal(crc32cRef(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32cRef(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    assert.equal(maskRef(0), 0xa282ead8);
  });

  test('the .proto text is TensorFlow\'s: field numbers and packing', () => {
    const root = loadRoot();
    const feature = root.lookupType('tensorflow.Feature');
    assert.deepEqual(
      Object.fromEntries(Object.values(feature.fields).map((f) => [f.name, [f.id, f.type]])),
      { bytes_list: [1, 'BytesList'], float_list: [2, 'FloatList'], int64_list: [3, 'Int64List'] },
    );
    assert.deepEqual(feature.oneofsArray.map((o) => [o.name, o.fieldsArray.map((f) => f.name)]), [['kind', ['bytes_list', 'float_list', 'int64_list']]]);
    const fl = root.lookupType('tensorflow.FloatList').fields.value!;
    const il = root.lookupType('tensorflow.Int64List').fields.value!;
    assert.deepEqual([fl.id, fl.type, fl.repeated, fl.packed], [1, 'float', true, true]);
    assert.deepEqual([il.id, il.type, il.repeated, il.packed], [1, 'int64', true, true]);
    const feats = root.lookupType('tensorflow.Features').fields.feature! as protobuf.MapField;
    assert.deepEqual([feats.id, feats.keyType, feats.type], [1, 'string', 'Feature']);
    assert.equal(root.lookupType('tensorflow.Example').fields.features!.id, 1);
    assert.deepEqual(Object.keys(root.lookupType('tensorflow.SequenceExample').fields), ['context', 'feature_lists']);
    assert.ok(root.lookupType('tensorflow.FeatureLists'));
  });

  for (const gzip of [false, true]) {
    test(`features layout (HLF 14, GRU 15219, encoded_label 3, label), ${gzip ? 'gzip' : 'plain'}: every record decodes to the source`, async () => {
      const batches = [featuresBatch(24, 11, 0), featuresBatch(9, 12, 24)];
      const buf = await write(join(dir, `features${gzip ? '.tfrecord.gz' : '.tfrecord'}`), batches, gzip);
      const res = checkAgainstSource(buf, batches);
      assert.equal(res.records, 33);
      assert.equal(res.crcChecks, 66);
      assert.equal(res.values, 33 * (14 + 15219 + 3 + 1));
    });

    test(`jagged layout (list<float32>, list<list<int32>>, int64, bool, utf8), ${gzip ? 'gzip' : 'plain'}: every record decodes to the source`, async () => {
      const batches = [jaggedBatch(50, 3, 0), jaggedBatch(0, 4, 50), jaggedBatch(31, 5, 50)];
      const buf = await write(join(dir, `jagged${gzip ? '.tfrecord.gz' : '.tfrecord'}`), batches, gzip);
      const res = checkAgainstSource(buf, batches);
      assert.equal(res.records, 81);
      assert.equal(res.crcChecks, 162);
    });
  }

  test('the other way: Examples encoded by protobufjs (packed and unpacked), framed here, read by hep-ml', async () => {
    const packedRoot = loadRoot();
    // The same messages with packing turned off: repeated floats as fixed32 fields, int64s as separate varints.
    const unpackedRoot = loadRoot((t) => t.replace(/\[packed = true\]/g, '[packed = false]'));
    const rows = 40;
    const r = rng(99);
    const src = Array.from({ length: rows }, (_, i) => ({
      hlf: Array.from({ length: 14 }, () => Math.fround((r() - 0.5) * 10)),
      n: Array.from({ length: i % 5 }, () => Math.fround(r())),
      id: BigInt(Math.floor((r() - 0.5) * 1e6)) * 1_000_000_007n,
      name: `event-${i}-π`,
    }));
    const encode = (root: protobuf.Root, s: (typeof src)[number]) => {
      const Ex = root.lookupType('tensorflow.Example');
      const msg = Ex.fromObject({
        features: {
          feature: {
            hlf: { float_list: { value: s.hlf } },
            n: { float_list: { value: s.n } },
            id: { int64_list: { value: [s.id.toString()] } },
            name: { bytes_list: { value: [Buffer.from(s.name)] } },
          },
        },
      });
      return Ex.encode(msg).finish();
    };
    const payloads = src.map((s, i) => encode(i % 2 ? unpackedRoot : packedRoot, s));
    // the unpacked encoding really is different on the wire
    assert.notDeepEqual(Buffer.from(payloads[1]!), Buffer.from(encode(packedRoot, src[1]!)));
    const path = join(dir, 'protobufjs.tfrecord');
    writeFileSync(path, Buffer.concat(payloads.map(frameRef)));

    const recs: Uint8Array[] = [];
    for await (const p of readTfRecords(path)) recs.push(p);
    assert.deepEqual(recs.map((p) => Buffer.from(p)), payloads.map((p) => Buffer.from(p)));

    const check = async (fields?: Field[]) => {
      const source = await openTfRecordSource(path, { fields, batchRows: 16 });
      const types = Object.fromEntries(source.fields.map((f) => [f.name, formatColumnType(f.type)]));
      const batches: ColumnBatch[] = [];
      for await (const b of source.batches()) batches.push(b);
      const col = (name: string) => concatColumns(batches.map((b) => b.columns.find((c) => c.name === name)!.data));
      for (let i = 0; i < rows; i++) {
        assert.deepEqual(flatRow(col('hlf'), i), src[i]!.hlf, `row ${i} hlf`);
        assert.deepEqual(flatRow(col('n'), i), src[i]!.n, `row ${i} n`);
        assert.deepEqual(flatRow(col('id'), i), [src[i]!.id], `row ${i} id`);
        assert.deepEqual(flatRow(col('name'), i), [src[i]!.name], `row ${i} name`);
      }
      return types;
    };
    assert.deepEqual(await check(), { hlf: 'fixed<14, float32>', n: 'list<float32>', id: 'int64', name: 'utf8' });
    await check([
      { name: 'name', type: { kind: 'utf8' } },
      { name: 'id', type: { kind: 'primitive', dtype: 'int64' } },
      { name: 'n', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } },
      { name: 'hlf', type: { kind: 'fixed', size: 14, child: { kind: 'primitive', dtype: 'float32' } } },
    ]);
  });
});
