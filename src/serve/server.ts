/**
 * The inference server behind `hep-ml serve`: node:http, one process, models in a repository directory.
 *
 *   Open Inference Protocol v2 (KServe, Triton, Seldon):
 *     GET  /v2                                   server metadata
 *     GET  /v2/health/live, /v2/health/ready     200 when live / when every model is loaded
 *     GET  /v2/models/{m}[/versions/1]           model metadata: inputs, outputs, shapes, datatypes
 *     GET  /v2/models/{m}[/versions/1]/ready     200 when ready
 *     POST /v2/models/{m}[/versions/1]/infer     named tensors in, probabilities out
 *     POST /v2/repository/index                  every model and its state
 *     POST /v2/repository/models/{m}/load        (re)load from the repository directory
 *     POST /v2/repository/models/{m}/unload
 *     PUT  /v2/repository/models/{m}             upload a tar / tar.gz / ZIP of a model directory (also POST …/{m}/upload)
 *   TFaaS-compatible:
 *     POST /json, /predict/json                  {"keys":[…],"values":[…],"model":"m"} → [p0, p1, …]
 *     GET  /models, /status
 *   GET /metrics                                 Prometheus text format
 *
 * Every error is a JSON body {"error": "..."} with a 4xx/5xx status; nothing a client sends stops the server.
 * Memory is bounded by the body limits (per request, and over all connections together), the connection limit
 * and the micro-batchers' queue limits.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { hepMlVersion } from '../version.js';
import { QueueFullError } from './batcher.js';
import { ServerMetrics } from './metrics.js';
import { ServedModel, type ServedInput } from './model.js';
import { ModelRepository, RepositoryError, checkName } from './repository.js';

export interface ServeOptions {
  /** A repository directory (one subdirectory per model) or one model directory. */
  models: string;
  host?: string;
  port?: number;
  /** Most events in one model call (default 256). */
  maxBatch?: number;
  /** How long a batch waits for more requests, in ms (default 0: it takes what has arrived). */
  maxDelayMs?: number;
  /** Most events waiting per model before requests are refused with 503 (default 65,536). */
  maxQueue?: number;
  /** Largest inference request body in bytes (default 16 MiB). */
  maxBodyBytes?: number;
  /** Largest model upload in bytes (default 512 MiB), and its unpacked size. */
  maxUploadBytes?: number;
  /** A client must send its whole request within this many ms (default 30,000). */
  bodyTimeoutMs?: number;
  /** Most open connections (default 4,096). */
  maxConnections?: number;
  /** Most bytes of request bodies held at once over all connections (default 256 MiB; beyond: 503). */
  maxInflightBytes?: number;
  allowOverwrite?: boolean;
  log?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  repository: ModelRepository;
  metrics: ServerMetrics;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = JSON_HEADERS): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Bytes of request bodies being received by all connections of a server together, and their cap. */
interface BodyBudget {
  used: number;
  cap: number;
}

