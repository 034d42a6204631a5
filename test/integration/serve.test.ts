/**
 * `hep-ml serve` over real HTTP: the OIP v2 and TFaaS routes against the model's own predictions, micro-
 * batching, the model repository (index, load, unload, upload of tar.gz and ZIP archives), and abuse — malformed
 * JSON, wrong shapes and datatypes, unknown models, `..` names, oversized and slow bodies, overload, path
 * traversal in archives — each answered with a 4xx/5xx JSON error while the server stays up with bounded memory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import { BIN } from '../helpers/cli.js';
import { HLF_NAMES, rawEvent, scaledEvent, writeServeModel } from '../helpers/serve-models.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { loadModelDir } from '../../src/train/model-io.js';
import { loadEngine } from '../../src/train/engine.js';

interface Reply {
  status: number;
  body: string;
  json: () => unknown;
}

/** One HTTP request with the path sent as is (no normalisation of '..'). */
function http(base: string, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { connection: 'close', ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const infer = (rows: number[][], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [rows.length, 14], datatype: 'FP32', data: rows }], ...extra });

/** Asserts a JSON error reply with this status whose message matches. */
function isError(r: Reply, status: number, re: RegExp): void {
  assert.equal(r.status, status, r.body);
  const j = r.json() as { error?: unknown };
  assert.equal(typeof j.error, 'string', r.body);
  assert.match(j.error as string, re);
}

