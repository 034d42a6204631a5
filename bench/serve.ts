/**
 * Serve benchmark: `hep-ml serve` under a real HTTP load generator, one event per request.
 *
 *   - Two untrained models (dnn, inclusive) are written to a temporary repository with the library API, with
 *     a min-max scaler fit on real feature rows and the feature names (as `hep-ml train` writes them).
 *   - Request bodies: BENCH_EVENTS_PER_CASE (default 48) real events from the toy generator + the corrected
 *     recipe (raw features; the server scales them), numbers written with 7 significant digits, as a client
 *     would print float32 values. GRU_input is the full 801 × 19 matrix, zero-padded past the event's
 *     particles (as in the data: the particles are ~40–300 rows). Each connection cycles through the events.
 *   - The server runs in a child process (`node bin/run.js serve --models TMP --port 0 --json`; needs
 *     `npm run -s build`), so the load generator and the server do not share an event loop or a core.
 *   - Load generators: autocannon (programmatic, in this process) and, when `wrk` is installed, wrk
 *     (`wrk -t1 -cN -dS --latency -s post.lua`: it uses less CPU than autocannon, which matters on 2 cores).
 *   - Cases: dnn via OIP (/v2/models/dnn/infer), dnn via TFaaS (/json), inclusive via OIP; wrk: dnn OIP.
 *   - Baseline, same run, same generator, same request and response bytes as the dnn OIP case: a trivial
 *     node:http server in a child process that reads the body and answers with a fixed JSON body (the HTTP
 *     floor of this machine). Every case reports its fraction of that floor.
 *   - Per case: req/s (mean of per-second samples, and total / duration), latency p50/p90/p99/max (ms), total
 *     requests, errors, non-2xx, timeouts; the server's mean micro-batch size (hepml_batch_size sum / count
 *     over the case, from /metrics), its mean model-call time, its CPU use (cores, from /proc), its peak RSS
 *     (VmHWM, reset before each case through /proc/PID/clear_refs), and the load average before and after.
 *   - Every distinct request is sent once and its response checked (shape, probabilities summing to 1,
 *     TFaaS = OIP) before the timed runs; any error, timeout or non-2xx response in a timed run makes the
 *     bench exit with status 1 (after printing its JSON).
 *
 * Prints one JSON document on stdout; progress on stderr.
 * Env: BENCH_SECONDS (per case, default 30), BENCH_CONNECTIONS (200), BENCH_WARMUP_SECONDS (3, not counted),
 * BENCH_EVENTS_PER_CASE (48), BENCH_SERVE_ARGS (extra `hep-ml serve` flags, e.g. "--max-batch 512"),
 * BENCH_WRK=0 (skip wrk).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractFeatures, GRU_WIDTH, HLF_NAMES, N_HLF } from '../src/features/index.js';
import { generateEvents, type Process } from '../src/generate/index.js';
import { fitMinMax } from '../src/prepare/scaler.js';
import { buildModel, countParams, modelInputs, type ModelKind } from '../src/train/models.js';
import { saveModelDir, MODEL_FORMAT, MODEL_VERSION, type ModelMeta } from '../src/train/model-io.js';
import { hepMlVersion } from '../src/version.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const EVENTS = Number(process.env.BENCH_EVENTS_PER_CASE ?? 48);
const SERVE_ARGS = (process.env.BENCH_SERVE_ARGS ?? '').split(/\s+/).filter((s) => s !== '');
const CLASSES = ['qcd', 'ttbar', 'wjets'];
const log = (s: string) => process.stderr.write(`${s}\n`);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

for (const [k, v] of Object.entries({ BENCH_SECONDS: SECONDS, BENCH_CONNECTIONS: CONNECTIONS, BENCH_EVENTS_PER_CASE: EVENTS })) {
  if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${k} must be a positive integer, got ${v}`);
}
if (!(WARMUP >= 0)) throw new Error(`BENCH_WARMUP_SECONDS must be ≥ 0, got ${WARMUP}`);
if (!existsSync(join(root, 'dist', 'commands', 'serve.js'))) {
  throw new Error('dist/commands/serve.js is missing: run `npm run -s build` first (the bench starts `node bin/run.js serve`)');
}

// ---------------------------------------------------------------------------------------------------
// autocannon: untyped CommonJS; the part of its API used here, typed

interface AcRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}
interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  requests: AcRequest[];
  timeout?: number;
}
interface AcResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { mean: number; p50: number; p90: number; p99: number; max: number };
  requests: { average: number; total: number; sent: number };
  throughput: { average: number };
}
type Autocannon = (opts: AcOptions) => PromiseLike<AcResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

// ---------------------------------------------------------------------------------------------------
// Real feature rows: the toy generator + the corrected recipe (raw, unscaled)

interface Event {
  hlf: Float32Array;
  gru: Float32Array;
  particles: number;
}

async function realEvents(perProcess: number): Promise<{ events: Event[]; allHlf: Float32Array }> {
  const events: Event[] = [];
  const hlfRows: Float32Array[] = [];
  for (const p of ['qcd', 'ttbar', 'wjets'] as Process[]) {
    let got = 0;
    // qcd: ~10 % of the events pass the selection; ttbar ~75 %, wjets ~90 %
    const generated = p === 'qcd' ? perProcess * 14 : perProcess * 2;
    for await (const b of extractFeatures(generateEvents({ process: p, events: generated, seed: 21 }), { recipe: 'corrected', batchRows: 256 })) {
      const col = (name: string) => {
        const c = b.columns.find((x) => x.name === name);
        if (!c) throw new Error(`features: no column ${name}`);
        return c.data;
      };
      const hlf = col('HLF_input');
      const gru = col('GRU_input');
      const np = col('n_particles');
      if (hlf.kind !== 'fixed' || hlf.child.kind !== 'primitive' || gru.kind !== 'fixed' || gru.child.kind !== 'primitive' || np.kind !== 'primitive') {
        throw new Error('features: unexpected column layout');
      }
      const hv = hlf.child.values as Float32Array;
      const gv = gru.child.values as Float32Array;
      const rows = b.entryStop - b.entryStart;
      hlfRows.push(hv.slice(0, rows * N_HLF));
      for (let r = 0; r < rows && got < perProcess; r++, got++) {
        events.push({ hlf: hv.slice(r * N_HLF, (r + 1) * N_HLF), gru: gv.slice(r * GRU_WIDTH, (r + 1) * GRU_WIDTH), particles: Number(np.values[r]) });
      }
    }
    if (got < perProcess) throw new Error(`features: only ${got} ${p} events passed the selection`);
  }
  const allHlf = new Float32Array(hlfRows.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const r of hlfRows) {
    allHlf.set(r, at);
    at += r.length;
  }
  // interleave the processes so that every connection sees all three
  const per = events.length / 3;
  const mixed: Event[] = [];
  for (let i = 0; i < per; i++) for (let k = 0; k < 3; k++) mixed.push(events[k * per + i]!);
  return { events: mixed, allHlf };
}

/** 7 significant digits: what a client printing float32 values sends. */
const num = (v: number) => (v === 0 ? 0 : Number(v.toPrecision(7)));
const list = (a: Float32Array) => Array.from(a, num);

