/**
 * Decompressing a step's baskets on worker threads as well as on the reading thread.
 *
 * One job per step. The reading thread copies the compressed payloads of the step's ZLIB/OLD/XZ baskets
 * into a SharedArrayBuffer, allocates a shared output buffer (every basket's object at an 8-byte aligned
 * offset) and posts one message per worker. Then the reading thread and the workers claim baskets one at a
 * time from a shared counter (Atomics.add), so the work balances itself whatever the basket sizes, the
 * machine's load or a worker that is still starting. A worker writes each object into the shared output
 * and then marks the basket done (Atomics.store).
 *
 * Nothing ever waits for a worker: when the counter runs out, the reading thread closes the job, copies
 * the objects the workers have finished into one ArrayBuffer of its own (columns never point into shared
 * memory), and decompresses everything else itself with the ordinary rootUnzip: the baskets a worker is
 * still busy with (at most one per worker), could not do (corrupt data, a size that disagrees, a codec it
 * does not handle) or never got to (a worker that died or has not started). Results and errors are
 * therefore exactly those of the synchronous path. There are no replies, so the workers stay unref'd and
 * never keep the process alive.
 *
 * The workers start on the first step that is worth it (at least `minBytes` compressed bytes of eligible
 * baskets) and end themselves after WORKER_IDLE_MS without a job, which also frees the shared buffers of
 * past jobs that they still reference (until their next garbage collection). Their code is a
 * self-contained script (node:zlib, @napi-rs/lzma) evaluated from a string, so it runs the same from the
 * compiled package and from the TypeScript sources. Measurements: docs/decisions.md, "Parallel
 * decompression".
 *
 * Settings: HEPML_UNZIP_THREADS (number of workers; 0 turns the pool off), HEPML_UNZIP_MIN_BYTES, or
 * configureUnzipPool() (tests).
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

export interface UnzipPoolOptions {
  /** Worker threads; 0 never uses threads. Default: availableParallelism() - 1, at most MAX_WORKERS (HEPML_UNZIP_THREADS). */
  workers?: number;
  /** Steps with fewer compressed bytes of eligible baskets than this stay on the reading thread (HEPML_UNZIP_MIN_BYTES). */
  minBytes?: number;
  /** Whether the reading thread decompresses too (default true; false leaves every basket to the workers, for tests). */
  local?: boolean;
}

/** The default never starts more workers than this (measured on 2 cores only; more may pay off on more cores). */
export const MAX_WORKERS = 2;
/**
 * Default for minBytes. Smaller steps are read on one thread: there a job saves little, and on a 2-core
 * machine its gain is lost to the first wake-up of the worker (see docs/decisions.md).
 */
export const DEFAULT_MIN_BYTES = 128 * 1024;

/** Counters for tests and benchmarks: jobs started, and baskets the workers decompressed. */
export const unzipPoolStats = { jobs: 0, workerBaskets: 0 };

// The worker: decompresses claimed baskets of a job; any doubt about a basket leaves it to the caller.
const WORKER_SOURCE = String.raw`'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
let xz;
function lzma() {
  if (xz === undefined) {
    try { xz = workerData.lzma ? require(workerData.lzma).xz.decompressSync : null; } catch { xz = null; }
  }
  return xz;
}
// ROOT's blocks (9-byte headers) -> exactly objlen bytes, as decompress.ts rootUnzip does; undefined on any problem.
function unzip(src, objlen) {
  let ip = 0, op = 0, one, out;
  while (op < objlen) {
    if (ip + 9 > src.length) return undefined;
    const a = src[ip], b = src[ip + 1], m = src[ip + 2];
    const clen = src[ip + 3] | (src[ip + 4] << 8) | (src[ip + 5] << 16);
    const ulen = src[ip + 6] | (src[ip + 7] << 8) | (src[ip + 8] << 16);
    const begin = ip + 9, end = begin + clen;
    if (end > src.length || ulen === 0 || op + ulen > objlen) return undefined;
    const body = src.subarray(begin, end);
    let res;
    try {
      if (a === 0x5a && b === 0x4c && m === 8) res = zlib.inflateSync(body, { chunkSize: Math.max(64, ulen + 1), maxOutputLength: ulen });
      else if (a === 0x43 && b === 0x53 && m === 8) res = zlib.inflateRawSync(body, { chunkSize: Math.max(64, ulen + 1), maxOutputLength: ulen });
      else if (a === 0x58 && b === 0x5a && m === 0) {
        const d = lzma();
        if (!d) return undefined;
        res = d(body);
      } else return undefined;
    } catch {
      return undefined;
    }
    if (res.length !== ulen) return undefined;
    if (op === 0 && ulen === objlen) one = res;
    else {
      out ??= new Uint8Array(objlen);
      out.set(res, op);
    }
    ip = end;
    op += ulen;
  }
  return one ?? out ?? new Uint8Array(0);
}
function job(m) {
  const ctl = new Int32Array(m.ctl), status = new Int32Array(m.status), meta = new Int32Array(m.meta);
  const src = new Uint8Array(m.src), out = new Uint8Array(m.out), n = ctl[1];
  // ctl[2] is set once the caller has collected the job: stop claiming then.
  while (Atomics.load(ctl, 2) === 0) {
    const i = Atomics.add(ctl, 0, 1);
    if (i >= n) break;
    const r = unzip(src.subarray(meta[4 * i], meta[4 * i] + meta[4 * i + 1]), meta[4 * i + 2]);
    if (r) out.set(r, meta[4 * i + 3]);
    Atomics.store(status, i, r ? 1 : 2);
  }
}
// A worker that has had no job for idleMs ends itself: this frees its memory, in particular its references
// to the shared buffers of past jobs (which stay allocated until its next garbage collection).
let idle;
parentPort.on('message', (m) => {
  clearTimeout(idle);
  job(m);
  idle = setTimeout(() => process.exit(0), workerData.idleMs);
});
`;

