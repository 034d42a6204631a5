/**
 * Dynamic micro-batching: rows of concurrent requests to one model are joined into one model call.
 *
 * A request's rows wait in a queue; the queue is run when it holds `maxBatch` rows, or when the event loop
 * is next idle after `maxDelayMs` (0: at once — everything that arrived in the same turn of the event loop,
 * i.e. every request already parsed, goes into one call). Under load, batches grow by themselves; an idle
 * server answers a lone request without waiting. One batch runs at a time per model; a request larger than
 * maxBatch runs alone. The queue is bounded (`maxQueueRows`): beyond it requests are refused (503), so
 * memory stays bounded whatever the clients do.
 */

export interface BatchFn {
  /** Runs the model on `rows` rows (one array per input, row-major); returns rows × outputs values. */
  (inputs: Float32Array[], rows: number): Promise<Float32Array>;
}

interface Pending {
  inputs: Float32Array[];
  rows: number;
  resolve: (out: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class QueueFullError extends Error {}

export interface BatcherOptions {
  /** Values per row of each input. */
  widths: number[];
  /** Values per row of the output. */
  outWidth: number;
  maxBatch: number;
  maxDelayMs: number;
  maxQueueRows: number;
  /** Called after every model call with its rows (for the batch-size histogram). */
  onBatch?: (rows: number, seconds: number) => void;
}

export class MicroBatcher {
  private queue: Pending[] = [];
  private queued = 0;
  private running = false;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    private readonly run: BatchFn,
    private readonly o: BatcherOptions,
  ) {}

  /** Rows waiting (not yet in a model call). */
  get pendingRows(): number {
    return this.queued;
  }

  /** Submits `rows` rows; resolves with their outputs (rows × outWidth). */
  submit(inputs: Float32Array[], rows: number): Promise<Float32Array> {
    if (this.queued + rows > this.o.maxQueueRows && this.queued > 0) {
      return Promise.reject(new QueueFullError(`the server is overloaded: ${this.queued} rows are waiting (limit ${this.o.maxQueueRows})`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ inputs, rows, resolve, reject });
      this.queued += rows;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running) return; // the running batch schedules the next one when it ends
    if (this.queued >= this.o.maxBatch) {
      this.clearTimer();
      void this.flush();
      return;
    }
    if (this.timer) return;
    const go = () => {
      this.timer = undefined;
      void this.flush();
    };
    this.timer = this.o.maxDelayMs > 0 ? setTimeout(go, this.o.maxDelayMs) : setImmediate(go);
  }

  private clearTimer(): void {
    if (!this.timer) return;
    if (this.o.maxDelayMs > 0) clearTimeout(this.timer as NodeJS.Timeout);
    else clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    // take requests up to maxBatch rows (at least one)
    const take: Pending[] = [];
    let rows = 0;
    while (this.queue.length && (take.length === 0 || rows + this.queue[0]!.rows <= this.o.maxBatch)) {
      const p = this.queue.shift()!;
      take.push(p);
      rows += p.rows;
    }
    this.queued -= rows;
    try {
      let inputs: Float32Array[];
      if (take.length === 1) inputs = take[0]!.inputs;
      else {
        inputs = this.o.widths.map((w, k) => {
          const a = new Float32Array(rows * w);
          let at = 0;
          for (const p of take) {
            a.set(p.inputs[k]!, at);
            at += p.rows * w;
          }
          return a;
        });
      }
      const t0 = performance.now();
      const out = await this.run(inputs, rows);
      this.o.onBatch?.(rows, (performance.now() - t0) / 1000);
      let at = 0;
      for (const p of take) {
        p.resolve(out.subarray(at, at + p.rows * this.o.outWidth));
        at += p.rows * this.o.outWidth;
      }
    } catch (e) {
      for (const p of take) p.reject(e);
    } finally {
      this.running = false;
      if (this.queue.length) this.schedule();
    }
  }

  /** Rejects everything waiting (unload, shutdown). */
  close(reason: Error): void {
    this.clearTimer();
    for (const p of this.queue.splice(0)) p.reject(reason);
    this.queued = 0;
  }
}