/**
 * The whole body, within `limit` bytes and `timeoutMs`; HttpError 413 / 408 otherwise, and 503 when the
 * bodies being received by every connection together would exceed the server's budget.
 */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number, bodyBudget: BodyBudget | undefined): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new HttpError(413, `the request body is ${declared} bytes; the limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (e?: HttpError) => {
      if (done) return;
      done = true;
      if (bodyBudget) bodyBudget.used -= size;
      clearTimeout(timer);
      req.off('data', onData);
      if (e) {
        req.resume(); // drain and drop what is still coming
        reject(e);
      } else resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    };
    const timer = setTimeout(() => finish(new HttpError(408, `the request body did not arrive within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (c: Buffer) => {
      size += c.length;
      if (bodyBudget) bodyBudget.used += c.length;
      if (size > limit) finish(new HttpError(413, `the request body exceeds the limit of ${limit} bytes`));
      else if (bodyBudget && bodyBudget.used > bodyBudget.cap) finish(new HttpError(503, `the server is receiving ${bodyBudget.cap} bytes of requests already; try again`));
      else parts.push(c);
    };
    req.on('data', onData);
    req.once('end', () => finish());
    req.once('error', (e) => finish(new HttpError(400, `the request failed: ${e.message}`)));
    req.once('aborted', () => finish(new HttpError(400, 'the client aborted the request')));
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const NUMERIC = new Set(['FP16', 'FP32', 'FP64', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Copies `data` (flat or nested arrays of numbers) into `out`; the count of numbers written, or an error text. */
function flattenInto(data: unknown, out: Float32Array, at: number, depth: number): number {
  if (!Array.isArray(data)) throw new HttpError(400, 'data must be an array of numbers (flat or nested)');
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v === 'number') {
      if (at + n >= out.length) throw new HttpError(400, `data holds more than the ${out.length} values its shape says`);
      out[at + n++] = v;
    } else if (Array.isArray(v) && depth < 8) {
      n += flattenInto(v, out, at + n, depth + 1);
    } else {
      throw new HttpError(400, `data must hold only numbers; found ${v === null ? 'null' : typeof v}`);
    }
  }
  return n;
}

/** Inputs of an OIP infer request as the model's rows (scaled unless the request says they are). */
function parseInfer(m: ServedModel, body: unknown, bodyBytes: number): { inputs: Float32Array[]; rows: number; id?: string; outputs?: string[] } {
  if (!isObject(body)) throw new HttpError(400, 'the request must be a JSON object with "inputs"');
  const reqInputs = body.inputs;
  if (!Array.isArray(reqInputs) || reqInputs.length === 0) throw new HttpError(400, '"inputs" must be a non-empty array of tensors');
  const params = isObject(body.parameters) ? body.parameters : {};
  const scaled = params.scaled === true;
  const got = new Map<ServedInput, Float32Array>();
  let rows = -1;
  for (const t of reqInputs) {
    if (!isObject(t)) throw new HttpError(400, 'every input must be an object {name, shape, datatype, data}');
    const name = t.name;
    if (typeof name !== 'string') throw new HttpError(400, 'an input has no "name"');
    const inp = m.input(name);
    if (!inp) throw new HttpError(400, `model ${m.name} has no input ${JSON.stringify(name)} (inputs: ${m.inputs.map((i) => i.name).join(', ')})`);
    if (got.has(inp)) throw new HttpError(400, `input ${name} is given twice`);
    if (typeof t.datatype !== 'string' || !NUMERIC.has(t.datatype)) {
      throw new HttpError(400, `input ${name}: datatype ${JSON.stringify(t.datatype)} is not numeric (FP32, FP64, INT32, …)`);
    }
    const shape = t.shape;
    if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw new HttpError(400, `input ${name}: shape must be [batch, ${inp.shape.join(', ')}] (non-negative integers)`);
    }
    const dims = shape as number[];
    const n = dims[0]!;
    const rest = dims.slice(1);
    const matches = rest.join(',') === inp.shape.join(',') || (rest.length === 1 && rest[0] === inp.width);
    if (!matches) throw new HttpError(400, `input ${name}: shape [${dims.join(', ')}] does not match the model's [batch, ${inp.shape.join(', ')}]`);
    if (n < 1) throw new HttpError(400, `input ${name}: the batch dimension is 0`);
    if (rows >= 0 && n !== rows) throw new HttpError(400, `inputs disagree on the batch size (${rows} and ${n})`);
    rows = n;
    // every number takes at least two bytes of JSON ("0,"): a shape promising more values than that is refused
    // before anything is allocated
    if (n * inp.width > bodyBytes / 2) throw new HttpError(400, `input ${name}: shape [${dims.join(', ')}] needs ${n * inp.width} values; the request is too short to hold them`);
    const values = new Float32Array(n * inp.width);
    const count = flattenInto(t.data, values, 0, 0);
    if (count !== values.length) throw new HttpError(400, `input ${name}: shape [${dims.join(', ')}] needs ${values.length} values, data has ${count}`);
    got.set(inp, values);
  }
  const missing = m.inputs.filter((i) => !got.has(i));
  if (missing.length) throw new HttpError(400, `missing input${missing.length > 1 ? 's' : ''} ${missing.map((i) => i.name).join(', ')} of model ${m.name}`);
  const inputs = m.inputs.map((inp, k) => {
    const v = got.get(inp)!;
    if (!scaled) m.scaleRows(k, v, rows);
    return v;
  });
  let outputs: string[] | undefined;
  if (Array.isArray(body.outputs)) {
    outputs = body.outputs.map((o) => (isObject(o) && typeof o.name === 'string' ? o.name : ''));
    for (const o of outputs) if (o !== 'probabilities' && o !== 'predicted') throw new HttpError(400, `model ${m.name} has no output ${JSON.stringify(o)} (outputs: probabilities, predicted)`);
  }
  const id = typeof body.id === 'string' ? body.id : undefined;
  return { inputs, rows, id, outputs };
}

