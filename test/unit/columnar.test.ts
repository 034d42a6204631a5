import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as arrow from 'apache-arrow';
import {
  BrokenPipeError,
  IpcStreamWriter,
  arrowType,
  columnTypeFromArrow,
  fromArrowData,
  fromRecordBatch,
  makeSchema,
  openIpcStream,
  packBools,
  readIpcStream,
  toArrowData,
  toRecordBatch,
  unpackBools,
} from '../../src/columnar/index.js';
import { type ColumnBatch, type ColumnData, columnRows, columnType, formatColumnType } from '../../src/root/columns.js';
import { CorruptDataError, InputNotFoundError, IoError, SchemaMismatchError, UnsupportedError } from '../../src/errors.js';
import { offsetsOf, rng, sampleBatch } from '../fixtures/columnar-data.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

// ---------------------------------------------------------------------------------------------------
// helpers

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Bitwise equality of two columns (NaN payloads included); bools compared as 0/1. */
function assertColumnEqual(actual: ColumnData, expected: ColumnData, path = 'column'): void {
  assert.equal(formatColumnType(columnType(actual)), formatColumnType(columnType(expected)), `${path}: type`);
  assert.equal(columnRows(actual), columnRows(expected), `${path}: rows`);
  switch (expected.kind) {
    case 'primitive': {
      const a = actual as typeof expected;
      assert.equal(a.values.constructor, expected.values.constructor, `${path}: array class`);
      if (expected.dtype === 'bool') {
        assert.deepEqual(Array.from(a.values as Uint8Array), Array.from(expected.values as Uint8Array, (v) => (v ? 1 : 0)), `${path}: bools`);
      } else {
        assert.ok(Buffer.from(bytesOf(a.values)).equals(Buffer.from(bytesOf(expected.values))), `${path}: bytes differ`);
      }
      return;
    }
    case 'fixed': {
      const a = actual as typeof expected;
      assert.equal(a.size, expected.size);
      return assertColumnEqual(a.child, expected.child, `${path}.item`);
    }
    case 'list': {
      const a = actual as typeof expected;
      const base = expected.offsets[0]!;
      assert.deepEqual(Array.from(a.offsets), Array.from(expected.offsets, (o) => o - base), `${path}: offsets`);
      return assertColumnEqual(a.child, expected.child, `${path}[]`);
    }
    case 'utf8': {
      const a = actual as typeof expected;
      const base = expected.offsets[0]!;
      assert.deepEqual(Array.from(a.offsets), Array.from(expected.offsets, (o) => o - base), `${path}: offsets`);
      assert.ok(
        Buffer.from(a.bytes).equals(Buffer.from(expected.bytes.subarray(base, expected.offsets[expected.offsets.length - 1]))),
        `${path}: bytes`,
      );
      return;
    }
  }
}

function assertBatchEqual(actual: ColumnBatch, expected: ColumnBatch): void {
  assert.deepEqual(actual.columns.map((c) => c.name), expected.columns.map((c) => c.name));
  for (let i = 0; i < expected.columns.length; i++) {
    assertColumnEqual(actual.columns[i]!.data, expected.columns[i]!.data, expected.columns[i]!.name);
  }
}

/** Reference slicing of a ColumnData (rows [start, start+n)), for checking fromArrowData on sliced Data. */
function sliceColumn(c: ColumnData, start: number, n: number): ColumnData {
  switch (c.kind) {
    case 'primitive':
      return { kind: 'primitive', dtype: c.dtype, values: c.values.subarray(start, start + n) } as ColumnData;
    case 'fixed':
      return { kind: 'fixed', size: c.size, child: sliceColumn(c.child, start * c.size, n * c.size) };
    case 'list': {
      const b = c.offsets[start]!;
      const e = c.offsets[start + n]!;
      return { kind: 'list', offsets: c.offsets.slice(start, start + n + 1).map((o) => o - b), child: sliceColumn(c.child, b, e - b) };
    }
    case 'utf8': {
      const b = c.offsets[start]!;
      const e = c.offsets[start + n]!;
      return { kind: 'utf8', offsets: c.offsets.slice(start, start + n + 1).map((o) => o - b), bytes: c.bytes.slice(b, e) };
    }
  }
}

