/**
 * A throwaway multi-host network on one Linux machine, for integration tests where a coordinator and
 * workers must talk over TCP as if on different hosts: one network namespace per host, all joined by a
 * bridge that lives in its own "switch" namespace, so nothing is added to (or routed through) the
 * machine's own network namespace.
 *
 *   const reason = await netnsAvailable();          // undefined = usable; else why not (skip the test)
 *   const lab = await createLab(['coord', 'w1', 'w2']);
 *   t.after(() => lab.cleanup());
 *   const srv = lab.spawn('coord', process.execPath, ['server.js', '--listen', lab.ip('coord')]);
 *   const r = await lab.exec('w1', process.execPath, ['client.js', lab.ip('coord')]);   // { code, stdout, ... }
 *
 * Layout of a lab with hosts h0..hN-1 (namespace names share the prefix `hepml-<pid>-<n>-`):
 *
 *   hepml-<pid>-<n>-switch : lo, br0 (bridge), p0..pN-1 (veth ends, enslaved to br0)
 *   hepml-<pid>-<n>-<host> : lo (up), eth0 (veth peer of p<i>, address <subnet>.<i+1>/24)
 *
 * Interfaces are created directly inside the namespaces (never in the root namespace), so their names
 * cannot collide between concurrent labs; each lab's /24 is isolated from every other lab's (separate
 * bridges), and the third octet is still varied with the pid to keep logs unambiguous.
 *
 * Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip` from iproute2 and a kernel with veth + bridge support.
 * `latencyMs` adds `tc ... netem delay` on each host's eth0 egress (so one-way = latencyMs, RTT = 2×);
 * when `tc` or the sch_netem module is missing the lab is built without it and `lab.latency.applied`
 * is false (with the reason in `lab.latency.reason`).
 *
 * cleanup() kills every process started through spawn()/exec() (whole process groups) and anything else
 * still inside the lab's namespaces, then deletes the namespaces (which removes the veths and bridge).
 * It is idempotent, and also runs synchronously on process exit and on SIGINT/SIGTERM/SIGHUP while a lab
 * is live. Namespaces left by a run that was SIGKILLed are removed by sweepStaleNamespaces() (createLab
 * calls it first unless told not to): only those whose embedded pid is no longer alive.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A command found on PATH, else in the sbin directories (often missing from a non-login PATH), else the bare name. */
function findTool(name: string): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return name;
}

/** The `ip` (iproute2) executable the lab uses. */
export const IP = findTool('ip');
const TC = findTool('tc');

export interface LabHost {
  /** The name given to createLab. */
  name: string;
  /** Its network namespace (`hepml-<pid>-<n>-<name>`). */
  ns: string;
  /** Its address on the lab network (on eth0, /24). */
  ip: string;
}

export interface ExecResult {
  /** Exit status; null when killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the command ran past `timeoutMs` and was killed. */
  timedOut: boolean;
}

export interface ExecOptions {
  /** Kill the command (its whole process group) after this many ms. Default 30000; 0 = never. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. Without it stdin is empty. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LabOptions {
  /** The lab's /24: "10.231.7" or "10.231.7.0/24". Default 10.231.X.0/24, X derived from pid and lab number. */
  subnet?: string;
  /** One-way delay added on each host's egress with netem (RTT between two hosts = 2 × latencyMs). */
  latencyMs?: number;
  /** Remove stale `hepml-*` namespaces of dead processes first (default true). */
  sweep?: boolean;
}