/** A ustar archive of the given entries (type '0' file, '2' symlink with `link`), written here byte by byte. */
function tarOf(entries: { name: string; data?: string; type?: string; link?: string }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const h = new Uint8Array(512);
    const put = (s: string, at: number) => h.set(new TextEncoder().encode(s), at);
    const data = new TextEncoder().encode(e.data ?? '');
    put(e.name, 0);
    put('0000644\0', 100);
    put('0000000\0', 108);
    put('0000000\0', 116);
    put(data.length.toString(8).padStart(11, '0') + '\0', 124);
    put('00000000000\0', 136);
    put('        ', 148);
    put(e.type ?? '0', 156);
    if (e.link) put(e.link, 157);
    put('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  return Buffer.concat(blocks);
}

let dir = '';
let repoDir = '';
let srv: RunningServer;
let reference: tfTypes.LayersModel;
let tf: typeof tfTypes;

/** The model's probabilities for scaled rows, computed here without the server. */
function expected(rows: Float32Array[]): Float32Array {
  const x = tf.tensor2d(Float32Array.from(rows.flatMap((r) => Array.from(r))), [rows.length, 14]);
  const p = reference.predict(x) as tfTypes.Tensor;
  const out = p.dataSync() as Float32Array;
  tf.dispose([x, p]);
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hepml-serve-'));
  repoDir = join(dir, 'repo');
  mkdirSync(repoDir);
  await writeServeModel(repoDir, 'dnn', 'dnn', 1);
  await writeServeModel(repoDir, 'dnn-b', 'dnn', 2);
  tf = (await loadEngine()).tf;
  reference = (await loadModelDir(join(repoDir, 'dnn'))).model;
  srv = await startServer({ models: repoDir, port: 0, maxBodyBytes: 64 * 1024, maxUploadBytes: 4 * 1024 * 1024, bodyTimeoutMs: 1000 });
});
after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hep-ml serve: protocol', () => {
  test('health, server and model metadata', async () => {
    assert.deepEqual((await http(srv.url, 'GET', '/v2/health/live')).json(), { live: true });
    assert.deepEqual((await http(srv.url, 'GET', '/v2/health/ready')).json(), { ready: true });
    assert.equal(((await http(srv.url, 'GET', '/v2')).json() as { name: string }).name, 'hep-ml');
    const m = (await http(srv.url, 'GET', '/v2/models/dnn')).json() as {
      name: string;
      inputs: { name: string; datatype: string; shape: number[]; parameters: { features: string[] } }[];
      outputs: { name: string; shape: number[] }[];
    };
    assert.equal(m.name, 'dnn');
    assert.deepEqual(m.inputs.map((i) => [i.name, i.datatype, i.shape]), [['hlf_input', 'FP32', [-1, 14]]]);
    assert.deepEqual(m.inputs[0]!.parameters.features, HLF_NAMES);
    assert.deepEqual(m.outputs.map((o) => [o.name, o.shape]), [['probabilities', [-1, 3]], ['predicted', [-1]]]);
    assert.equal((await http(srv.url, 'GET', '/v2/models/dnn/versions/1/ready')).status, 200);
    const models = (await http(srv.url, 'GET', '/models')).json() as { name: string; labels: string[] }[];
    assert.deepEqual(models.map((x) => x.name), ['dnn', 'dnn-b']);
    assert.deepEqual(models[0]!.labels, ['qcd', 'ttbar', 'wjets']);
    const st = (await http(srv.url, 'GET', '/status')).json() as { memory: { rss: number }; requests: { total: number } };
    assert.ok(st.memory.rss > 0 && st.requests.total > 0);
  });

  test('OIP infer: raw features are scaled with the model scaler; results equal the model, nested or flat, [N,14]', async () => {
    const rows = [0, 1, 2, 3, 4].map(rawEvent);
    const want = expected([0, 1, 2, 3, 4].map(scaledEvent));
    const r = await http(srv.url, 'POST', '/v2/models/dnn/infer', infer(rows, { id: 'req-7' }));
    assert.equal(r.status, 200, r.body);
    const j = r.json() as { model_name: string; id: string; outputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
    assert.equal(j.model_name, 'dnn');
    assert.equal(j.id, 'req-7');
    const prob = j.outputs.find((o) => o.name === 'probabilities')!;
    assert.deepEqual(prob.shape, [5, 3]);
    assert.equal(prob.datatype, 'FP32');
    prob.data.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `value ${i}: ${v} vs ${want[i]}`));
    const pred = j.outputs.find((o) => o.name === 'predicted')!;
    assert.deepEqual(pred.data, [0, 1, 2, 3, 4].map((i) => [0, 1, 2].reduce((b, k) => (want[i * 3 + k]! > want[i * 3 + b]! ? k : b), 0)));

    // flat data, FP64, the column name, only one output requested
    const flat = await http(
      srv.url,
      'POST',
      '/v2/models/dnn/versions/1/infer',
      JSON.stringify({ inputs: [{ name: 'HLF_input', shape: [5, 14], datatype: 'FP64', data: rows.flat() }], outputs: [{ name: 'probabilities' }] }),
    );
    const fj = flat.json() as { outputs: { name: string; data: number[] }[] };
    assert.deepEqual(fj.outputs.map((o) => o.name), ['probabilities']);
    assert.deepEqual(fj.outputs[0]!.data, prob.data);

    // already scaled inputs
    const sc = await http(srv.url, 'POST', '/v2/models/dnn/infer', infer([Array.from(scaledEvent(3))], { parameters: { scaled: true } }));
    const sj = sc.json() as { outputs: { data: number[] }[] };
    sj.outputs[0]!.data.forEach((v, k) => assert.ok(Math.abs(v - want[9 + k]!) < 1e-6));
  });

  test('TFaaS /json: feature-name keys in any order, input-name keys, the only-model default', async () => {
    const raw = rawEvent(2);
    const want = expected([scaledEvent(2)]);
    const order = [...HLF_NAMES.keys()].reverse();
    let r = await http(srv.url, 'POST', '/json', JSON.stringify({ model: 'dnn', keys: order.map((k) => HLF_NAMES[k]), values: order.map((k) => raw[k]) }));
    assert.equal(r.status, 200, r.body);
    const got = r.json() as number[];
    assert.equal(got.length, 3);
    got.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) < 1e-6));
    r = await http(srv.url, 'POST', '/predict/json', JSON.stringify({ model: 'dnn', keys: ['hlf_input'], values: raw }));
    assert.deepEqual(r.json(), got);
    r = await http(srv.url, 'POST', '/json', JSON.stringify({ keys: ['hlf_input'], values: raw }));
    isError(r, 400, /"model" is required: the server has 2 models/);
    r = await http(srv.url, 'POST', '/json', JSON.stringify({ model: 'dnn', keys: HLF_NAMES.slice(1), values: raw.slice(1) }));
    isError(r, 400, /missing feature HT/);
  });

  test('micro-batching: 120 concurrent requests are answered correctly in fewer model calls', async () => {
    // this test's client shares the server's event loop, so requests arrive one per turn: wait 20 ms for more
    const b = await startServer({ models: repoDir, port: 0, maxDelayMs: 20, maxBatch: 64 });
    const before = b.metrics.render([]).match(/hepml_batch_size_count\{model="dnn"\} (\d+)/);
    const n0 = before ? Number(before[1]) : 0;
    const ids = Array.from({ length: 120 }, (_, i) => i);
    const want = expected(ids.map(scaledEvent));
    const replies = await Promise.all(ids.map((i) => http(b.url, 'POST', '/v2/models/dnn/infer', infer([rawEvent(i)]))));
    await b.close();
    replies.forEach((r, i) => {
      const d = (r.json() as { outputs: { data: number[] }[] }).outputs[0]!.data;
      d.forEach((v, k) => assert.ok(Math.abs(v - want[i * 3 + k]!) < 1e-6, `request ${i}`));
    });
    const n1 = Number(b.metrics.render([]).match(/hepml_batch_size_count\{model="dnn"\} (\d+)/)![1]);
    assert.ok(n1 - n0 < 120, `${n1 - n0} model calls for 120 requests`);
    const text = (await http(srv.url, 'GET', '/metrics')).body;
    assert.match(text, /^# TYPE hepml_request_duration_seconds histogram$/m);
    assert.match(text, /^hepml_requests_total\{route="infer",code="200"\} \d+$/m);
    assert.match(text, /^hepml_batch_size_bucket\{model="dnn",le="\+Inf"\} \d+$/m);
  });
});