function schemaOf(batch: ColumnBatch, metadata?: Record<string, string>): arrow.Schema {
  return makeSchema(batch.columns.map((c) => ({ name: c.name, type: columnType(c.data) })), metadata);
}

/** Writes batches through IpcStreamWriter into memory; returns the stream's bytes. */
async function writeToBytes(schema: arrow.Schema, batches: ColumnBatch[]): Promise<Uint8Array> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const w = await IpcStreamWriter.open('-', { stdout: sink, schema, end: true });
  for (const b of batches) await w.write(toRecordBatch(schema, b));
  await w.close();
  assert.equal(w.batchesWritten, batches.length);
  const bytes = Buffer.concat(chunks);
  assert.equal(w.bytesWritten, bytes.length);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Feeds bytes in chunks of `size` (odd sizes put buffers at unaligned offsets). */
function chunked(bytes: Uint8Array, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(Buffer.from(bytes.subarray(i, i + size)));
  return Readable.from(parts);
}

async function readAll(source: Parameters<typeof readIpcStream>[0]): Promise<ColumnBatch[]> {
  const out: ColumnBatch[] = [];
  for await (const rb of readIpcStream(source)) out.push(fromRecordBatch(rb));
  return out;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hepml-columnar-'));
}

// ---------------------------------------------------------------------------------------------------

describe('arrow types', () => {
  test('primitive dtypes map to the Arrow types and back', () => {
    const expect: Record<string, string> = {
      bool: 'Bool', int8: 'Int8', uint8: 'Uint8', int16: 'Int16', uint16: 'Uint16', int32: 'Int32',
      uint32: 'Uint32', int64: 'Int64', uint64: 'Uint64', float32: 'Float32', float64: 'Float64',
    };
    for (const [dtype, name] of Object.entries(expect)) {
      const t = arrowType({ kind: 'primitive', dtype: dtype as any });
      assert.equal(String(t), name);
      assert.deepEqual(columnTypeFromArrow(t), { kind: 'primitive', dtype });
    }
    assert.equal(String(arrowType({ kind: 'utf8' })), 'Utf8');
  });

  test('fixed and list children are nullable fields named item', () => {
    const t = arrowType({ kind: 'fixed', size: 4, child: { kind: 'fixed', size: 5, child: { kind: 'primitive', dtype: 'float32' } } });
    assert.ok(t instanceof arrow.FixedSizeList);
    assert.equal(t.listSize, 4);
    assert.equal(t.children[0]!.name, 'item');
    assert.equal(t.children[0]!.nullable, true);
    const inner = t.children[0]!.type as arrow.FixedSizeList;
    assert.equal(inner.listSize, 5);
    const l = arrowType({ kind: 'list', child: { kind: 'list', child: { kind: 'primitive', dtype: 'int32' } } }) as arrow.List;
    assert.ok(l instanceof arrow.List);
    assert.equal(l.children[0]!.name, 'item');
    assert.equal(l.children[0]!.nullable, true);
    const s = makeSchema([{ name: 'x', type: { kind: 'list', child: { kind: 'primitive', dtype: 'float32' } } }], { k: 'v' });
    assert.equal(s.fields[0]!.nullable, true);
    assert.equal(s.metadata.get('k'), 'v');
  });

  test('unsupported Arrow types and duplicate names are rejected', () => {
    assert.throws(() => columnTypeFromArrow(new arrow.Float16()), UnsupportedError);
    assert.throws(() => columnTypeFromArrow(new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())), UnsupportedError);
    const p = { kind: 'primitive', dtype: 'int32' } as const;
    assert.throws(() => makeSchema([{ name: 'a', type: p }, { name: 'a', type: p }]), SchemaMismatchError);
  });
});

