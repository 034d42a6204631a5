/** The serving pieces without HTTP: archive unpacking limits, the micro-batcher, the Prometheus text. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { unpackArchive, ArchiveError } from '../../src/serve/archive.js';
import { MicroBatcher, QueueFullError } from '../../src/serve/batcher.js';
import { ServerMetrics } from '../../src/serve/metrics.js';
import { checkName } from '../../src/serve/repository.js';

function tarEntry(name: string, data: Uint8Array, type = '0'): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, at: number) => h.set(new TextEncoder().encode(s), at);
  put(name.slice(0, 99), 0);
  put('0000644\0', 100);
  put(data.length.toString(8).padStart(11, '0') + '\0', 124);
  put('        ', 148);
  put(type, 156);
  put('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return Buffer.concat([h, data, new Uint8Array((512 - (data.length % 512)) % 512)]);
}
const tar = (...parts: Uint8Array[]) => Buffer.concat([...parts, new Uint8Array(1024)]);
const text = (s: string) => new TextEncoder().encode(s);

describe('model archives', () => {
  test('tar: files, a GNU long name, pax headers skipped, one top-level directory stripped', () => {
    const long = 'm/' + 'd'.repeat(120) + '/weights.bin';
    const files = unpackArchive(
      tar(tarEntry('m/', new Uint8Array(0), '5'), tarEntry('m/hep-ml-model.json', text('{}')), tarEntry('././@LongLink', text(long + '\0'), 'L'), tarEntry('ignored', text('x'), '0'), tarEntry('pax', text('30 mtime=1\n'), 'x'), tarEntry('m/model.json', text('[]'))),
      1e6,
    );
    assert.deepEqual(files.map((f) => f.path), ['hep-ml-model.json', 'd'.repeat(120) + '/weights.bin', 'model.json']);
    assert.equal(new TextDecoder().decode(files[1]!.data), 'x');
  });

  test('limits and refusals: size (plain and gzip bomb), checksum, duplicates, empty', () => {
    const big = tarEntry('a.bin', new Uint8Array(5000));
    assert.throws(() => unpackArchive(tar(big), 4000), /unpacks to more than 4000 bytes/);
    const bomb = gzipSync(tar(tarEntry('zeros', new Uint8Array(3_000_000))));
    assert.ok(bomb.length < 10_000);
    assert.throws(() => unpackArchive(bomb, 100_000), ArchiveError);
    const bad = tar(tarEntry('a', text('x')));
    bad[0] = 0x62; // name changed, checksum not
    assert.throws(() => unpackArchive(bad, 1e6), /header checksum mismatch at byte 0/);
    assert.throws(() => unpackArchive(tar(tarEntry('a', text('1')), tarEntry('./a', text('2'))), 1e6), /holds a twice/);
    assert.throws(() => unpackArchive(tar(), 1e6), /holds no files/);
    assert.throws(() => unpackArchive(tar(tarEntry('dev', new Uint8Array(0), '3')), 1e6), /not a regular file \(tar type '3'\)/);
  });

  test('model names', () => {
    for (const ok of ['dnn', 'inclusive-v2', 'm.1', 'A_b']) assert.doesNotThrow(() => checkName(ok));
    for (const bad of ['', '..', '.x', 'a/b', 'a..b', '-x', 'x'.repeat(129), 'a b', 'é']) assert.throws(() => checkName(bad), /invalid model name/, bad);
  });
});

describe('micro-batcher', () => {
  const widths = [2];
  /** A "model" that returns each row's sum, recording its batch sizes. */
  function summer(delayMs = 0) {
    const calls: number[] = [];
    const run = async (inputs: Float32Array[], rows: number) => {
      calls.push(rows);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      return Float32Array.from({ length: rows }, (_, i) => inputs[0]![2 * i]! + inputs[0]![2 * i + 1]!);
    };
    return { run, calls };
  }

  test('requests of one turn go into one call; each gets its own rows back', async () => {
    const s = summer();
    const b = new MicroBatcher(s.run, { widths, outWidth: 1, maxBatch: 100, maxDelayMs: 0, maxQueueRows: 1000 });
    const outs = await Promise.all([1, 2, 3].map((n) => b.submit([Float32Array.from({ length: 2 * n }, (_, i) => i + 10 * n)], n)));
    assert.deepEqual(s.calls, [6]);
    assert.deepEqual(outs.map((o) => Array.from(o)), [[21], [41, 45], [61, 65, 69]]);
  });

  test('maxBatch splits; a request larger than maxBatch runs alone; one call at a time', async () => {
    const s = summer(5);
    const b = new MicroBatcher(s.run, { widths, outWidth: 1, maxBatch: 4, maxDelayMs: 0, maxQueueRows: 1000 });
    const sizes = [3, 3, 6, 1];
    await Promise.all(sizes.map((n) => b.submit([new Float32Array(2 * n)], n)));
    assert.deepEqual(s.calls, [3, 3, 6, 1]);
    const t = summer(5);
    const c = new MicroBatcher(t.run, { widths, outWidth: 1, maxBatch: 4, maxDelayMs: 0, maxQueueRows: 1000 });
    await Promise.all([1, 1, 1, 1, 1, 1].map((n) => c.submit([new Float32Array(2 * n)], n)));
    assert.deepEqual(t.calls, [4, 2]);
  });

  test('a full queue refuses; a failing call rejects every request in it', async () => {
    const s = summer(20);
    // rows 1-2 fill a batch and start at once; 3-4 wait (the queue limit counts waiting rows); 5-6 are refused
    const b = new MicroBatcher(s.run, { widths, outWidth: 1, maxBatch: 2, maxDelayMs: 0, maxQueueRows: 2 });
    const ps = [1, 1, 1, 1, 1, 1].map((n) => b.submit([new Float32Array(2 * n)], n).then(() => 'ok', (e: unknown) => (e instanceof QueueFullError ? 'full' : 'err')));
    const res = await Promise.all(ps);
    assert.deepEqual(res, ['ok', 'ok', 'ok', 'ok', 'full', 'full']);
    const f = new MicroBatcher(async () => Promise.reject(new Error('boom')), { widths, outWidth: 1, maxBatch: 10, maxDelayMs: 0, maxQueueRows: 100 });
    const r = await Promise.allSettled([f.submit([new Float32Array(2)], 1), f.submit([new Float32Array(2)], 1)]);
    assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected']);
  });
});

