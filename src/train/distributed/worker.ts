/**
 * A distributed-training worker: connects to the coordinator (`hep-ml train --join ADDR`, or spawned by a
 * local coordinator), receives the training configuration, and runs the epochs it is told to run on its shard
 * of the data — synchronous steps over the ring (strategy sync) or local steps with the parameter-server
 * exchanges of an asynchronous strategy. Exits when the coordinator says stop or goes away.
 */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import { DistributedError, ExitCode, HepMlError } from '../../errors.js';
import { Rng } from '../../prepare/rng.js';
import { hepMlVersion } from '../../version.js';
import { streamBatches, type Batch } from '../data.js';
import { loadEngine, type Engine, type EngineName } from '../engine.js';
import { prepareGru } from '../layers.js';
import { buildModel, compileModel, dropoutLayers, modelInputs } from '../models.js';
import { optimizerState, restoreOptimizer } from '../model-io.js';
import { toTensors } from '../trainer.js';
import { Ring, RingError } from './allreduce.js';
import { f32, type Frame } from './frame.js';
import { PROTOCOL_VERSION, type ConfigMsg, type DoneMsg, type EpochMsg, type HelloMsg } from './protocol.js';
import { checksum, flatWeights, GradientCapture, setFlatWeights } from './replica.js';
import { AsyncWorkerRule } from './strategies.js';
import { connect, ConnClosedError, formatAddress, listen, parseAddress, type Address, type Conn } from './transport.js';