describe('bool packing', () => {
  test('pack/unpack agree with a bit-by-bit reference at every length and bit offset', () => {
    const r = rng(7);
    for (let n = 0; n < 80; n++) {
      // values other than 0/1 count as true; start at an unaligned offset half of the time
      const raw = Uint8Array.from({ length: n + 3 }, () => (r() < 0.5 ? 0 : r() < 0.8 ? 1 : 1 + Math.floor(r() * 255)));
      const src = n % 2 ? raw.subarray(3) : raw.subarray(0, n);
      const bits = packBools(src);
      assert.equal(bits.length % 8, 0, 'bitmap padded to 8 bytes');
      for (let i = 0; i < n; i++) assert.equal((bits[i >> 3]! >> (i & 7)) & 1, src[i] ? 1 : 0, `n=${n} bit ${i}`);
      for (let i = n; i < bits.length * 8; i++) assert.equal((bits[i >> 3]! >> (i & 7)) & 1, 0, 'padding bits are zero');
      for (const off of [0, 1, 3, 8, 9, 16]) {
        if (off > n) continue;
        const back = unpackBools(bits, off, n - off);
        assert.deepEqual(Array.from(back), Array.from(src.subarray(off), (v) => (v ? 1 : 0)), `n=${n} off=${off}`);
      }
    }
  });
});

describe('ColumnData <-> Arrow Data', () => {
  const batch = sampleBatch(37);

  test('toArrowData is zero-copy for numeric values, offsets and utf8 bytes', () => {
    const col = (name: string) => batch.columns.find((c) => c.name === name)!.data;
    const f32 = col('f32') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(toArrowData(f32).values, f32.values);
    const i64 = col('i64') as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(toArrowData(i64).values, i64.values);
    const jag = col('jag') as Extract<ColumnData, { kind: 'list' }>;
    const d = toArrowData(jag);
    assert.equal(d.valueOffsets, jag.offsets);
    assert.equal(d.children[0]!.values, (jag.child as Extract<ColumnData, { kind: 'primitive' }>).values);
    const s = col('s') as Extract<ColumnData, { kind: 'utf8' }>;
    const sd = toArrowData(s);
    assert.equal(sd.valueOffsets, s.offsets);
    assert.equal((sd.values as Uint8Array).buffer, s.bytes.buffer);
    // and Arrow sees the right values
    const v = new arrow.Vector([d as arrow.Data<arrow.List<arrow.Float32>>]);
    const row = jag.offsets.findIndex((o, i) => i < 37 && jag.offsets[i + 1]! > o);
    assert.deepEqual(Array.from(v.get(row)!), Array.from((jag.child as any).values.subarray(jag.offsets[row], jag.offsets[row + 1])));
    const sv = new arrow.Vector([sd as arrow.Data<arrow.Utf8>]);
    assert.equal(sv.get(2), '日本語');
  });

  test('every column survives toArrowData -> fromArrowData', () => {
    for (const c of batch.columns) assertColumnEqual(fromArrowData(toArrowData(c.data)), c.data, c.name);
  });

  test('fromArrowData handles sliced Data (nonzero offsets, bit offsets)', () => {
    const schema = schemaOf(batch);
    const rb = toRecordBatch(schema, batch);
    for (const [start, n] of [[3, 5], [0, 37], [9, 0], [17, 20], [36, 1]] as const) {
      const sliced = rb.slice(start, start + n);
      const back = fromRecordBatch(sliced);
      for (let i = 0; i < batch.columns.length; i++) {
        const c = batch.columns[i]!;
        assertColumnEqual(back.columns[i]!.data, sliceColumn(c.data, start, n), `${c.name}[${start}:+${n}]`);
      }
    }
  });

  test('fromArrowData checks an expected type and rejects nulls', () => {
    const d = toArrowData({ kind: 'primitive', dtype: 'int32', values: Int32Array.of(1, 2, 3) });
    assert.throws(() => fromArrowData(d, { kind: 'primitive', dtype: 'float32' }), SchemaMismatchError);
    const withNulls = arrow.vectorFromArray([1, null, 3], new arrow.Int32()).data[0]!;
    assert.throws(() => fromArrowData(withNulls), UnsupportedError);
  });

  test('toRecordBatch rejects columns that do not match the schema', () => {
    const b = sampleBatch(5);
    const schema = schemaOf(b);
    assert.equal(toRecordBatch(schema, b).numRows, 5);
    const renamed = { ...b, columns: b.columns.map((c, i) => (i === 2 ? { ...c, name: 'zzz' } : c)) };
    assert.throws(() => toRecordBatch(schema, renamed), (e) => e instanceof SchemaMismatchError && /zzz/.test(e.message));
    const retyped = { ...b, columns: b.columns.map((c, i) => (i === 1 ? { ...c, data: { kind: 'primitive', dtype: 'int16', values: new Int16Array(5) } as ColumnData } : c)) };
    assert.throws(() => toRecordBatch(schema, retyped), SchemaMismatchError);
    assert.throws(() => toRecordBatch(schema, { ...b, columns: b.columns.slice(1) }), SchemaMismatchError);
    assert.throws(() => toRecordBatch(schema, { ...b, entryStop: 6 }), SchemaMismatchError);
    const short = { ...b, columns: b.columns.map((c, i) => (i === 1 ? { ...c, data: { kind: 'primitive', dtype: 'int8', values: new Int8Array(4) } as ColumnData } : c)) };
    assert.throws(() => toRecordBatch(schema, short), /4 rows/);
    const badOffsets: ColumnData = { kind: 'list', offsets: Int32Array.of(0, 2, 9), child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(3) } };
    assert.throws(() => toArrowData(badOffsets), SchemaMismatchError);
    const wrongArray = { kind: 'primitive', dtype: 'int64', values: new Float64Array(2) } as unknown as ColumnData;
    assert.throws(() => toArrowData(wrongArray), SchemaMismatchError);
  });
});

