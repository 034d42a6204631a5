/**
 * Distributed training (`hep-ml train --workers N`) on generated events, for real: worker processes over Unix
 * sockets and TCP, the synchronous equivalence N workers × B = one process × N·B, the parameter-server
 * strategies, workers killed mid-epoch (SIGKILL), the coordinator killed and resumed, and remote roles
 * (--coordinator / --join).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { BIN } from '../helpers/cli.js';
import { makeRecipeData } from '../helpers/recipe-data.js';
import { createLab, netnsAvailable } from '../helpers/netns.js';
import { train } from '../../src/train/trainer.js';
import { decodeEventFile } from '../../src/train/tensorboard.js';
import { strategyParams, STRATEGIES, type Strategy } from '../../src/train/distributed/strategies.js';

let dir = '';
let prep = '';
let rb32 = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hepml-dist-'));
  prep = makeRecipeData(dir);
  // the training split cut to a multiple of 64 rows, in record batches of 64: worker k of 2 takes rows
  // [32k, 32k + 32) of each, so with batch 32 its step t holds the rows one process's step t (batch 64) has
  // at the same places
  const table = arrow.tableFromIPC(readFileSync(join(prep, 'train.arrow')));
  const batches: arrow.RecordBatch[] = [];
  const n = table.numRows - (table.numRows % 64);
  for (let i = 0; i < n; i += 64) batches.push(...table.slice(i, i + 64).batches);
  rb32 = join(dir, 'rb64.arrow');
  writeFileSync(rb32, arrow.tableToIPC(new arrow.Table(table.schema, batches), 'file'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const meanAuc = (rec: { val_auc?: Record<string, number> }) => {
  const v = Object.values(rec.val_auc!);
  return v.reduce((a, b) => a + b, 0) / v.length;
};

function weightsOf(out: string): Float32Array {
  const b = readFileSync(join(out, 'weights.bin'));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Runs the CLI; `onLine` sees every stderr line (JSON progress events) while it runs. */
