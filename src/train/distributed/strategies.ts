/**
 * Update rules of the distributed strategies (docs/training.md). `sync` is synchronous data parallelism
 * (ring all-reduce of gradients, allreduce.ts); the others are the dist-keras parameter-server family
 * (cerndb/dist-keras workers.py / parameter_servers.py), in its notation:
 *
 *   W local weights, W₀ weights at the last pull, C the center variable (the parameter server's model),
 *   τ the communication window, t the worker's iteration counter (from 1), η the elastic learning rate,
 *   ρ the elastic force, α = ηρ, μ the momentum.
 *
 *   downpour  before the step, if t mod τ = 0: commit Δ = W − W₀; pull; W ← C, W₀ ← C.   PS: C ← C + Δ
 *   adag      after the step, if t mod τ = 0: commit (W − W₀)/τ; pull; W ← C, W₀ ← C.  PS: C ← C + r
 *   dynsgd    after the step, if t mod τ = 0: commit W − W₀ with the PS update counter seen at the last
 *             pull; pull; W ← C, W₀ ← C.    PS: s = (u − u_pull) + 1; C ← C + Δ/s; u ← u + 1
 *   aeasgd    before the step, if t mod τ = 0: pull C; E = α(W − C); W ← W − E; commit E.   PS: C ← C + E
 *   eamsgd    the elastic exchange of aeasgd, then every step: r_t = μr; train at W + r_t;
 *             Δ = W_after − (W + r_t); r ← r_t − ηΔ; W ← W_before − r.
 *
 * Local steps are the worker's own Adam (the model's optimizer) on its shard. Every commit's staleness (PS
 * updates since that worker's pull) is counted, whatever the strategy. hep-ml adds two things dist-keras
 * leaves open: every epoch starts with W = W₀ = C on every worker (the epoch boundary is a barrier, where the
 * coordinator validates and checkpoints C; the elastic strategies keep W after their first epoch), and at the end of its shard a worker commits what it has not
 * committed yet by its strategy's rule (downpour, adag, dynsgd), so no local steps are lost.
 */

export const STRATEGIES = ['sync', 'downpour', 'adag', 'dynsgd', 'aeasgd', 'eamsgd'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** dist-keras trainer defaults for τ (sync: unused). */
export const DEFAULT_WINDOW: Record<Strategy, number> = { sync: 1, downpour: 5, adag: 12, dynsgd: 5, aeasgd: 32, eamsgd: 32 };
/** dist-keras trainer defaults for the elastic strategies. */
export const DEFAULT_RHO = 5;
export const DEFAULT_ELASTIC_LR = 0.1;
export const DEFAULT_MOMENTUM = 0.9;

export interface StrategyParams {
  strategy: Strategy;
  window: number;
  rho: number;
  momentum: number;
  elasticLr: number;
}

export function strategyParams(strategy: Strategy, o: Partial<Omit<StrategyParams, 'strategy'>> = {}): StrategyParams {
  const p = {
    strategy,
    window: o.window ?? DEFAULT_WINDOW[strategy],
    rho: o.rho ?? DEFAULT_RHO,
    momentum: o.momentum ?? DEFAULT_MOMENTUM,
    elasticLr: o.elasticLr ?? DEFAULT_ELASTIC_LR,
  };
  if (!(Number.isInteger(p.window) && p.window >= 1)) throw new RangeError(`the communication window must be a positive integer, got ${p.window}`);
  if (!(p.rho > 0 && Number.isFinite(p.rho))) throw new RangeError(`rho must be positive, got ${p.rho}`);
  if (!(p.momentum >= 0 && p.momentum < 1)) throw new RangeError(`momentum must be in [0, 1), got ${p.momentum}`);
  if (!(p.elasticLr > 0 && Number.isFinite(p.elasticLr))) throw new RangeError(`the elastic learning rate must be positive, got ${p.elasticLr}`);
  return p;
}

/** The parameter server's side: the center variable and its update counter. */
export class ParameterServer {
  readonly center: Float32Array;
  /** Commits applied (DynSGD's u). */
  updates = 0;
  stalenessSum = 0;
  stalenessMax = 0;

  constructor(
    readonly strategy: Exclude<Strategy, 'sync'>,
    center: Float32Array,
  ) {
    this.center = Float32Array.from(center);
  }

  /** Applies a worker's commit; `lastUpdate` is the counter the worker saw at its last pull. Returns the staleness. */
  commit(payload: Float32Array, lastUpdate: number): number {
    const C = this.center;
    if (payload.length !== C.length) throw new RangeError(`a commit of ${payload.length} values for a model of ${C.length}`);
    const staleness = Math.max(0, this.updates - lastUpdate);
    if (this.strategy === 'dynsgd') {
      const inv = 1 / (staleness + 1);
      for (let i = 0; i < C.length; i++) C[i] = C[i]! + payload[i]! * inv;
    } else {
      for (let i = 0; i < C.length; i++) C[i] = C[i]! + payload[i]!;
    }
    this.updates++;
    this.stalenessSum += staleness;
    this.stalenessMax = Math.max(this.stalenessMax, staleness);
    return staleness;
  }

  /** Commits, mean and maximum staleness since the last call (per epoch). */
  takeStats(): { commits: number; staleness_mean: number; staleness_max: number } {
    const commits = this.updates - this.statsBase;
    const s = { commits, staleness_mean: commits ? this.stalenessSum / commits : 0, staleness_max: this.stalenessMax };
    this.statsBase = this.updates;
    this.stalenessSum = 0;
    this.stalenessMax = 0;
    return s;
  }

  private statsBase = 0;
}

/** What an asynchronous worker does to its model. */
export interface LocalModel {
  /** The current weights (a fresh array). */
  get(): Float32Array;
  set(w: Float32Array): void;
}

/** The worker's link to the parameter server. */
export interface PsClient {
  pull(): Promise<{ center: Float32Array; updates: number }>;
  commit(payload: Float32Array, lastUpdate: number): Promise<void>;
}

const sub = (a: Float32Array, b: Float32Array): Float32Array => {
  const r = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) r[i] = a[i]! - b[i]!;
  return r;
};