/** A worker without a job for this long ends itself; the next step that wants one starts a new one. */
export const WORKER_IDLE_MS = 5000;

class PoolWorker {
  readonly worker: Worker;
  exited = false;
  crashed = false;

  constructor(lzmaPath: string | undefined) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      name: 'hep-ml unzip',
      execArgv: [],
      workerData: { lzma: lzmaPath, idleMs: WORKER_IDLE_MS },
    });
    // Nothing ever waits for a worker, so it never needs to keep the process alive.
    this.worker.unref();
    this.worker.on('error', () => {
      this.crashed = true;
    });
    this.worker.on('exit', () => {
      this.exited = true;
    });
  }
}

/**
 * One step's decompression job. The caller claims baskets with claim() until it returns -1, then calls
 * collect(): the objects the workers finished (undefined for the others, which the caller does itself).
 */
export class UnzipJob {
  private readonly ctl: Int32Array;
  private readonly status: Int32Array;
  private readonly meta: Int32Array;
  private readonly out: Uint8Array;

  constructor(
    private readonly pool: UnzipPool,
    payloads: readonly Uint8Array[],
    private readonly objlens: readonly number[],
  ) {
    const n = payloads.length;
    let bytes = 0;
    let outBytes = 0;
    for (let i = 0; i < n; i++) {
      bytes += payloads[i]!.length;
      outBytes += (objlens[i]! + 7) & ~7;
    }
    const src = new Uint8Array(new SharedArrayBuffer(bytes));
    this.meta = new Int32Array(new SharedArrayBuffer(16 * n));
    this.status = new Int32Array(new SharedArrayBuffer(4 * n));
    this.out = new Uint8Array(new SharedArrayBuffer(outBytes));
    let pos = 0;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const p = payloads[i]!;
      src.set(p, pos);
      this.meta[4 * i] = pos;
      this.meta[4 * i + 1] = p.length;
      this.meta[4 * i + 2] = objlens[i]!;
      this.meta[4 * i + 3] = at;
      pos += p.length;
      at += (objlens[i]! + 7) & ~7;
    }
    this.ctl = new Int32Array(new SharedArrayBuffer(12));
    this.ctl[1] = n;
    // one message per worker per step; the buffers are shared, not copied
    const msg = { ctl: this.ctl.buffer, status: this.status.buffer, meta: this.meta.buffer, src: src.buffer, out: this.out.buffer };
    for (const w of pool.workers) w.worker.postMessage(msg);
    unzipPoolStats.jobs++;
  }

  /** The next basket for the calling thread to decompress, or -1 when none is left (or local is off). */
  claim(): number {
    if (!this.pool.local) return -1;
    const i = Atomics.add(this.ctl, 0, 1);
    return i < this.ctl[1]! ? i : -1;
  }

  /**
   * Ends the job: objects[i] is basket i's object when a worker finished it, copied out of the shared
   * memory into one ArrayBuffer (8-byte aligned). A basket a worker is still busy with, or could not
   * do, is left undefined for the caller: nothing here waits for a worker.
   */
  async collect(): Promise<(Uint8Array | undefined)[]> {
    const n = this.objlens.length;
    if (!this.pool.local) {
      // tests: let the workers do every basket (as long as they are alive, and within reason)
      const deadline = Date.now() + 30_000;
      const pending = () => {
        for (let i = 0; i < n; i++) if (Atomics.load(this.status, i) === 0) return true;
        return false;
      };
      while (pending() && this.pool.alive && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    Atomics.store(this.ctl, 2, 1);
    const objects: (Uint8Array | undefined)[] = new Array(n);
    const finished: number[] = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (Atomics.load(this.status, i) !== 1) continue;
      finished.push(i);
      total += (this.objlens[i]! + 7) & ~7;
    }
    unzipPoolStats.workerBaskets += finished.length;
    if (total === 0) return objects;
    const copy = new ArrayBuffer(total);
    const dst = new Uint8Array(copy);
    let at = 0;
    for (const i of finished) {
      const len = this.objlens[i]!;
      const from = this.meta[4 * i + 3]!;
      dst.set(this.out.subarray(from, from + len), at);
      objects[i] = new Uint8Array(copy, at, len);
      at += (len + 7) & ~7;
    }
    return objects;
  }
}