describe('hep-ml serve: bad requests get JSON errors and the server stays up', () => {
  test('malformed JSON, wrong shapes, datatypes and values, unknown models and routes', async () => {
    const p = '/v2/models/dnn/infer';
    isError(await http(srv.url, 'POST', p, '{"inputs": ['), 400, /malformed JSON/);
    isError(await http(srv.url, 'POST', p, '[1,2]'), 400, /JSON object with "inputs"/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [] })), 400, /non-empty array/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [1, 10], datatype: 'FP32', data: new Array(10).fill(0) }] })), 400, /shape \[1, 10\] does not match the model's \[batch, 14\]/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [14], datatype: 'FP32', data: new Array(14).fill(0) }] })), 400, /shape must be \[batch, 14\]/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [2, 14], datatype: 'FP32', data: new Array(14).fill(0) }] })), 400, /needs 28 values, data has 14/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [1, 14], datatype: 'BYTES', data: new Array(14).fill('a') }] })), 400, /datatype "BYTES" is not numeric/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [1, 14], datatype: 'FP32', data: [...new Array(13).fill(0), 'x'] }] })), 400, /only numbers; found string/);
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'gru_input', shape: [1, 14], datatype: 'FP32', data: [] }] })), 400, /has no input "gru_input"/);
    isError(await http(srv.url, 'POST', p, infer([rawEvent(0)], { outputs: [{ name: 'logits' }] })), 400, /no output "logits"/);
    isError(await http(srv.url, 'POST', '/v2/models/nope/infer', infer([rawEvent(0)])), 404, /unknown model "nope" \(models: dnn, dnn-b\)/);
    isError(await http(srv.url, 'GET', '/v2/models/dnn/versions/2'), 404, /only version 1/);
    isError(await http(srv.url, 'GET', '/nothing/here'), 404, /no route GET \/nothing\/here/);
    isError(await http(srv.url, 'DELETE', '/v2/models/dnn'), 405, /DELETE is not allowed on \/v2\/models\/dnn/);
    isError(await http(srv.url, 'GET', '/v2/models/dnn/infer'), 405, /GET is not allowed/);
    // a shape that promises far more values than the body can hold: refused before allocating
    isError(await http(srv.url, 'POST', p, JSON.stringify({ inputs: [{ name: 'hlf_input', shape: [100_000_000, 14], datatype: 'FP32', data: [] }] })), 400, /too short to hold them/);
    isError(await http(srv.url, 'POST', '/json', JSON.stringify({ model: 'dnn', keys: ['HT', 'foo'], values: [1, 2] })), 400, /unknown key "foo"/);
    const m = (await http(srv.url, 'GET', '/metrics')).body;
    assert.match(m, /^hepml_requests_total\{route="infer",code="400"\} \d+$/m);
    assert.match(m, /^hepml_requests_total\{route="other",code="404"\} \d+$/m);
    assert.equal((await http(srv.url, 'GET', '/v2/health/live')).status, 200);
  });

  test("'..' and other unsafe names are refused", async () => {
    for (const path of ['/v2/models/../infer', '/v2/models/%2e%2e/infer', '/v2/models/..%2Fdnn/infer', '/v2/repository/models/../load', '/v2/models/a..b', '/v2/models/.hidden']) {
      const r = await http(srv.url, 'POST', path, infer([rawEvent(0)]));
      assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status} ${r.body}`);
      assert.equal(typeof (r.json() as { error: string }).error, 'string');
    }
    isError(await http(srv.url, 'PUT', '/v2/repository/models/..%2F..%2Fevil', 'x'), 400, /invalid model name/);
    isError(await http(srv.url, 'POST', '/json', JSON.stringify({ model: '../dnn', keys: [], values: [] })), 400, /invalid model name/);
  });

  test('bodies over the limit: 413 (declared and chunked); a slow client: 408 — then the next request works', async () => {
    const big = 'x'.repeat(100 * 1024);
    isError(await http(srv.url, 'POST', '/v2/models/dnn/infer', big, { 'content-type': 'application/json' }), 413, /limit is 65536/);
    isError(await http(srv.url, 'POST', '/v2/models/dnn/infer', big, { 'transfer-encoding': 'chunked' }), 413, /exceeds the limit of 65536 bytes/);
    // a client that sends its headers and half its body, then stalls
    const u = new URL(srv.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(u.port), u.hostname, () => {
        s.write(`POST /v2/models/dnn/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"inputs": [`);
      });
      let text = '';
      s.on('data', (d) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', reject);
      setTimeout(() => s.destroy(), 5000);
    });
    assert.match(reply, /^HTTP\/1\.1 408/);
    assert.match(reply, /"error":"the request body did not arrive within 1 s"/);
    assert.equal((await http(srv.url, 'POST', '/v2/models/dnn/infer', infer([rawEvent(0)]))).status, 200);
  });

  test('memory stays bounded under 600 abusive requests', async () => {
    const rss = async () => ((await http(srv.url, 'GET', '/status')).json() as { memory: { rss: number } }).memory.rss;
    const r0 = await rss();
    const junk = 'y'.repeat(60 * 1024);
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          http(srv.url, 'POST', '/v2/models/dnn/infer', i % 3 === 0 ? junk + junk : i % 3 === 1 ? `{"inputs":[{"name":"hlf_input","shape":[1,14],"datatype":"FP32","data":[${junk.length}` : junk, {
            'content-type': 'application/json',
          }).then((r) => assert.ok(r.status >= 400 && r.status < 500, `${r.status}`)),
        ),
      );
    }
    const r1 = await rss();
    assert.ok(r1 - r0 < 150 * 1024 * 1024, `RSS grew by ${((r1 - r0) / 1e6).toFixed(1)} MB`);
    assert.equal((await http(srv.url, 'POST', '/v2/models/dnn/infer', infer([rawEvent(1)]))).status, 200);
  });

  test('all connections together: bodies beyond the in-flight budget get 503, the server recovers', async () => {
    const tight = await startServer({ models: join(repoDir, 'dnn'), port: 0, maxInflightBytes: 200 * 1024, bodyTimeoutMs: 2000 });
    try {
      const u = new URL(tight.url);
      // five clients each send 60 kB of a 100 kB body and stall: the fourth exceeds the 200 kB budget
      const replies = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          new Promise<string>((resolve, reject) => {
            const s = connect(Number(u.port), u.hostname, () => {
              setTimeout(() => s.write(`POST /v2/models/dnn/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n${'z'.repeat(60_000)}`), i * 100);
            });
            let text = '';
            s.on('data', (d) => (text += d.toString()));
            s.on('close', () => resolve(text));
            s.on('error', reject);
          }),
        ),
      );
      const codes = replies.map((r) => r.slice(9, 12));
      assert.ok(codes.includes('503') && codes.includes('408'), codes.join(' '));
      assert.match(replies.find((r) => r.startsWith('HTTP/1.1 503'))!, /"error":"the server is receiving 204800 bytes of requests already/);
      assert.equal((await http(tight.url, 'POST', '/v2/models/dnn/infer', infer([rawEvent(0)]))).status, 200);
    } finally {
      await tight.close();
    }
  });

  test('overload: beyond the queue limit requests get 503 with a JSON error, the rest are answered', async () => {
    const small = await startServer({ models: join(repoDir, 'dnn'), port: 0, maxQueue: 4, maxBatch: 1000, maxDelayMs: 1000 });
    try {
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => http(small.url, 'POST', '/v2/models/dnn/infer', infer([rawEvent(i)]))));
      const codes = replies.map((r) => r.status);
      assert.ok(codes.includes(503), codes.join(' '));
      assert.ok(codes.includes(200), codes.join(' '));
      for (const r of replies.filter((x) => x.status === 503)) isError(r, 503, /overloaded/);
    } finally {
      await small.close();
    }
  });
});

describe('hep-ml serve: model repository', () => {
  test('index, unload (503), load again', async () => {
    const idx = (await http(srv.url, 'POST', '/v2/repository/index')).json() as { name: string; state: string }[];
    assert.deepEqual(idx.map((e) => [e.name, e.state]), [['dnn', 'READY'], ['dnn-b', 'READY']]);
    assert.equal((await http(srv.url, 'POST', '/v2/repository/models/dnn-b/unload')).status, 200);
    isError(await http(srv.url, 'POST', '/v2/models/dnn-b/infer', infer([rawEvent(0)])), 503, /not loaded \(unavailable: unloaded\)/);
    assert.equal((await http(srv.url, 'GET', '/v2/models/dnn-b/ready')).status, 503);
    assert.equal((await http(srv.url, 'POST', '/v2/repository/models/dnn-b/load')).status, 200);
    assert.equal((await http(srv.url, 'POST', '/v2/models/dnn-b/infer', infer([rawEvent(0)]))).status, 200);
    isError(await http(srv.url, 'POST', '/v2/repository/models/ghost/load'), 404, /no model directory ghost/);
  });

  test('upload: tar.gz and ZIP of a model directory; no overwrite without --allow-overwrite; unsafe or broken archives refused', async () => {
    const src = join(repoDir, 'dnn');
    const tgz = join(dir, 'm.tgz');
    execFileSync('tar', ['czf', tgz, '-C', src, '.']);
    let r = await http(srv.url, 'PUT', '/v2/repository/models/uploaded', readFileSync(tgz));
    assert.equal(r.status, 201, r.body);
    r = await http(srv.url, 'POST', '/v2/models/uploaded/infer', infer([rawEvent(5)]));
    const want = expected([scaledEvent(5)]);
    (r.json() as { outputs: { data: number[] }[] }).outputs[0]!.data.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) < 1e-6));
    isError(await http(srv.url, 'PUT', '/v2/repository/models/uploaded', readFileSync(tgz)), 409, /exists; the server was not started with --allow-overwrite/);

    const zip = join(dir, 'm.zip');
    execFileSync('zip', ['-qr', zip, 'dnn'], { cwd: repoDir }); // one top-level directory: stripped
    r = await http(srv.url, 'POST', '/v2/repository/models/zipped/upload', readFileSync(zip));
    assert.equal(r.status, 201, r.body);

    // traversal (GNU tar strips '../' itself, so the archive is built here) and links
    for (const name of ['../evil.txt', '/etc/evil.txt', 'a/../../evil.txt']) {
      isError(await http(srv.url, 'PUT', '/v2/repository/models/evil', tarOf([{ name, data: 'x' }])), 400, /unsafe path in the archive/);
    }
    isError(await http(srv.url, 'PUT', '/v2/repository/models/linky', tarOf([{ name: 'model.json', type: '2', link: '/etc/passwd' }])), 400, /not a regular file \(tar type '2'\)/);
    isError(await http(srv.url, 'PUT', '/v2/repository/models/linky', tarOf([{ name: 'model.json', type: '1', link: 'x' }])), 400, /not a regular file \(tar type '1'\)/);
    // not an archive; an archive without a model
    isError(await http(srv.url, 'PUT', '/v2/repository/models/junk', 'hello world'), 400, /not a tar archive|holds no files/);
    const empty = join(dir, 'nomodel');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.txt'), 'hi');
    execFileSync('tar', ['czf', join(dir, 'nomodel.tgz'), '-C', empty, '.']);
    isError(await http(srv.url, 'PUT', '/v2/repository/models/nomodel', readFileSync(join(dir, 'nomodel.tgz'))), 400, /not a hep-ml model directory/);
    // a model whose weights are broken: refused, nothing left behind
    const broken = join(dir, 'broken');
    execFileSync('cp', ['-r', src, broken]);
    writeFileSync(join(broken, 'weights.bin'), new Uint8Array(10));
    execFileSync('tar', ['czf', join(dir, 'broken.tgz'), '-C', broken, '.']);
    isError(await http(srv.url, 'PUT', '/v2/repository/models/broken', readFileSync(join(dir, 'broken.tgz'))), 422, /cannot be loaded/);
    writeFileSync(join(broken, 'model.json'), '{"format": "layers-model"}');
    execFileSync('tar', ['czf', join(dir, 'broken2.tgz'), '-C', broken, '.']);
    isError(await http(srv.url, 'PUT', '/v2/repository/models/broken', readFileSync(join(dir, 'broken2.tgz'))), 422, /cannot be loaded: .*not a tfjs layers model/);
    assert.deepEqual(readdirSync(repoDir).sort(), ['dnn', 'dnn-b', 'uploaded', 'zipped']);
    assert.ok(!existsSync(join(dir, 'evil.txt')) && !existsSync(join(repoDir, '..', 'evil.txt')));
  });

  test('--allow-overwrite replaces a model atomically', async () => {
    const over = await startServer({ models: repoDir, port: 0, allowOverwrite: true });
    try {
      const tgz = join(dir, 'b.tgz');
      execFileSync('tar', ['czf', tgz, '-C', join(repoDir, 'dnn-b'), '.']);
      const before = (await http(over.url, 'POST', '/v2/models/uploaded/infer', infer([rawEvent(1)]))).body;
      const r = await http(over.url, 'PUT', '/v2/repository/models/uploaded', readFileSync(tgz));
      assert.equal(r.status, 201, r.body);
      const afterBody = (await http(over.url, 'POST', '/v2/models/uploaded/infer', infer([rawEvent(1)]))).body;
      const fromB = (await http(over.url, 'POST', '/v2/models/dnn-b/infer', infer([rawEvent(1)]))).body;
      assert.notEqual(afterBody, before);
      assert.equal(afterBody.replace('"uploaded"', '"dnn-b"'), fromB);
    } finally {
      await over.close();
    }
  });
});

describe('hep-ml serve: the command', () => {
  test('--port 0 --json prints the URL; SIGTERM stops it with exit 0; a port in use is exit 2', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--models', join(repoDir, 'dnn'), '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.on('exit', () => reject(new Error(`exited early: ${err}`)));
    });
    const { url, models } = JSON.parse(line) as { url: string; models: { name: string; state: string }[] };
    assert.deepEqual(models.map((m) => [m.name, m.state]), [['dnn', 'READY']]);
    const r = await http(url, 'POST', '/json', JSON.stringify({ keys: HLF_NAMES, values: rawEvent(0) }));
    assert.equal(r.status, 200, r.body);
    const port = new URL(url).port;
    const clash = spawnSync(process.execPath, [BIN, 'serve', '--models', join(repoDir, 'dnn'), '--port', port], { encoding: 'utf8', timeout: 30000 });
    assert.equal(clash.status, 2, clash.stderr);
    assert.match(clash.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
    const code = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    child.kill('SIGTERM');
    assert.equal(await code, 0, err);
    assert.match(err, /listening on http:\/\/127\.0\.0\.1:\d+ \(1\/1 models ready\)/);
  });
});
