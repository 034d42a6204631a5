/**
 * Distributed training (`hep-ml train --workers N`, src/train/distributed) on one machine. Three parts:
 *
 * 1. training: samples/s of the inclusive model at batch 128 per worker, trained by train() (the library
 *    entry behind `hep-ml train`) on one Arrow file of synthetic rows with realistic sequence lengths (as
 *    bench/train.ts: 100–400 real particles of 801, uniform; values uniform in [−1, 1), HLF uniform in [0, 1),
 *    labels b mod 3; written as `hep-ml features`/`prepare` write, 256-row record batches):
 *      - baseline, same run: the single-process train() (no --workers);
 *      - --workers 1 and --workers 2, strategy sync, Unix sockets (--transport ipc; `--transport tcp` here
 *        switches the training runs to loopback TCP).
 *    The same rows every time (each of the N workers reads its shard, batch 128: a step of 2 workers is a
 *    global batch of 256). Steady state: the epochs after the first (worker start-up happens before epoch 1;
 *    epoch 1 carries the workers' engine load and JIT warm-up): samples/s = their rows / the wall-clock time
 *    from the end of epoch 1 to the end of the last epoch, taken from train()'s onEpoch callback — the same
 *    clock for all three runs, covering everything an epoch costs (data streaming and shuffle-buffer fill,
 *    the broadcast of the epoch-start state and the collection of the result, the checkpoint). train()'s
 *    own epoch seconds are reported too (trainer_samples_per_s) but are not comparable: a single-process
 *    epoch's clock starts after its stream has delivered the first batch (shuffle buffer full), a
 *    distributed epoch's clock before the workers open theirs.
 *      - the machine's ceiling, same run: 2 independent single-process train() runs at once (2 child
 *        processes, no communication): what 2 cores' worth of this machine, as loaded as it is, gives any
 *        2-process scheme (shared caches and memory bandwidth, SMT siblings, other users' jobs).
 *    parallel_efficiency = samples/s(2 workers) / (2 × samples/s(1 worker)) (target ≥ 0.85 on 2 cores);
 *    efficiency_vs_single_process = samples/s(2 workers) / (2 × samples/s(single process));
 *    machine_scaling_2_processes = aggregate samples/s(2 independent) / (2 × samples/s(single process));
 *    efficiency_vs_machine_ceiling = samples/s(2 workers) / aggregate samples/s(2 independent).
 *    All-reduce time per step: hep-ml's allreduce_ms_per_step (replica 0's time inside Ring.allReduce, which
 *    includes waiting for the slower replica to arrive at the step), its share of the step time.
 *
 * 2. allreduce: a microbenchmark of Ring.allReduce (src/train/distributed/allreduce.ts) between 2 node
 *    processes (this file, spawned as `ring-peer`), over Unix sockets and over TCP 127.0.0.1, on buffers of
 *    the inclusive model's gradient (12,353 floats + 3: rows, loss, accuracy), 1 MiB, 16 MiB and 64 MiB.
 *    Each timed call is preceded by a barrier (a 2-float all-reduce, not timed) and a refill of the buffer;
 *    the first call's result is checked. Median ms per all-reduce (the slower rank's median); algorithm
 *    bandwidth = bytes / time, bus bandwidth = 2(N−1)/N × bytes / time (GB/s, 1e9). Baseline, same processes,
 *    same sockets kind: the raw transport floor — the same ring exchange pattern (2(N−1) steps, one chunk of
 *    bytes/N out to the successor and one in from the predecessor per step, received into a buffer) with plain
 *    net.Socket writes and reads: no frames, no JSON head, no additions.
 *
 * 3. strategies (`--strategies`; off by default): the six strategies with 2 workers on data made by the
 *    hep-ml pipeline (generate qcd 12000 / ttbar 1500 / wjets 1300 events — the integration test's counts,
 *    times `--strategies-scale K` — | features --recipe corrected; prepare --undersample --batch-size 256:
 *    about 2,600 training and 660 test rows at K = 1; 256-row batches because a worker's shard of one file is made of whole record batches, which
 *    prepare's default 1024 would split 1613/1024 between 2 workers), the inclusive model
 *    (`--strategies-model dnn` for the DNN; on this data it passes 0.95 in 2 epochs of 0.2 s: nothing to
 *    compare), lr 0.003, 12 epochs, validated after every epoch on the test split, each strategy at its CLI
 *    defaults (`--window N` overrides τ of the parameter-server strategies; with ~10 steps per worker per
 *    epoch, aeasgd/eamsgd's τ = 32 exchanges about once in 3 epochs), plus the single-process train() as the
 *    baseline. Reported per run: the epoch at which the validation AUC — the mean over the three classes of
 *    the one-vs-rest AUCs — first reaches `--threshold` (default 0.90), the training seconds up to then (sum
 *    of train()'s epoch seconds: no start-up, validation or checkpoints) and the wall-clock seconds from the
 *    train() call (everything), the best mean AUC and the best ttbar-vs-rest AUC. AUCs are only known at
 *    epoch ends: times to the threshold are rounded up to an epoch.
 *
 * The synthetic rows use bench/train.ts's generator and length distribution, repeated here (a few lines)
 * because bench/train.ts runs its benchmark when imported. Child modes of this file: `ring-peer` (part 2)
 * and `solo` (part 1's concurrent single processes).
 *
 * Prints one JSON document on stdout; logs and Markdown tables (for docs) on stderr.
 * Usage: npm run -s bench -- distributed [--quick] [--strategies] [--no-training] [--no-allreduce]
 *        [--transport ipc|tcp] [--rows N] [--epochs N] [--threshold X] [--strategies-epochs N]
 *        [--strategies-model inclusive|dnn] [--strategies-scale K] [--window N]
 * --quick: small sizes (< 2 min; numbers for smoke-testing, not for docs). --quick --strategies runs a smoke
 * version of part 3 (small data, 2 epochs).
 * Part 3 runs the built CLI for the data (bin/run.js uses dist/): `npm run -s build` first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Ring } from '../src/train/distributed/allreduce.js';
import { connect, formatAddress, listen, parseAddress, type Conn } from '../src/train/distributed/transport.js';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = join(dirname(SCRIPT), '..');
const log = (s: string) => process.stderr.write(`bench distributed: ${s}\n`);
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[s.length >> 1]! : NaN;
};
const round = (x: number, d: number) => (Number.isFinite(x) ? +x.toFixed(d) : null);

/** The inclusive model's trainable parameters (checked against train()'s count when part 1 runs). */
const INCLUSIVE_PARAMS = 12_353;

