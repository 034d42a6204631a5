/**
 * Throughput of IpcStreamWriter through a real OS pipe into a child process that reads with
 * readIpcStream, against raw bytes of the same size through the same kind of pipe, in the same run.
 *
 *   node --import tsx bench/columnar.ts [--reps N] [--quick]
 *
 * Prints one JSON object on stdout. Datasets:
 *   jagged: 200k rows x 10 list<float32> columns of 0-50 items (10k-row batches)
 *   nested: 2000 rows x fixed<801, fixed<19, float32>> (100-row batches)
 * Timing (parent side): from the first byte written to the child's report that it read everything
 * (child start-up excluded: the child says "ready" first). The child converts every batch to ColumnData
 * and sums every float, and the sum is checked against the parent's, so the data is known to be exact.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { IpcStreamWriter, fromRecordBatch, makeSchema, openIpcStream, toRecordBatch } from '../src/columnar/index.js';
import type { ColumnBatch, ColumnData } from '../src/root/columns.js';
import { columnType } from '../src/root/columns.js';

const SCRIPT = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------------
// child: read stdin, report

function floatSum(c: ColumnData): number {
  switch (c.kind) {
    case 'primitive': {
      let s = 0;
      const v = c.values as Float32Array;
      for (let i = 0; i < v.length; i++) s += v[i]!;
      return s;
    }
    case 'fixed':
    case 'list':
      return floatSum(c.child);
    case 'utf8':
      return 0;
  }
}

async function child(mode: string): Promise<void> {
  process.stdout.write('ready\n');
  let bytes = 0;
  let rows = 0;
  let batches = 0;
  let sum = 0;
  if (mode === 'raw') {
    for await (const c of process.stdin) bytes += (c as Buffer).length;
  } else {
    const input = await openIpcStream('-');
    for await (const rb of input.batches) {
      const cb = fromRecordBatch(rb);
      for (const col of cb.columns) sum += floatSum(col.data);
      rows += rb.numRows;
      batches++;
    }
    bytes = input.bytesRead;
  }
  process.stdout.write(JSON.stringify({ bytes, rows, batches, sum }) + '\n');
}

// ---------------------------------------------------------------------------------------------------
// parent

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

function jaggedBatches(totalRows: number, batchRows: number, columns: number): ColumnBatch[] {
  const r = lcg(42);
  const out: ColumnBatch[] = [];
  for (let start = 0; start < totalRows; start += batchRows) {
    const n = Math.min(batchRows, totalRows - start);
    const cols = [];
    for (let c = 0; c < columns; c++) {
      const offsets = new Int32Array(n + 1);
      for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + (r() % 51);
      const values = new Float32Array(offsets[n]!);
      for (let i = 0; i < values.length; i++) values[i] = (r() >>> 8) * (1 / 65536);
      cols.push({ name: `c${c}`, data: { kind: 'list', offsets, child: { kind: 'primitive', dtype: 'float32', values } } as ColumnData });
    }
    out.push({ entryStart: start, entryStop: start + n, columns: cols });
  }
  return out;
}

function nestedBatches(totalRows: number, batchRows: number): ColumnBatch[] {
  const r = lcg(7);
  const out: ColumnBatch[] = [];
  for (let start = 0; start < totalRows; start += batchRows) {
    const n = Math.min(batchRows, totalRows - start);
    const values = new Float32Array(n * 801 * 19);
    for (let i = 0; i < values.length; i++) values[i] = (r() >>> 8) * (1 / 65536);
    const data: ColumnData = { kind: 'fixed', size: 801, child: { kind: 'fixed', size: 19, child: { kind: 'primitive', dtype: 'float32', values } } };
    out.push({ entryStart: start, entryStop: start + n, columns: [{ name: 'img', data }] });
  }
  return out;
}

interface ChildReport {
  bytes: number;
  rows: number;
  batches: number;
  sum: number;
}

/** Starts a reader child and waits until it is ready; `done` resolves with its report. */
async function startChild(mode: 'raw' | 'ipc') {
  const cp = spawn(process.execPath, [...process.execArgv, SCRIPT, 'child', mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: cp.stdout });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.value !== 'ready') throw new Error(`child did not start: ${String(first.value)}`);
  const done = (async (): Promise<ChildReport> => {
    const r = await it.next();
    const code = await new Promise<number | null>((res) => (cp.exitCode !== null ? res(cp.exitCode) : cp.on('close', res)));
    if (r.done || code !== 0) throw new Error(`child ${mode} failed (exit ${code})`);
    return JSON.parse(r.value) as ChildReport;
  })();
  return { stdin: cp.stdin, done };
}

