/**
 * The coordinator of distributed training (the `hep-ml train --workers N` process). It spawns N local
 * workers (Unix sockets) or waits for N remote ones (`--coordinator HOST:PORT`, workers `--join`), sends
 * them the configuration, and runs epochs:
 *
 *  - sync: broadcasts the epoch-start state (weights, Adam state, dropout counters), the workers train in
 *    lockstep over the ring, and replica 0 returns the epoch-end state (all replicas' checksums must agree).
 *    A lost worker aborts the epoch; the survivors re-shard the data and restart it from the epoch-start state.
 *  - parameter-server strategies: serves pulls and applies commits to the center variable; a lost worker is
 *    dropped and the others go on (the next epoch re-shards among the survivors).
 *
 * Between epochs the trainer (trainer.ts) validates, checkpoints and logs the model this leaves in place.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tfTypes from '@tensorflow/tfjs';
import { DistributedError, ExitCode, UsageError, type ExitCodeValue } from '../../errors.js';
import { hepMlVersion } from '../../version.js';
import type { SeededDropout } from '../layers.js';
import { optimizerState, restoreOptimizer } from '../model-io.js';
import { f32, type Frame } from './frame.js';
import { PROTOCOL_VERSION, type ConfigMsg, type DoneMsg, type EpochMsg, type HelloMsg, type ProgressMsg } from './protocol.js';
import { checksum, flatWeights, setFlatWeights } from './replica.js';
import { ParameterServer, type StrategyParams } from './strategies.js';
import { formatAddress, listen, parseAddress, type Conn, type Listener } from './transport.js';

export interface DistributedOptions {
  workers: number;
  strategy: StrategyParams;
  /** Multiply the learning rate by the number of workers (`linear`, as SparkDLTrigger's Kubernetes runs did). */
  lrScaling?: 'none' | 'linear';
  /** Listen here (TCP) and wait for remote workers instead of spawning local ones. */
  coordinator?: string;
  /** Local workers: 'ipc' (Unix sockets, default) or 'tcp' (loopback). */
  transport?: 'ipc' | 'tcp';
  /** A worker silent for this long is considered lost (ms; default 30 s). Dead processes are noticed at once. */
  heartbeatTimeoutMs?: number;
  /** How long to wait for all workers to join (ms; default 2 min local, 10 min remote). */
  joinTimeoutMs?: number;
  /** Called with worker lifecycle events (joined, lost, restart), for logs and --progress json. */
  onEvent?: (e: WorkerEvent) => void;
}

export type WorkerEvent =
  | { event: 'worker'; state: 'joined'; rank: number; pid: number; host: string }
  | { event: 'worker'; state: 'lost'; rank: number; pid: number; host: string; reason: string; epoch: number }
  | { event: 'epoch-restart'; epoch: number; workers: number };

export interface EpochHooks {
  signal?: AbortSignal;
  /** The epoch's rows, loss and accuracy sums so far (all workers). */
  progress?: (rows: number, lossSum: number, accSum: number) => void;
}

export interface EpochOutcome {
  rows: number;
  lossSum: number;
  accSum: number;
  extra: Record<string, number | string>;
}

interface Slot {
  rank: number;
  conn: Conn;
  pid: number;
  host: string;
  ring: string;
  child?: ChildProcess;
  alive: boolean;
  lastSeen: number;
  done?: { msg: DoneMsg; parts: Uint8Array[] };
  ringfail?: number;
  progress?: ProgressMsg;
}

const HEARTBEAT_MS = 1000;

function workerMainPath(): string {
  const here = fileURLToPath(import.meta.url);
  return join(here, '..', `worker-main${here.endsWith('.ts') ? '.ts' : '.js'}`);
}

export class Coordinator {
  private slots = new Map<number, Slot>();
  /** Local worker processes by rank, from spawn on (a slot takes its child when the worker joins). */
  private pendingChildren = new Map<number, ChildProcess>();
  private listener?: Listener;
  private dir?: string;
  private kicks: (() => void)[] = [];
  private fatal?: Error;
  private gen = 0;
  private timer?: NodeJS.Timeout;
  private ps?: ParameterServer;
  private epochNow = 0;
  /** The generation whose sync epoch completed last (its replicas hold the state the next epoch starts from). */
  private lastSyncGen = -1;
  readonly lr: number;

