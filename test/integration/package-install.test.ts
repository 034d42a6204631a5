/**
 * The published package, as a user gets it: `npm pack` → `npm install -g --prefix TMP hep-ml-X.tgz` → the
 * installed `hep-ml` run from an unrelated directory (not the repository, not the prefix).
 *
 * Checks the tarball's contents (dist with the GRU kernel's .wasm, the jsroot stub, no sources/tests, only the
 * bundled jsroot tree under node_modules), that the global install needs no native build (jsroot's canvas,
 * jsdom, three, mathjax, resvg-js and zstd-js are the bundled stub: a global install ignores the root
 * "overrides", see docs/decisions.md "Packaging"), that nothing in the installed tree points back into the
 * repository, and that commands work that resolve assets relative to their modules: ROOT reading (native
 * LZMA, ZSTD), generate | features, prepare, train dnn (tfjs wasm backend) and gru (our wasm kernel), and
 * evaluate's PNG plots (@resvg/resvg-wasm).
 *
 * @tensorflow/tfjs-node (optional) downloads libtensorflow from storage.googleapis.com in its install script;
 * here that URL is pointed at a closed local port, so the script fails at once everywhere (as it does on a
 * machine without that host), npm drops the optional package, and training must run on the wasm engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { REPO_ROOT, hasTestdata, testdataDir } from '../helpers/truth.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  overrides?: Record<string, string>;
  bundleDependencies?: string[];
};

const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' });
const skip = npmVersion.status === 0 ? false : `npm is not available (${npmVersion.error?.message ?? npmVersion.stderr}): cannot pack and install hep-ml`;

const data = testdataDir();
const skipData = hasTestdata(data) ? false : `HEPML_TESTDATA not found: ${data} (the installed hep-ml is not tried on real ROOT files)`;

/** The environment of npm and of the installed hep-ml: the caller's, less what would leak the repository in. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // `npm test` exports npm_package_*, npm_lifecycle_*, npm_config_local_prefix/global_prefix ...; the test
    // runner may carry a tsx loader in NODE_OPTIONS. A user's shell has none of them.
    if (/^npm_(package|lifecycle)_/i.test(k) || /^npm_config_(local_prefix|global_prefix|prefix|global|dry_run)$/i.test(k)) continue;
    if (k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 1 << 26 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r;
}

function describeFailure(what: string, r: SpawnSyncReturns<string>): string {
  return `${what} exited ${r.status}${r.signal ? ` (${r.signal})` : ''}\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-2000)}`;
}

function walk(dir: string, visit: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    visit(p);
    const st = lstatSync(p);
    if (st.isDirectory() && !st.isSymbolicLink()) walk(p, visit);
  }
}

/** Sources whose dist/ output is missing or older than the source (a stale dist/ would be what gets packed). */
function staleDist(): string[] {
  const stale: string[] = [];
  const src = join(REPO_ROOT, 'src');
  walk(src, (p) => {
    if (!p.endsWith('.ts') || p.endsWith('.d.ts')) return;
    const js = join(REPO_ROOT, 'dist', relative(src, p)).replace(/\.ts$/, '.js');
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(p).mtimeMs) stale.push(relative(REPO_ROOT, p));
  });
  const wasm = join(REPO_ROOT, 'dist/train/gru/gru.wasm');
  if (!existsSync(wasm) || !readFileSync(wasm).equals(readFileSync(join(REPO_ROOT, 'src/train/gru/gru.wasm')))) stale.push('src/train/gru/gru.wasm');
  return stale;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  bundled: string[];
  files: { path: string; size: number }[];
}