describe('IPC stream round trip', () => {
  const batches = [sampleBatch(50, 1, 0), sampleBatch(0, 2, 50), sampleBatch(23, 3, 50), sampleBatch(1, 4, 73)];
  const schema = schemaOf(batches[0]!, { source: 'test' });

  test('ColumnData -> Arrow -> IPC bytes -> readIpcStream -> ColumnData, every dtype, zero-row batch included', async () => {
    const bytes = await writeToBytes(schema, batches);
    for (const chunk of [bytes.length, 65536, 13, 7]) {
      const input = await openIpcStream(chunked(bytes, chunk));
      assert.deepEqual(input.schema.fields.map((f) => f.name), schema.fields.map((f) => f.name));
      assert.equal(input.schema.metadata.get('source'), 'test');
      const got: ColumnBatch[] = [];
      for await (const rb of input.batches) got.push(fromRecordBatch(rb));
      assert.equal(got.length, batches.length, `chunk size ${chunk}`);
      got.forEach((g, i) => assertBatchEqual(g, batches[i]!));
      assert.equal(input.bytesRead, bytes.length);
    }
  });

  test("Arrow's own reader reads our stream (independent check)", async () => {
    const bytes = await writeToBytes(schema, batches);
    const t = arrow.tableFromIPC(bytes);
    assert.equal(t.numRows, 74);
    assert.equal(t.batches.length, 4);
    assert.equal(t.getChild('i64')!.get(2), 2n ** 53n + 1n);
    assert.equal(t.getChild('u64')!.get(0), 2n ** 64n - 1n);
    assert.equal(t.getChild('s')!.get(1), 'héllo');
    assert.equal(String(t.schema.fields.find((f) => f.name === 'fsl2')!.type), 'FixedSizeList[4]<FixedSizeList[5]<Float32>>');
  });

  test('a schema-only stream (zero batches) is valid: schema + EOS', async () => {
    const bytes = await writeToBytes(schema, []);
    assert.deepEqual(Array.from(bytes.subarray(bytes.length - 8)), [255, 255, 255, 255, 0, 0, 0, 0]);
    const input = await openIpcStream(Readable.from([Buffer.from(bytes)]));
    assert.equal(input.schema.fields.length, schema.fields.length);
    let n = 0;
    for await (const _ of input.batches) n++;
    assert.equal(n, 0);
    assert.equal(arrow.tableFromIPC(bytes).numRows, 0);
  });

  test('a batch whose schema differs is refused, an equal schema object is accepted', async () => {
    const sink = new PassThrough();
    sink.resume();
    const w = await IpcStreamWriter.open('-', { stdout: sink, schema });
    await w.write(toRecordBatch(schemaOf(batches[0]!, { source: 'test' }), batches[0]!));
    const other = makeSchema([{ name: 'x', type: { kind: 'primitive', dtype: 'float32' } }]);
    await assert.rejects(w.write(toRecordBatch(other, { entryStart: 0, entryStop: 1, columns: [{ name: 'x', data: { kind: 'primitive', dtype: 'float32', values: new Float32Array(1) } }] })), /differs/);
    await w.close();
  });
});