function runTrain(args: string[], onLine?: (l: string, child: ChildProcess) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      pending += d.toString();
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        onLine?.(line, child);
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hep-ml train ${args.join(' ')}: no end within 240 s\n${stderr}`));
    }, 240_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe('hep-ml train --workers', () => {
  test('sync: 2 workers × batch 32 reach the weights of one process with batch 64 (inclusive model, dropout on)', async (t) => {
    const common = { model: 'inclusive' as const, data: [rb32], epochs: 2, lr: 0.003, seed: 3, shuffleRows: 0, dropout: 0.2 };
    const one = await train({ ...common, out: join(dir, 'eq-1x64'), batchSize: 64 });
    const two = await train({ ...common, out: join(dir, 'eq-2x32'), batchSize: 32, distributed: { workers: 2, strategy: strategyParams('sync') } });
    const small = await train({ ...common, out: join(dir, 'eq-1x32'), batchSize: 32, epochs: 1 });
    assert.equal(two.epochs[1]!.workers, 2);
    assert.equal(two.epochs[0]!.steps, Math.ceil(two.epochs[0]!.rows / 64));
    const a = weightsOf(join(dir, 'eq-1x64'));
    const b = weightsOf(join(dir, 'eq-2x32'));
    const d = maxDiff(a, b);
    const scale = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    t.diagnostic(`max |Δw| = ${d.toExponential(2)} (weights up to ${scale.toFixed(3)}); losses ${one.epochs.map((e) => e.loss.toFixed(6))} vs ${two.epochs.map((e) => e.loss.toFixed(6))}`);
    assert.ok(d < 1e-4, `2×32 differs from 1×64 by ${d}`);
    for (let e = 0; e < 2; e++) assert.ok(Math.abs(one.epochs[e]!.loss - two.epochs[e]!.loss) < 1e-5, `epoch ${e + 1} loss`);
    // the comparison can fail: one epoch at batch 32 is far from it
    assert.ok(small.epochs.length === 1);
    const c = weightsOf(join(dir, 'eq-1x32'));
    assert.ok(maxDiff(a, c) > 100 * d + 1e-3, 'a different batch gives different weights');
  });

  test('--workers 1 is the single-process run, bit for bit (shuffle on, 2 epochs)', async () => {
    const common = { model: 'dnn' as const, data: [join(prep, 'train.arrow')], epochs: 2, seed: 5 };
    await train({ ...common, out: join(dir, 'w1-single') });
    await train({ ...common, out: join(dir, 'w1-dist'), distributed: { workers: 1, strategy: strategyParams('sync') } });
    assert.deepEqual(readFileSync(join(dir, 'w1-single', 'weights.bin')), readFileSync(join(dir, 'w1-dist', 'weights.bin')));
  });

  test('--lr-scaling linear: metrics.jsonl and TensorBoard both record the rate the workers trained at', async () => {
    const out = join(dir, 'lr-linear');
    await train({ model: 'dnn', data: [join(prep, 'train.arrow')], epochs: 1, seed: 5, lr: 0.001, out, distributed: { workers: 2, strategy: strategyParams('sync'), lrScaling: 'linear' } });
    const rec = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim()) as { lr: number };
    assert.equal(rec.lr, 0.002);
    const tb = readdirSync(join(out, 'tensorboard'));
    const lr = decodeEventFile(readFileSync(join(out, 'tensorboard', tb[0]!))).flatMap((e) => e.scalars.filter((x) => x.tag === 'learning_rate').map((x) => x.value));
    assert.deepEqual(lr, [Math.fround(0.002)]);
  });

  test('sync over TCP gives the bits of sync over Unix sockets', async () => {
    const common = { model: 'dnn' as const, data: [join(prep, 'train.arrow')], epochs: 2, seed: 5 };
    await train({ ...common, out: join(dir, 'ipc'), distributed: { workers: 2, strategy: strategyParams('sync'), transport: 'ipc' } });
    await train({ ...common, out: join(dir, 'tcp'), distributed: { workers: 2, strategy: strategyParams('sync'), transport: 'tcp' } });
    assert.deepEqual(readFileSync(join(dir, 'ipc', 'weights.bin')), readFileSync(join(dir, 'tcp', 'weights.bin')));
  });

  for (const s of STRATEGIES.filter((x) => x !== 'sync')) {
    test(`${s}: 2 workers learn through the parameter server; commits and staleness are recorded`, async (t) => {
      const window = s === 'aeasgd' || s === 'eamsgd' ? 4 : 2;
      const r = await train({
        model: 'dnn',
        data: [join(prep, 'train.arrow')],
        validation: [join(prep, 'test.arrow')],
        out: join(dir, `ps-${s}`),
        epochs: 6,
        lr: s === 'adag' ? 0.01 : 0.003,
        seed: 2,
        distributed: { workers: 2, strategy: strategyParams(s as Strategy, { window }) },
      });
      const last = r.epochs[r.epochs.length - 1]!;
      t.diagnostic(`${s}: mean val AUC ${r.epochs.map((e) => meanAuc(e).toFixed(3)).join(' → ')}; ps_updates ${String(last.ps_updates)}, staleness mean ${String(last.staleness_mean)} max ${String(last.staleness_max)}`);
      assert.equal(last.strategy, s);
      assert.equal(last.workers, 2);
      assert.ok((last.ps_updates as number) > 0);
      // commits of the window strategies go stale while the other worker commits; the elastic ones pull and
      // commit back to back, so they rarely do
      if (s !== 'aeasgd' && s !== 'eamsgd') assert.ok(r.epochs.some((e) => (e.staleness_max as number) >= 1), 'two workers make stale commits');
      assert.ok(r.epochs.every((e) => typeof e.staleness_mean === 'number'));
      assert.ok(meanAuc(last) > meanAuc(r.epochs[0]!) || meanAuc(last) > 0.85, 'the center learns');
      assert.ok(meanAuc(last) > 0.75, `mean AUC ${meanAuc(last)}`);
    });
  }

  test('a worker SIGKILLed mid-epoch: sync restarts the epoch with the survivor; the AUC ends within 1 % of an undisturbed run', async (t) => {
    const args = (out: string) => ['--model', 'inclusive', '--data', join(prep, 'train.arrow'), '--validation', join(prep, 'test.arrow'), '--out', out, '--epochs', '8', '--lr', '0.003', '--seed', '1', '--workers', '2', '--progress', 'json', '--json'];
    const clean = await runTrain(args(join(dir, 'f-clean')));
    assert.equal(clean.code, 0, clean.stderr);
    const pids: number[] = [];
    let killedAt = 0;
    let killed = -1;
    const faulty = await runTrain(args(join(dir, 'f-kill')), (line) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as { event: string; state?: string; pid?: number; epoch?: number; rows?: number };
      if (e.event === 'worker' && e.state === 'joined') pids.push(e.pid!);
      if (e.event === 'progress' && e.epoch === 2 && e.rows! > 0 && killed < 0) {
        killed = pids[1]!;
        killedAt = Date.now();
        process.kill(killed, 'SIGKILL');
      }
    });
    assert.equal(faulty.code, 0, faulty.stderr);
    assert.ok(killed > 0, 'a worker was killed');
    const lost = faulty.stderr.split('\n').find((l) => l.includes('"state":"lost"'));
    assert.ok(lost, faulty.stderr);
    t.diagnostic(`noticed: ${lost}`);
    assert.match(faulty.stderr, /restarting epoch 2 with 1 worker/);
    const res = (o: string) => JSON.parse(o) as { epochs: { epoch: number; workers: number; restarts: number; val_auc: Record<string, number> }[] };
    const f = res(faulty.stdout);
    const c = res(clean.stdout);
    assert.equal(f.epochs.length, 8);
    assert.equal(f.epochs[1]!.restarts, 1);
    assert.equal(f.epochs[1]!.workers, 1);
    assert.equal(f.epochs[7]!.workers, 1);
    assert.equal(c.epochs[7]!.workers, 2);
    const af = meanAuc(f.epochs[7]!);
    const ac = meanAuc(c.epochs[7]!);
    t.diagnostic(`mean val AUC: undisturbed ${ac.toFixed(4)}, with a worker killed ${af.toFixed(4)} (killed ${Date.now() - killedAt} ms before the end)`);
    assert.ok(Math.abs(af - ac) / ac <= 0.01, `AUC ${af} vs ${ac}`);
    assert.ok(!alive(killed));
  });

  test('a worker SIGKILLed mid-epoch: an async strategy (downpour) goes on without it', async (t) => {
    const pids: number[] = [];
    let killed = -1;
    const t0 = Date.now();
    let noticedMs = -1;
    const r = await runTrain(
      ['--model', 'inclusive', '--data', join(prep, 'train.arrow'), '--validation', join(prep, 'test.arrow'), '--out', join(dir, 'f-async'), '--epochs', '3', '--lr', '0.003', '--seed', '1', '--workers', '2', '--strategy', 'downpour', '--progress', 'json', '--json'],
      (line) => {
        if (!line.startsWith('{')) return;
        const e = JSON.parse(line) as { event: string; state?: string; pid?: number; epoch?: number; rows?: number };
        if (e.event === 'worker' && e.state === 'joined') pids.push(e.pid!);
        if (e.event === 'progress' && e.epoch === 2 && e.rows! > 0 && killed < 0) {
          killed = pids[0]!;
          process.kill(killed, 'SIGKILL');
          noticedMs = Date.now();
        }
        if (e.event === 'worker' && e.state === 'lost') noticedMs = Date.now() - noticedMs;
      },
    );
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`the coordinator noticed the loss after ${noticedMs} ms; run ${Date.now() - t0} ms`);
    assert.ok(noticedMs >= 0 && noticedMs < 5000);
    const res = JSON.parse(r.stdout) as { epochs: { workers: number; workers_lost: number; val_auc: Record<string, number> }[] };
    assert.equal(res.epochs[1]!.workers_lost, 1);
    assert.equal(res.epochs[2]!.workers, 1);
    assert.ok(meanAuc(res.epochs[2]!) > 0.8);
  });

  test('the coordinator SIGKILLed: its workers exit, and --resume continues from the last checkpoint', async () => {
    const out = join(dir, 'c-kill');
    const args = ['--model', 'dnn', '--data', join(prep, 'train.arrow'), '--out', out, '--epochs', '400', '--seed', '1', '--workers', '2', '--progress', 'json'];
    const pids: number[] = [];
    const r = await runTrain(args, (line, child) => {
      if (line.includes('"state":"joined"')) pids.push((JSON.parse(line) as { pid: number }).pid);
      if (/epoch 3:/.test(line)) child.kill('SIGKILL');
    });
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(pids.length, 2);
    assert.ok(await until(() => pids.every((p) => !alive(p)), 5000), 'the workers exit when the coordinator is gone');
    const st = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')) as { epoch: number; distributed: { strategy: string; workers: number } };
    assert.ok(st.epoch >= 3);
    assert.deepEqual(st.distributed, { strategy: 'sync', workers: 2 });
    const target = st.epoch + 2;
    const r2 = await runTrain([...args.slice(0, args.indexOf('--epochs')), '--epochs', String(target), '--seed', '1', '--workers', '2', '--resume', '--progress', 'none']);
    assert.equal(r2.code, 0, r2.stderr);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, target);
    assert.ok(existsSync(join(out, `checkpoints/epoch-${String(target).padStart(4, '0')}`)));
  });

  test('remote roles: --coordinator HOST:PORT waits for N `--join` workers over TCP', async () => {
    const port = 20000 + (process.pid % 20000);
    const coord = runTrain(['--model', 'dnn', '--data', join(prep, 'train.arrow'), '--out', join(dir, 'remote'), '--epochs', '2', '--seed', '1', '--workers', '2', '--coordinator', `127.0.0.1:${port}`, '--json']);
    const w = [0, 1].map((k) =>
      spawn(process.execPath, [BIN, 'train', '--join', `127.0.0.1:${port}`, '--rank', String(k)], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const outs = w.map((c) => {
      let s = '';
      c.stdout!.on('data', (d: Buffer) => (s += d.toString()));
      return () => s;
    });
    const codes = w.map((c) => new Promise<number | null>((r) => c.on('close', (code) => r(code))));
    const res = await coord;
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await Promise.all(codes), [0, 0]);
    assert.deepEqual(outs.map((o) => o()), ['', ''], 'workers print nothing on stdout');
    const j = JSON.parse(res.stdout) as { epochs: { workers: number }[] };
    assert.equal(j.epochs[1]!.workers, 2);
    // same bits as local workers over Unix sockets
    await train({ model: 'dnn', data: [join(prep, 'train.arrow')], out: join(dir, 'remote-local'), epochs: 2, seed: 1, distributed: { workers: 2, strategy: strategyParams('sync') } });
    assert.deepEqual(readFileSync(join(dir, 'remote', 'weights.bin')), readFileSync(join(dir, 'remote-local', 'weights.bin')));
  });

  test('multi-host: coordinator and two workers in separate network namespaces (veth + bridge) train over TCP', async (t) => {
    const why = await netnsAvailable();
    if (why) {
      console.error(`SKIPPING the network-namespace training test: ${why}`);
      t.skip(why);
      return;
    }
    const lab = await createLab(['coord', 'w0', 'w1']);
    try {
      const addr = `${lab.ip('coord')}:7777`;
      const out = join(dir, 'netns');
      const run = (host: string, args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const c = lab.spawn(host, process.execPath, [BIN, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
          c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          c.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      // the workers start first: they keep trying until the coordinator listens
      const workers = [run('w0', ['--join', addr, '--rank', '0']), run('w1', ['--join', addr, '--rank', '1'])];
      await new Promise((r) => setTimeout(r, 500));
      const coord = await run('coord', ['--model', 'dnn', '--data', join(prep, 'train.arrow'), '--validation', join(prep, 'test.arrow'), '--out', out, '--epochs', '2', '--seed', '1', '--workers', '2', '--coordinator', addr, '--json']);
      const ws = await Promise.all(workers);
      assert.equal(coord.code, 0, coord.stderr);
      for (const w of ws) assert.equal(w.code, 0, w.stderr);
      // the ring ran between the workers' own addresses
      assert.match(coord.stderr, new RegExp(`rank 0: pid \\d+ .*ring ${lab.ip('w0').replaceAll('.', '\\.')}:\\d+`));
      assert.match(coord.stderr, new RegExp(`rank 1: pid \\d+ .*ring ${lab.ip('w1').replaceAll('.', '\\.')}:\\d+`));
      t.diagnostic(coord.stderr.split('\n').filter((l) => /joined|epoch \d:/.test(l)).join('\n'));
      const j = JSON.parse(coord.stdout) as { epochs: { workers: number; allreduce_bytes_per_step: number }[] };
      assert.equal(j.epochs[1]!.workers, 2);
      assert.ok(j.epochs[1]!.allreduce_bytes_per_step > 0);
      // the same bits as two local workers over Unix sockets
      await train({ model: 'dnn', data: [join(prep, 'train.arrow')], out: join(dir, 'netns-local'), epochs: 2, seed: 1, distributed: { workers: 2, strategy: strategyParams('sync') } });
      assert.deepEqual(readFileSync(join(out, 'weights.bin')), readFileSync(join(dir, 'netns-local', 'weights.bin')));
    } finally {
      await lab.cleanup();
    }
  });

  test('usage errors exit 2; a missing data file exits 3 before any worker starts', async () => {
    const base = ['--model', 'dnn', '--out', join(dir, 'err')];
    for (const args of [
      [...base, '--data', join(prep, 'train.arrow'), '--strategy', 'adag'],
      [...base, '--data', join(prep, 'train.arrow'), '--coordinator', '127.0.0.1:1'],
      ['--join', 'nowhere'],
      [...base, '--data', '-', '--workers', '2', '--epochs', '1'],
      [...base, '--data', join(prep, 'train.arrow'), '--workers', '2', '--strategy', 'aeasgd', '--rho', 'x'],
    ]) {
      const r = await runTrain(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const r = await runTrain([...base, '--data', join(dir, 'absent.arrow'), '--workers', '2']);
    assert.equal(r.code, 3, r.stderr);
  });
});