async function runIpc(batches: ColumnBatch[]) {
  const schema = makeSchema(batches[0]!.columns.map((c) => ({ name: c.name, type: columnType(c.data) })));
  const { stdin, done } = await startChild('ipc');
  let maxBuffered = 0;
  const t0 = performance.now();
  const w = await IpcStreamWriter.open('-', { stdout: stdin, schema, end: true });
  for (const b of batches) {
    await w.write(toRecordBatch(schema, b));
    maxBuffered = Math.max(maxBuffered, stdin.writableLength);
  }
  await w.close();
  const report = await done;
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, bytes: w.bytesWritten, drainWaits: w.drainWaits, maxBuffered, report };
}

async function runRaw(totalBytes: number) {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const { stdin, done } = await startChild('raw');
  const t0 = performance.now();
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    left -= n;
    if (!stdin.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      await new Promise<void>((res, rej) => {
        const done = (e?: Error) => {
          stdin.off('drain', done);
          stdin.off('error', done);
          if (e) rej(e);
          else res();
        };
        stdin.on('drain', done);
        stdin.on('error', done);
      });
    }
  }
  await new Promise<void>((res) => stdin.end(res));
  const report = await done;
  const seconds = (performance.now() - t0) / 1000;
  if (report.bytes !== totalBytes) throw new Error(`raw: child read ${report.bytes} of ${totalBytes} bytes`);
  return { seconds };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function bench(name: string, batches: ColumnBatch[], reps: number) {
  let expectedSum = 0;
  let rows = 0;
  for (const b of batches) {
    rows += b.entryStop - b.entryStart;
    for (const c of b.columns) expectedSum += floatSum(c.data);
  }
  const ipcMBs: number[] = [];
  const rawMBs: number[] = [];
  let last: Awaited<ReturnType<typeof runIpc>> | undefined;
  for (let i = 0; i < reps; i++) {
    // alternate so that machine noise hits both modes alike
    const ipc = await runIpc(batches);
    if (ipc.report.rows !== rows || ipc.report.batches !== batches.length || ipc.report.sum !== expectedSum || ipc.report.bytes !== ipc.bytes) {
      throw new Error(`${name}: child read ${JSON.stringify(ipc.report)}, expected rows ${rows}, sum ${expectedSum}, bytes ${ipc.bytes}`);
    }
    const raw = await runRaw(ipc.bytes);
    ipcMBs.push(ipc.bytes / 1e6 / ipc.seconds);
    rawMBs.push(ipc.bytes / 1e6 / raw.seconds);
    last = ipc;
  }
  const ipc = median(ipcMBs);
  const raw = median(rawMBs);
  return {
    rows,
    batches: batches.length,
    mb: round(last!.bytes / 1e6),
    ipc_mb_s: round(ipc),
    raw_mb_s: round(raw),
    ipc_vs_raw: round(ipc / raw, 2),
    ipc_mb_s_runs: ipcMBs.map((x) => round(x)),
    raw_mb_s_runs: rawMBs.map((x) => round(x)),
    batch_mb: round(last!.bytes / batches.length / 1e6),
    drain_waits: last!.drainWaits,
    // bytes still queued in the pipe's Writable when write() resolved: bounded by about one batch
    max_queued_after_write_mb: round(last!.maxBuffered / 1e6),
    exact: true,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const repsArg = args.indexOf('--reps');
  const reps = repsArg >= 0 ? Number(args[repsArg + 1]) : quick ? 1 : 3;
  const t0 = performance.now();
  const jagged = jaggedBatches(quick ? 20_000 : 200_000, 10_000, 10);
  const nested = nestedBatches(quick ? 200 : 2000, 100);
  const generate_s = (performance.now() - t0) / 1000;
  const result = {
    bench: 'columnar-ipc-pipe',
    node: process.version,
    reps,
    generate_s: round(generate_s, 2),
    jagged_200k_x10_list_float32: await bench('jagged', jagged, reps),
    nested_2000_fixed801_fixed19_float32: await bench('nested', nested, reps),
    total_s: 0,
  };
  result.total_s = round((performance.now() - t0) / 1000, 1);
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (process.argv[2] === 'child') await child(process.argv[3]!);
else await main();