describe('IPC file target', () => {
  test('writes to a temp file, renames on close; nothing before', async () => {
    const dir = tmp();
    try {
      const out = join(dir, 'out.arrow');
      const b = sampleBatch(40);
      const schema = schemaOf(b);
      const w = await IpcStreamWriter.open(out);
      assert.ok(w.tempPath && existsSync(w.tempPath));
      assert.equal(dirname(w.tempPath!), dir);
      await w.write(toRecordBatch(schema, b));
      assert.equal(existsSync(out), false, 'final path must not exist before close');
      await w.close();
      assert.equal(existsSync(out), true);
      assert.equal(existsSync(w.tempPath!), false);
      assert.deepEqual(readdirSync(dir), ['out.arrow']);
      assert.equal(readFileSync(out).length, w.bytesWritten);
      const got = await readAll(out);
      assert.equal(got.length, 1);
      assertBatchEqual(got[0]!, b);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('abort removes the temp file and leaves no final file', async () => {
    const dir = tmp();
    try {
      const out = join(dir, 'out.arrow');
      const b = sampleBatch(40);
      const w = await IpcStreamWriter.open(out, { schema: schemaOf(b) });
      await w.write(toRecordBatch(schemaOf(b), b));
      await w.abort();
      assert.equal(existsSync(out), false);
      assert.equal(existsSync(w.tempPath!), false);
      assert.deepEqual(readdirSync(dir), []);
      await assert.rejects(w.write(toRecordBatch(schemaOf(b), b)), /aborted/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unwritable directory is an IoError naming the target', async () => {
    await assert.rejects(IpcStreamWriter.open('/nonexistent-dir-hepml/x.arrow'), (e) => e instanceof IoError && /x\.arrow/.test(e.describe()));
  });
});

describe('backpressure and closed consumers', () => {
  const big = (rows: number, seed: number): ColumnBatch => {
    // ~1 MB per batch: one float32 column of 4 values per row... plus a list
    const lengths = Array.from({ length: rows }, (_, i) => i % 7);
    const o = offsetsOf(lengths);
    return {
      entryStart: 0,
      entryStop: rows,
      columns: [
        { name: 'x', data: { kind: 'fixed', size: 4, child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(rows * 4).fill(seed) } } },
        { name: 'l', data: { kind: 'list', offsets: o, child: { kind: 'primitive', dtype: 'float32', values: new Float32Array(o[rows]!) } } },
      ],
    };
  };

  test('a slow consumer makes write() wait for drain; buffered bytes stay bounded', async () => {
    const hwm = 64 * 1024;
    const sink = new PassThrough({ highWaterMark: hwm });
    let received = 0;
    const consumer = (async () => {
      for await (const chunk of sink) {
        received += (chunk as Buffer).length;
        await new Promise((r) => setImmediate(r)); // slow: one chunk per event-loop turn
      }
    })();
    const b = big(40_000, 1); // 640 kB + 120k floats = ~1.1 MB per batch
    const schema = schemaOf(b);
    const w = await IpcStreamWriter.open('-', { stdout: sink, schema, end: true });
    let maxBuffered = 0;
    const batches = 40;
    for (let i = 0; i < batches; i++) {
      await w.write(toRecordBatch(schema, big(40_000, i)));
      maxBuffered = Math.max(maxBuffered, sink.writableLength);
    }
    await w.close();
    await consumer;
    const batchBytes = w.bytesWritten / batches;
    assert.equal(received, w.bytesWritten);
    assert.ok(w.drainWaits >= batches / 2, `expected drain waits, got ${w.drainWaits}`);
    // without backpressure the whole ~45 MB would sit in the PassThrough's buffer
    assert.ok(maxBuffered <= batchBytes + 2 * hwm, `buffered ${maxBuffered} bytes after write() resolved (batch ${batchBytes})`);
    assert.ok(w.bytesWritten > 40e6);
  });

  test('a consumer that goes away rejects write() with BrokenPipeError instead of hanging', async () => {
    const sink = new PassThrough({ highWaterMark: 16 * 1024 });
    sink.once('data', () => {
      sink.pause(); // the consumer stops reading, then goes away
      setImmediate(() => sink.destroy());
    });
    const b = big(40_000, 1);
    const schema = schemaOf(b);
    let w: IpcStreamWriter | undefined;
    await assert.rejects(
      (async () => {
        w = await IpcStreamWriter.open('-', { stdout: sink, schema });
        for (let i = 0; i < 100; i++) await w.write(toRecordBatch(schema, b));
      })(),
      BrokenPipeError,
    );
    assert.ok(w && w.batchesWritten < 100);
    await w!.abort();
  });

  test('EPIPE from a real child pipe is a BrokenPipeError', async () => {
    const child = spawn(process.execPath, ['-e', "process.stdin.once('data', () => process.exit(0))"], { stdio: ['pipe', 'ignore', 'inherit'] });
    const b = big(40_000, 1);
    const schema = schemaOf(b);
    const w = await IpcStreamWriter.open('-', { stdout: child.stdin });
    const err = await (async () => {
      try {
        for (let i = 0; i < 1000; i++) await w.write(toRecordBatch(schema, b));
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof BrokenPipeError, `got ${String(err)}`);
    assert.equal(err.code, 'EPIPE');
    await w.abort();
  });

  test('abort() on a stream poisons it so readers fail instead of seeing a short stream', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const b = sampleBatch(10);
    const schema = schemaOf(b);
    const w = await IpcStreamWriter.open('-', { stdout: sink, schema, end: true });
    await w.write(toRecordBatch(schema, b));
    await w.abort();
    await new Promise((r) => sink.end(r));
    const bytes = Buffer.concat(chunks);
    await assert.rejects(readAll(Readable.from([bytes])), CorruptDataError);
  });
});

describe('child process pipe', () => {
  test('a child writes a stream to stdout; the parent reads it with readIpcStream', async () => {
    const script = join(repoRoot, 'test', 'fixtures', 'columnar-writer.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, '4', '300', '11'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const got = await readAll(child.stdout);
    assert.equal(await exited, 0, stderr);
    assert.equal(got.length, 4);
    got.forEach((g, i) => assertBatchEqual(g, sampleBatch(300, 11 + i, i * 300)));
    const stats = JSON.parse(stderr.trim().split('\n').pop()!);
    assert.equal(stats.batches, 4);
  });
});

describe('input that is not an Arrow IPC stream', () => {
  const cases: [string, Uint8Array][] = [
    ['text', Buffer.from('event,pt,eta\n1,2.5,0.1\n')],
    ['ROOT file', Buffer.from('root\x00\x00\xf4\x34\x00\x00\x00\x64\x00\x00\x00\x00', 'latin1')],
    ['empty', new Uint8Array(0)],
    ['too short', Uint8Array.of(0xff, 0xff, 0xff)],
    ['bad flatbuffer', Uint8Array.of(0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)],
  ];
  for (const [label, bytes] of cases) {
    test(`${label} -> CorruptDataError naming the source`, async () => {
      await assert.rejects(readAll(Readable.from([Buffer.from(bytes)])), (e) => e instanceof CorruptDataError && /<stream>/.test(e.describe()));
    });
  }

  test('a truncated stream -> CorruptDataError; a file path is named', async () => {
    const b = sampleBatch(100);
    const bytes = await writeToBytes(schemaOf(b), [b]);
    const dir = tmp();
    try {
      const p = join(dir, 'cut.arrow');
      writeFileSync(p, bytes.subarray(0, bytes.length - 500));
      await assert.rejects(readAll(p), (e) => e instanceof CorruptDataError && e.describe().includes(p));
      const txt = join(dir, 'data.csv');
      writeFileSync(txt, 'a,b,c\n1,2,3\n');
      await assert.rejects(readAll(txt), (e) => e instanceof CorruptDataError && e.describe().includes('data.csv') && /text/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing path -> InputNotFoundError', async () => {
    await assert.rejects(readAll('/nonexistent/hepml.arrow'), InputNotFoundError);
  });
});