export class UnzipPool {
  constructor(
    readonly workers: PoolWorker[],
    readonly local: boolean,
    readonly minBytes: number,
  ) {}

  /** Starts a job: the workers begin claiming baskets as soon as they are free. */
  start(payloads: readonly Uint8Array[], objlens: readonly number[]): UnzipJob {
    return new UnzipJob(this, payloads, objlens);
  }

  get alive(): boolean {
    return this.workers.every((w) => !w.exited);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

function envInt(name: string): number | undefined {
  const s = process.env[name];
  if (s === undefined || s.trim() === '') return undefined;
  const v = Number(s);
  return Number.isInteger(v) && v >= 0 ? v : undefined;
}

let settings: Required<UnzipPoolOptions> | undefined;
let pool: UnzipPool | undefined;
/** Set when a worker failed (rather than ending itself when idle): the pool is not used again. */
let broken = false;

function currentSettings(): Required<UnzipPoolOptions> {
  settings ??= {
    workers: Math.min(MAX_WORKERS, envInt('HEPML_UNZIP_THREADS') ?? Math.max(0, os.availableParallelism() - 1)),
    minBytes: envInt('HEPML_UNZIP_MIN_BYTES') ?? DEFAULT_MIN_BYTES,
    local: true,
  };
  return settings;
}

/** Changes the pool's settings (unset fields keep theirs); running workers are stopped when the count changes. */
export async function configureUnzipPool(o: UnzipPoolOptions): Promise<void> {
  const s = currentSettings();
  const next = { ...s, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  if (pool && (next.workers !== s.workers || next.local !== s.local || next.minBytes !== s.minBytes)) await closeUnzipPool();
  settings = next;
}

/** Stops the workers (a later step starts new ones; a pool that failed may be used again). */
export async function closeUnzipPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  broken = false;
  await p?.close();
}

/** Whether a step with `bytes` compressed bytes of eligible baskets would use the pool. */
export function wantsPool(bytes: number): boolean {
  const s = currentSettings();
  return s.workers > 0 && bytes > 0 && bytes >= s.minBytes && !broken;
}

/** The pool (started on first use) for a step with `bytes` compressed bytes of eligible baskets, or undefined. */
export function unzipPoolFor(bytes: number): UnzipPool | undefined {
  if (pool && !pool.alive) {
    // Workers that ended themselves after being idle are replaced; a worker that failed stops all use.
    if (pool.workers.some((w) => w.crashed)) broken = true;
    void pool.close();
    pool = undefined;
  }
  if (!wantsPool(bytes)) return undefined;
  if (!pool) {
    const s = currentSettings();
    let lzmaPath: string | undefined;
    try {
      lzmaPath = createRequire(import.meta.url).resolve('@napi-rs/lzma');
    } catch {
      lzmaPath = undefined; // XZ baskets then fall back to the reading thread, which reports the problem
    }
    const workers: PoolWorker[] = [];
    try {
      for (let k = 0; k < s.workers; k++) workers.push(new PoolWorker(lzmaPath));
    } catch {
      for (const w of workers) void w.worker.terminate();
      broken = true;
      return undefined;
    }
    pool = new UnzipPool(workers, s.local, s.minBytes);
  }
  return pool;
}

/** Whether the worker script handles a compressed payload whose first block header is at `payload[at]` (ZLIB, OLD or XZ). */
export function poolCodec(payload: Uint8Array, at = 0): boolean {
  if (payload.length < at + 9) return false;
  const a = payload[at], b = payload[at + 1], m = payload[at + 2];
  return (a === 0x5a && b === 0x4c && m === 8) || (a === 0x43 && b === 0x53 && m === 8) || (a === 0x58 && b === 0x5a && m === 0);
}