/** An asynchronous worker's rule: wraps each local training step with its strategy's exchanges. */
export class AsyncWorkerRule {
  /** Iteration counter t (from 1; runs on across epochs). */
  t = 1;
  private w0?: Float32Array;
  private lastUpdate = 0;
  /** EAMSGD's momentum buffer. */
  private r?: Float32Array;
  /** Local steps since the last commit (for the end-of-shard commit). */
  private uncommitted = 0;
  commits = 0;
  pulls = 0;

  constructor(
    readonly p: StrategyParams,
    readonly model: LocalModel,
    readonly ps: PsClient,
  ) {
    if (p.strategy === 'sync') throw new Error('sync is not a parameter-server strategy');
  }

  private begun = false;

  /**
   * Epoch start: W = W₀ = C. The elastic strategies keep their local W after the first epoch (the elastic
   * force, not the epoch boundary, ties them to the center).
   */
  begin(center: Float32Array, updates: number): void {
    const elastic = this.p.strategy === 'aeasgd' || this.p.strategy === 'eamsgd';
    if (!elastic || !this.begun) this.model.set(center);
    this.begun = true;
    this.w0 = Float32Array.from(center);
    this.lastUpdate = updates;
    this.uncommitted = 0;
  }

  private async pullInto(): Promise<Float32Array> {
    const { center, updates } = await this.ps.pull();
    this.pulls++;
    this.lastUpdate = updates;
    return center;
  }

  private async commitAndPull(payload: Float32Array): Promise<void> {
    await this.ps.commit(payload, this.lastUpdate);
    this.commits++;
    const c = await this.pullInto();
    this.model.set(c);
    this.w0 = Float32Array.from(c);
    this.uncommitted = 0;
  }

  private async elastic(): Promise<void> {
    const c = await this.pullInto();
    const w = this.model.get();
    const alpha = this.p.elasticLr * this.p.rho;
    const e = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      e[i] = alpha * (w[i]! - c[i]!);
      w[i] = w[i]! - e[i]!;
    }
    this.model.set(w);
    await this.ps.commit(e, this.lastUpdate);
    this.commits++;
  }

  /** One local step (`train` runs the optimizer on a batch) with the strategy's exchanges around it. */
  async step<R>(train: () => Promise<R>): Promise<R> {
    const { strategy, window: tau } = this.p;
    const due = this.t % tau === 0;
    let out: R;
    switch (strategy) {
      case 'downpour':
        if (due) await this.commitAndPull(sub(this.model.get(), this.w0!));
        out = await train();
        this.uncommitted++;
        break;
      case 'adag':
      case 'dynsgd':
        out = await train();
        this.uncommitted++;
        if (due) {
          const d = sub(this.model.get(), this.w0!);
          if (strategy === 'adag') for (let i = 0; i < d.length; i++) d[i] = d[i]! / tau;
          await this.commitAndPull(d);
        }
        break;
      case 'aeasgd':
        if (due) await this.elastic();
        out = await train();
        break;
      case 'eamsgd': {
        if (due) await this.elastic();
        const mu = this.p.momentum;
        const eta = this.p.elasticLr;
        const before = this.model.get();
        const r = (this.r ??= new Float32Array(before.length));
        const look = new Float32Array(before.length);
        for (let i = 0; i < r.length; i++) {
          r[i] = mu * r[i]!; // r_t
          look[i] = before[i]! + r[i]!;
        }
        this.model.set(look);
        out = await train();
        const after = this.model.get();
        for (let i = 0; i < r.length; i++) {
          r[i] = r[i]! - eta * (after[i]! - look[i]!);
          before[i] = before[i]! - r[i]!;
        }
        this.model.set(before);
        break;
      }
      default:
        throw new Error(`unknown strategy ${String(strategy)}`);
    }
    this.t++;
    return out;
  }

  /** End of the worker's shard: commit what the window rule has not yet committed (downpour, adag, dynsgd). */
  async end(): Promise<void> {
    if (this.uncommitted === 0) return;
    const { strategy, window: tau } = this.p;
    if (strategy !== 'downpour' && strategy !== 'adag' && strategy !== 'dynsgd') return;
    const d = sub(this.model.get(), this.w0!);
    if (strategy === 'adag') for (let i = 0; i < d.length; i++) d[i] = d[i]! / tau;
    await this.ps.commit(d, this.lastUpdate);
    this.commits++;
    this.uncommitted = 0;
  }
}
