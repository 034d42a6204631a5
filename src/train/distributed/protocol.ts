/**
 * Messages between the coordinator and its workers (frame heads; tensors ride in frame parts).
 *
 * worker → coordinator: hello, hb, progress, done, pull, commit, ringfail, aborted, error
 * coordinator → worker: config, epoch, center (the answer to pull), abort, stop
 */
import type { ModelKind } from '../models.js';
import type { StrategyParams } from './strategies.js';

export const PROTOCOL_VERSION = 1;

export interface HelloMsg {
  t: 'hello';
  protocol: number;
  version: string;
  rank: number | null;
  pid: number;
  host: string;
  /** Where ring peers reach this worker: unix:/path, or :PORT (the coordinator adds the host it sees). */
  ring: string;
}

export interface ConfigMsg {
  t: 'config';
  rank: number;
  workers: number;
  model: ModelKind;
  units: number[];
  classes: number;
  dropout: number;
  seed: number;
  /** The learning rate each worker's optimizer uses (after --lr-scaling). */
  lr: number;
  batchSize: number;
  shuffleRows: number;
  data: string[];
  strategy: StrategyParams;
  engine: string;
  gruKernel?: 'wasm' | 'js';
  heartbeatMs: number;
}

/** Start (or restart) an epoch. Parts: [weights] (+ [optimizer bytes] when `opt` is set; sync). */
export interface EpochMsg {
  t: 'epoch';
  epoch: number;
  /** Membership generation: bumps whenever a worker is lost. */
  gen: number;
  /** This worker's position among the live workers, and their number (shard index/count). */
  index: number;
  count: number;
  /** sync: ring addresses by index. */
  ring?: string[];
  /** sync: Adam state (JSON description; bytes in part 1). */
  opt?: string;
  /**
   * sync: checksum of the weights sent; a replica whose weights already have it, and that ran the previous
   * epoch in generation `continues`, keeps its own state (no Adam restore: bitwise continuity).
   */
  checksum?: string;
  continues?: number;
  dropoutCalls: number[];
  /** async: the parameter server's update counter. */
  updates?: number;
}

export interface DoneMsg {
  t: 'done';
  epoch: number;
  gen: number;
  rows: number;
  lossSum: number;
  accSum: number;
  steps: number;
  /** Weights checksum (sync: every replica must agree). */
  checksum: string;
  allreduceMs?: number;
  allreduceBytes?: number;
  /** All-reduce calls (the steps, plus the all-zero one that ends the epoch). */
  allreduceCalls?: number;
  commits?: number;
  pulls?: number;
  /** sync, index 0: Adam state description (weights in part 0, optimizer bytes in part 1). */
  opt?: string;
  dropoutCalls: number[];
}

export interface ProgressMsg {
  t: 'progress';
  epoch: number;
  gen: number;
  rows: number;
  lossSum: number;
  accSum: number;
}

export interface ErrorMsg {
  t: 'error';
  message: string;
  name: string;
  exitCode?: number;
}
