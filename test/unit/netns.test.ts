// The multi-host harness (test/helpers/netns.ts): hosts in separate network namespaces reach each other
// over TCP through the lab's bridge, not through each other's loopback, and cleanup leaves nothing behind.
// Needs root + iproute2; skips (loudly) elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createLab, IP, netnsAvailable, sweepStaleNamespaces, type NetnsLab } from '../helpers/netns.js';

// Echo server: argv = [host, port, tag]; prints "listening <port>" once bound; answers each line with
// "<tag>|<peer address>|<line>".
const SERVER = `
const net = require('net');
const [host, port, tag] = process.argv.slice(1);
const srv = net.createServer((s) => {
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) {
      s.write(tag + '|' + s.remoteAddress + '|' + buf.slice(0, i) + '\\n');
      buf = buf.slice(i + 1);
    }
  });
  s.on('error', () => {});
});
srv.listen(Number(port), host, () => console.log('listening ' + srv.address().port));
`;

// Client: argv = [host, port, message]; prints JSON {reply, ms} or {error}; exits 0 either way.
const CLIENT = `
const net = require('net');
const [host, port, msg] = process.argv.slice(1);
const t0 = performance.now();
const s = net.connect({ host, port: Number(port), timeout: 3000 });
let buf = '';
const done = (o) => { console.log(JSON.stringify(o)); s.destroy(); process.exit(0); };
s.setEncoding('utf8');
s.on('connect', () => s.write(msg + '\\n'));
s.on('data', (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) done({ reply: buf.slice(0, i), ms: performance.now() - t0 }); });
s.on('timeout', () => done({ error: 'ETIMEDOUT' }));
s.on('error', (e) => done({ error: e.code || String(e) }));
`;

interface ClientResult {
  reply?: string;
  error?: string;
  ms?: number;
}

/** Starts the echo server in `host`, bound to `bindIp`; resolves with its port once it listens. */
async function startServer(lab: NetnsLab, host: string, bindIp: string, tag: string): Promise<{ child: ChildProcess; port: number }> {
  const child = lab.spawn(host, process.execPath, ['-e', SERVER, bindIp, '0', tag]);
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server in ${host} did not start: ${err}`)), 10000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server in ${host} exited (${code}): ${err}`));
    });
  });
  return { child, port };
}