describe('npm pack → npm install -g → hep-ml from any directory', { skip }, () => {
  let tmp = '';
  let prefix = '';
  let work = '';
  let tarball = '';
  let packed: PackResult;
  let installed = '';
  /** The installed hep-ml, through PATH as a user's shell finds it. */
  let env: NodeJS.ProcessEnv = {};
  const hepml = (args: string[], timeoutMs = 60_000) => run('hep-ml', args, { cwd: work, env, timeoutMs });
  const shell = (cmd: string, timeoutMs = 60_000) => run('bash', ['-c', `set -euo pipefail; ${cmd}`], { cwd: work, env, timeoutMs });

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hepml-pkg-'));
    prefix = join(tmp, 'prefix');
    work = join(tmp, 'elsewhere');
    mkdirSync(join(tmp, 'pack'));
    mkdirSync(work);

    // dist/ fresh: `npm test` builds it just before the tests (scripts/test.mjs), so it is packed as it is
    // (--ignore-scripts: rebuilding it here would rewrite dist/ under CLI tests running beside this file);
    // run alone with an out-of-date dist/, build first, as `npm pack`'s "prepare" would.
    const stale = staleDist();
    if (stale.length > 0) {
      console.log(`dist/ is out of date (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', ...' : ''}): building`);
      const b = run(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, timeoutMs: 300_000 });
      assert.equal(b.status, 0, describeFailure('node scripts/build.mjs', b));
    }

    let t0 = performance.now();
    const p = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', join(tmp, 'pack')], { cwd: REPO_ROOT });
    assert.equal(p.status, 0, describeFailure('npm pack', p));
    packed = (JSON.parse(p.stdout) as PackResult[])[0]!;
    tarball = join(tmp, 'pack', packed.filename);
    const packS = (performance.now() - t0) / 1000;
    assert.ok(existsSync(tarball), `npm pack wrote no ${tarball}`);

    t0 = performance.now();
    const i = run(
      'npm',
      ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn', tarball],
      // A closed port: tfjs-node's libtensorflow download fails at once (see the header comment).
      { cwd: work, env: cleanEnv({ TFJS_NODE_BASE_URI: 'http://127.0.0.1:1/' }), timeoutMs: 240_000 },
    );
    const installS = (performance.now() - t0) / 1000;
    assert.equal(i.status, 0, describeFailure(`npm install -g --prefix ${prefix} ${packed.filename}`, i));
    installed = join(prefix, 'lib', 'node_modules', 'hep-ml');
    console.log(
      `npm ${npmVersion.stdout.trim()}: pack ${packS.toFixed(1)} s, ${(packed.size / 1e6).toFixed(2)} MB (${(packed.unpackedSize / 1e6).toFixed(1)} MB unpacked, ${packed.entryCount} files); install -g ${installS.toFixed(1)} s`,
    );
    env = cleanEnv({ PATH: `${join(prefix, 'bin')}${process.platform === 'win32' ? ';' : ':'}${process.env.PATH ?? ''}` });
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball: dist/ with the GRU kernel, bin, the jsroot stub, the bundled jsroot tree, nothing else', () => {
    const paths = packed.files.map((f) => f.path);
    for (const need of ['package.json', 'oclif.manifest.json', 'bin/run.js', 'dist/index.js', 'dist/commands/train.js', 'dist/train/gru/gru.wasm', 'packages/jsroot-unused/index.js', 'node_modules/jsroot/package.json']) {
      assert.ok(paths.includes(need), `${need} is not in ${packed.filename}`);
    }
    // Only jsroot and its own dependencies are bundled (the six heavy ones as the stub).
    const jsrootDeps = Object.keys((JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/jsroot/package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
    const bundleOk = new Set(['jsroot', ...jsrootDeps]);
    assert.deepEqual([...packed.bundled].sort(), [...bundleOk].sort(), 'bundled packages');
    // the shipped manifest names exactly the shipped commands (a stale one would hide or break a command)
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, unknown> };
    const shipped = paths.filter((p) => /^dist\/commands\/.*\.js$/.test(p)).map((p) => p.slice('dist/commands/'.length, -3).replaceAll('/', ':'));
    assert.deepEqual(Object.keys(manifest.commands).sort(), shipped.sort(), 'oclif.manifest.json lists the commands in dist/commands');
    const top = /^(bin|dist|packages)\/|^(package\.json|oclif\.manifest\.json|README\.md|LICENSE)$/;
    const odd = paths.filter((p) => {
      if (top.test(p)) return false;
      const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(p);
      return !(m && bundleOk.has(m[1]!));
    });
    assert.deepEqual(odd, [], 'files outside bin/, dist/, packages/ and the bundled jsroot tree');
    // dist/ holds only compiled sources: a .js without its src/*.ts is a leftover of a deleted source.
    const orphans = paths.filter((p) => p.startsWith('dist/') && p.endsWith('.js') && !existsSync(join(REPO_ROOT, 'src', p.slice(5).replace(/\.js$/, '.ts'))));
    assert.deepEqual(orphans, [], 'dist/ files without a source: rm -rf dist && npm run build');
    // The stubs, not the real packages (mathjax alone is 24 MB, three 24 MB): about 7 MB in all today.
    for (const name of Object.keys(pkg.overrides ?? {})) {
      const f = packed.files.find((x) => x.path === `node_modules/${name}/index.js`);
      assert.ok(f && f.size < 2000, `node_modules/${name} in the tarball is not the jsroot-unused stub`);
    }
    assert.ok(packed.size < 10e6, `tarball is ${(packed.size / 1e6).toFixed(1)} MB (expected ≈ 7 MB)`);
  });

  test('the install: no native build of jsroot’s graphics deps, nothing linked back into the repository', () => {
    for (const name of Object.keys(pkg.overrides ?? {})) {
      const dir = join(installed, 'node_modules', name);
      const stub = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string };
      assert.equal(stub.name, 'jsroot-unused', `${name} was installed from the registry, not the bundled stub`);
      assert.ok(!existsSync(join(dir, 'build')), `${name} has a native build directory`);
    }
    assert.ok(!existsSync(join(installed, 'node_modules/@tensorflow/tfjs-node')), 'tfjs-node stayed installed although its binary could not be fetched');
    assert.deepEqual(
      readFileSync(join(installed, 'dist/train/gru/gru.wasm')),
      readFileSync(join(REPO_ROOT, 'src/train/gru/gru.wasm')),
      'the installed GRU kernel differs from src/train/gru/gru.wasm',
    );
    const outside: string[] = [];
    walk(installed, (p) => {
      if (!lstatSync(p).isSymbolicLink()) return;
      const target = resolve(dirname(p), readlinkSync(p));
      if (!target.startsWith(prefix + sep)) outside.push(`${relative(installed, p)} → ${target}`);
    });
    assert.deepEqual(outside, [], 'symlinks out of the install prefix');
    assert.equal(realpathSync(join(prefix, 'bin', 'hep-ml')), join(realpathSync(installed), 'bin', 'run.js'));
  });

  test('hep-ml --version and --help from an unrelated directory', () => {
    const v = hepml(['--version']);
    assert.equal(v.status, 0, describeFailure('hep-ml --version', v));
    assert.match(v.stdout, new RegExp(`^hep-ml/${pkg.version.replace(/\./g, '\\.')} `), `--version printed ${JSON.stringify(v.stdout)}`);
    const h = hepml(['--help']);
    assert.equal(h.status, 0, describeFailure('hep-ml --help', h));
    for (const c of ['ingest', 'features', 'train', 'evaluate', 'serve']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`), `--help does not list ${c}`);
  });

  test('hep-ml ls and ingest on real ROOT files (zlib, LZMA through the native binding, ZSTD)', { skip: skipData }, () => {
    const hzz = (codec: string) => join(data, 'root', `uproot-HZZ${codec}.root`);
    const l = hepml(['ls', hzz('')]);
    assert.equal(l.status, 0, describeFailure('hep-ml ls', l));
    assert.match(l.stdout, /TTree events;1\s+2,421 entries/);
    assert.match(l.stdout, /\bNJet\b.*\bint32\b/);

    const rows = new Map<string, string>();
    for (const codec of ['-zlib', '-lzma', '-zstd']) {
      const out = `hzz${codec}.arrow`;
      const r = hepml(['ingest', hzz(codec), '-b', 'NJet', '-b', 'Muon_Px', '--progress', 'none', '-o', out]);
      assert.equal(r.status, 0, describeFailure(`hep-ml ingest ${codec}`, r));
      const t = tableFromIPC(readFileSync(join(work, out)));
      assert.equal(t.numRows, 2421, `${codec}: rows`);
      assert.deepEqual(t.schema.fields.map((f) => f.name), ['NJet', 'Muon_Px'], `${codec}: columns`);
      rows.set(codec, JSON.stringify(t.toArray()));
    }
    assert.ok(rows.get('-zlib')!.includes('"Muon_Px":[') && /"NJet":[1-9]/.test(rows.get('-zlib')!), 'NJet/Muon_Px hold no values');
    assert.equal(rows.get('-lzma'), rows.get('-zlib'), 'LZMA and zlib copies of uproot-HZZ read differently');
    assert.equal(rows.get('-zstd'), rows.get('-zlib'), 'ZSTD and zlib copies of uproot-HZZ read differently');
  });

  test('generate | features | prepare, train dnn and gru, evaluate with PNG plots', () => {
    const events: Record<string, number> = { qcd: 300, ttbar: 150, wjets: 150 };
    for (const [p, n] of Object.entries(events)) {
      const r = shell(`hep-ml generate -p ${p} -n ${n} --seed 7 --progress none -o - | hep-ml features - --label ${p} --json --progress none -o ${p}.arrow`);
      assert.equal(r.status, 0, describeFailure(`hep-ml generate -p ${p} | hep-ml features`, r));
      const s = JSON.parse(r.stdout) as { events: number; selected: number };
      assert.equal(s.events, n, `${p}: events through the pipe`);
      assert.ok(s.selected > 0 && s.selected <= n, `${p}: ${s.selected} selected`);
      assert.ok(statSync(join(work, `${p}.arrow`)).size > 0);
    }
    const prep = hepml(['prepare', '--class', 'qcd=qcd.arrow', '--class', 'ttbar=ttbar.arrow', '--class', 'wjets=wjets.arrow', '-o', 'prep', '--json', '--progress', 'none']);
    assert.equal(prep.status, 0, describeFailure('hep-ml prepare', prep));
    const rows = (JSON.parse(prep.stdout) as { rows: { train: number; test: number } }).rows;
    assert.ok(rows.train > 0 && rows.test > 0, `prepare rows ${JSON.stringify(rows)}`);

    const dnn = hepml(['train', '--model', 'dnn', '--data', 'prep/train.arrow', '--out', 'dnn', '--epochs', '2', '--seed', '1', '--json', '--progress', 'none']);
    assert.equal(dnn.status, 0, describeFailure('hep-ml train --model dnn', dnn));
    const dr = JSON.parse(dnn.stdout) as { engine: string; epochs: { rows: number; loss: number }[] };
    assert.equal(dr.engine, 'wasm', 'engine auto without tfjs-node: the tfjs wasm backend (its .wasm resolved from the install)');
    assert.equal(dr.epochs.length, 2);
    assert.equal(dr.epochs[0]!.rows, rows.train);
    assert.ok(Number.isFinite(dr.epochs[1]!.loss), `dnn loss ${dr.epochs[1]!.loss}`);

    const ev = hepml(['evaluate', '-m', 'dnn', '--data', 'prep/test.arrow', '-o', 'eval', '--progress', 'none']);
    assert.equal(ev.status, 0, describeFailure('hep-ml evaluate', ev));
    const metrics = JSON.parse(readFileSync(join(work, 'eval', 'metrics.json'), 'utf8')) as { rows: number; macro_auc: number };
    assert.equal(metrics.rows, rows.test);
    assert.ok(metrics.macro_auc >= 0 && metrics.macro_auc <= 1, `macro AUC ${metrics.macro_auc}`);
    const png = readFileSync(join(work, 'eval', 'roc.png'));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'roc.png is not a PNG');
    assert.ok(png.length > 10_000, `roc.png is only ${png.length} bytes`);
    assert.match(readFileSync(join(work, 'eval', 'roc.svg'), 'utf8'), /^<svg|<\?xml/);

    const gru = hepml(['train', '--model', 'gru', '--data', 'prep/train.arrow', '--out', 'gru', '--epochs', '1', '--batch-size', '64', '--seed', '1', '--json', '--progress', 'none']);
    assert.equal(gru.status, 0, describeFailure('hep-ml train --model gru', gru));
    const gr = JSON.parse(gru.stdout) as { gruKernel: string; epochs: { rows: number; loss: number }[] };
    assert.equal(gr.gruKernel, 'wasm', 'the GRU ran without its wasm kernel (gru.wasm not found next to dist/train/gru/wasm.js?)');
    assert.equal(gr.epochs[0]!.rows, rows.train);
    assert.ok(Number.isFinite(gr.epochs[0]!.loss), `gru loss ${gr.epochs[0]!.loss}`);
  });
});