export interface WorkerOptions {
  /** The coordinator's address (unix:/path or HOST:PORT). */
  join: string;
  /** This worker's rank (shard and ring position); the coordinator assigns one when absent. */
  rank?: number;
  /** Where ring peers connect (TCP): HOST:PORT to listen on; default 0.0.0.0 on a free port. */
  ringListen?: string;
  /** How long to keep trying to reach the coordinator (default: 10 min over TCP, 2 min locally). */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

class EpochAborted extends Error {}

/** Runs a worker until the coordinator stops it. Rejects when the coordinator is lost or training fails. */
export async function runWorker(o: WorkerOptions): Promise<void> {
  const log = o.log ?? (() => undefined);
  const addr = parseAddress(o.join);
  // a remote coordinator may start later than its workers (Kubernetes starts pods in any order)
  const conn = await connect(addr, { timeoutMs: o.connectTimeoutMs ?? (addr.kind === 'tcp' ? 600_000 : 120_000) });

  // ---- the ring listener: predecessors connect here and introduce themselves with {t:'ring', gen}
  const prevs = new Map<number, { conn?: Conn; wait?: (c: Conn) => void }>();
  const ringConns = new Set<Conn>();
  const ringAddr: Address =
    addr.kind === 'unix'
      ? { kind: 'unix', path: join(dirname(addr.path), `w-${process.pid}.sock`) }
      : parseAddress(o.ringListen ?? (/^(127\.|::1$|localhost$)/.test(addr.host) ? `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:0` : '0.0.0.0:0')); // a loopback coordinator: a loopback ring
  const ringListener = await listen(ringAddr, (c) => {
    c.expect('ring')
      .then((f) => {
        const gen = Number(f.head.gen);
        ringConns.add(c);
        const slot = prevs.get(gen) ?? {};
        if (slot.wait) slot.wait(c);
        else slot.conn = c;
        prevs.set(gen, slot);
      })
      .catch(() => c.destroy());
  });
  const prevFor = (gen: number): Promise<Conn> => {
    const slot = prevs.get(gen);
    if (slot?.conn) return Promise.resolve(slot.conn);
    return new Promise((resolve) => prevs.set(gen, { wait: resolve }));
  };

  // ---- control frames: answers to pulls and aborts are handled on arrival, the rest wait for recv()
  let pullWait: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  let abortedGen = -1;
  conn.intercept((f) => {
    if (f.head.t === 'center') {
      const w = pullWait;
      pullWait = undefined;
      w?.resolve(f);
      return true;
    }
    if (f.head.t === 'abort') {
      abortedGen = Number(f.head.gen);
      for (const c of ringConns) c.destroy();
      ringConns.clear();
      return true;
    }
    return false;
  });
  conn.onClose((e) => {
    pullWait?.reject(e);
    for (const c of ringConns) c.destroy();
  });

  const hello: HelloMsg = {
    t: 'hello',
    protocol: PROTOCOL_VERSION,
    version: hepMlVersion(),
    rank: o.rank ?? null,
    pid: process.pid,
    host: hostname(),
    ring: ringListener.address.kind === 'unix' ? formatAddress(ringListener.address) : `:${ringListener.address.port}`,
  };
  await conn.send(hello);
  let hb: NodeJS.Timeout | undefined;
  try {
    const cf = await conn.recv();
    if (cf.head.t === 'stop') throw new DistributedError(`the coordinator at ${o.join} refused this worker (${String(cf.head.reason ?? 'stopped')})`, ExitCode.USAGE);
    if (cf.head.t !== 'config') throw new Error(`protocol: expected 'config', got '${cf.head.t}'`);
    const cfg = cf.head as unknown as ConfigMsg;
    hb = setInterval(() => conn.post({ t: 'hb' }), cfg.heartbeatMs);
    hb.unref();
    try {
      await work(cfg);
    } catch (e) {
      if (!(e instanceof ConnClosedError) || !conn.closed) {
        const he = e as Error;
        await conn.send({ t: 'error', message: he instanceof HepMlError ? he.describe() : he.message, name: he.name, exitCode: e instanceof HepMlError ? e.exitCode : 1 }).catch(() => undefined);
      }
      throw e;
    }
  } finally {
    if (hb) clearInterval(hb);
    for (const c of ringConns) c.destroy();
    await ringListener.close();
    conn.close();
  }

  async function work(cfg: ConfigMsg): Promise<void> {
    const eng = await loadEngine(cfg.engine as EngineName);
    const tf = eng.tf;
    if (cfg.model !== 'dnn') await prepareGru(cfg.gruKernel);
    const inputs = modelInputs(cfg.model);
    const spec = { inputs, classes: cfg.classes };
    const model = await buildModel(cfg.model, { units: cfg.units, classes: cfg.classes, dropout: cfg.dropout, seed: cfg.seed });
    const drops = dropoutLayers(model);
    const sync = cfg.strategy.strategy === 'sync';
    // sync: trainOnBatch computes gradients into `capture`; `adam` applies the all-reduced mean.
    // async: the model's own Adam takes local steps.
    const capture = new GradientCapture();
    let adam: tfTypes.AdamOptimizer;
    if (sync) {
      model.compile({ optimizer: capture, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      capture.prime(model);
      adam = tf.train.adam(cfg.lr, 0.9, 0.999, 1e-7);
    } else adam = compileModel(model, cfg.lr);
    const B = cfg.batchSize;

    const pull = async (): Promise<{ center: Float32Array; updates: number }> => {
      const answer = new Promise<Frame>((resolve, reject) => (pullWait = { resolve, reject }));
      await conn.send({ t: 'pull' });
      const f = await answer;
      return { center: f32(f.parts[0]), updates: Number(f.head.updates) };
    };
    const rule = sync
      ? undefined
      : new AsyncWorkerRule(cfg.strategy, { get: () => flatWeights(model), set: (w) => setFlatWeights(model, w) }, {
          pull,
          commit: (payload, lastUpdate) => conn.send({ t: 'commit', lastUpdate }, [payload]),
        });

    const trainOn = async (b: Batch): Promise<[number, number]> => {
      const { xs, ys } = toTensors(tf, b, inputs, cfg.classes);
      try {
        const r = await model.trainOnBatch(xs.length === 1 ? xs[0]! : xs, ys);
        const [loss, acc] = Array.isArray(r) ? r : [r, NaN];
        return [loss!, acc!];
      } finally {
        tf.dispose([...xs, ys]);
      }
    };

    let lastGen = -1;
    let lastChecksum = '';
    for (;;) {
      const f = await conn.recv();
      if (f.head.t === 'stop') return;
      if (f.head.t !== 'epoch') throw new Error(`protocol: unexpected '${f.head.t}'`);
      const h = f.head as unknown as EpochMsg;
      const stream = streamBatches(cfg.data, spec, {
        batchSize: B,
        shuffleRows: cfg.shuffleRows,
        rng: new Rng(cfg.seed, h.count === 1 ? `shuffle/${h.epoch}` : `shuffle/${h.epoch}/${h.index}of${h.count}`),
        shard: { index: h.index, count: h.count },
      });
      let rows = 0;
      let lossSum = 0;
      let accSum = 0;
      let steps = 0;
      let lastProgress = performance.now();
      const progress = (force = false) => {
        const now = performance.now();
        if (!force && now - lastProgress < 500) return;
        lastProgress = now;
        conn.post({ t: 'progress', epoch: h.epoch, gen: h.gen, rows, lossSum, accSum });
      };
      const doneOf = (w: Float32Array): DoneMsg => ({
        t: 'done',
        epoch: h.epoch,
        gen: h.gen,
        rows,
        lossSum,
        accSum,
        steps,
        checksum: checksum(w),
        dropoutCalls: drops.map((d) => d.calls),
      });
      try {
        if (sync) {
          // ---- synchronous: the epoch-start state, the ring, then lockstep steps
          const keep = h.continues !== undefined && h.continues === lastGen && h.checksum === lastChecksum;
          if (!keep) {
            setFlatWeights(model, f32(f.parts[0]));
            adam.dispose();
            adam = tf.train.adam(cfg.lr, 0.9, 0.999, 1e-7);
            if (h.opt) await restoreOptimizer(adam, h.opt, f.parts[1]!, 'the coordinator');
          }
          lastGen = -1;
          drops.forEach((d, i) => {
            d.calls = h.dropoutCalls[i] ?? 0;
            d.shard = { offset: h.index * B, total: h.count * B };
          });
          let ring: Ring;
          if (h.count > 1) {
            const next = await connect(parseAddress(h.ring![(h.index + 1) % h.count]!), { timeoutMs: 30_000 });
            ringConns.add(next);
            await next.send({ t: 'ring', gen: h.gen, from: h.index });
            const prev = await Promise.race([
              prevFor(h.gen),
              new Promise<never>((_, reject) => setTimeout(() => reject(new RingError('no ring predecessor within 30 s')), 30_000).unref()),
            ]);
            ring = new Ring(h.index, h.count, next, prev);
          } else ring = new Ring(0, 1, undefined, undefined);
          const P = capture.size;
          // the next batch is read while the ring waits for the other replicas
          let ahead: Promise<IteratorResult<Batch>> | undefined = stream.next();
          for (;;) {
            if (abortedGen >= h.gen) throw new EpochAborted();
            const r: IteratorResult<Batch> = ahead ? await ahead : { done: true, value: undefined };
            ahead = r.done ? undefined : stream.next();
            ahead?.catch(() => undefined); // awaited next step (an error surfaces there)
            const buf = capture.flat;
            if (!r.done) {
              const n = r.value.rows;
              const [loss, acc] = await trainOn(r.value);
              if (h.count > 1) for (let i = 0; i < P; i++) buf[i] = buf[i]! * n;
              buf[P] = n;
              buf[P + 1] = loss * n;
              buf[P + 2] = acc * n;
            } else buf.fill(0);
            await ring.allReduce(buf.subarray(0, P + 3), steps);
            const N = buf[P]!;
            if (N === 0) break;
            if (r.done) for (const d of drops) d.calls++; // the other replicas' forward pass drew a mask this step
            if (h.count > 1) for (let i = 0; i < P; i++) buf[i] = buf[i]! / N;
            const grads = capture.tensors(buf.subarray(0, P));
            adam.applyGradients(grads);
            tf.dispose(grads.map((g) => g.tensor));
            steps++;
            rows += N;
            lossSum += buf[P + 1]!;
            accSum += buf[P + 2]!;
            if (!Number.isFinite(buf[P + 1]!)) throw new HepMlError(`the loss became ${buf[P + 1]! / N} at epoch ${h.epoch}, step ${steps} (check the inputs for NaN/Inf; try a lower --lr)`);
            if (h.index === 0) progress();
          }
          const w = flatWeights(model);
          lastChecksum = checksum(w);
          lastGen = h.gen;
          const done: DoneMsg = {
            ...doneOf(w),
            allreduceMs: ring.ms,
            allreduceBytes: ring.bytes,
            allreduceCalls: ring.calls,
          };
          if (h.index === 0) {
            const st = await optimizerState(adam);
            done.opt = st.json;
            await conn.send(done, [w, st.bin]);
          } else await conn.send(done);
          for (const c of [ring.next, ring.prev]) {
            if (c) {
              ringConns.delete(c);
              c.destroy();
            }
          }
          prevs.delete(h.gen);
        } else {
          // ---- asynchronous: local steps, exchanges by the strategy's rule
          rule!.begin(f32(f.parts[0]), h.updates ?? 0);
          for (const d of drops) d.shard = { offset: h.index * B, total: h.count * B }; // distinct masks per worker
          drops.forEach((d, i) => (d.calls = Math.max(d.calls, h.dropoutCalls[i] ?? 0)));
          const commits0 = rule!.commits;
          const pulls0 = rule!.pulls;
          for await (const b of stream) {
            const [loss, acc] = await rule!.step(() => trainOn(b));
            if (!Number.isFinite(loss)) throw new HepMlError(`the loss became ${loss} at epoch ${h.epoch} (check the inputs for NaN/Inf; try a lower --lr)`);
            steps++;
            rows += b.rows;
            lossSum += loss * b.rows;
            accSum += acc * b.rows;
            progress();
          }
          await rule!.end();
          const done: DoneMsg = {
            ...doneOf(flatWeights(model)),
            commits: rule!.commits - commits0,
            pulls: rule!.pulls - pulls0,
          };
          await conn.send(done);
        }
      } catch (e) {
        await stream.return(undefined).catch(() => undefined);
        // a broken ring (a peer died) or the coordinator's abort: report, wait for the next epoch message
        if (sync && !conn.closed && (e instanceof EpochAborted || e instanceof ConnClosedError || e instanceof RingError)) {
          for (const c of ringConns) c.destroy();
          ringConns.clear();
          prevs.clear();
          log(`epoch ${h.epoch} (generation ${h.gen}) interrupted: ${(e as Error).message}`);
          conn.post({ t: 'ringfail', epoch: h.epoch, gen: h.gen, message: (e as Error).message });
          continue;
        }
        throw e;
      }
    }
  }
}