// =====================================================================================================
// ring-peer: one of the two processes of the all-reduce microbenchmark

interface PeerCase {
  label: string;
  floats: number;
  reps: number;
  warmup: number;
}
interface PeerResult {
  label: string;
  floats: number;
  bytes: number;
  reps: number;
  ring_ms: number[];
  raw_ms: number[];
  checked: boolean;
}

/** Reads exactly dst.length bytes from a socket into dst, copying chunks as they arrive (excess kept). */
class RawReader {
  private queue: Buffer[] = [];
  private want?: { dst: Uint8Array; at: number; resolve: () => void };
  constructor(socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.queue.push(c);
      this.pump();
    });
  }
  read(dst: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      this.want = { dst, at: 0, resolve };
      this.pump();
    });
  }
  private pump(): void {
    const w = this.want;
    if (!w) return;
    while (w.at < w.dst.length && this.queue.length) {
      const c = this.queue[0]!;
      const n = Math.min(c.length, w.dst.length - w.at);
      w.dst.set(c.subarray(0, n), w.at);
      w.at += n;
      if (n === c.length) this.queue.shift();
      else this.queue[0] = c.subarray(n);
    }
    if (w.at === w.dst.length) {
      this.want = undefined;
      w.resolve();
    }
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function ringPeer(): Promise<void> {
  const rank = Number(opt('--rank'));
  const size = Number(opt('--size'));
  const transport = opt('--transport') as 'ipc' | 'tcp';
  const dir = opt('--dir')!;
  const cases = JSON.parse(opt('--cases')!) as PeerCase[];

  // hep-ml's transport for the ring, a plain socket pair for the raw baseline
  const prevConn = deferred<Conn>();
  const ringListener = await listen(parseAddress(transport === 'ipc' ? `unix:${join(dir, `ring-${rank}.sock`)}` : '127.0.0.1:0'), (c) => prevConn.resolve(c));
  const prevRaw = deferred<net.Socket>();
  const rawServer = net.createServer((s) => {
    s.setNoDelay(true);
    prevRaw.resolve(s);
  });
  const rawPath = join(dir, `raw-${rank}.sock`);
  await new Promise<void>((resolve, reject) => {
    rawServer.once('error', reject);
    if (transport === 'ipc') rawServer.listen(rawPath, resolve);
    else rawServer.listen(0, '127.0.0.1', resolve);
  });
  const rawAt = transport === 'ipc' ? rawPath : (rawServer.address() as net.AddressInfo).port;
  process.stdout.write(JSON.stringify({ ring: formatAddress(ringListener.address), raw: rawAt }) + '\n');

  // the parent answers with everyone's addresses
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const peers = JSON.parse(((await lines.next()).value as string) ?? '{}') as { ring: string[]; raw: (string | number)[] };
  const succ = (rank + 1) % size;
  const next = await connect(parseAddress(peers.ring[succ]!), { timeoutMs: 30_000 });
  const rawNext = await new Promise<net.Socket>((resolve, reject) => {
    const at = peers.raw[succ]!;
    const s = typeof at === 'string' ? net.connect(at) : net.connect(at, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  rawNext.setNoDelay(true);
  const ring = new Ring(rank, size, next, await prevConn.promise);
  const rawPrev = new RawReader(await prevRaw.promise);

  let seq = 0;
  const bar = new Float32Array(size);
  const barrier = () => ring.allReduce(bar, seq++);
  const bounds = (c: number, n: number) => [Math.floor((c * n) / size), Math.floor(((c + 1) * n) / size)] as const;
  const mod = (x: number) => ((x % size) + size) % size;

  /** The ring's exchange pattern with plain sockets: what moving the bytes costs, nothing else. */
  async function rawExchange(bytes: Uint8Array, scratch: Uint8Array): Promise<void> {
    const n = bytes.length / 4;
    for (let s = 0; s < 2 * (size - 1); s++) {
      const gather = s >= size - 1;
      const k = gather ? s - (size - 1) : s;
      const [a, b] = bounds(gather ? mod(rank + 1 - k) : mod(rank - k), n);
      const [c, d] = bounds(gather ? mod(rank - k) : mod(rank - k - 1), n);
      const sent = new Promise<void>((resolve, reject) => rawNext.write(Buffer.from(bytes.buffer, bytes.byteOffset + a * 4, (b - a) * 4), (e) => (e ? reject(e) : resolve())));
      await rawPrev.read(gather ? bytes.subarray(c * 4, d * 4) : scratch.subarray(0, (d - c) * 4));
      await sent;
    }
  }

  const expect = (size * (size + 1)) / 2;
  const results: PeerResult[] = [];
  for (const cs of cases) {
    const buf = new Float32Array(cs.floats);
    const bytes = new Uint8Array(buf.buffer);
    const scratch = new Uint8Array(Math.ceil(cs.floats / size + 1) * 4);
    const r: PeerResult = { label: cs.label, floats: cs.floats, bytes: cs.floats * 4, reps: cs.reps, ring_ms: [], raw_ms: [], checked: false };
    for (let i = 0; i < cs.warmup + cs.reps; i++) {
      buf.fill(rank + 1);
      await barrier();
      const t0 = performance.now();
      await ring.allReduce(buf, seq++);
      const t = performance.now() - t0;
      if (i === 0) {
        for (let j = 0; j < buf.length; j++) if (buf[j] !== expect) throw new Error(`${cs.label}: all-reduce gave ${buf[j]} at ${j}, expected ${expect}`);
        r.checked = true;
      }
      if (i >= cs.warmup) r.ring_ms.push(t);
    }
    for (let i = 0; i < cs.warmup + cs.reps; i++) {
      await barrier();
      const t0 = performance.now();
      await rawExchange(bytes, scratch);
      const t = performance.now() - t0;
      if (i >= cs.warmup) r.raw_ms.push(t);
    }
    results.push(r);
  }
  await barrier();
  process.stdout.write(JSON.stringify({ rank, results }) + '\n');
  next.close();
  rawNext.end();
  await ringListener.close();
  rawServer.close();
}

// =====================================================================================================
// part 2 (parent side): the all-reduce microbenchmark

async function runRing(transport: 'ipc' | 'tcp', cases: PeerCase[], dir: string): Promise<PeerResult[][]> {
  const size = 2;
  const kids = Array.from({ length: size }, (_, rank) => {
    const cp = spawn(process.execPath, [...process.execArgv, SCRIPT, 'ring-peer', '--rank', String(rank), '--size', String(size), '--transport', transport, '--dir', dir, '--cases', JSON.stringify(cases)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: cp.stdout! })[Symbol.asyncIterator]();
    const exited = new Promise<number | null>((resolve) => cp.on('close', (code) => resolve(code)));
    return { cp, lines, exited };
  });
  const guard = setTimeout(() => kids.forEach((k) => k.cp.kill('SIGKILL')), 10 * 60_000);
  try {
    const ready = await Promise.all(
      kids.map(async (k, rank) => {
        const l = await k.lines.next();
        if (l.done) throw new Error(`ring peer ${rank} (${transport}) exited before listening (code ${await k.exited})`);
        return JSON.parse(l.value as string) as { ring: string; raw: string | number };
      }),
    );
    const peers = JSON.stringify({ ring: ready.map((r) => r.ring), raw: ready.map((r) => r.raw) });
    for (const k of kids) k.cp.stdin!.end(peers + '\n');
    return await Promise.all(
      kids.map(async (k, rank) => {
        const l = await k.lines.next();
        const code = await k.exited;
        if (l.done || code !== 0) throw new Error(`ring peer ${rank} (${transport}) failed (exit ${code})`);
        return (JSON.parse(l.value as string) as { results: PeerResult[] }).results;
      }),
    );
  } finally {
    clearTimeout(guard);
    for (const k of kids) if (k.cp.exitCode === null) k.cp.kill('SIGKILL');
  }
}

async function allreducePart(quick: boolean, dir: string) {
  const N = 2;
  const MiB = 1 << 20;
  const cases: PeerCase[] = [
    { label: `inclusive gradient (${INCLUSIVE_PARAMS} + 3 floats)`, floats: INCLUSIVE_PARAMS + 3, reps: quick ? 100 : 1000, warmup: quick ? 5 : 20 },
    { label: '1 MiB', floats: MiB / 4, reps: quick ? 30 : 200, warmup: quick ? 2 : 5 },
    { label: '16 MiB', floats: (16 * MiB) / 4, reps: quick ? 6 : 40, warmup: 1 },
    { label: '64 MiB', floats: (64 * MiB) / 4, reps: quick ? 3 : 15, warmup: 1 },
  ];
  const rows: Record<string, unknown>[] = [];
  for (const transport of ['ipc', 'tcp'] as const) {
    log(`all-reduce microbenchmark over ${transport === 'ipc' ? 'Unix sockets' : 'TCP 127.0.0.1'} (2 processes)`);
    const ranks = await runRing(transport, cases, dir);
    ranks[0]!.forEach((r0, i) => {
      const ring = Math.max(...ranks.map((r) => median(r[i]!.ring_ms)));
      const raw = Math.max(...ranks.map((r) => median(r[i]!.raw_ms)));
      const alg = r0.bytes / (ring / 1000) / 1e9;
      const row = {
        transport,
        buffer: r0.label,
        floats: r0.floats,
        bytes: r0.bytes,
        reps: r0.reps,
        checked: ranks.every((r) => r[i]!.checked),
        median_ms: round(ring, 3),
        min_ms: round(Math.min(...ranks[0]![i]!.ring_ms), 3),
        algbw_gbs: round(alg, 3),
        busbw_gbs: round((alg * 2 * (N - 1)) / N, 3),
        raw_median_ms: round(raw, 3),
        raw_busbw_gbs: round(((r0.bytes / (raw / 1000) / 1e9) * 2 * (N - 1)) / N, 3),
        vs_raw: round(raw / ring, 2),
      };
      rows.push(row);
      log(JSON.stringify(row));
    });
  }
  return {
    processes: N,
    method: 'Ring.allReduce between 2 node processes; barrier before each call; median of the slower rank; baseline raw: the same exchange pattern with plain sockets',
    bandwidth: 'algbw = bytes / time; busbw = 2(N-1)/N x bytes / time (N = 2: the same); GB/s = 1e9 bytes/s',
    results: rows,
  };
}

// =====================================================================================================
// part 1: training throughput

type TrainerMod = typeof import('../src/train/trainer.js');
type EpochRecord = import('../src/train/trainer.js').EpochRecord;

/** bench/train.ts's generator (an LCG) and its realistic lengths: 100–400 real particles of 801, uniform. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Writes `rows` synthetic inclusive-model rows (GRU_input 801×19, HLF_input 14, label) as one Arrow file. */
async function writeSynthetic(path: string, rows: number, seed: number): Promise<{ meanLength: number; bytes: number }> {
  const { IpcStreamWriter, makeSchema, toRecordBatch } = await import('../src/columnar/index.js');
  const { columnType } = await import('../src/root/columns.js');
  type ColumnData = import('../src/root/columns.js').ColumnData;
  const T = 801, F = 19, H = 14, BATCH = 256;
  const r = rng(seed);
  const f32 = (values: Float32Array): ColumnData => ({ kind: 'primitive', dtype: 'float32', values });
  let w: Awaited<ReturnType<typeof IpcStreamWriter.open>> | undefined;
  let schema: ReturnType<typeof makeSchema> | undefined;
  let sum = 0;
  for (let start = 0; start < rows; start += BATCH) {
    const m = Math.min(BATCH, rows - start);
    const gru = new Float32Array(m * T * F);
    const hlf = new Float32Array(m * H);
    const label = new Int32Array(m);
    for (let b = 0; b < m; b++) {
      const L = 100 + Math.floor(r() * 301);
      sum += L;
      for (let t = 0; t < L; t++) for (let f = 0; f < F; f++) gru[(b * T + t) * F + f] = r() * 2 - 1 || 0.5;
      for (let k = 0; k < H; k++) hlf[b * H + k] = r();
      label[b] = (start + b) % 3;
    }
    const columns = [
      { name: 'GRU_input', data: { kind: 'fixed', size: T * F, child: f32(gru) } as ColumnData },
      { name: 'HLF_input', data: { kind: 'fixed', size: H, child: f32(hlf) } as ColumnData },
      { name: 'label', data: { kind: 'primitive', dtype: 'int32', values: label } as ColumnData },
    ];
    schema ??= makeSchema(columns.map((c) => ({ name: c.name, type: columnType(c.data) })));
    w ??= await IpcStreamWriter.open(path, { schema });
    await w.write(toRecordBatch(schema, { entryStart: start, entryStop: start + m, columns }));
  }
  await w!.close();
  return { meanLength: sum / rows, bytes: statSync(path).size };
}

interface RunSummary {
  samples_per_s: number | null;
  measured_epochs: number[];
  rows_per_epoch: number;
  params: number;
  [k: string]: unknown;
}

async function throughputRun(trainer: TrainerMod, name: string, data: string, out: string, epochs: number, workers: number | undefined, transport: 'ipc' | 'tcp', quiet = false): Promise<RunSummary> {
  const { strategyParams } = await import('../src/train/distributed/strategies.js');
  const ends: number[] = [];
  const res = await trainer.train({
    model: 'inclusive',
    data: [data],
    out,
    epochs,
    batchSize: 128,
    lr: 1e-3,
    seed: 1,
    log: (l) => (quiet ? undefined : log(`${name}: ${l}`)),
    onEpoch: (rec) => {
      ends.push(performance.now());
      log(`${name}: epoch ${rec.epoch}: ${rec.rows} rows, ${rec.seconds} s (trainer), ${rec.samples_per_s} samples/s (trainer)${rec.steps !== undefined ? `, ${String(rec.steps)} steps, all-reduce ${String(rec.allreduce_ms_per_step)} ms/step` : ''}`);
    },
    ...(workers ? { distributed: { workers, strategy: strategyParams('sync'), transport } } : {}),
  });
  // steady state: wall-clock from the end of epoch 1 to the end of the last epoch (the same clock for every
  // run: train()'s own epoch seconds start after the single-process stream has delivered its first batch, i.e.
  // after the shuffle buffer is filled, while a distributed epoch's seconds include the workers' filling)
  const E = res.epochs.length;
  const measured = E > 1 ? res.epochs.slice(1) : res.epochs;
  const rows = measured.reduce((a, e) => a + e.rows, 0);
  const wallS = E > 1 ? (ends[E - 1]! - ends[0]!) / 1000 : res.epochs[0]!.seconds;
  const trainerS = measured.reduce((a, e) => a + e.seconds, 0);
  const wallEpochS = E > 1 ? ends.slice(1).map((t, i) => (t - ends[i]!) / 1000) : [res.epochs[0]!.seconds];
  const stepsOf = (e: EpochRecord) => (e.steps !== undefined ? Number(e.steps) : Math.ceil(e.rows / 128));
  const s: RunSummary = {
    samples_per_s: round(rows / wallS, 1),
    trainer_samples_per_s: round(rows / trainerS, 1),
    step_ms: round(median(measured.map((e, i) => (wallEpochS[i]! * 1000) / stepsOf(e))), 1),
    wall_epoch_seconds: wallEpochS.map((x) => round(x, 3)),
    trainer_epoch_seconds: res.epochs.map((e) => e.seconds),
    measured_epochs: measured.map((e) => e.epoch),
    rows_per_epoch: res.epochs[0]!.rows,
    params: res.params,
  };
  if (workers) {
    const num = (e: EpochRecord, k: string) => Number(e[k]);
    const steps = median(measured.map(stepsOf));
    const arMs = median(measured.map((e) => num(e, 'allreduce_ms_per_step')));
    Object.assign(s, {
      workers,
      transport,
      steps_per_epoch: steps,
      allreduce_ms_per_step: round(arMs, 3),
      // the ring also runs one closing all-reduce per epoch (every replica out of data), counted in the time
      // and bytes but not in `steps`: per call it is ms_per_step × steps / (steps + 1)
      allreduce_ms_per_call: workers > 1 ? round((arMs * steps) / (steps + 1), 3) : 0,
      allreduce_bytes_per_step: median(measured.map((e) => num(e, 'allreduce_bytes_per_step'))),
      allreduce_bytes_per_call: workers > 1 ? Math.round((median(measured.map((e) => num(e, 'allreduce_bytes_per_step'))) * steps) / (steps + 1)) : 0,
      allreduce_share_of_step: workers > 1 ? round(arMs / (s.step_ms as number), 3) : 0,
      epoch_allreduce_ms_per_step: res.epochs.map((e) => num(e, 'allreduce_ms_per_step')),
    });
  }
  return s;
}

/** `solo` child: one single-process train() run, its summary as one JSON line on stdout. */
async function solo(): Promise<void> {
  const trainer = await import('../src/train/trainer.js');
  const tag = opt('--tag') ?? 'solo';
  const s = await throughputRun(trainer, tag, opt('--data')!, opt('--out')!, Number(opt('--epochs')), undefined, 'ipc', true);
  process.stdout.write(JSON.stringify(s) + '\n');
}

/**
 * The machine's own ceiling for 2-way data parallelism: `n` independent single-process trainings at once
 * (separate processes, no communication), each measured as above. Their aggregate samples/s over n × the
 * single-process rate is what shared cores, caches, memory bandwidth and the rest of the machine's load
 * leave to any n-process scheme.
 */
async function concurrentSolo(n: number, data: string, dir: string, epochs: number): Promise<RunSummary[]> {
  const kids = Array.from({ length: n }, (_, k) => {
    const cp = spawn(process.execPath, [...process.execArgv, SCRIPT, 'solo', '--tag', `concurrent single process ${k + 1}/${n}`, '--data', data, '--out', join(dir, `out-solo-${k}`), '--epochs', String(epochs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    cp.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
    return new Promise<RunSummary>((resolve, reject) =>
      cp.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as RunSummary) : reject(new Error(`concurrent single process ${k + 1} failed (exit ${code})`)))),
    );
  });
  return Promise.all(kids);
}

async function trainingPart(quick: boolean, dir: string, transport: 'ipc' | 'tcp') {
  const rows = Number(opt('--rows') ?? (quick ? 1024 : 4096));
  const epochs = Number(opt('--epochs') ?? (quick ? 2 : 6));
  const data = join(dir, 'synthetic.arrow');
  log(`writing ${rows} synthetic rows (realistic lengths) to ${data}`);
  const { meanLength, bytes } = await writeSynthetic(data, rows, 7);
  const trainer = await import('../src/train/trainer.js');
  const { loadEngine } = await import('../src/train/engine.js');
  const eng = await loadEngine();
  log(eng.reason);
  const single = await throughputRun(trainer, 'single process', data, join(dir, 'out-single'), epochs, undefined, transport);
  const w1 = await throughputRun(trainer, '1 worker', data, join(dir, 'out-w1'), epochs, 1, transport);
  const w2 = await throughputRun(trainer, '2 workers', data, join(dir, 'out-w2'), epochs, 2, transport);
  const pair = await concurrentSolo(2, data, dir, epochs);
  const pairRate = pair.every((p) => p.samples_per_s !== null) ? round(pair.reduce((a, p) => a + p.samples_per_s!, 0), 1) : null;
  if (single.params !== INCLUSIVE_PARAMS) log(`warning: the inclusive model has ${single.params} parameters, the all-reduce microbenchmark assumes ${INCLUSIVE_PARAMS}`);
  const eff = (a: number | null, b: number | null) => (a !== null && b !== null ? round(a / (2 * b), 3) : null);
  return {
    engine: eng.name,
    model: 'inclusive',
    params: single.params,
    batch_per_worker: 128,
    lengths: 'realistic: 100-400 real particles of 801 (uniform), as bench/train.ts',
    mean_length: round(meanLength, 1),
    rows,
    file_mb: round(bytes / 1e6, 1),
    epochs,
    steady_state: epochs > 1 ? `wall-clock from the end of epoch 1 to the end of epoch ${epochs} (epoch 1: start-up, warm-up)` : 'epoch 1 only (too few epochs to drop the warm-up)',
    baseline_single_process: single,
    workers_1: w1,
    workers_2: w2,
    concurrent_single_processes: { processes: 2, aggregate_samples_per_s: pairRate, samples_per_s: pair.map((p) => p.samples_per_s), step_ms: pair.map((p) => p.step_ms) },
    parallel_efficiency: eff(w2.samples_per_s, w1.samples_per_s),
    efficiency_vs_single_process: eff(w2.samples_per_s, single.samples_per_s),
    // what the machine allows: 2 independent processes at once vs 2 × one alone, and 2 workers against that
    machine_scaling_2_processes: eff(pairRate, single.samples_per_s),
    efficiency_vs_machine_ceiling: w2.samples_per_s !== null && pairRate ? round(w2.samples_per_s / pairRate, 3) : null,
    speedup_vs_single_process: single.samples_per_s && w2.samples_per_s ? round(w2.samples_per_s / single.samples_per_s, 3) : null,
    one_worker_vs_single_process: single.samples_per_s && w1.samples_per_s ? round(w1.samples_per_s / single.samples_per_s, 3) : null,
    note: 'allreduce_ms_per_step is replica 0 inside Ring.allReduce and includes waiting for the slower replica',
  };
}

// =====================================================================================================
// part 3: strategies

function sh(cmd: string): { code: number; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'ignore', 'pipe'] });
  return { code: r.status ?? -1, stderr: r.stderr ?? '' };
}

async function strategiesPart(quick: boolean, dir: string) {
  const bin = join(REPO, 'bin', 'run.js');
  if (!existsSync(join(REPO, 'dist', 'commands', 'prepare.js'))) throw new Error('--strategies runs the hep-ml CLI (bin/run.js uses dist/): run `npm run -s build` first');
  const src = statSync(join(REPO, 'src', 'commands', 'features.ts')).mtimeMs;
  if (statSync(join(REPO, 'dist', 'commands', 'features.js')).mtimeMs < src) log('warning: dist/ is older than src/ (npm run -s build)');
  const model = (opt('--strategies-model') ?? 'inclusive') as 'inclusive' | 'dnn';
  const threshold = Number(opt('--threshold') ?? 0.9);
  const epochs = Number(opt('--strategies-epochs') ?? (quick ? 2 : 12));
  const window = opt('--window') === undefined ? undefined : Number(opt('--window'));
  const scale = Number(opt('--strategies-scale') ?? (quick ? 0.25 : 1));
  const events: Record<string, number> = { qcd: Math.round(12000 * scale), ttbar: Math.round(1500 * scale), wjets: Math.round(1300 * scale) };
  const hepml = `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)}`;
  const t0 = performance.now();
  for (const [p, n] of Object.entries(events)) {
    const r = sh(`${hepml} generate --process ${p} --events ${n} --seed 7 -o - | ${hepml} features - --recipe corrected -o ${JSON.stringify(join(dir, `${p}.arrow`))}`);
    if (r.code !== 0) throw new Error(`generate | features (${p}) failed: ${r.stderr}`);
  }
  const prep = join(dir, 'prep');
  // 256-row output batches: a worker's shard of one file is a set of whole record batches (data.ts
  // shardPlan), and prepare's default 1024-row batches split a few thousand rows unevenly between 2 workers
  const r = sh(`${hepml} prepare --class qcd=${dir}/qcd.arrow --class ttbar=${dir}/ttbar.arrow --class wjets=${dir}/wjets.arrow --undersample --batch-size 256 -o ${JSON.stringify(prep)}`);
  if (r.code !== 0) throw new Error(`prepare failed: ${r.stderr}`);
  log(r.stderr.trim().split('\n').pop() ?? '');
  const dataSeconds = (performance.now() - t0) / 1000;

  const trainer = await import('../src/train/trainer.js');
  const { strategyParams, STRATEGIES } = await import('../src/train/distributed/strategies.js');
  const runs: Record<string, unknown>[] = [];
  const plan: ({ strategy: (typeof STRATEGIES)[number] } | { strategy: 'single process' })[] = [{ strategy: 'single process' }, ...STRATEGIES.map((s) => ({ strategy: s }))];
  for (const p of plan) {
    const name = p.strategy;
    const params = name === 'single process' ? undefined : strategyParams(name, name === 'sync' || window === undefined ? {} : { window });
    const wall: number[] = [];
    const start = performance.now();
    const res = await trainer.train({
      model,
      data: [join(prep, 'train.arrow')],
      validation: [join(prep, 'test.arrow')],
      out: join(dir, `out-${name.replace(/ /g, '-')}`),
      epochs,
      batchSize: 128,
      lr: 0.003,
      seed: 1,
      log: (l) => (/joined|strategy/.test(l) ? log(`${name}: ${l}`) : undefined),
      onEpoch: (rec) => {
        wall.push((performance.now() - start) / 1000);
        const auc = Object.values(rec.val_auc ?? {});
        log(`${name}: epoch ${rec.epoch}: ${rec.seconds} s, loss ${rec.loss.toFixed(4)}, mean AUC ${(auc.reduce((a, b) => a + b, 0) / auc.length).toFixed(4)}${rec.staleness_mean !== undefined ? `, staleness ${String(rec.staleness_mean)}/${String(rec.staleness_max)}` : ''}`);
      },
      ...(params ? { distributed: { workers: 2, strategy: params, transport: 'ipc' as const } } : {}),
    });
    let trainS = 0;
    let hit: { epoch: number; train_s: number; wall_s: number } | undefined;
    let best = { auc: -1, epoch: 0 };
    let bestTtbar = -1;
    const per = res.epochs.map((e, i) => {
      const auc = e.val_auc ?? {};
      const mean = Object.values(auc).reduce((a, b) => a + b, 0) / Object.values(auc).length;
      trainS += e.seconds;
      if (!hit && mean >= threshold) hit = { epoch: e.epoch, train_s: round(trainS, 2)!, wall_s: round(wall[i]!, 2)! };
      if (mean > best.auc) best = { auc: mean, epoch: e.epoch };
      bestTtbar = Math.max(bestTtbar, auc.ttbar ?? -1);
      return {
        epoch: e.epoch,
        seconds: e.seconds,
        wall_s: round(wall[i]!, 2),
        loss: round(e.loss, 4),
        val_loss: round(e.val_loss ?? NaN, 4),
        mean_auc: round(mean, 4),
        auc: Object.fromEntries(Object.entries(auc).map(([k, v]) => [k, round(v, 4)])),
        ...(e.steps !== undefined ? { steps: e.steps } : {}),
        ...(e.ps_updates !== undefined ? { ps_updates: e.ps_updates, staleness_mean: e.staleness_mean, staleness_max: e.staleness_max } : {}),
      };
    });
    const later = res.epochs.length > 1 ? res.epochs.slice(1) : res.epochs;
    const run = {
      run: name,
      workers: params ? 2 : 1,
      ...(params && name !== 'sync' ? { window: params.window } : {}),
      ...(params && (name === 'aeasgd' || name === 'eamsgd') ? { rho: params.rho, elastic_lr: params.elasticLr } : {}),
      ...(params && name === 'eamsgd' ? { momentum: params.momentum } : {}),
      reached: hit !== undefined,
      epochs_to_threshold: hit?.epoch ?? null,
      train_s_to_threshold: hit?.train_s ?? null,
      wall_s_to_threshold: hit?.wall_s ?? null,
      best_mean_auc: round(best.auc, 4),
      best_epoch: best.epoch,
      best_ttbar_auc: round(bestTtbar, 4),
      final_mean_auc: per[per.length - 1]!.mean_auc,
      // epochs 2..: train()'s epoch seconds (see the header on why single-process ones start later), and the
      // wall-clock time between epoch ends (validation and checkpoint included: the same work in every run)
      seconds_per_epoch: round(median(later.map((e) => e.seconds)), 2),
      wall_s_per_epoch: wall.length > 1 ? round(median(wall.slice(1).map((t, i) => t - wall[i]!)), 2) : round(wall[0]!, 2),
      samples_per_s: round(later.reduce((a, e) => a + e.rows, 0) / later.reduce((a, e) => a + e.seconds, 0), 1),
      total_wall_s: round((performance.now() - start) / 1000, 1),
      epochs: per,
    };
    runs.push(run);
  }
  return {
    model,
    data: { events, prepare: '--undersample --batch-size 256', train: join('prep', 'train.arrow'), test: join('prep', 'test.arrow'), seconds: round(dataSeconds, 1) },
    lr: 0.003,
    batch_per_worker: 128,
    epochs,
    metric: 'validation AUC: mean over the 3 classes of one-vs-rest AUCs (best_ttbar_auc: ttbar vs rest)',
    threshold,
    times:
      "train_s: sum of train()'s epoch seconds up to the epoch that reaches the threshold (no start-up, validation, checkpoints; a single-process epoch's clock starts after its first batch is read); wall_s: from the train() call to the end of that epoch's validation (worker start-up included)",
    runs,
  };
}

// =====================================================================================================
// Markdown (stderr)

function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined) => (v === null || v === undefined ? '–' : String(v));
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

