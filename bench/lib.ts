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