/** TFaaS's Row {keys, values, model}: one event, keys = feature names or input names. */
function parseTfaas(m: ServedModel, body: Record<string, unknown>): Float32Array[] {
  const keys = body.keys;
  const values = body.values;
  if (!Array.isArray(keys) || !Array.isArray(values) || !keys.every((k) => typeof k === 'string') || !values.every((v) => typeof v === 'number')) {
    throw new HttpError(400, '"keys" must be an array of strings and "values" an array of numbers');
  }
  const ks = keys as string[];
  const vs = values as number[];
  const out = m.inputs.map((i) => new Float32Array(i.width));
  const one = m.inputs.length === 1 ? m.inputs[0]! : undefined;
  const byFeature = one?.features !== undefined && ks.length > 0 && ks.every((k) => one.features!.includes(k));
  if (one?.features && (byFeature || (ks.length === 0 && vs.length === 0))) {
    // feature names, in any order, each once
    if (ks.length !== vs.length) throw new HttpError(400, `${ks.length} keys but ${vs.length} values`);
    const seen = new Set<string>();
    ks.forEach((k, j) => {
      if (seen.has(k)) throw new HttpError(400, `key ${k} is given twice`);
      seen.add(k);
      out[0]![one.features!.indexOf(k)] = vs[j]!;
    });
    const missing = one.features.filter((f) => !seen.has(f));
    if (missing.length) throw new HttpError(400, `missing feature${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of model ${m.name}`);
  } else {
    // input names: the values are the inputs' values, concatenated in key order
    let at = 0;
    const seen = new Set<ServedInput>();
    for (const k of ks) {
      const inp = m.input(k);
      if (!inp) {
        const bad = ks.find((x) => !m.input(x) && !one?.features?.includes(x)) ?? k;
        const names = one?.features ? `the features ${one.features.join(', ')}` : `the inputs ${m.inputs.map((i) => i.name).join(', ')}`;
        throw new HttpError(400, `unknown key ${JSON.stringify(bad)}: keys are ${names}`);
      }
      if (seen.has(inp)) throw new HttpError(400, `key ${k} is given twice`);
      seen.add(inp);
      if (at + inp.width > vs.length) throw new HttpError(400, `key ${k} needs ${inp.width} values; only ${vs.length - at} are left`);
      out[m.inputs.indexOf(inp)]!.set(vs.slice(at, at + inp.width));
      at += inp.width;
    }
    if (at !== vs.length) throw new HttpError(400, `${vs.length} values, the keys need ${at}`);
    const missing = m.inputs.filter((i) => !seen.has(i));
    if (missing.length) throw new HttpError(400, `missing input${missing.length > 1 ? 's' : ''} ${missing.map((i) => i.name).join(', ')} of model ${m.name}`);
  }
  if (body.scaled !== true) out.forEach((v, k) => m.scaleRows(k, v, 1));
  return out;
}

function modelMetadata(m: ServedModel): Record<string, unknown> {
  return {
    name: m.name,
    versions: ['1'],
    platform: 'hep-ml_tfjs',
    inputs: m.inputs.map((i) => ({ name: i.name, datatype: 'FP32', shape: [-1, ...i.shape], parameters: { column: i.column, ...(i.features ? { features: i.features } : {}), scaled_by_server: !!i.scale } })),
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, m.classes.length], parameters: { classes: m.classes } },
      { name: 'predicted', datatype: 'INT32', shape: [-1], parameters: { classes: m.classes } },
    ],
    parameters: { kind: m.loaded.meta.model, classes: m.classes, params: m.loaded.meta.params, hepml: m.loaded.meta.hepml, created: m.loaded.meta.created },
  };
}

function argmax(p: Float32Array, rows: number, c: number): number[] {
  const out = new Array<number>(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let k = 1; k < c; k++) if (p[i * c + k]! > p[i * c + best]!) best = k;
    out[i] = best;
  }
  return out;
}

/** The route a path belongs to (the `route` label of /metrics; also what tells 405 from 404). */
function routeOf(path: string): string {
  if (/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/.test(path)) return 'infer';
  if (/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/ready$/.test(path)) return 'model_ready';
  if (/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?$/.test(path)) return 'model_metadata';
  if (/^\/v2\/health\/(live|ready)$/.test(path)) return 'health';
  if (/^\/v2\/repository\/models\/[^/]+(\/upload)?$/.test(path)) return 'upload';
  if (/^\/v2\/repository\/(index|models\/[^/]+\/(load|unload))$/.test(path)) return 'repository';
  if (path === '/v2') return 'v2';
  if (path === '/json' || path === '/predict/json') return 'json';
  if (path === '/models' || path === '/status' || path === '/metrics') return path.slice(1);
  return 'other';
}

