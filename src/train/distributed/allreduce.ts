/**
 * Ring all-reduce (reduce-scatter, then all-gather) over the transport: N workers on a logical ring, each
 * sending to its successor and receiving from its predecessor. The buffer is cut into N chunks; in N − 1
 * reduce-scatter steps every worker forwards one chunk and adds the one it receives, after which worker r
 * holds the complete sum of chunk (r + 1) mod N; N − 1 all-gather steps circulate the summed chunks. Each
 * worker sends 2(N − 1)/N of the buffer per all-reduce, whatever N is, and every worker ends with the same
 * bits (each chunk is summed once, in one order, then copied).
 */
import type { Conn } from './transport.js';
import { f32 } from './frame.js';

export class RingError extends Error {}

export class Ring {
  /** Time spent in all-reduce (ms) and calls, for the per-step figures. */
  ms = 0;
  calls = 0;
  bytes = 0;

  constructor(
    readonly rank: number,
    readonly size: number,
    /** Connection to rank + 1 (undefined when size is 1). */
    readonly next: Conn | undefined,
    /** Connection from rank − 1. */
    readonly prev: Conn | undefined,
  ) {}

  private bounds(c: number, n: number): [number, number] {
    return [Math.floor((c * n) / this.size), Math.floor(((c + 1) * n) / this.size)];
  }

  /** Sums `buf` element-wise across the ring, in place. `seq` guards against mixing up calls. */
  async allReduce(buf: Float32Array, seq: number): Promise<void> {
    const N = this.size;
    if (N === 1) return;
    const t0 = performance.now();
    const mod = (x: number) => ((x % N) + N) % N;
    const n = buf.length;
    for (let s = 0; s < 2 * (N - 1); s++) {
      const gather = s >= N - 1;
      const k = gather ? s - (N - 1) : s;
      const sendC = gather ? mod(this.rank + 1 - k) : mod(this.rank - k);
      const recvC = gather ? mod(this.rank - k) : mod(this.rank - k - 1);
      const [a, b] = this.bounds(sendC, n);
      const sent = this.next!.send({ t: 'ar', seq, s }, [buf.subarray(a, b)]);
      sent.catch(() => undefined); // awaited below; a receive failure may come first
      const f = await this.prev!.recv();
      if (f.head.t !== 'ar' || f.head.seq !== seq || f.head.s !== s) {
        throw new RingError(`all-reduce out of step: expected ${seq}/${s}, got ${String(f.head.t)} ${String(f.head.seq)}/${String(f.head.s)}`);
      }
      const got = f32(f.parts[0]);
      const [c, d] = this.bounds(recvC, n);
      if (got.length !== d - c) throw new RingError(`all-reduce chunk of ${got.length} floats, expected ${d - c}`);
      if (gather) buf.set(got, c);
      else for (let i = 0; i < got.length; i++) buf[c + i] = buf[c + i]! + got[i]!;
      this.bytes += (b - a) * 4;
      await sent;
    }
    this.ms += performance.now() - t0;
    this.calls++;
  }
}
