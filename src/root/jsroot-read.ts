/**
 * jsroot's per-entry path, for the object-valued branches the bulk decoder does not handle
 * (vector<string>, vector<vector<T>>, set<T>). Wrapped so that jsroot's failure modes become errors:
 * the entry count is checked, Terminate(false) is an error, unhandled rejections raised inside its
 * event loop fail the read, and a watchdog stops a read that never settles.
 */
import { TSelector, treeProcess } from 'jsroot/tree';
import { CorruptDataError } from '../errors.js';
import type { ColumnData, DType } from './columns.js';
import { allocTyped } from './columns.js';
import { quietly } from './jsroot.js';
import type { BranchInfo, Tree } from './tree.js';

const WATCHDOG_MS = Number(process.env.HEPML_JSROOT_TIMEOUT_MS ?? 120_000);
const encoder = new TextEncoder();

function toStrings(values: string[]): ColumnData {
  const parts = values.map((s) => encoder.encode(s ?? ''));
  const offsets = new Int32Array(parts.length + 1);
  let total = 0;
  parts.forEach((p, i) => {
    total += p.length;
    offsets[i + 1] = total;
  });
  const bytes = new Uint8Array(total);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return { kind: 'utf8', offsets, bytes };
}

function toNumbers(values: ArrayLike<number | bigint>[], dtype: DType): ColumnData {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  values.forEach((v, i) => {
    total += v?.length ?? 0;
    offsets[i + 1] = total;
  });
  const out = allocTyped(dtype, total);
  const big = dtype === 'int64' || dtype === 'uint64';
  values.forEach((v, i) => {
    const base = offsets[i]!;
    for (let j = 0; j < (v?.length ?? 0); j++) {
      const x = v[j]!;
      (out as unknown as (number | bigint)[])[base + j] = big ? BigInt(x) : dtype === 'bool' ? (x ? 1 : 0) : Number(x);
    }
  });
  return { kind: 'list', offsets, child: { kind: 'primitive', dtype, values: out } };
}

function convert(b: BranchInfo, values: unknown[]): ColumnData {
  const plan = b.plan as Extract<BranchInfo['plan'], { kind: 'jsroot' }>;
  switch (plan.convert) {
    case 'strings':
      return toStrings(values as string[]);
    case 'list-number':
      return toNumbers(values as number[][], plan.dtype!);
    case 'list-strings': {
      const lists = values as string[][];
      const flat = lists.flat();
      const offsets = new Int32Array(lists.length + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i]! + (l?.length ?? 0)));
      return { kind: 'list', offsets, child: toStrings(flat) };
    }
    case 'list-list-number': {
      const lists = values as ArrayLike<number>[][];
      const offsets = new Int32Array(lists.length + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i]! + (l?.length ?? 0)));
      return { kind: 'list', offsets, child: toNumbers(lists.flat(), plan.dtype!) };
    }
  }
}

export async function readWithJsroot(tree: Tree, branches: BranchInfo[], start: number, stop: number): Promise<Map<BranchInfo, ColumnData>> {
  const want = stop - start;
  const collected: unknown[][] = branches.map(() => []);
  const out = new Map<BranchInfo, ColumnData>();
  if (want === 0) {
    branches.forEach((b) => out.set(b, convert(b, [])));
    return out;
  }
  const sel = new TSelector();
  const names = branches.map((_, i) => `hepml_${i}`);
  branches.forEach((b, i) => sel.addBranch(b.js, names[i]));
  let processed = 0;
  let terminated: boolean | undefined;
  sel.Process = function (this: TSelector) {
    for (let i = 0; i < names.length; i++) {
      const v = this.tgtobj[names[i]!];
      // the target object is reused between entries: copy
      collected[i]!.push(Array.isArray(v) ? v.map((x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x)) : v);
    }
    processed++;
  };
  sel.Terminate = (ok: boolean) => {
    terminated = ok;
  };
  const ctx = { file: tree.location, tree: tree.name, branch: branches.map((b) => b.name).join(', ') };
  let onRejection: ((e: unknown) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const failure = new Promise<never>((_, reject) => {
    onRejection = (e: unknown) => reject(new CorruptDataError(`jsroot failed while decoding: ${(e as Error)?.message ?? e}`, ctx));
    process.on('unhandledRejection', onRejection);
    timer = setTimeout(() => reject(new CorruptDataError(`jsroot did not finish within ${WATCHDOG_MS} ms`, ctx)), WATCHDOG_MS);
  });
  try {
    await quietly(() => Promise.race([treeProcess(tree.js, sel, { firstentry: start, numentries: want }), failure]));
  } catch (e) {
    if (e instanceof CorruptDataError) throw e;
    throw new CorruptDataError(`jsroot failed: ${(e as Error).message}`, ctx);
  } finally {
    process.off('unhandledRejection', onRejection!);
    clearTimeout(timer);
  }
  if (terminated === false || processed !== want) {
    throw new CorruptDataError(`jsroot read ${processed} of ${want} entries (from entry ${start})`, ctx);
  }
  branches.forEach((b, i) => out.set(b, convert(b, collected[i]!)));
  return out;
}