// ---------------------------------------------------------------------------------------------------
// Child processes

interface Child {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
}

function startChild(args: string[], what: string, env: NodeJS.ProcessEnv = process.env): Promise<Child> {
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => {
    err = (err + c.toString('utf8')).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`${what}: not listening after 120 s`)), 120_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${e.message}\n${what} stderr:\n${err}`));
    };
    proc.once('exit', (code, sig) => fail(new Error(`${what} exited (${code ?? sig}) before listening`)));
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      try {
        const { url } = JSON.parse(out.slice(0, nl)) as { url: string };
        resolve({ proc, url, stderr: () => err });
      } catch (e) {
        fail(new Error(`${what}: unexpected first line on stdout: ${out.slice(0, nl)} (${(e as Error).message})`));
      }
    });
  });
}

async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
  c.proc.kill('SIGTERM');
  const t = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** /proc/PID: CPU seconds (user + system), peak RSS (VmHWM) in bytes; undefined off Linux. */
function procStats(pid: number): { cpu: number; hwm: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpu, hwm: m ? Number(m[1]) * 1024 : NaN };
  } catch {
    return undefined;
  }
}

/** Resets the peak RSS of a process (Linux ≥ 4.0); false when it cannot. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function metricsOf(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Load generators

interface CaseResult {
  generator: 'autocannon' | 'wrk';
  target: string;
  req_s: number;
  req_s_total: number;
  latency_ms: { mean: number; p50: number; p90: number; p99: number; max: number };
  requests: number;
  errors: number;
  non_2xx: number;
  timeouts: number;
  seconds: number;
  status_codes?: Record<string, number>;
  load_generator_cpu_cores?: number;
}

async function runAutocannon(url: string, requests: AcRequest[], seconds: number): Promise<CaseResult> {
  const cpu0 = process.cpuUsage();
  const r = await autocannon({ url, connections: CONNECTIONS, duration: seconds, requests, timeout: 10 });
  const cpu = process.cpuUsage(cpu0);
  const codes: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.statusCodeStats)) codes[k] = v.count;
  return {
    generator: 'autocannon',
    target: new URL(requests[0]!.path, url).pathname,
    req_s: Math.round(r.requests.average),
    req_s_total: Math.round(r.requests.total / r.duration),
    latency_ms: { mean: +r.latency.mean.toFixed(2), p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    requests: r.requests.total,
    errors: r.errors,
    non_2xx: r.non2xx,
    timeouts: r.timeouts,
    seconds: +r.duration.toFixed(2),
    status_codes: codes,
    load_generator_cpu_cores: +((cpu.user + cpu.system) / 1e6 / r.duration).toFixed(2),
  };
}

const WRK_LUA = (bodyFile: string) => `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("${bodyFile}", "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("WRKJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"mean_us\\":%f,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
`;

interface WrkJson {
  requests: number;
  duration_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  mean_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
}

function runWrk(url: string, script: string, seconds: number): Promise<CaseResult & { text: string }> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '10s', '--latency', '-s', script, url];
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    p.once('error', reject);
    p.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
      if (code !== 0 || !line) return reject(new Error(`wrk ${args.join(' ')} failed (${code}):\n${out}\n${err}`));
      const j = JSON.parse(line.slice(8)) as WrkJson;
      const s = j.duration_us / 1e6;
      const ms = (us: number) => +(us / 1000).toFixed(2);
      const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
      const non2xx = out.match(/Non-2xx or 3xx responses:\s+(\d+)/);
      resolve({
        generator: 'wrk',
        target: new URL(url).pathname,
        req_s: Math.round(rps ? Number(rps[1]) : j.requests / s),
        req_s_total: Math.round(j.requests / s),
        latency_ms: { mean: ms(j.mean_us), p50: ms(j.p50_us), p90: ms(j.p90_us), p99: ms(j.p99_us), max: ms(j.max_us) },
        requests: j.requests,
        errors: j.connect + j.read + j.write,
        non_2xx: non2xx ? Number(non2xx[1]) : j.status,
        timeouts: j.timeout,
        seconds: +s.toFixed(2),
        text: out.replace(/^WRKJSON .*\n?/m, '').trim(),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Response checks

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkProbs(p: unknown, what: string): number[] {
  if (!Array.isArray(p) || p.length !== CLASSES.length || !p.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1)) {
    throw new Error(`${what}: expected ${CLASSES.length} probabilities, got ${JSON.stringify(p)}`);
  }
  const s = (p as number[]).reduce((a, b) => a + b, 0);
  if (Math.abs(s - 1) > 1e-4) throw new Error(`${what}: probabilities sum to ${s}`);
  return p as number[];
}

async function post(url: string, body: string): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`POST ${url}: HTTP ${r.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}

/** Checks an OIP response of one event; its probabilities. */
function checkOip(res: unknown, model: string, what: string): number[] {
  if (!isObj(res) || res.model_name !== model || !Array.isArray(res.outputs)) throw new Error(`${what}: not an OIP response: ${JSON.stringify(res).slice(0, 300)}`);
  const outs = res.outputs as unknown[];
  const prob = outs.find((o) => isObj(o) && o.name === 'probabilities');
  const pred = outs.find((o) => isObj(o) && o.name === 'predicted');
  if (!isObj(prob) || prob.datatype !== 'FP32' || JSON.stringify(prob.shape) !== JSON.stringify([1, CLASSES.length])) throw new Error(`${what}: bad probabilities output ${JSON.stringify(prob)}`);
  if (!isObj(pred) || pred.datatype !== 'INT32' || JSON.stringify(pred.shape) !== '[1]') throw new Error(`${what}: bad predicted output ${JSON.stringify(pred)}`);
  const p = checkProbs(prob.data, what);
  const k = Array.isArray(pred.data) ? (pred.data as unknown[])[0] : undefined;
  if (k !== p.indexOf(Math.max(...p))) throw new Error(`${what}: predicted ${JSON.stringify(pred.data)} is not the argmax of ${JSON.stringify(p)}`);
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Main

const work = mkdtempSync(join(tmpdir(), 'hepml-bench-serve-'));
const children: Child[] = [];
let failed = false;
try {
  log(`serve bench: ${EVENTS} real events per case (toy generator + corrected recipe)`);
  const perProcess = Math.ceil(EVENTS / 3);
  const { events: all, allHlf } = await realEvents(perProcess);
  const events = all.slice(0, EVENTS);
  const particles = events.map((e) => e.particles).sort((a, b) => a - b);

  // models: untrained weights, the scaler and feature names a trained model carries
  const scaler = fitMinMax(allHlf, N_HLF, { column: 'HLF_input', fit: 'all', features: [...HLF_NAMES] });
  const repoDir = join(work, 'repo');
  for (const kind of ['dnn', 'inclusive'] as ModelKind[]) {
    const model = await buildModel(kind, { seed: 1 });
    const meta: ModelMeta = {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
      hepml: hepMlVersion(),
      created: new Date().toISOString(),
      model: kind,
      inputs: modelInputs(kind).map((i) => ({ ...i, dtype: 'float32' as const })),
      output: { name: 'probabilities', classes: CLASSES },
      params: countParams(model),
      recipe: { format: 'hep-ml/features', version: 1, recipe: 'corrected', hlf_names: [...HLF_NAMES] },
      scaler: { kind: 'minmax', ...scaler },
    };
    await saveModelDir(model, meta, join(repoDir, kind));
    model.dispose();
  }

  // request bodies
  const json = JSON.stringify;
  const oipDnn = events.map((e, i) => json({ id: `e${i}`, inputs: [{ name: 'hlf_input', shape: [1, N_HLF], datatype: 'FP32', data: list(e.hlf) }] }));
  const tfaasDnn = events.map((e) => json({ keys: [...HLF_NAMES], values: list(e.hlf), model: 'dnn' }));
  const oipIncl = events.map((e, i) =>
    json({
      id: `e${i}`,
      inputs: [
        { name: 'gru_input', shape: [1, 801, 19], datatype: 'FP32', data: list(e.gru) },
        { name: 'hlf_input', shape: [1, N_HLF], datatype: 'FP32', data: list(e.hlf) },
      ],
    }),
  );
  const bytes = (a: string[]) => Math.round(a.reduce((s, b) => s + Buffer.byteLength(b), 0) / a.length);

  log(`starting the server (node bin/run.js serve --models ${repoDir} --port 0 --json ${SERVE_ARGS.join(' ')})`);
  const server = await startChild([join(root, 'bin', 'run.js'), 'serve', '--models', repoDir, '--port', '0', '--json', ...SERVE_ARGS], 'hep-ml serve');
  children.push(server);
  const pid = server.proc.pid!;

  // every request once, every response checked; TFaaS must agree with OIP
  log(`checking ${events.length} × 3 responses`);
  let dnnResponse = '';
  for (let i = 0; i < events.length; i++) {
    const a = checkOip(await post(`${server.url}/v2/models/dnn/infer`, oipDnn[i]!), 'dnn', `dnn OIP event ${i}`);
    const b = checkProbs(await post(`${server.url}/json`, tfaasDnn[i]!), `dnn TFaaS event ${i}`);
    if (a.some((x, k) => Math.abs(x - b[k]!) > 1e-6)) throw new Error(`event ${i}: TFaaS ${json(b)} differs from OIP ${json(a)}`);
    checkOip(await post(`${server.url}/v2/models/inclusive/infer`, oipIncl[i]!), 'inclusive', `inclusive OIP event ${i}`);
    if (i === 0) dnnResponse = json(await post(`${server.url}/v2/models/dnn/infer`, oipDnn[0]!));
  }

  // the HTTP floor: same request and response bytes, no parsing, no model
  const floorCode = `const http = require('node:http');
const body = process.env.FLOOR_BODY;
const s = http.createServer({ keepAlive: true }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
});
s.keepAliveTimeout = 5000;
s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ url: 'http://127.0.0.1:' + s.address().port }) + '\\n'));
process.once('SIGTERM', () => s.close(() => process.exit(0)));`;
  const floor = await startChild(['-e', floorCode], 'floor server', { ...process.env, FLOOR_BODY: dnnResponse });
  children.push(floor);
  const floorBody = await fetch(`${floor.url}/x`, { method: 'POST', body: oipDnn[0]! }).then((r) => r.text());
  if (floorBody !== dnnResponse) throw new Error('the floor server does not answer with the dnn response');

  const hdr = { 'content-type': 'application/json' };
  const reqs = (path: string, bodies: string[]): AcRequest[] => bodies.map((body) => ({ method: 'POST', path, headers: hdr, body }));

  interface Case {
    name: string;
    generator: 'autocannon' | 'wrk';
    child: Child;
    path: string;
    bodies: string[];
    model?: string;
  }
  const cases: Case[] = [
    { name: 'floor', generator: 'autocannon', child: floor, path: '/v2/models/dnn/infer', bodies: oipDnn },
    { name: 'dnn_oip', generator: 'autocannon', child: server, path: '/v2/models/dnn/infer', bodies: oipDnn, model: 'dnn' },
    { name: 'dnn_tfaas', generator: 'autocannon', child: server, path: '/json', bodies: tfaasDnn, model: 'dnn' },
    { name: 'inclusive_oip', generator: 'autocannon', child: server, path: '/v2/models/inclusive/infer', bodies: oipIncl, model: 'inclusive' },
  ];
  const haveWrk = process.env.BENCH_WRK !== '0' && spawnSync('wrk', ['--version']).error === undefined;
  if (haveWrk) {
    // wrk sends one body per case: the first event
    cases.push({ name: 'floor', generator: 'wrk', child: floor, path: '/v2/models/dnn/infer', bodies: oipDnn.slice(0, 1) });
    cases.push({ name: 'dnn_oip', generator: 'wrk', child: server, path: '/v2/models/dnn/infer', bodies: oipDnn.slice(0, 1), model: 'dnn' });
  } else log('wrk is not installed (or BENCH_WRK=0): autocannon only');

  const results: Record<string, Record<string, unknown>> = { autocannon: {}, wrk: {} };
  let peakScope = 'per case (VmHWM reset before each case)';
  for (const c of cases) {
    const url = `${c.child.url}${c.path}`;
    let script = '';
    if (c.generator === 'wrk') {
      const bodyFile = join(work, `${c.name}.json`);
      writeFileSync(bodyFile, c.bodies[0]!);
      script = join(work, `${c.name}.lua`);
      writeFileSync(script, WRK_LUA(bodyFile));
    }
    const run = (s: number) => (c.generator === 'wrk' ? runWrk(url, script, s) : runAutocannon(c.child.url, reqs(c.path, c.bodies), s));
    if (WARMUP > 0) {
      log(`${c.generator} ${c.name}: warm-up ${WARMUP} s`);
      await run(WARMUP);
    }
    const cpid = c.child.proc.pid!;
    if (!resetPeak(cpid)) peakScope = 'since the process started (clear_refs not writable)';
    const m0 = c.model ? await metricsOf(server.url) : undefined;
    const p0 = procStats(cpid);
    const load0 = loadavg();
    log(`${c.generator} ${c.name}: ${SECONDS} s, ${CONNECTIONS} connections, POST ${c.path} (load average ${load0.map((x) => x.toFixed(2)).join(' ')})`);
    const r = await run(SECONDS);
    const p1 = procStats(cpid);
    const load1 = loadavg();
    const out: Record<string, unknown> = { ...r };
    delete out.text;
    if (c.model && m0) {
      const m1 = await metricsOf(server.url);
      const d = (k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
      const lbl = `{model="${c.model}"}`;
      const calls = d(`hepml_batch_size_count${lbl}`);
      out.server = {
        model_calls: calls,
        batch_size_mean: calls ? +(d(`hepml_batch_size_sum${lbl}`) / calls).toFixed(2) : null,
        model_call_ms_mean: calls ? +((d(`hepml_batch_duration_seconds_sum${lbl}`) / calls) * 1000).toFixed(3) : null,
      };
    }
    if (p0 && p1) {
      out.process = { cpu_cores: +((p1.cpu - p0.cpu) / r.seconds).toFixed(2), peak_rss_mb: Math.round(p1.hwm / 2 ** 20) };
    }
    out.load_average = { before: load0.map((x) => +x.toFixed(2)), after: load1.map((x) => +x.toFixed(2)) };
    results[c.generator]![c.name] = out;
    const bad = r.errors + r.non_2xx + r.timeouts;
    log(
      `  ${r.req_s} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms, max ${r.latency_ms.max} ms, ${r.requests} requests` +
        (bad ? `; ${r.errors} errors, ${r.non_2xx} non-2xx, ${r.timeouts} timeouts` : ''),
    );
    if (bad) failed = true;
  }

  // fractions of the floor, per generator
  for (const g of ['autocannon', 'wrk'] as const) {
    const f = results[g]!.floor as { req_s: number } | undefined;
    if (!f) continue;
    for (const [name, r] of Object.entries(results[g]!)) {
      if (name !== 'floor') (r as { fraction_of_floor?: number }).fraction_of_floor = +((r as { req_s: number }).req_s / f.req_s).toFixed(3);
    }
  }
  const status = (await (await fetch(`${server.url}/status`)).json()) as { memory?: { rss?: number } };

  process.stdout.write(
    JSON.stringify(
      {
        stage: 'serve',
        node: process.version,
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        seconds_per_case: SECONDS,
        warmup_seconds: WARMUP,
        connections: CONNECTIONS,
        server: { command: `node bin/run.js serve --models TMP --port 0 --json${SERVE_ARGS.length ? ' ' + SERVE_ARGS.join(' ') : ''}`, rss_mb_at_end: status.memory?.rss ? Math.round(status.memory.rss / 2 ** 20) : null, peak_rss: peakScope },
        requests: {
          events: events.length,
          particles_per_event: { min: particles[0], median: particles[particles.length >> 1], max: particles[particles.length - 1] },
          body_bytes_mean: { dnn_oip: bytes(oipDnn), dnn_tfaas: bytes(tfaasDnn), inclusive_oip: bytes(oipIncl) },
          response_bytes_dnn_oip: Buffer.byteLength(dnnResponse),
        },
        floor: 'node:http server in a child process: reads the body, answers a fixed JSON body (the dnn OIP request and response bytes)',
        ...results,
        ...(haveWrk ? {} : { wrk: 'not installed' }),
      },
      null,
      2,
    ) + '\n',
  );
  if (failed) {
    log('serve bench: FAILED: errors, timeouts or non-2xx responses in a timed run (see above)');
    process.exitCode = 1;
  }
} finally {
  for (const c of children) await stopChild(c);
  rmSync(work, { recursive: true, force: true });
}