export interface NetnsLab {
  hosts: LabHost[];
  /** The namespace holding the bridge. */
  switchNs: string;
  /** The lab's network, as "a.b.c.0/24". */
  subnet: string;
  latency: { requestedMs: number; applied: boolean; reason?: string };
  /** How long createLab took, in ms. */
  createdInMs: number;
  host(name: string): LabHost;
  /** The lab address of a host. */
  ip(name: string): string;
  /** The argv prefix that runs a command inside a host: [IP, 'netns', 'exec', ns]. */
  execPrefix(name: string): string[];
  /**
   * Starts `cmd args` inside a host (`ip netns exec <ns> cmd ...args`, which execs, so child.pid is the
   * command's own pid). The child leads a new process group (detached: true is forced) so that cleanup can
   * kill it with its descendants; stdio defaults to pipes.
   */
  spawn(host: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs `cmd args` inside a host to completion, collecting its output. Never rejects for a nonzero exit. */
  exec(host: string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Kills what runs in the lab and deletes its namespaces. Idempotent (later calls return the same promise). */
  cleanup(): Promise<void>;
}

const NS_PREFIX = 'hepml-';
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;

function run(cmd: string, args: string[], timeoutMs = 15000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err); // ENOENT etc.
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed; the error names the command and carries its stderr. */
async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names from `ip netns list` ("name" or "name (id: N)" per line). */
async function listNamespaces(): Promise<string[]> {
  const out = await must(IP, ['netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((s): s is string => !!s);
}

function killPidsInNsSync(ns: string): void {
  let out = '';
  try {
    out = execFileSync(IP, ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return;
  }
  for (const p of out.split(/\s+/).filter(Boolean).map(Number)) {
    if (p > 1 && p !== process.pid) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

async function killPidsInNs(ns: string): Promise<void> {
  const r = await run(IP, ['netns', 'pids', ns]).catch(() => undefined);
  if (!r || r.code !== 0) return;
  for (const p of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    if (p > 1 && p !== process.pid) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Deletes `hepml-<pid>-...` namespaces whose pid is no longer alive (runs that were SIGKILLed or crashed
 * before their exit hook ran), killing any processes still inside them first. Namespaces of live runs
 * (concurrently running test files) are left alone. Returns the names deleted.
 */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await listNamespaces();
  } catch {
    return removed;
  }
  for (const ns of names) {
    const m = /^hepml-(\d+)-/.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    // Only a dead owner makes a namespace stale. (A pid since reused keeps its namespaces until that
    // process dies too: start times cannot be compared safely with namespace mtimes, as /proc's start
    // times count boot-clock ticks and VMs that are paused or restored from snapshots shift that clock.)
    if (isAlive(pid)) continue;
    await killPidsInNs(ns);
    const r = await run(IP, ['netns', 'delete', ns]).catch(() => undefined);
    if (r && r.code === 0) removed.push(ns);
  }
  return removed;
}

let availability: Promise<string | undefined> | undefined;

/**
 * Whether labs can be built here: undefined when they can, otherwise the reason to skip (not Linux, not
 * root, no `ip`, namespace / bridge / veth creation refused). Probes by building and deleting a one-host
 * lab's worth of objects; the answer is cached for the process.
 */
export function netnsAvailable(): Promise<string | undefined> {
  availability ??= probe();
  return availability;
}

async function probe(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (platform is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return `network namespaces need root (uid ${process.getuid()})`;
  try {
    await run(IP, ['-V']);
  } catch (e) {
    return `no \`ip\` command (install iproute2): ${(e as Error).message}`;
  }
  const a = `${NS_PREFIX}${process.pid}-probe-a`;
  const b = `${NS_PREFIX}${process.pid}-probe-b`;
  try {
    await must(IP, ['netns', 'add', a]);
    await must(IP, ['netns', 'add', b]);
    await must(IP, ['-n', a, 'link', 'add', 'br0', 'type', 'bridge']);
    await must(IP, ['-n', a, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    await must(IP, ['-n', a, 'link', 'set', 'p0', 'master', 'br0']);
    const r = await run(IP, ['netns', 'exec', b, 'true']);
    if (r.code !== 0) throw new Error(`ip netns exec failed: ${r.stderr.trim()}`);
    return undefined;
  } catch (e) {
    return `cannot build a network namespace lab: ${(e as Error).message}`;
  } finally {
    await run(IP, ['netns', 'delete', b]).catch(() => undefined);
    await run(IP, ['netns', 'delete', a]).catch(() => undefined);
  }
}

// ---- process-exit safety net -------------------------------------------------------------------------

interface LiveLab {
  namespaces: string[];
  children: Set<ChildProcess>;
}
const live = new Set<LiveLab>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let exitHookInstalled = false;
let signalHooksInstalled = false;

function cleanupSync(lab: LiveLab): void {
  for (const c of lab.children) killGroup(c);
  for (const ns of lab.namespaces) killPidsInNsSync(ns);
  for (const ns of lab.namespaces) {
    try {
      execFileSync(IP, ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5000 });
    } catch {
      /* already gone */
    }
  }
  live.delete(lab);
}

function cleanupAllSync(): void {
  for (const lab of [...live]) cleanupSync(lab);
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAllSync();
  removeSignalHooks();
  // Nobody else handles it: die of it as we would have without our handler.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function installHooks(): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', cleanupAllSync);
  }
  if (!signalHooksInstalled) {
    signalHooksInstalled = true;
    for (const s of SIGNALS) process.once(s, onSignal);
  }
}

function removeSignalHooks(): void {
  if (!signalHooksInstalled) return;
  signalHooksInstalled = false;
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

// ---- labs ----------------------------------------------------------------------------------------------

let labCounter = 0;

function parseSubnet(s: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\.0(?:\/24)?)?$/.exec(s.trim());
  if (!m || m.slice(1, 4).some((o) => Number(o) > 255)) throw new Error(`subnet must look like "10.231.7" or "10.231.7.0/24", got ${JSON.stringify(s)}`);
  return `${Number(m[1])}.${Number(m[2])}.${Number(m[3])}`;
}

/**
 * Builds a lab with one namespace per name (in order: host i gets <subnet>.<i+1>). Throws (after removing
 * whatever it had made) when the network cannot be built; call netnsAvailable() first to skip instead.
 */
export async function createLab(names: string[], opts: LabOptions = {}): Promise<NetnsLab> {
  const t0 = performance.now();
  if (names.length === 0 || names.length > 250) throw new Error(`a lab needs 1..250 hosts, got ${names.length}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (!HOST_NAME.test(n) || n === 'switch') throw new Error(`bad host name ${JSON.stringify(n)} (letters, digits, _ . -; not "switch")`);
    if (seen.has(n)) throw new Error(`duplicate host name ${JSON.stringify(n)}`);
    seen.add(n);
  }
  const n = labCounter++;
  const net = opts.subnet !== undefined ? parseSubnet(opts.subnet) : `10.231.${(process.pid + n * 7) % 256}`;
  if (opts.sweep !== false) await sweepStaleNamespaces();

  const prefix = `${NS_PREFIX}${process.pid}-${n}-`;
  const switchNs = `${prefix}switch`;
  const hosts: LabHost[] = names.map((name, i) => ({ name, ns: prefix + name, ip: `${net}.${i + 1}` }));
  const state: LiveLab = { namespaces: [], children: new Set() };
  live.add(state);
  installHooks();

  const requestedMs = opts.latencyMs ?? 0;
  const latency: NetnsLab['latency'] = { requestedMs, applied: false };
  try {
    await must(IP, ['netns', 'add', switchNs]);
    state.namespaces.push(switchNs);
    await must(IP, ['-n', switchNs, 'link', 'set', 'lo', 'up']);
    await must(IP, ['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await must(IP, ['-n', switchNs, 'link', 'set', 'br0', 'up']);
    // allSettled: on a failure, every host's steps have stopped before the catch below removes them.
    const settled = await Promise.allSettled(
      hosts.map(async (h, i) => {
        await must(IP, ['netns', 'add', h.ns]);
        state.namespaces.push(h.ns);
        const port = `p${i}`;
        await must(IP, ['-n', switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
        await must(IP, ['-n', switchNs, 'link', 'set', port, 'master', 'br0']);
        await must(IP, ['-n', switchNs, 'link', 'set', port, 'up']);
        await must(IP, ['-n', h.ns, 'link', 'set', 'lo', 'up']);
        await must(IP, ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
        await must(IP, ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      }),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (requestedMs > 0) {
      let reason: string | undefined;
      for (const h of hosts) {
        const r = await run(TC, ['-n', h.ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', `${requestedMs}ms`]).catch(
          (e: Error) => ({ code: -1, stdout: '', stderr: e.message }),
        );
        if (r.code !== 0) {
          reason = `tc netem unavailable: ${r.stderr.trim() || `exit ${r.code}`}`;
          break;
        }
      }
      if (reason === undefined) latency.applied = true;
      else {
        latency.reason = reason;
        for (const h of hosts) await run(TC, ['-n', h.ns, 'qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => undefined);
      }
    }
  } catch (e) {
    cleanupSync(state);
    if (live.size === 0) removeSignalHooks();
    throw e;
  }

  const byName = new Map(hosts.map((h) => [h.name, h]));
  const host = (name: string): LabHost => {
    const h = byName.get(name);
    if (!h) throw new Error(`no host ${JSON.stringify(name)} in this lab (hosts: ${names.join(', ')})`);
    return h;
  };
  let cleaning: Promise<void> | undefined;
  let closed = false;

  const spawnIn = (name: string, cmd: string, args: string[], sopts: SpawnOptions = {}): ChildProcess => {
    if (closed) throw new Error('lab already cleaned up');
    const h = host(name);
    const child = spawn(IP, ['netns', 'exec', h.ns, cmd, ...args], { stdio: 'pipe', ...sopts, detached: true });
    state.children.add(child);
    child.once('exit', () => state.children.delete(child));
    child.once('error', () => state.children.delete(child));
    return child;
  };

  const lab: NetnsLab = {
    hosts,
    switchNs,
    subnet: `${net}.0/24`,
    latency,
    createdInMs: 0,
    host,
    ip: (name) => host(name).ip,
    execPrefix: (name) => [IP, 'netns', 'exec', host(name).ns],
    spawn: spawnIn,
    exec(name, cmd, args, eopts = {}) {
      return new Promise<ExecResult>((resolve, reject) => {
        let child: ChildProcess;
        try {
          child = spawnIn(name, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: eopts.env, cwd: eopts.cwd });
        } catch (e) {
          return reject(e);
        }
        let stdout = '';
        let stderr = '';
        let timedOut = false;
        child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.stdin!.on('error', () => {}); // EPIPE when the command does not read its input
        child.stdin!.end(eopts.input ?? '');
        const ms = eopts.timeoutMs ?? 30000;
        const timer =
          ms > 0
            ? setTimeout(() => {
                timedOut = true;
                killGroup(child);
              }, ms)
            : undefined;
        child.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr, timedOut });
        });
      });
    },
    cleanup() {
      closed = true;
      cleaning ??= (async () => {
        const waits = [...state.children].map(
          (c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()))),
        );
        for (const c of state.children) killGroup(c);
        await Promise.all(state.namespaces.map((ns) => killPidsInNs(ns)));
        await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 3000).unref())]);
        const failures: string[] = [];
        // Hosts first (their veths go with them), the switch last.
        const order = [...state.namespaces.filter((ns) => ns !== switchNs), switchNs].filter((ns) => state.namespaces.includes(ns));
        for (const ns of order) {
          const r = await run(IP, ['netns', 'delete', ns]).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
          if (r.code !== 0 && !/No such file|not found|does not exist/i.test(r.stderr)) failures.push(`${ns}: ${r.stderr.trim()}`);
        }
        live.delete(state);
        if (live.size === 0) removeSignalHooks();
        if (failures.length) throw new Error(`netns lab cleanup failed: ${failures.join('; ')}`);
      })();
      return cleaning;
    },
  };
  lab.createdInMs = performance.now() - t0;
  return lab;
}