async function connectFrom(lab: NetnsLab, host: string, ip: string, port: number, msg: string): Promise<ClientResult> {
  const r = await lab.exec(host, process.execPath, ['-e', CLIENT, ip, String(port), msg], { timeoutMs: 15000 });
  assert.equal(r.code, 0, `client in ${host} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as ClientResult;
}

function namespaces(): string[] {
  return execFileSync(IP, ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((s): s is string => !!s);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let skipReported = false;
async function skipReason(): Promise<string | undefined> {
  const reason = await netnsAvailable();
  if (reason && !skipReported) console.error(`SKIPPING network-namespace tests: ${reason}`);
  skipReported = true;
  return reason;
}

test('netns lab: three hosts talk over TCP through the lab network only', { timeout: 120_000 }, async (t) => {
  const reason = await skipReason();
  if (reason) return t.skip(reason);

  const lab = await createLab(['coord', 'w1', 'w2']);
  t.after(() => lab.cleanup());
  console.error(`lab of ${lab.hosts.length} hosts (${lab.subnet}) created in ${lab.createdInMs.toFixed(0)} ms`);
  const [coord, w1, w2] = lab.hosts;
  assert.ok(coord && w1 && w2);
  assert.equal(new Set(lab.hosts.map((h) => h.ip)).size, 3);
  for (const h of lab.hosts) assert.ok(h.ns.startsWith(`hepml-${process.pid}-`), h.ns);
  const mine = lab.hosts.map((h) => h.ns).concat(lab.switchNs);
  const listed = namespaces();
  for (const ns of mine) assert.ok(listed.includes(ns), `${ns} not in ip netns list`);

  const server = await startServer(lab, 'coord', coord.ip, 'coord');

  await t.test('workers reach the coordinator on its lab address', async () => {
    const [r1, r2] = await Promise.all([
      connectFrom(lab, 'w1', coord.ip, server.port, 'hello from w1'),
      connectFrom(lab, 'w2', coord.ip, server.port, 'hello from w2'),
    ]);
    // The server saw each worker's own lab address: the traffic crossed the bridge.
    assert.deepEqual(r1.reply, `coord|${w1.ip}|hello from w1`, JSON.stringify(r1));
    assert.deepEqual(r2.reply, `coord|${w2.ip}|hello from w2`, JSON.stringify(r2));
  });

  await t.test("a server on the coordinator's loopback is unreachable from a worker", async () => {
    const local = await startServer(lab, 'coord', '127.0.0.1', 'coord-lo');
    // Positive control: reachable inside its own namespace.
    const self = await connectFrom(lab, 'coord', '127.0.0.1', local.port, 'self');
    assert.equal(self.reply, 'coord-lo|127.0.0.1|self', JSON.stringify(self));
    // w1's 127.0.0.1 is w1's own loopback, where nothing listens on that port.
    const viaLo = await connectFrom(lab, 'w1', '127.0.0.1', local.port, 'x');
    assert.equal(viaLo.error, 'ECONNREFUSED', JSON.stringify(viaLo));
    // Nor is it exposed on the coordinator's lab address.
    const viaLab = await connectFrom(lab, 'w1', coord.ip, local.port, 'x');
    assert.equal(viaLab.error, 'ECONNREFUSED', JSON.stringify(viaLab));
  });

  await t.test('workers reach each other', async () => {
    const s1 = await startServer(lab, 'w1', w1.ip, 'w1');
    const s2 = await startServer(lab, 'w2', w2.ip, 'w2');
    const [a, b] = await Promise.all([
      connectFrom(lab, 'w1', w2.ip, s2.port, 'ping w2'),
      connectFrom(lab, 'w2', w1.ip, s1.port, 'ping w1'),
    ]);
    assert.equal(a.reply, `w2|${w1.ip}|ping w2`, JSON.stringify(a));
    assert.equal(b.reply, `w1|${w2.ip}|ping w1`, JSON.stringify(b));
  });

  await t.test('the root namespace gets no lab interfaces', () => {
    const rootLinks = execFileSync(IP, ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!rootLinks.includes(`hepml-${process.pid}-`), rootLinks);
    const sw = execFileSync(IP, ['-n', lab.switchNs, '-o', 'link', 'show', 'master', 'br0'], { encoding: 'utf8' });
    assert.equal(sw.trim().split('\n').length, 3, sw);
  });

  await t.test('cleanup kills the lab processes and removes its namespaces, idempotently', async () => {
    const pid = server.child.pid!;
    assert.ok(isAlive(pid));
    const t0 = performance.now();
    await lab.cleanup();
    console.error(`lab cleaned up in ${(performance.now() - t0).toFixed(0)} ms`);
    await lab.cleanup();
    assert.ok(server.child.exitCode !== null || server.child.signalCode !== null, 'server still running');
    assert.ok(!isAlive(pid), 'server pid alive');
    const left = namespaces();
    for (const ns of mine) assert.ok(!left.includes(ns), `${ns} still listed`);
    assert.deepEqual(left.filter((ns) => ns.startsWith(`hepml-${process.pid}-`)), []);
    assert.throws(() => lab.spawn('w1', 'true', []), /cleaned up/);
  });
});

test('netns lab: latencyMs adds netem delay when the kernel has it', { timeout: 60_000 }, async (t) => {
  const reason = await skipReason();
  if (reason) return t.skip(reason);
  const oneWay = 25;
  const lab = await createLab(['a', 'b'], { latencyMs: oneWay });
  t.after(() => lab.cleanup());
  assert.equal(lab.latency.requestedMs, oneWay);
  const a = lab.host('a');
  const server = await startServer(lab, 'a', a.ip, 'a');
  const r = await connectFrom(lab, 'b', a.ip, server.port, 'hi');
  assert.equal(r.reply, `a|${lab.ip('b')}|hi`, JSON.stringify(r));
  if (!lab.latency.applied) {
    assert.ok(lab.latency.reason, 'no reason given for missing latency');
    console.error(`SKIPPING netem check: ${lab.latency.reason}`);
    return t.skip(lab.latency.reason);
  }
  // connect (1 RTT) + request/reply (1 RTT) = 4 one-way delays.
  assert.ok(r.ms! >= 4 * oneWay * 0.9, `round trips took ${r.ms} ms, expected >= ${4 * oneWay}`);
  console.error(`with ${oneWay} ms one-way netem delay: connect + echo took ${r.ms!.toFixed(1)} ms`);
});

test('sweepStaleNamespaces removes namespaces of dead runs only', { timeout: 60_000 }, async (t) => {
  const reason = await skipReason();
  if (reason) return t.skip(reason);
  // A pid that has just exited stands for a crashed run.
  const gone = spawn('true');
  await once(gone, 'exit');
  const deadPid = gone.pid!;
  assert.ok(!isAlive(deadPid));
  const stale = `hepml-${deadPid}-0-stale`;
  execFileSync(IP, ['netns', 'add', stale]);
  // A process left running inside it, as a crashed run's server would be.
  const orphan = spawn(IP, ['netns', 'exec', stale, 'sleep', '60'], { stdio: 'ignore' });
  const orphanExit = once(orphan, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  // Wait until it is inside the namespace (ip netns exec has exec'd sleep). A concurrently running copy of
  // this file may sweep the namespace at any moment (it is stale for everyone): then `ip netns pids` fails.
  for (let i = 0; i < 100; i++) {
    let pids = '';
    try {
      pids = execFileSync(IP, ['netns', 'pids', stale], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      break;
    }
    if (pids) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.after(() => {
    orphan.kill('SIGKILL');
    try {
      execFileSync(IP, ['netns', 'delete', stale], { stdio: 'ignore' });
    } catch {
      /* removed by the sweep */
    }
  });
  const live = await createLab(['only'], { sweep: false });
  t.after(() => live.cleanup());

  const removed = await sweepStaleNamespaces();
  assert.ok(!removed.some((ns) => ns.startsWith(`hepml-${process.pid}-`)), 'swept a live namespace');
  const left = namespaces();
  // Removed by this sweep, or (when another copy of this file runs concurrently) by that copy's.
  assert.ok(!left.includes(stale), `${stale} survived; swept ${JSON.stringify(removed)}`);
  assert.ok(left.includes(live.host('only').ns));
  const [code, signal] = await orphanExit;
  if (removed.includes(stale)) assert.equal(signal, 'SIGKILL', `orphan exited with ${code}`);
  else console.error(`${stale} was swept by a concurrent run; orphan exited with ${signal ?? code}`);
});
