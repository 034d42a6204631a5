/** Pieces shared by the benchmarks. */
import { TSelector } from 'jsroot/tree';

/**
 * A jsroot TSelector that copies every value of the given branches out of its reused target object, as an
 * ETL must: the fair baseline for jsroot's per-entry reading. `branches` are TBranch objects or names.
 */
export function copyingSelector(branches: unknown[]): { sel: TSelector; processed: () => number } {
  const sel = new TSelector();
  const keys = branches.map((_, i) => `b${i}`);
  branches.forEach((b, i) => sel.addBranch(b, keys[i]));
  const sink: unknown[][] = keys.map(() => []);
  let n = 0;
  sel.Process = function (this: TSelector) {
    for (let i = 0; i < keys.length; i++) {
      const v = this.tgtobj[keys[i]!];
      sink[i]!.push(ArrayBuffer.isView(v) ? (v as Float32Array).slice() : v);
    }
    n++;
  };
  return { sel, processed: () => n };
}

/**
 * Median seconds of repeated runs of `fn` (at least `minRuns`, until `minSeconds` have passed), after one
 * uncounted warm-up run. `before` runs untimed before each run (e.g. removing the previous output).
 */
export async function medianTime(
  fn: () => unknown,
  opts: { minSeconds: number; minRuns?: number; before?: () => unknown },
): Promise<{ median: number; runs: number }> {
  const minRuns = opts.minRuns ?? 3;
  await opts.before?.();
  await fn();
  const t: number[] = [];
  const start = performance.now();
  while (t.length < minRuns || performance.now() - start < opts.minSeconds * 1000) {
    await opts.before?.();
    const a = performance.now();
    await fn();
    t.push((performance.now() - a) / 1000);
  }
  t.sort((x, y) => x - y);
  return { median: t[Math.floor(t.length / 2)]!, runs: t.length };
}