  private constructor(
    readonly o: DistributedOptions,
    readonly log: (line: string) => void,
    lr: number,
  ) {
    this.lr = lr;
  }

  /** Starts the workers (or waits for them), and sends them the configuration. */
  static async start(o: DistributedOptions, cfg: Omit<ConfigMsg, 't' | 'rank' | 'workers' | 'strategy' | 'heartbeatMs'>, log: (l: string) => void, signal?: AbortSignal): Promise<Coordinator> {
    if (!(Number.isInteger(o.workers) && o.workers >= 1)) throw new UsageError(`--workers must be a positive integer, got ${o.workers}`);
    if (cfg.data.includes('-')) throw new UsageError('distributed training reads its data from files: standard input cannot be shared between workers');
    const lr = o.lrScaling === 'linear' ? cfg.lr * o.workers : cfg.lr;
    const c = new Coordinator(o, log, lr);
    try {
      await c.open(signal);
      for (const s of c.slots.values()) {
        const msg: ConfigMsg = { ...cfg, t: 'config', rank: s.rank, workers: o.workers, lr, strategy: o.strategy, heartbeatMs: HEARTBEAT_MS };
        s.conn.post(msg);
      }
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get liveWorkers(): number {
    return [...this.slots.values()].filter((s) => s.alive).length;
  }

  private kick(): void {
    for (const k of this.kicks.slice()) k();
  }

  /** Resolves when `check` returns a value (re-checked on every worker event); rejects on abort/fatal/timeout. */
  private waitFor<T>(check: () => T | undefined, signal?: AbortSignal, timeoutMs?: number, what = 'workers'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        this.kicks = this.kicks.filter((k) => k !== run);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', run);
      };
      const run = () => {
        if (this.fatal) {
          done();
          reject(this.fatal);
          return;
        }
        if (signal?.aborted) {
          done();
          reject(signal.reason ?? new Error('aborted'));
          return;
        }
        let v: T | undefined;
        try {
          v = check();
        } catch (e) {
          done();
          reject(e);
          return;
        }
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      this.kicks.push(run);
      signal?.addEventListener('abort', run);
      if (timeoutMs) {
        timer = setTimeout(() => {
          done();
          reject(new DistributedError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`));
        }, timeoutMs);
      }
      run();
    });
  }

  private async open(signal?: AbortSignal): Promise<void> {
    const N = this.o.workers;
    const remote = this.o.coordinator !== undefined;
    let addr;
    if (remote) {
      try {
        addr = parseAddress(this.o.coordinator!);
      } catch (e) {
        throw new UsageError(`--coordinator: ${(e as Error).message}`);
      }
      if (addr.kind !== 'tcp') throw new UsageError('--coordinator takes a TCP address (HOST:PORT); local workers use Unix sockets by themselves');
    } else if (this.o.transport === 'tcp') {
      addr = parseAddress('127.0.0.1:0');
    } else {
      this.dir = await mkdtemp(join(tmpdir(), 'hepml-'));
      addr = parseAddress(`unix:${join(this.dir, 'c.sock')}`);
    }
    try {
      this.listener = await listen(addr, (conn) => this.accept(conn));
    } catch (e) {
      throw new DistributedError(`cannot listen on ${formatAddress(addr)}: ${(e as Error).message}`, ExitCode.IO);
    }
    const where = formatAddress(this.listener.address);
    this.timer = setInterval(() => this.checkHeartbeats(), HEARTBEAT_MS);
    this.timer.unref();
    if (remote) {
      this.log(`coordinator listening on ${where}; waiting for ${N} worker(s) (hep-ml train --join HOST:${this.listener.address.kind === 'tcp' ? this.listener.address.port : ''})`);
    } else {
      const main = workerMainPath();
      for (let k = 0; k < N; k++) {
        const child = spawn(process.execPath, [...process.execArgv, main, '--join', where, '--rank', String(k)], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: process.env,
        });
        this.watchChild(child, k);
      }
    }
    await this.waitFor(() => (this.slots.size === N ? true : undefined), signal, this.o.joinTimeoutMs ?? (remote ? 600_000 : 120_000), `${N} worker(s) to join (${this.slots.size} did)`);
    const hosts = new Set([...this.slots.values()].map((s) => s.host));
    this.log(`${N} worker(s) joined (${[...this.slots.values()].sort((a, b) => a.rank - b.rank).map((s) => `rank ${s.rank}: pid ${s.pid}${hosts.size > 1 || remote ? ` on ${s.host}, ring ${s.ring}` : ''}`).join(', ')})`);
  }

  private watchChild(child: ChildProcess, rank: number): void {
    this.pendingChildren.set(rank, child);
    let buf = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this.log(`worker ${rank}: ${line}`);
      }
    });
    child.on('exit', (code, sig) => {
      const s = this.slots.get(rank);
      if (s?.child === child) this.lose(s, sig ? `killed by ${sig}` : `exited with code ${code}`);
      else if (!s) {
        // died before joining
        this.fatal ??= new DistributedError(`worker ${rank} exited before joining (${sig ? `signal ${sig}` : `code ${code}`})${buf ? `: ${buf.trim()}` : ''}`, ExitCode.INTERNAL);
        this.kick();
      }
    });
  }

  private accept(conn: Conn): void {
    conn
      .expect('hello')
      .then((f) => {
        const h = f.head as unknown as HelloMsg;
        if (h.protocol !== PROTOCOL_VERSION) {
          conn.post({ t: 'stop', reason: `protocol ${String(h.protocol)} != ${PROTOCOL_VERSION}` });
          this.log(`refused a worker from ${conn.peer}: protocol ${String(h.protocol)} (hep-ml ${h.version}); this is hep-ml ${hepMlVersion()}`);
          conn.close();
          return;
        }
        const N = this.o.workers;
        let rank = h.rank;
        const started = this.slots.size === N;
        if (started || (rank !== null && (rank < 0 || rank >= N || this.slots.has(rank)))) {
          this.log(`refused a worker from ${h.host} (pid ${h.pid}${rank !== null ? `, rank ${rank}` : ''}): ${started ? 'training has started with its workers' : `rank ${rank} is ${rank! < 0 || rank! >= N ? 'out of range' : 'taken'}`}`);
          conn.post({ t: 'stop', reason: 'refused' });
          conn.close();
          return;
        }
        if (rank === null) {
          rank = 0;
          while (this.slots.has(rank)) rank++;
        }
        let ring = h.ring;
        if (ring.startsWith(':')) {
          const host = (conn.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
          ring = `${host.includes(':') ? `[${host}]` : host}${ring}`;
        }
        const slot: Slot = { rank, conn, pid: h.pid, host: h.host, ring, alive: true, lastSeen: Date.now(), child: this.pendingChildren.get(rank) };
        this.slots.set(rank, slot);
        conn.onFrame((fr) => this.onFrame(slot, fr));
        conn.onClose((e) => this.lose(slot, e.message));
        this.o.onEvent?.({ event: 'worker', state: 'joined', rank, pid: h.pid, host: h.host });
        this.kick();
      })
      .catch(() => conn.destroy());
  }

  private onFrame(s: Slot, f: Frame): void {
    s.lastSeen = Date.now();
    const h = f.head;
    switch (h.t) {
      case 'hb':
        return;
      case 'progress':
        s.progress = h as unknown as ProgressMsg;
        this.kick();
        return;
      case 'done':
        s.done = { msg: h as unknown as DoneMsg, parts: f.parts };
        this.kick();
        return;
      case 'ringfail':
        s.ringfail = Number(h.gen);
        this.kick();
        return;
      case 'pull': {
        const ps = this.ps;
        if (!ps) return;
        s.conn.post({ t: 'center', updates: ps.updates }, [Float32Array.from(ps.center)]);
        return;
      }
      case 'commit':
        this.ps?.commit(f32(f.parts[0]), Number(h.lastUpdate));
        return;
      case 'error': {
        const code = (typeof h.exitCode === 'number' ? h.exitCode : ExitCode.INTERNAL) as ExitCodeValue;
        this.fatal ??= new DistributedError(`worker ${s.rank}${s.host ? ` (${s.host})` : ''}: ${String(h.message)}`, code);
        this.kick();
        return;
      }
      default:
        this.log(`worker ${s.rank}: unexpected message '${h.t}'`);
    }
  }

  private lose(s: Slot, reason: string): void {
    if (!s.alive) return;
    s.alive = false;
    s.conn.destroy();
    if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    if (!this.closing) {
      this.log(`worker ${s.rank} (pid ${s.pid}${s.host ? ` on ${s.host}` : ''}) lost during epoch ${this.epochNow}: ${reason}`);
      this.o.onEvent?.({ event: 'worker', state: 'lost', rank: s.rank, pid: s.pid, host: s.host, reason, epoch: this.epochNow });
    }
    this.kick();
  }

  private checkHeartbeats(): void {
    const limit = this.o.heartbeatTimeoutMs ?? 30_000;
    const now = Date.now();
    for (const s of this.slots.values()) {
      if (s.alive && now - s.lastSeen > limit) this.lose(s, `no message for ${Math.round((now - s.lastSeen) / 1000)} s`);
    }
  }

  private live(): Slot[] {
    const l = [...this.slots.values()].filter((s) => s.alive).sort((a, b) => a.rank - b.rank);
    if (l.length === 0) throw new DistributedError(`no worker left (all ${this.slots.size} lost)`);
    return l;
  }

  /** Runs one epoch; leaves the resulting weights (and Adam state, sync) in `model` / `optimizer`. */
  async runEpoch(
    epoch: number,
    model: tfTypes.LayersModel,
    optimizer: tfTypes.AdamOptimizer,
    drops: SeededDropout[],
    o: EpochHooks,
  ): Promise<EpochOutcome> {
    this.epochNow = epoch;
    return this.o.strategy.strategy === 'sync' ? this.syncEpoch(epoch, model, optimizer, drops, o) : this.asyncEpoch(epoch, model, drops, o);
  }

  private async syncEpoch(
    epoch: number,
    model: tfTypes.LayersModel,
    optimizer: tfTypes.AdamOptimizer,
    drops: SeededDropout[],
    o: EpochHooks,
  ): Promise<EpochOutcome> {
    const weights = flatWeights(model);
    const opt = await optimizerState(optimizer);
    const calls = drops.map((d) => d.calls);
    let restarts = 0;
    const t0 = performance.now();
    const sum = checksum(weights);
    for (;;) {
      const continues = restarts === 0 && this.lastSyncGen === this.gen ? this.gen : undefined;
      const gen = ++this.gen;
      const members = this.live();
      const ring = members.map((s) => s.ring);
      members.forEach((s, index) => {
        s.done = undefined;
        s.ringfail = undefined;
        s.progress = undefined;
        const msg: EpochMsg = { t: 'epoch', epoch, gen, index, count: members.length, ring, opt: opt.json, dropoutCalls: calls, checksum: sum, continues };
        s.conn.post(msg, [weights, opt.bin]);
      });
      const result = await this.waitFor(() => {
        const lead = members[0]!;
        if (lead.progress?.gen === gen) o.progress?.(lead.progress.rows, lead.progress.lossSum, lead.progress.accSum);
        if (members.every((s) => s.done?.msg.gen === gen)) return 'done' as const;
        if (members.some((s) => !s.alive || s.ringfail === gen)) return 'failed' as const;
        return undefined;
      }, o.signal);
      if (result === 'done') {
        const lead = members[0]!.done!;
        const sums = new Set(members.map((s) => s.done!.msg.checksum));
        if (sums.size !== 1) throw new DistributedError(`the replicas' weights differ after epoch ${epoch} (checksums ${[...sums].join(', ')}): a bug, please report it`, ExitCode.INTERNAL);
        const w = f32(lead.parts[0]);
        if (checksum(w) !== lead.msg.checksum) throw new DistributedError(`replica 0's weights arrived damaged after epoch ${epoch}`, ExitCode.INTERNAL);
        setFlatWeights(model, w);
        await restoreOptimizer(optimizer, lead.msg.opt!, lead.parts[1]!, `worker ${members[0]!.rank}`);
        drops.forEach((d, i) => (d.calls = lead.msg.dropoutCalls[i] ?? d.calls));
        this.lastSyncGen = gen;
        const m = lead.msg;
        const calls = Math.max(1, m.allreduceCalls ?? m.steps);
        const secs = (performance.now() - t0) / 1000;
        return {
          rows: m.rows,
          lossSum: m.lossSum,
          accSum: m.accSum,
          extra: {
            strategy: 'sync',
            workers: members.length,
            steps: m.steps,
            restarts,
            // per all-reduce, as replica 0 saw it: the transfer plus any wait for a slower replica
            allreduce_ms_per_step: +((m.allreduceMs ?? 0) / calls).toFixed(3),
            allreduce_bytes_per_step: Math.round((m.allreduceBytes ?? 0) / calls),
            // the replica that waits least (the slowest one) sees about the transfer alone
            allreduce_ms_min_replica: +Math.min(...members.map((s) => (s.done!.msg.allreduceMs ?? 0) / Math.max(1, s.done!.msg.allreduceCalls ?? 1))).toFixed(3),
            epoch_seconds_with_restarts: +secs.toFixed(3),
          },
        };
      }
      // a worker was lost (or a ring broke): stop the others, then start over with the survivors
      const survivors = members.filter((s) => s.alive);
      for (const s of survivors) s.conn.post({ t: 'abort', gen });
      await this.waitFor(
        () => (survivors.every((s) => !s.alive || s.ringfail === gen || s.done?.msg.gen === gen) ? true : undefined),
        o.signal,
        30_000,
        'the surviving workers to stop the interrupted epoch',
      ).catch((e: unknown) => {
        if (!(e instanceof DistributedError) || this.fatal) throw e;
        for (const s of survivors) {
          if (s.alive && s.ringfail !== gen && s.done?.msg.gen !== gen) this.lose(s, 'did not stop the interrupted epoch');
        }
      });
      restarts++;
      const n = this.live().length;
      this.log(`restarting epoch ${epoch} with ${n} worker(s) (data re-sharded ${n} ways)`);
      this.o.onEvent?.({ event: 'epoch-restart', epoch, workers: n });
    }
  }

  private async asyncEpoch(
    epoch: number,
    model: tfTypes.LayersModel,
    drops: SeededDropout[],
    o: EpochHooks,
  ): Promise<EpochOutcome> {
    const strategy = this.o.strategy.strategy as Exclude<StrategyParams['strategy'], 'sync'>;
    if (!this.ps) this.ps = new ParameterServer(strategy, flatWeights(model));
    const ps = this.ps;
    const gen = ++this.gen;
    const members = this.live();
    const calls = drops.map((d) => d.calls);
    const updates0 = ps.updates;
    const center = Float32Array.from(ps.center);
    members.forEach((s, index) => {
      s.done = undefined;
      s.progress = undefined;
      const msg: EpochMsg = { t: 'epoch', epoch, gen, index, count: members.length, updates: ps.updates, dropoutCalls: calls };
      s.conn.post(msg, [center]);
    });
    await this.waitFor(() => {
      let rows = 0;
      let loss = 0;
      let acc = 0;
      for (const s of members) {
        const p = s.done?.msg.gen === gen ? s.done.msg : s.progress?.gen === gen ? s.progress : undefined;
        if (p) {
          rows += p.rows;
          loss += p.lossSum;
          acc += p.accSum;
        }
      }
      o.progress?.(rows, loss, acc);
      const pending = members.filter((s) => s.alive && s.done?.msg.gen !== gen);
      if (pending.length > 0) return undefined;
      if (!members.some((s) => s.done?.msg.gen === gen)) throw new DistributedError(`every worker was lost during epoch ${epoch}`);
      return true;
    }, o.signal);
    const finished = members.filter((s) => s.done?.msg.gen === gen).map((s) => s.done!.msg);
    const lost = members.filter((s) => s.done?.msg.gen !== gen).length;
    setFlatWeights(model, ps.center);
    drops.forEach((d, i) => (d.calls = Math.max(...finished.map((m) => m.dropoutCalls[i] ?? 0))));
    const stats = ps.takeStats();
    return {
      rows: finished.reduce((a, m) => a + m.rows, 0),
      lossSum: finished.reduce((a, m) => a + m.lossSum, 0),
      accSum: finished.reduce((a, m) => a + m.accSum, 0),
      extra: {
        strategy,
        workers: members.length,
        workers_lost: lost,
        steps: finished.reduce((a, m) => a + m.steps, 0),
        ps_updates: ps.updates - updates0,
        staleness_mean: +stats.staleness_mean.toFixed(3),
        staleness_max: stats.staleness_max,
      },
    };
  }

  /** The parameter server's update counter (saved with checkpoints). */
  get psUpdates(): number {
    return this.ps?.updates ?? 0;
  }

  private closing = false;

  /** Stops the workers (stop message, then SIGKILL after 10 s for local ones) and the listener. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    const children = [...new Set([...this.pendingChildren.values(), ...[...this.slots.values()].map((s) => s.child).filter((c): c is ChildProcess => !!c)])];
    for (const s of this.slots.values()) {
      if (s.alive) {
        s.conn.post({ t: 'stop' });
        s.conn.close();
      }
    }
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    await this.listener?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
