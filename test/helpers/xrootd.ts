/**
 * A real XRootD server (Debian's xrootd with its HTTP plugin, XrdHttp) on 127.0.0.1, for tests of remote
 * reading. Wraps scripts/xrootd-test-server.sh; install the packages with `bash .ci/install-xrootd.sh`.
 *
 *   if (!xrootdAvailable()) → skip (loudly: xrootdUnavailableReason() says what is missing)
 *   const srv = await startXrootd(dir, { tls: true });   // srv.url = https://127.0.0.1:PORT, srv.ca = cert.pem
 *   ...
 *   await srv.stop();
 *
 * Every server is also stopped when the test process exits (synchronously, on 'exit'), and the script's
 * watchdog stops it if the process dies without running exit handlers (--watch-pid).
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { REPO_ROOT } from './truth.js';

export const XROOTD_SCRIPT = join(REPO_ROOT, 'scripts', 'xrootd-test-server.sh');

export interface XrootdServer {
  /** http://127.0.0.1:PORT or https://127.0.0.1:PORT (no trailing slash); files are at `${url}/${name}` */
  url: string;
  /** the self-signed certificate (PEM path) to trust, with `tls: true` */
  ca?: string;
  /** root://127.0.0.1:PORT (the same server's native protocol) */
  rootUrl: string;
  pid: number;
  /** config, logs, pid file; removed by stop() */
  state: string;
  /** xrootd's log file (inside `state`) */
  log: string;
  stop(): Promise<void>;
}

export interface XrootdOptions {
  tls?: boolean;
  /** 0 (default) = a free port */
  port?: number;
  /** extra config lines, e.g. 'xrd.timeout idle 5' */
  extra?: string[];
  /** verbose server logging */
  trace?: boolean;
}

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
  '/usr/local/lib64',
];

let reason: string | null | undefined;

/** Why the server cannot be started here, or undefined when it can. */
export function xrootdUnavailableReason(): string | undefined {
  if (reason !== undefined) return reason ?? undefined;
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push(`platform ${process.platform} (needs Linux)`);
  if (!onPath('xrootd')) missing.push('xrootd (package xrootd-server)');
  if (!LIB_DIRS.some((d) => existsSync(join(d, 'libXrdHttp-5.so')) || existsSync(join(d, 'libXrdHttp.so')))) {
    missing.push('libXrdHttp-5.so (package xrootd-server-plugins)');
  }
  if (!onPath('perl')) missing.push('perl');
  if (!onPath('bash')) missing.push('bash');
  if (process.getuid?.() === 0 && !onPath('setpriv')) missing.push('setpriv (util-linux)');
  if (!existsSync(XROOTD_SCRIPT)) missing.push(XROOTD_SCRIPT);
  reason = missing.length ? `missing: ${missing.join(', ')}; install with: bash .ci/install-xrootd.sh` : null;
  return reason ?? undefined;
}

/** True when the XRootD server and its HTTP plugin are installed (the binaries, not a running server). */
export function xrootdAvailable(): boolean {
  return xrootdUnavailableReason() === undefined;
}

/** True when `openssl` is there (needed for { tls: true }). */
export function opensslAvailable(): boolean {
  return onPath('openssl') !== undefined;
}

const running = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const state of running) {
      spawnSync('bash', [XROOTD_SCRIPT, 'stop', state], { stdio: 'ignore', timeout: 15_000 });
    }
    running.clear();
  });
}

function run(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('bash', [XROOTD_SCRIPT, ...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${XROOTD_SCRIPT} ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${stderr}`);
        reject(e);
      } else resolve({ stdout, stderr });
    });
  });
}

/** Starts xrootd serving `dir` read-only on 127.0.0.1 (see scripts/xrootd-test-server.sh). */
export async function startXrootd(dir: string, opts: XrootdOptions = {}): Promise<XrootdServer> {
  const why = xrootdUnavailableReason();
  if (why) throw new Error(`XRootD test server unavailable: ${why}`);
  const args = ['start', dir, '--port', String(opts.port ?? 0), '--watch-pid', String(process.pid), '--timeout', '30'];
  if (opts.tls) args.push('--tls');
  if (opts.trace) args.push('--trace');
  for (const l of opts.extra ?? []) args.push('--extra', l);
  // xrootd 5.5 occasionally dies during startup (a segfault seen once in CI with --tls): try again, twice
  let stdout = '';
  for (let attempt = 1; ; attempt++) {
    try {
      ({ stdout } = await run(args, 60_000));
      break;
    } catch (e) {
      if (attempt >= 3 || !/exited during startup/.test((e as Error).message)) throw e;
      console.error(`xrootd exited during startup (attempt ${attempt}); starting it again`);
    }
  }
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv.set(m[1]!, m[2]!);
  }
  const url = kv.get('URL');
  const pid = Number(kv.get('PID'));
  const state = kv.get('STATE');
  if (!url || !state || !Number.isInteger(pid)) throw new Error(`unexpected output of ${XROOTD_SCRIPT}:\n${stdout}`);
  running.add(state);
  installExitHook();
  let stopped: Promise<void> | undefined;
  return {
    url,
    ca: kv.get('CA'),
    rootUrl: kv.get('ROOT_URL') ?? '',
    pid,
    state,
    log: kv.get('LOG') ?? state,
    stop(): Promise<void> {
      stopped ??= run(['stop', state], 30_000).then(() => {
        running.delete(state);
      });
      return stopped;
    },
  };
}