test('Prometheus text: counters, histograms with cumulative buckets, gauges', () => {
  const m = new ServerMetrics();
  m.request('infer', 200, 0.002);
  m.request('infer', 200, 0.02);
  m.request('infer', 400, 0.0001);
  m.batch('dnn', 3, 0.001);
  const t = m.render([{ name: 'dnn', ready: true }]);
  assert.match(t, /^hepml_requests_total\{route="infer",code="200"\} 2$/m);
  assert.match(t, /^hepml_requests_total\{route="infer",code="400"\} 1$/m);
  assert.match(t, /^hepml_request_duration_seconds_bucket\{route="infer",le="0.0005"\} 1$/m);
  assert.match(t, /^hepml_request_duration_seconds_bucket\{route="infer",le="0.0025"\} 2$/m);
  assert.match(t, /^hepml_request_duration_seconds_bucket\{route="infer",le="\+Inf"\} 3$/m);
  assert.match(t, /^hepml_request_duration_seconds_count\{route="infer"\} 3$/m);
  assert.match(t, /^hepml_batch_size_bucket\{model="dnn",le="2"\} 0$/m);
  assert.match(t, /^hepml_batch_size_bucket\{model="dnn",le="4"\} 1$/m);
  assert.match(t, /^hepml_model_ready\{model="dnn"\} 1$/m);
  for (const line of t.trimEnd().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+)$/, line);
});