// =====================================================================================================
// main

async function main(): Promise<void> {
  const quick = flag('--quick');
  const transport = (opt('--transport') ?? 'ipc') as 'ipc' | 'tcp';
  if (transport !== 'ipc' && transport !== 'tcp') throw new Error(`--transport ipc|tcp, got ${String(transport)}`);
  const dir = mkdtempSync(join(tmpdir(), 'hepml-bench-dist-'));
  const t0 = performance.now();
  const out: Record<string, unknown> = { bench: 'distributed', quick, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, loadavg_at_start: loadavg().map((x) => round(x, 2)) };
  const md: string[] = [];
  try {
    if (!flag('--no-training')) {
      const t = await trainingPart(quick, dir, transport);
      out.training = t;
      const r = (name: string, s: RunSummary) => [name, s.samples_per_s, s.step_ms as number | undefined, s.allreduce_ms_per_step as number | undefined, s.allreduce_share_of_step as number | undefined];
      md.push(
        `Inclusive model, batch 128 per worker, ${t.rows} rows of mean length ${t.mean_length}, engine ${t.engine}, ${t.steady_state}:\n\n` +
          table(['run', 'samples/s', 'step ms', 'all-reduce ms/step', 'all-reduce share'], [
            r('single process (baseline)', t.baseline_single_process),
            r('--workers 1 (sync)', t.workers_1),
            r('--workers 2 (sync)', t.workers_2),
            ['2 independent single processes at once (ceiling)', t.concurrent_single_processes.aggregate_samples_per_s, t.concurrent_single_processes.step_ms.join(', '), null, null],
          ]) +
          `\n\nparallel efficiency (2 workers vs 2 × 1 worker): ${t.parallel_efficiency} (target ≥ 0.85); vs 2 × single process: ${t.efficiency_vs_single_process}; ` +
          `machine ceiling (2 independent processes vs 2 × one): ${t.machine_scaling_2_processes}; 2 workers vs that ceiling: ${t.efficiency_vs_machine_ceiling}`,
      );
    }
    if (!flag('--no-allreduce')) {
      const a = await allreducePart(quick, dir);
      out.allreduce = a;
      md.push(
        'Ring all-reduce, 2 processes (median ms per all-reduce; bus bandwidth = 2(N−1)/N × bytes / time; raw = the same exchange with plain sockets):\n\n' +
          table(
            ['transport', 'buffer', 'ms', 'algbw GB/s', 'busbw GB/s', 'raw ms', 'raw busbw GB/s'],
            a.results.map((x) => [x.transport, x.buffer, x.median_ms, x.algbw_gbs, x.busbw_gbs, x.raw_median_ms, x.raw_busbw_gbs] as (string | number | null)[]),
          ),
      );
    }
    if (flag('--strategies')) {
      const s = await strategiesPart(quick, dir);
      out.strategies = s;
      const thr = s.threshold.toFixed(2);
      md.push(
        `Strategies, 2 workers, ${s.model} model, lr ${s.lr}, ${s.epochs} epochs, mean one-vs-rest validation AUC${quick ? ' (--quick smoke run: not for docs)' : ''}:\n\n` +
          table(
            ['run', 'τ', `epochs to AUC ≥ ${thr}`, `training s to ${thr}`, `wall s to ${thr}`, 'best mean AUC (epoch)', 'best ttbar AUC', 'training s/epoch', 'wall s/epoch', 'staleness mean/max (last epoch)'],
            s.runs.map((x) => {
              const last = (x.epochs as { staleness_mean?: number; staleness_max?: number }[]).at(-1)!;
              return [
                x.run === 'single process' ? 'single process (baseline)' : String(x.run),
                (x.window as number | undefined) ?? null,
                x.epochs_to_threshold as number | null,
                x.train_s_to_threshold as number | null,
                x.wall_s_to_threshold as number | null,
                `${String(x.best_mean_auc)} (${String(x.best_epoch)})`,
                x.best_ttbar_auc as number,
                x.seconds_per_epoch as number,
                x.wall_s_per_epoch as number,
                last.staleness_mean !== undefined ? `${last.staleness_mean}/${String(last.staleness_max)}` : null,
              ];
            }),
          ),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out.loadavg_at_end = loadavg().map((x) => round(x, 2));
  out.targets = { parallel_efficiency: 0.85 };
  out.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
  out.seconds = round((performance.now() - t0) / 1000, 1);
  process.stderr.write(`\n${md.join('\n\n')}\n\n`);
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

if (process.argv[2] === 'ring-peer' || process.argv[2] === 'solo') {
  (process.argv[2] === 'solo' ? solo() : ringPeer()).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${process.argv[2]}: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
} else {
  await main();
}
