/**
 * TensorBoard event files (src/train/tensorboard.ts): the files are read back by an independent decoder
 * (protobufjs, built from TensorFlow's event.proto/summary.proto/tensor.proto text in
 * test/fixtures/tensorflow/) after hep-ml's TFRecord reader has checked every record's CRCs; the wire bytes
 * equal protobufjs's own encoding of the same messages; decodeEventFile round-trips; float32 rounding of
 * simple_value; negative, zero and large (int64) steps; flush semantics (the file is a valid TFRecord file
 * between flushes, and only flushed records are in it); unique file names (also when a name is taken);
 * resuming a run in a new file; text summaries; corrupt and truncated files.
 *
 * No TensorBoard/TensorFlow check: Debian 12 packages neither (no python3-tensorboard, python3-tensorflow).
 */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { readTfRecords } from '../../src/convert/tfrecord.js';
import { frameRecord } from '../../src/convert/tfrecord-example.js';
import { CorruptDataError } from '../../src/errors.js';
import {
  EVENT_FILE_VERSION,
  EventFileWriter,
  decodeEventFile,
  isEventFileName,
  lastEventStep,
} from '../../src/train/tensorboard.js';

const protoDir = fileURLToPath(new URL('../fixtures/tensorflow/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hepml-tensorboard-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let Event: protobuf.Type;
before(() => {
  const root = new protobuf.Root();
  for (const f of ['tensor.proto', 'summary.proto', 'event.proto']) {
    protobuf.parse(readFileSync(join(protoDir, f), 'utf8'), root, { keepCase: true });
  }
  root.resolveAll();
  Event = root.lookupType('tensorflow.Event');
});

interface ValueObj {
  tag?: string;
  node_name?: string;
  simple_value?: number;
  value?: string;
  metadata?: { plugin_data?: { plugin_name?: string; content?: Uint8Array }; data_class?: string };
  tensor?: { dtype?: string; tensor_shape?: { dim?: unknown[] }; string_val?: Uint8Array[] };
}
interface EventObj {
  wall_time?: number;
  step?: string;
  what?: string;
  file_version?: string;
  summary?: { value: ValueObj[] };
}

/** protobufjs's reading of one record (int64 as decimal strings, enums as names, defaults filled in). */
function decodeRef(payload: Uint8Array): EventObj {
  return Event.toObject(Event.decode(payload), { longs: String, enums: String, arrays: true, defaults: true, oneofs: true }) as EventObj;
}

/** The records of a file, read with hep-ml's TFRecord reader (both CRCs of every record checked). */
async function records(path: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of readTfRecords(path)) out.push(r);
  return out;
}

let n = 0;
const freshDir = () => join(dir, `run${n++}`);
const clock = (ms: number) => () => ms;

describe('EventFileWriter', () => {
  test('a new file in a new (nested) logdir, named as TensorBoard names them, starting with file_version', async () => {
    const logdir = join(freshDir(), 'a', 'tensorboard');
    const w = await EventFileWriter.open(logdir, { now: clock(1_700_000_123_456), hostname: 'node7' });
    const name = w.path.slice(logdir.length + 1);
    assert.ok(w.path.startsWith(logdir + '/'));
    assert.match(name, new RegExp(`^events\\.out\\.tfevents\\.1700000123\\.node7\\.${process.pid}\\.\\d+$`));
    assert.ok(isEventFileName(name));
    // The version record is on disk at once, before any flush.
    const recs = await records(w.path);
    assert.equal(recs.length, 1);
    const ev = decodeRef(recs[0]!);
    assert.equal(ev.what, 'file_version');
    assert.equal(ev.file_version, EVENT_FILE_VERSION);
    assert.equal(ev.file_version, 'brain.Event:2');
    assert.equal(ev.wall_time, 1_700_000_123.456);
    assert.equal(ev.step, '0');
    await w.close();

    const s = await EventFileWriter.open(logdir, { now: clock(5_000), filenameSuffix: '.v2' });
    assert.match(s.path, /\/events\.out\.tfevents\.0000000005\.[^/]+\.\d+\.\d+\.v2$/);
    await s.close();
    await assert.rejects(EventFileWriter.open(logdir, { filenameSuffix: '/x' }), TypeError);
  });

  test('scalars: protobufjs reads tag, simple_value (float32), step and wall time; decodeEventFile agrees', async () => {
    const logdir = freshDir();
    let t = 1_700_000_000_000;
    const w = await EventFileWriter.open(logdir, { now: () => t });
    const written: { tag: string; value: number; step: number; wall: number }[] = [];
    for (let epoch = 1; epoch <= 5; epoch++) {
      t += 61_250;
      const loss = 1 / (epoch + 0.1);
      const acc = 0.3 + epoch / 7;
      w.scalar('loss', loss, epoch);
      w.scalar('accuracy', acc, epoch, 1234.5 + epoch);
      written.push({ tag: 'loss', value: loss, step: epoch, wall: t / 1000 }, { tag: 'accuracy', value: acc, step: epoch, wall: 1234.5 + epoch });
    }
    await w.close();

    const recs = await records(w.path);
    assert.equal(recs.length, 1 + written.length);
    const events = recs.slice(1).map(decodeRef);
    events.forEach((ev, i) => {
      const want = written[i]!;
      assert.equal(ev.what, 'summary');
      assert.equal(ev.step, String(want.step));
      assert.equal(ev.wall_time, want.wall);
      assert.equal(ev.summary!.value.length, 1);
      const v = ev.summary!.value[0]!;
      assert.equal(v.tag, want.tag);
      assert.equal(v.value, 'simple_value');
      assert.equal(v.simple_value, Math.fround(want.value));
      assert.notEqual(v.simple_value, want.value); // these values are not float32-exact: the rounding is real
      assert.equal(v.metadata, null); // legacy scalar: TensorBoard's data_compat adds the scalars metadata
    });

    const decoded = decodeEventFile(readFileSync(w.path));
    assert.deepEqual(decoded[0], { wallTime: 1_700_000_000, step: 0, fileVersion: 'brain.Event:2', scalars: [], texts: [] });
    assert.deepEqual(
      decoded.slice(1),
      written.map((x) => ({ wallTime: x.wall, step: x.step, scalars: [{ tag: x.tag, value: Math.fround(x.value) }], texts: [] })),
    );
  });

  test('the wire bytes are what protobufjs writes for the same messages', async () => {
    const w = await EventFileWriter.open(freshDir(), { now: clock(1_600_000_000_250) });
    w.scalar('val_auc/tau', 0.875, 3);
    w.scalars({ loss: 0.5, 'val_loss': -2.25 }, 7, 99.5);
    w.text('params', 'lr = 1e-3, *batch* 128 — ünïcode', 0);
    w.scalar('zero', 0, 0, 0);
    await w.close();
    const recs = await records(w.path);
    const expected: object[] = [
      { wall_time: 1_600_000_000.25, file_version: 'brain.Event:2' },
      { wall_time: 1_600_000_000.25, step: 3, summary: { value: [{ tag: 'val_auc/tau', simple_value: 0.875 }] } },
      { wall_time: 99.5, step: 7, summary: { value: [{ tag: 'loss', simple_value: 0.5 }, { tag: 'val_loss', simple_value: -2.25 }] } },
      {
        wall_time: 1_600_000_000.25,
        summary: {
          value: [
            {
              tag: 'params',
              metadata: { plugin_data: { plugin_name: 'text' }, data_class: 2 },
              tensor: { dtype: 7, tensor_shape: {}, string_val: [Buffer.from('lr = 1e-3, *batch* 128 — ünïcode')] },
            },
          ],
        },
      },
      // proto3: wall_time 0 and step 0 are left out; simple_value 0 is a oneof member, so it is written
      { summary: { value: [{ tag: 'zero', simple_value: 0 }] } },
    ];
    assert.equal(recs.length, expected.length);
    recs.forEach((r, i) => {
      const ref = Event.encode(Event.fromObject(expected[i]!)).finish();
      assert.deepEqual(Buffer.from(r), Buffer.from(ref), `record ${i}`);
    });
  });

  test('float32 rounding and special values of simple_value', async () => {
    const w = await EventFileWriter.open(freshDir());
    const values = [0.1, 1 / 3, -0, 16777217, 1e40, -1e40, 1e-50, 1.401298464324817e-45, 3.4028234663852886e38, Infinity, -Infinity, NaN];
    values.forEach((v, i) => w.scalar('v', v, i));
    await w.close();
    const recs = (await records(w.path)).slice(1);
    const got = recs.map((r) => decodeRef(r).summary!.value[0]!.simple_value!);
    const mine = decodeEventFile(readFileSync(w.path)).slice(1).map((e) => e.scalars[0]!.value);
    values.forEach((v, i) => {
      assert.ok(Object.is(got[i], Math.fround(v)), `protobufjs: ${v} → ${got[i]}`);
      assert.ok(Object.is(mine[i], Math.fround(v)), `decodeEventFile: ${v} → ${mine[i]}`);
    });
    assert.equal(mine[4], Infinity); // 1e40 overflows float32
    assert.equal(mine[6], 0); // 1e-50 underflows
    assert.ok(Object.is(mine[2], -0));
  });

  test('steps: zero, negative, large, and int64 extremes as bigint', async () => {
    const w = await EventFileWriter.open(freshDir());
    const steps: Array<number | bigint> = [0, 1, -1, 127, 128, -128, 2 ** 31, -(2 ** 31) - 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, (1n << 63n) - 1n, -(1n << 63n), 1n << 60n];
    for (const s of steps) w.scalar('s', 1, s);
    await w.close();
    const recs = (await records(w.path)).slice(1);
    assert.deepEqual(
      recs.map((r) => decodeRef(r).step),
      steps.map((s) => String(s)),
    );
    assert.deepEqual(
      decodeEventFile(readFileSync(w.path)).slice(1).map((e) => e.step),
      steps.map((s) => Number(s)),
    );
    // invalid steps and tags throw at once, and nothing is buffered
    const v = await EventFileWriter.open(freshDir());
    assert.throws(() => v.scalar('s', 1, 1.5), RangeError);
    assert.throws(() => v.scalar('s', 1, 2 ** 53), RangeError);
    assert.throws(() => v.scalar('s', 1, NaN), RangeError);
    assert.throws(() => v.scalar('s', 1, 1n << 63n), RangeError);
    assert.throws(() => v.scalar('s', 1, -(1n << 63n) - 1n), RangeError);
    assert.throws(() => v.scalar('', 1, 0), TypeError);
    assert.throws(() => v.scalar('s', 1, 0, NaN), TypeError);
    assert.throws(() => v.scalar('s', '1' as unknown as number, 0), TypeError);
    assert.equal(v.pendingRecords, 0);
    await v.close();
    assert.equal((await records(v.path)).length, 1);
  });

  test('flush: only flushed records are in the file, which is a valid TFRecord file between flushes', async () => {
    const w = await EventFileWriter.open(freshDir());
    const count = async () => (await records(w.path)).length; // throws on a partial or corrupt record
    w.scalar('loss', 1, 1);
    w.scalar('loss', 0.5, 2);
    assert.equal(w.pendingRecords, 2);
    assert.equal(await count(), 1);
    await w.flush();
    assert.equal(w.pendingRecords, 0);
    assert.equal(await count(), 3);
    await w.flush(); // nothing pending: a no-op
    assert.equal(await count(), 3);
    w.scalar('loss', 0.25, 3);
    assert.equal(await count(), 3);
    // concurrent flushes are serialized, and records stay in order
    const flushes: Promise<void>[] = [];
    for (let s = 4; s <= 40; s++) {
      w.scalar('loss', 1 / s, s);
      if (s % 5 === 0) flushes.push(w.flush());
    }
    await Promise.all(flushes);
    await w.close();
    await w.close(); // again: a no-op
    assert.throws(() => w.scalar('loss', 0, 41), /closed/);
    const steps = decodeEventFile(readFileSync(w.path)).slice(1).map((e) => e.step);
    assert.deepEqual(steps, Array.from({ length: 40 }, (_, i) => i + 1));
  });

  test('unique file names: several writers in one logdir and second, and a name that is taken', async () => {
    const logdir = freshDir();
    const opts = { now: clock(1_700_000_000_000), hostname: 'h' };
    const ws = await Promise.all(Array.from({ length: 6 }, () => EventFileWriter.open(logdir, opts)));
    assert.equal(new Set(ws.map((w) => w.path)).size, 6);
    ws.forEach((w, i) => w.scalar('i', i, i));
    await Promise.all(ws.map((w) => w.close()));
    assert.equal(readdirSync(logdir).length, 6);
    ws.forEach((w, i) => assert.deepEqual(decodeEventFile(readFileSync(w.path))[1]!.scalars, [{ tag: 'i', value: i }]));

    // Take the next names (a pid reused by another container, say): open moves on and never appends to them.
    const last = Number(ws.at(-1)!.path.split('.').at(-1));
    const taken = [1, 2, 3].map((k) => join(logdir, `events.out.tfevents.1700000000.h.${process.pid}.${last + k}`));
    for (const p of taken) writeFileSync(p, 'not mine');
    const w = await EventFileWriter.open(logdir, opts);
    assert.ok(!taken.includes(w.path));
    assert.ok(w.path.endsWith(`.${last + 4}`));
    await w.close();
    for (const p of taken) assert.equal(readFileSync(p, 'utf8'), 'not mine');
  });

  test('resuming a run: a second file in the same logdir, steps continue', async () => {
    const logdir = freshDir();
    assert.equal(await lastEventStep(logdir), undefined); // no directory yet
    const a = await EventFileWriter.open(logdir, { now: clock(1_700_000_000_000) });
    for (let e = 1; e <= 4; e++) a.scalars({ loss: 1 / e, val_loss: 1.1 / e }, e);
    await a.close();
    assert.equal(await lastEventStep(logdir), 4);

    const b = await EventFileWriter.open(logdir, { now: clock(1_700_000_100_000) });
    assert.notEqual(b.path, a.path);
    const from = (await lastEventStep(logdir))! + 1;
    for (let e = from; e < from + 3; e++) b.scalar('loss', 1 / e, e);
    await b.flush();
    // a crash mid-record: the truncated tail is ignored by lastEventStep (as TensorBoard ignores it)
    writeFileSync(b.path, frameRecord(new Uint8Array(40)).subarray(0, 30), { flag: 'a' });
    assert.equal(await lastEventStep(logdir), 7);
    assert.throws(() => decodeEventFile(readFileSync(b.path)), CorruptDataError);

    const files = readdirSync(logdir).filter(isEventFileName).sort();
    assert.equal(files.length, 2);
    const all = files.flatMap((f) => decodeEventFile(readFileSync(join(logdir, f)), { allowTruncatedTail: true }).filter((e) => e.fileVersion === undefined));
    assert.deepEqual(
      all.map((e) => e.step),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.deepEqual(all[0]!.scalars.map((s) => s.tag), ['loss', 'val_loss']);
    await b.close();
  });

  test('text summaries: the text plugin form, read back by protobufjs and decodeEventFile', async () => {
    const w = await EventFileWriter.open(freshDir());
    const md = '| parameter | value |\n|---|---|\n| lr | 0.001 |\n| model | gru — 50 units |';
    w.text('run/parameters', md, 0);
    w.text('empty', '', 1);
    await w.close();
    const recs = (await records(w.path)).slice(1);
    const v = decodeRef(recs[0]!).summary!.value[0]!;
    assert.equal(v.tag, 'run/parameters');
    assert.equal(v.value, 'tensor');
    assert.equal(v.metadata!.plugin_data!.plugin_name, 'text');
    assert.equal(v.metadata!.plugin_data!.content!.length, 0);
    assert.equal(v.metadata!.data_class, 'DATA_CLASS_TENSOR');
    assert.equal(v.tensor!.dtype, 'DT_STRING');
    assert.deepEqual(v.tensor!.tensor_shape!.dim, []);
    assert.equal(Buffer.from(v.tensor!.string_val![0]!).toString('utf8'), md);
    const ev = decodeEventFile(readFileSync(w.path));
    assert.deepEqual(ev[1]!.texts, [{ tag: 'run/parameters', value: md }]);
    assert.deepEqual(ev[1]!.scalars, []);
    assert.deepEqual(ev[2]!.texts, [{ tag: 'empty', value: '' }]);
  });
});

describe('decodeEventFile', () => {
  test('checks both CRCs and the framing', async () => {
    const w = await EventFileWriter.open(freshDir());
    w.scalar('a', 1, 1);
    w.scalar('a', 2, 2);
    await w.close();
    const good = readFileSync(w.path);
    assert.equal(decodeEventFile(good).length, 3);
    const recLen = (i: number) => {
      let p = 0;
      for (let k = 0; k < i; k++) p += Number(good.readBigUInt64LE(p)) + 16;
      return p;
    };
    const second = recLen(1);

    const badData = Buffer.from(good);
    badData[second + 14] ^= 0x01;
    assert.throws(() => decodeEventFile(badData), (e: unknown) => e instanceof CorruptDataError && /record 1 at byte \d+: data CRC mismatch/.test(e.message));

    const badLen = Buffer.from(good);
    badLen[second] ^= 0x01;
    assert.throws(() => decodeEventFile(badLen, { allowTruncatedTail: true }), /record 1 .*length CRC mismatch/);

    const cut = good.subarray(0, good.length - 3);
    assert.throws(() => decodeEventFile(cut), /record 2 .*truncated record/);
    assert.equal(decodeEventFile(cut, { allowTruncatedTail: true }).length, 2);
    assert.throws(() => decodeEventFile(good.subarray(0, recLen(2) + 5)), /record 2 .*truncated record header/);
    assert.equal(decodeEventFile(new Uint8Array(0)).length, 0);

    // valid framing around bytes that are not an Event
    const junk = frameRecord(Uint8Array.of(0x0a, 0x05, 0x01));
    assert.throws(
      () => decodeEventFile(junk, { name: 'x.tfevents' }),
      (e: unknown) => e instanceof CorruptDataError && e.message.startsWith('x.tfevents: record 0 at byte 0: not a valid Event'),
    );
  });

  test('skips what it does not know: other oneof members, unknown fields, other summary kinds', () => {
    const payloads = [
      Event.encode(Event.fromObject({ wall_time: 1, step: 2, graph_def: Buffer.from('graph') })).finish(),
      Event.encode(Event.fromObject({ wall_time: 1, step: 3, session_log: { status: 1, msg: 'start' } })).finish(),
      Event.encode(
        Event.fromObject({
          wall_time: 2,
          step: 4,
          summary: {
            value: [
              { tag: 'h', histo: { min: 0, max: 1, num: 2, bucket_limit: [0.5, 1], bucket: [1, 1] } },
              { tag: 'x', node_name: 'n', simple_value: 1.5 },
              { tag: 't', tensor: { dtype: 1, float_val: [2.5] } },
              { tag: 'vec', tensor: { dtype: 7, tensor_shape: { dim: [{ size: 2 }] }, string_val: [Buffer.from('a'), Buffer.from('b')] } },
            ],
          },
        }),
      ).finish(),
    ];
    const file = Buffer.concat([...payloads.map((p) => frameRecord(p)), frameRecord(Buffer.concat([payloads[0]!, Uint8Array.of(0xf8, 0x06, 0x01)]))]);
    const ev = decodeEventFile(file);
    assert.deepEqual(
      ev.map((e) => e.step),
      [2, 3, 4, 2],
    );
    assert.deepEqual(ev[2]!.scalars, [{ tag: 'x', value: 1.5 }]);
    assert.deepEqual(ev[2]!.texts, []);
  });
});