/** Starts the server; resolves when it listens (models loaded). */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? (() => {});
  const metrics = new ServerMetrics();
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;
  const maxUpload = o.maxUploadBytes ?? 512 * 1024 * 1024;
  const bodyTimeout = o.bodyTimeoutMs ?? 30_000;
  const budget: BodyBudget = { used: 0, cap: o.maxInflightBytes ?? 256 * 1024 * 1024 };
  const receive = (req: IncomingMessage) => readBody(req, maxBody, bodyTimeout, budget);
  // uploads have their own limit and are not counted in the inference budget (one upload at a time)
  let uploading = false;
  const repo = new ModelRepository(
    o.models,
    { maxBatch: o.maxBatch ?? 256, maxDelayMs: o.maxDelayMs ?? 0, maxQueueRows: o.maxQueue ?? 65_536, onBatch: (m, rows, s) => metrics.batch(m, rows, s) },
    { allowOverwrite: !!o.allowOverwrite, maxUnpackedBytes: maxUpload },
  );
  await repo.loadAll(log);
  const need = (name: string): ServedModel => {
    const m = repo.get(name);
    if (m) return m;
    const known = repo.index().find((e) => e.name === name);
    if (known) throw new HttpError(503, `model ${name} is not loaded (${known.state.toLowerCase()}${known.reason ? `: ${known.reason}` : ''})`);
    throw new HttpError(404, `unknown model ${JSON.stringify(name)} (models: ${repo.index().map((e) => e.name).join(', ') || 'none'})`);
  };
  const modelName = (raw: string): string => {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, `invalid model name in the URL: ${raw}`);
    }
    try {
      checkName(name);
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    return name;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'GET') metrics.get++;
    else if (method === 'POST') metrics.post++;
    const parts = path.split('/').filter((s) => s !== '');

    // --- OIP v2
    if (parts[0] === 'v2') {
      if (parts.length === 1 && method === 'GET') {
        send(res, 200, { name: 'hep-ml', version: hepMlVersion(), extensions: ['model_repository'] });
        return;
      }
      if (parts[1] === 'health' && parts.length === 3 && method === 'GET') {
        if (parts[2] === 'live') {
          send(res, 200, { live: true });
          return;
        }
        if (parts[2] === 'ready') {
          const idx = repo.index();
          const ready = idx.length > 0 && idx.every((e) => e.state === 'READY' || e.reason === 'unloaded');
          send(res, ready ? 200 : 503, { ready });
          return;
        }
      }
      if (parts[1] === 'models' && parts.length >= 3) {
        const name = modelName(parts[2]!);
        let rest = parts.slice(3);
        if (rest[0] === 'versions') {
          if (rest[1] !== '1') throw new HttpError(404, `model ${name} has only version 1`);
          rest = rest.slice(2);
        }
        if (rest.length === 0 && method === 'GET') {
          send(res, 200, modelMetadata(need(name)));
          return;
        }
        if (rest.length === 1 && rest[0] === 'ready' && method === 'GET') {
          const ready = !!repo.get(name);
          if (!ready && !repo.index().some((e) => e.name === name)) throw new HttpError(404, `unknown model ${JSON.stringify(name)}`);
          send(res, ready ? 200 : 503, { name, ready });
          return;
        }
        if (rest.length === 1 && rest[0] === 'infer' && method === 'POST') {
          const m = need(name);
          const raw = await receive(req);
          const r = parseInfer(m, parseJson(raw), raw.length);
          const prob = await m.infer(r.inputs, r.rows);
          const C = m.classes.length;
          const outputs: Record<string, unknown>[] = [];
          const want = (n: string) => !r.outputs || r.outputs.includes(n);
          if (want('probabilities')) outputs.push({ name: 'probabilities', datatype: 'FP32', shape: [r.rows, C], data: Array.from(prob) });
          if (want('predicted')) outputs.push({ name: 'predicted', datatype: 'INT32', shape: [r.rows], data: argmax(prob, r.rows, C) });
          send(res, 200, { model_name: name, model_version: '1', ...(r.id !== undefined ? { id: r.id } : {}), parameters: { classes: m.classes }, outputs });
          return;
        }
      }
      if (parts[1] === 'repository') {
        if (parts.length === 3 && parts[2] === 'index' && method === 'POST') {
          await receive(req); // optional {"ready": bool}
          send(res, 200, repo.index());
          return;
        }
        if (parts[2] === 'models' && parts.length >= 4) {
          const name = modelName(parts[3]!);
          const action = parts[4];
          if (parts.length === 5 && action === 'load' && method === 'POST') {
            await receive(req);
            await repo.load(name);
            send(res, 200, { name, state: 'READY' });
            return;
          }
          if (parts.length === 5 && action === 'unload' && method === 'POST') {
            await receive(req);
            repo.unload(name);
            send(res, 200, { name, state: 'UNAVAILABLE' });
            return;
          }
          if ((parts.length === 4 && method === 'PUT') || (parts.length === 5 && action === 'upload' && method === 'POST')) {
            if (uploading) throw new HttpError(503, 'another upload is in progress; try again');
            uploading = true;
            let body: Buffer;
            let m: ServedModel;
            try {
              body = await readBody(req, maxUpload, bodyTimeout * 4, undefined);
              m = await repo.upload(name, body);
            } finally {
              uploading = false;
            }
            log(`model ${name}: uploaded (${body.length} bytes) and loaded`);
            send(res, 201, { name, state: 'READY', metadata: modelMetadata(m) });
            return;
          }
        }
      }
      throw noRoute(method, path);
    }

    // --- TFaaS
    if ((path === '/json' || path === '/predict/json') && method === 'POST') {
      const body = parseJson(await receive(req));
      if (!isObject(body)) throw new HttpError(400, 'the request must be a JSON object {"keys": [...], "values": [...], "model": "name"}');
      let m: ServedModel;
      if (typeof body.model === 'string' && body.model !== '') m = need(modelName(body.model));
      else {
        const ready = repo.ready();
        if (ready.length !== 1) throw new HttpError(400, `"model" is required: the server has ${ready.length} models (${ready.map((x) => x.name).join(', ')})`);
        m = ready[0]!;
      }
      const inputs = parseTfaas(m, body);
      const prob = await m.infer(inputs, 1);
      send(res, 200, Array.from(prob));
      return;
    }
    if (path === '/models' && method === 'GET') {
      send(
        res,
        200,
        repo.ready().map((m) => ({
          name: m.name,
          model: 'hep-ml',
          labels: m.classes,
          inputs: m.inputs.map((i) => ({ name: i.name, column: i.column, shape: i.shape, ...(i.features ? { features: i.features } : {}) })),
          description: `${m.loaded.meta.model} classifier, ${m.loaded.meta.params} parameters`,
          timestamp: m.loadedAt.toISOString(),
        })),
      );
      return;
    }
    if (path === '/status' && method === 'GET') {
      const mem = process.memoryUsage();
      send(res, 200, {
        hepml: hepMlVersion(),
        uptime_s: Math.round((Date.now() - metrics.started) / 1000),
        memory: { rss: mem.rss, heap_used: mem.heapUsed, external: mem.external, system_total: os.totalmem(), system_free: os.freemem() },
        load: os.loadavg(),
        cpus: os.cpus().length,
        requests: { get: metrics.get, post: metrics.post, total: metrics.total() },
        models: repo.index(),
      });
      return;
    }
    if (path === '/metrics' && method === 'GET') {
      send(res, 200, metrics.render(repo.index().map((e) => ({ name: e.name, ready: e.state === 'READY' }))), { 'content-type': 'text/plain; version=0.0.4' });
      return;
    }
    throw noRoute(method, path);
  }

  const noRoute = (method: string, path: string) =>
    routeOf(path) === 'other' ? new HttpError(404, `no route ${method} ${path}`) : new HttpError(405, `${method} is not allowed on ${path}`);

  const server = createServer({ keepAlive: true }, (req, res) => {
    const t0 = performance.now();
    metrics.inflight++;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = (q >= 0 ? url.slice(0, q) : url).replace(/\/+$/, '') || '/';
    const route = routeOf(path);
    handle(req, res, path)
      .catch((e: unknown) => {
        let status = 500;
        let message = (e as Error)?.message ?? String(e);
        if (e instanceof HttpError || e instanceof RepositoryError) status = e.status;
        else if (e instanceof QueueFullError) status = 503;
        else log(`internal error on ${req.method} ${req.url}: ${(e as Error)?.stack ?? e}`);
        if (status === 500) message = `internal error: ${message}`;
        if (!res.headersSent) {
          const headers: Record<string, string> = { ...JSON_HEADERS };
          // after a refused body the connection cannot be reused: close it
          if (status === 413 || status === 408) headers.connection = 'close';
          send(res, status, { error: message }, headers);
        } else res.destroy();
      })
      .finally(() => {
        metrics.inflight--;
        metrics.request(route, res.statusCode, (performance.now() - t0) / 1000);
      });
  });
  server.maxConnections = o.maxConnections ?? 4096;
  server.headersTimeout = Math.min(bodyTimeout, 60_000);
  server.requestTimeout = 0; // bodies have their own timer (a JSON 408)
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (err, socket) => {
    if (socket.writable) {
      const body = JSON.stringify({ error: `bad request: ${err.message}` });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    } else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `http://${host}:${addr.port}`,
    repository: repo,
    metrics,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      repo.close();
    },
  };
}
