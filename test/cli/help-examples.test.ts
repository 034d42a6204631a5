/**
 * "Every command's --help has at least one real example."
 *
 * 1. Discovery: oclif's own Config.load on the package root, as bin/run.js does (package.json oclif.commands =
 *    ./dist/commands, searched recursively): every command the CLI has, a new one included, is checked. The list is
 *    cross-checked against the files of dist/commands and src/commands, so a stale build fails with "npm run build"
 *    instead of testing yesterday's examples.
 * 2. Static: every example is rendered as oclif renders it (<%= config.bin %>), split like a shell would (|, ||, &&,
 *    ;, &, newlines, $(...) and `...` substitutions, comments, redirections, quotes), and every segment that invokes
 *    hep-ml is parsed by that command's own oclif parser: unknown flags, option values, integer values and ranges,
 *    required flags, too many arguments, exclusive/dependsOn. A non-strict command's unknown flags (which its parser
 *    would take as arguments) are refused too, and what `k8s train` passes after `--` is parsed as `train` arguments.
 *    An example must invoke the command it belongs to and must not elide anything ("...").
 * 3. Help: `hep-ml <command> --help` (a child process, as a user runs it) prints an EXAMPLES section with them.
 * 4. Real: the examples of the commands that run quickly on small inputs are run in bash with `hep-ml` on PATH, each
 *    in its own directory holding the inputs it names (toy events from generate → features → prepare → convert →
 *    a 1-epoch model, and ROOT files of $HEPML_TESTDATA under the example's names), sizes scaled down (REWRITES);
 *    each must exit 0 and leave the outputs it names. At least one example of each of those commands must run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Config, type Command } from '@oclif/core';
import { BIN, runCli } from '../helpers/cli.js';
import { REPO_ROOT, hasTestdata, testdataDir } from '../helpers/truth.js';

// ---------------------------------------------------------------------------------------------------------
// Discovery

const config = await Config.load(REPO_ROOT);
const BIN_NAME = config.bin;
const commands: Command.Loadable[] = [...config.commands].sort((a, b) => a.id.localeCompare(b.id));
const byId = new Map(commands.map((c) => [c.id, c]));
const spaced = (id: string) => id.replaceAll(':', ' ');

/** Command ids from the module files under `dir` (recursively), e.g. k8s/train.js → k8s:train. */
function idsFromFiles(dir: string, ext: RegExp): Map<string, string> {
  const out = new Map<string, string>();
  (function walk(d: string) {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (ext.test(name) && !name.endsWith('.d.ts')) out.set(relative(dir, p).replace(ext, '').split(/[\\/]/).join(':'), p);
    }
  })(dir);
  return out;
}

test('discovery: oclif finds every command, and dist/commands is built from the current src/commands', () => {
  assert.ok(commands.length > 0, 'oclif found no commands: is dist/ built (npm run build)?');
  const distIds = idsFromFiles(join(REPO_ROOT, 'dist', 'commands'), /\.js$/);
  const srcIds = idsFromFiles(join(REPO_ROOT, 'src', 'commands'), /\.ts$/);
  assert.deepEqual(commands.map((c) => c.id), [...distIds.keys()].sort(), 'oclif lists exactly the modules of dist/commands');
  const stale: string[] = [];
  for (const [id, src] of srcIds) {
    const dist = distIds.get(id);
    if (!dist) stale.push(`${id}: src/commands has it, dist/commands does not`);
    else if (statSync(dist).mtimeMs + 1000 < statSync(src).mtimeMs) stale.push(`${id}: src is newer than dist`);
  }
  for (const id of distIds.keys()) if (!srcIds.has(id)) stale.push(`${id}: in dist/commands only (a removed command)`);
  assert.deepEqual(stale, [], 'dist/ is stale: run npm run build (npm test does)');
  for (const id of ['generate', 'ingest', 'train', 'k8s:train']) assert.ok(byId.has(id), `command ${id} found`);
});

// ---------------------------------------------------------------------------------------------------------
// Examples as oclif renders them

interface Example {
  /** The example as written (for messages). */
  source: string;
  description?: string;
  /** Shell command lines, rendered (<%= config.bin %> → hep-ml), a leading "$ " removed. */
  lines: string[];
}

function render(s: string, id: string): string {
  const out = s.replace(/<%=\s*config\.bin\s*%>/g, BIN_NAME).replace(/<%=\s*command\.id\s*%>/g, spaced(id));
  if (out.includes('<%')) throw new Error(`unsupported template in example: ${s}`);
  return out;
}

/** oclif's CommandHelp.examples(): a string's first line is a description when it is not a command and every later line is. */
function examplesOf(cmd: Command.Loadable): Example[] {
  const raw = cmd.examples ?? [];
  return raw.map((ex) => {
    const isCommand = (l: string) => l.startsWith(`${BIN_NAME} `) || l === BIN_NAME || l.startsWith(`$ ${BIN_NAME}`);
    const strip = (l: string) => l.replace(/^\$ /, '');
    if (typeof ex === 'string') {
      const lines = render(ex, cmd.id).split(/\r?\n/).filter(Boolean);
      if (lines.length >= 2 && !isCommand(lines[0]!) && lines.slice(1).every(isCommand)) {
        return { source: ex, description: lines[0], lines: lines.slice(1).map(strip) };
      }
      return { source: ex, lines: lines.map(strip) };
    }
    return { source: ex.command, description: render(ex.description, cmd.id), lines: [strip(render(ex.command, cmd.id))] };
  });
}

// ---------------------------------------------------------------------------------------------------------
// A small shell lexer: enough of bash for one-line examples

interface Word {
  text: string;
  /** An unquoted $(...) or `...`: the shell splits its output into an unknown number of words. */
  split: boolean;
}
type Segment = Word[];

/** Index of the ')' that closes the '(' at `open`, skipping quoted text. */
function closeParen(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (c === "'") {
      i = src.indexOf("'", i + 1);
      if (i < 0) break;
    } else if (c === '"') {
      for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === '\\') i++;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced $( in: ${src}`);
}

/** Simple commands of a shell line, in order; those inside substitutions come first. */
function lexShell(src: string, out: Segment[] = []): Segment[] {
  let seg: Segment = [];
  let cur = '';
  let inWord = false;
  let split = false;
  let redirect = false; // the next word is a redirection target
  const endWord = () => {
    if (!inWord) return;
    if (redirect) redirect = false;
    else seg.push({ text: cur, split });
    cur = '';
    inWord = false;
    split = false;
  };
  const endSegment = () => {
    endWord();
    if (redirect) throw new Error(`redirection without a target in: ${src}`);
    if (seg.length) out.push(seg);
    seg = [];
  };
  const substitution = (at: number, quoted: boolean): number => {
    let end: number;
    if (src[at] === '`') {
      end = src.indexOf('`', at + 1);
      if (end < 0) throw new Error(`unterminated \` in: ${src}`);
      lexShell(src.slice(at + 1, end), out);
    } else {
      end = closeParen(src, at + 1);
      lexShell(src.slice(at + 2, end), out);
    }
    cur += src.slice(at, end + 1);
    inWord = true;
    if (!quoted) split = true;
    return end + 1;
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      if (src[i + 1] !== '\n') {
        cur += src[i + 1] ?? '';
        inWord = true;
      }
      i += 2;
    } else if (c === "'") {
      const j = src.indexOf("'", i + 1);
      if (j < 0) throw new Error(`unterminated ' in: ${src}`);
      cur += src.slice(i + 1, j);
      inWord = true;
      i = j + 1;
    } else if (c === '"') {
      inWord = true;
      for (i++; ; ) {
        if (i >= src.length) throw new Error(`unterminated " in: ${src}`);
        const d = src[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && '"\\$`\n'.includes(src[i + 1] ?? '')) {
          cur += src[i + 1];
          i += 2;
        } else if ((d === '$' && src[i + 1] === '(') || d === '`') i = substitution(i, true);
        else {
          cur += d;
          i++;
        }
      }
    } else if ((c === '$' && src[i + 1] === '(') || c === '`') {
      i = substitution(i, false);
    } else if (c === '#' && !inWord) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
      i++;
    } else if (c === '\n') {
      endSegment();
      i++;
    } else if (c === '>' || c === '<' || (c === '&' && src[i + 1] === '>')) {
      if (inWord && /^\d+$/.test(cur) && !split) {
        cur = ''; // a file descriptor: 2>
        inWord = false;
      } else endWord();
      i += c === '&' ? 2 : 1;
      if (src[i] === '>' || src[i] === '&') i++; // >> >& <&
      if (/\d|-/.test(src[i] ?? '') && src[i - 1] === '&') {
        i++; // 2>&1, >&-: no target word
      } else redirect = true;
    } else if (c === '|' || c === '&' || c === ';' || c === '(' || c === ')') {
      endSegment();
      i++;
      if ((c === '|' || c === '&') && (src[i] === c || (c === '|' && src[i] === '&'))) i++; // || && |&
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  endSegment();
  return out;
}

test('the shell lexer splits pipes, substitutions, comments and redirections', () => {
  const words = (s: string) => lexShell(s).map((seg) => seg.map((w) => (w.split ? `<${w.text}>` : w.text)).join(' '));
  assert.deepEqual(words(`a -o - | b "x y" 'p|q' && c; d 2>/dev/null > out.txt # e | f`), ['a -o -', 'b x y p|q', 'c', 'd']);
  assert.deepEqual(words(`a $(b --x | sed 's/^/-b /') c`), ['b --x', "sed s/^/-b /", 'a <$(b --x | sed \'s/^/-b /\')> c']);
  assert.deepEqual(words(`open "$(a run)" & b 2>&1 | c`), ['a run', 'open $(a run)', 'b', 'c']);
  assert.deepEqual(words('X=1 a --k="v w" \\\n  --z'), ['X=1 a --k=v w --z']);
  assert.throws(() => lexShell(`a 'b`), /unterminated/);
});

// ---------------------------------------------------------------------------------------------------------
// Parsing an invocation with the command's own parser

interface Invocation {
  id: string;
  argv: string[];
  flags: Record<string, unknown>;
}

/** What `k8s train` passes after `--`: the coordinator's `train` arguments. */
const PASSTHROUGH: Record<string, string> = { 'k8s:train': 'train' };
const WRAPPERS = new Set(['time', 'exec', 'nohup', 'command', 'env']);

async function parseArgv(cmd: Command.Loadable, argv: string[]): Promise<{ flags: Record<string, unknown>; nonExistentFlags: string[] }> {
  const C = (await cmd.load()) as unknown as new (argv: string[], config: Config) => {
    parse(c: unknown, argv: string[]): Promise<{ flags: Record<string, unknown>; nonExistentFlags?: string[] }>;
  };
  const instance = new C(argv, config);
  const res = await instance.parse(C, argv);
  return { flags: res.flags, nonExistentFlags: res.nonExistentFlags ?? [] };
}

/** The hep-ml invocation of a segment (undefined if it runs something else), checked; throws with the reason. */
async function checkSegment(seg: Segment): Promise<Invocation | undefined> {
  let k = 0;
  while (k < seg.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(seg[k]!.text) || WRAPPERS.has(seg[k]!.text))) k++;
  if (seg[k]?.text !== BIN_NAME) return undefined;
  // Words an unquoted substitution expands to are unknown: leave them out.
  const words = seg.slice(k + 1).filter((w) => !w.split).map((w) => w.text);
  let n = 0;
  let id = '';
  for (let j = 1; j <= words.length && !words[j - 1]!.startsWith('-'); j++) {
    if (byId.has(words.slice(0, j).join(':'))) {
      n = j;
      id = words.slice(0, j).join(':');
    }
  }
  if (!id) throw new Error(`'${BIN_NAME} ${words.slice(0, 2).join(' ')}' names no command (commands: ${commands.map((c) => spaced(c.id)).join(', ')})`);
  const cmd = byId.get(id)!;
  let argv = words.slice(n);
  const dd = argv.indexOf('--');
  const passthrough = PASSTHROUGH[id] !== undefined && dd >= 0 ? argv.slice(dd + 1) : undefined;
  if (passthrough) argv = argv.slice(0, dd);
  let parsed: Awaited<ReturnType<typeof parseArgv>>;
  try {
    parsed = await parseArgv(cmd, argv);
  } catch (e) {
    throw new Error(`${BIN_NAME} ${spaced(id)}: ${(e as Error).message.replace(/\s+/g, ' ').replace(/See more help with --help/, '').trim()}`);
  }
  if (parsed.nonExistentFlags.length) throw new Error(`${BIN_NAME} ${spaced(id)}: unknown flag(s) ${parsed.nonExistentFlags.join(', ')}`);
  if (passthrough) {
    try {
      const inner = await parseArgv(byId.get(PASSTHROUGH[id]!)!, passthrough);
      if (inner.nonExistentFlags.length) throw new Error(`unknown flag(s) ${inner.nonExistentFlags.join(', ')}`);
    } catch (e) {
      throw new Error(`${BIN_NAME} ${spaced(id)} -- (${spaced(PASSTHROUGH[id]!)} arguments): ${(e as Error).message.replace(/\s+/g, ' ').replace(/See more help with --help/, '').trim()}`);
    }
  }
  return { id, argv, flags: parsed.flags };
}

interface CheckedExample extends Example {
  cmd: string;
  index: number;
  invocations: Invocation[];
  /** It failed a static check (it is not run). */
  invalid: boolean;
}

/** Runs every static check on an example; returns its problems (none: it is fine). */
async function checkExample(cmd: Command.Loadable, ex: Example, index: number): Promise<{ problems: string[]; checked: CheckedExample }> {
  const problems: string[] = [];
  const invocations: Invocation[] = [];
  if (ex.lines.length === 0 || ex.lines.every((l) => !l.trim())) problems.push('is empty');
  if (/\.\.\.|…/.test(ex.lines.join('\n'))) problems.push('elides something ("..."): not a line anyone can run');
  for (const line of ex.lines) {
    let segments: Segment[];
    try {
      segments = lexShell(line);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    for (const seg of segments) {
      try {
        const inv = await checkSegment(seg);
        if (inv) invocations.push(inv);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  }
  if (!invocations.some((i) => i.id === cmd.id) && !problems.some((p) => p.includes('names no command'))) {
    problems.push(`does not run ${BIN_NAME} ${spaced(cmd.id)} (it runs: ${invocations.map((i) => spaced(i.id)).join(', ') || 'no hep-ml command'})`);
  }
  return { problems, checked: { ...ex, cmd: cmd.id, index, invocations, invalid: problems.length > 0 } };
}

test('the example checks catch wrong examples', async () => {
  const gen = byId.get('generate')!;
  const bad = async (line: string) => (await checkExample(gen, { source: line, lines: [line] }, 0)).problems.join('; ');
  assert.equal(await bad('hep-ml generate --process ttbar --events 10 -o t.arrow'), '');
  assert.match(await bad('hep-ml generate --process ttbar --events 10 --output-format x'), /output-format/);
  assert.match(await bad('hep-ml generate --process higgs --events 10'), /higgs|process/i);
  assert.match(await bad('hep-ml generate --process qcd --events ten'), /events|integer/i);
  assert.match(await bad('hep-ml generate --events 10'), /process/);
  assert.match(await bad('hep-ml generate --process qcd --events 10 extra.arrow'), /Unexpected argument/i);
  assert.match(await bad('hep-ml ingest a.root --no-such-flag -o x.arrow'), /--no-such-flag/);
  assert.match(await bad('hep-ml generate -p qcd -n 5 | hep-ml flattn -o x.arrow'), /names no command/);
  assert.match(await bad('hep-ml flatten x.arrow -o y.arrow'), /does not run hep-ml generate/);
  assert.match(await bad('hep-ml generate -p qcd -n 5 | hep-ml convert - --to csv -o y.csv'), /csv|to/);
  assert.match(await bad('hep-ml generate -p qcd -n 5 -o $(hep-ml ls --bogus x.root)'), /--bogus/);
  assert.match(await bad('hep-ml generate -p qcd -n 5 | curl -d "{...}" localhost'), /elides/);
  if (byId.has('k8s:train')) {
    const k8s = byId.get('k8s:train')!;
    const line = 'hep-ml k8s train --workers 2 --image img -- --model dnn --data d --out o --epoch 3';
    assert.match((await checkExample(k8s, { source: line, lines: [line] }, 0)).problems.join(';'), /train arguments.*--epoch/);
  }
});

const checkedExamples: CheckedExample[] = [];

for (const cmd of commands) {
  test(`${spaced(cmd.id)}: has examples, each a valid ${BIN_NAME} ${spaced(cmd.id)} command line`, async () => {
    const examples = examplesOf(cmd);
    assert.ok(examples.length > 0, `${BIN_NAME} ${spaced(cmd.id)} has no examples`);
    const problems: string[] = [];
    for (const [index, ex] of examples.entries()) {
      const r = await checkExample(cmd, ex, index);
      for (const p of r.problems) problems.push(`example ${index + 1} (${ex.lines.join(' ⏎ ')}): ${p}`);
      checkedExamples.push(r.checked);
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  });
}

// ---------------------------------------------------------------------------------------------------------
// --help, as a user sees it

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

test('hep-ml <command> --help shows an EXAMPLES section with every example', async () => {
  const problems: string[] = [];
  const flat = (s: string) => s.replace(/\s+/g, ' ');
  await pool(commands, 2, async (cmd) => {
    const r = await runCli([...cmd.id.split(':'), '--help'], { timeoutMs: 30000 });
    const help = r.stdout.toString();
    if (r.code !== 0) return void problems.push(`${spaced(cmd.id)}: --help exit ${r.code}: ${r.stderr}`);
    const at = help.search(/^EXAMPLES$/m);
    if (at < 0) return void problems.push(`${spaced(cmd.id)}: no EXAMPLES section in --help`);
    const section = flat(help.slice(at).split(/\n(?=[A-Z][A-Z ]+\n)/)[0]!);
    if (!section.includes(`$ ${BIN_NAME} ${spaced(cmd.id)}`)) problems.push(`${spaced(cmd.id)}: EXAMPLES has no '$ ${BIN_NAME} ${spaced(cmd.id)}'`);
    for (const ex of examplesOf(cmd)) {
      for (const line of ex.lines) {
        const start = flat(line).slice(0, 40);
        if (!section.includes(start)) problems.push(`${spaced(cmd.id)}: EXAMPLES does not show '${start}...'`);
      }
    }
  });
  assert.deepEqual(problems, [], problems.join('\n'));
});

// ---------------------------------------------------------------------------------------------------------
// Running the examples for real

/** Commands whose examples run here on small inputs (a new command joins when added here). */
const RUNNABLE = new Set(['generate', 'features', 'flatten', 'prepare', 'convert', 'ls', 'ingest', 'predict', 'evaluate', 'train', 'import-keras', 'k8s:train']);
/** Of those, the ones that must have at least one example that runs. */
const MUST_RUN = ['generate', 'features', 'flatten', 'prepare', 'convert', 'ls', 'ingest', 'predict', 'evaluate', 'train', 'k8s:train'];
/** Programs an example may pipe into that cannot run here, and why. */
const NEEDS: Record<string, string> = { kubectl: 'a Kubernetes cluster', curl: 'a running hep-ml serve', 'xdg-open': 'a desktop', open: 'a desktop' };
const OUTPUT_FLAGS = ['out', 'output', 'write-specs'];
const SHARED = resolve(REPO_ROOT, '..', 'shared');
const TESTDATA = testdataDir();

/** Sizes scaled down and repository-relative paths made absolute; [pattern, replacement]. */
const REWRITES: [RegExp, (...m: string[]) => string][] = [
  [/(--events[ =]|-n )(\d+)/g, (_, f, n) => `${f}${Math.min(Number(n), 300)}`],
  [/(--epochs[ =])(\d+)/g, (_, f, n) => `${f}${Math.min(Number(n), 2)}`],
  [/\.\.\/shared\/testdata(?=\/)/g, () => TESTDATA],
  [/\.\.\/shared\/(?=models\/)/g, () => `${SHARED}/`],
];

function which(prog: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null`, 'sh', prog]).status === 0;
}
const probes = new Map<string, boolean>();
function probe(key: string, cmd: string[]): boolean {
  if (!probes.has(key)) probes.set(key, spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }).status === 0);
  return probes.get(key)!;
}

/** Why an example is not run here; undefined: it is run. */
function notRunnable(ex: CheckedExample): string | undefined {
  if (ex.invalid) return 'fails the static checks above';
  const text = ex.lines.join('\n');
  for (const inv of ex.invocations) {
    if (inv.id === 'serve') return 'serve is a long-running server';
    if (!RUNNABLE.has(inv.id)) return `${spaced(inv.id)} is not in this test's RUNNABLE set`;
    if (inv.id === 'train' && (inv.flags.workers !== undefined || inv.flags.coordinator !== undefined || inv.flags.join !== undefined)) {
      return 'distributed training (spawns workers, or waits for other hosts)';
    }
  }
  if (/\b(https?|root):\/\//.test(text)) return 'reads a remote URL';
  const shared = text.match(/\.\.\/shared\/models\/\S+/)?.[0];
  if (shared && !existsSync(resolve(REPO_ROOT, shared))) return `${shared} is not here`;
  for (const seg of ex.lines.flatMap((l) => lexShell(l))) {
    const prog = seg.find((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w.text))?.text;
    if (!prog || prog === BIN_NAME) continue;
    if (NEEDS[prog]) return `${prog} needs ${NEEDS[prog]}`;
    if (!which(prog)) return `${prog} is not installed`;
    if (/^python3?$/.test(prog) && /pyarrow/.test(text) && !probe('pyarrow', [prog, '-c', 'import pyarrow'])) return 'pyarrow is not installed';
  }
  return undefined;
}

function rewrite(text: string): string {
  let out = text;
  for (const [re, f] of REWRITES) out = out.replace(re, f as (...a: string[]) => string);
  return out;
}

/** Runs a script in bash; resolves with its exit code and output. */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn('bash', ['-o', 'pipefail', '-e', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`did not finish within ${timeoutMs} ms: ${script}\n${out}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

/**
 * The inputs the examples name, made by the CLI itself: per-class feature files of generated events under the names
 * the examples use, a prepare output directory (prep/ and data/), Parquet copies, a 1-epoch inclusive model, the
 * Delphes and NanoAOD files of the test data under the names delphes.root / nano.root ..., their Arrow ingest, specs.
 */
async function makeFixtures(dir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const sh = async (script: string) => {
    const r = await bash(script, dir, env, 60000);
    assert.equal(r.code, 0, `fixture: ${script}\n${r.out}`);
  };
  const root = (n: string) => join(TESTDATA, 'root', n);
  for (const n of ['delphes.root', 'a.root', 'b.root']) cpSync(root('delphes-cms-10ev.root'), join(dir, n));
  for (const n of ['nano.root', 'events.root']) cpSync(root('nano_dy.root'), join(dir, n));
  const keras = join(SHARED, 'models', 'sparkdltrigger', 'myGRUmodel.keras');
  if (existsSync(keras)) cpSync(keras, join(dir, 'myGRUmodel.keras'));
  const q = '--progress none';
  // qcd passes the lepton selection rarely (about 9%), ttbar 75%, wjets 90%: about 30, 60, 55 rows.
  const classes: [string, number][] = [['qcd', 320], ['ttbar', 80], ['wjets', 60]];
  const steps = [
    ...classes.map(([p, n]) => `hep-ml generate -p ${p} -n ${n} --seed 11 ${q} | hep-ml features --label ${p} -o ${p}.arrow ${q} 2>/dev/null`),
    `hep-ml ingest nano.root -t Events -b 'Muon_*' -b nMuon -o events.arrow ${q} && hep-ml flatten events.arrow --scan-only -o specs.json ${q}`,
    `hep-ml generate -p ttbar -n 40 --seed 12 ${q} | hep-ml convert - --to parquet -o delphes.parquet ${q}`,
  ];
  await pool(steps, 2, sh);
  for (const [to, from] of Object.entries({ 'tt.arrow': 'ttbar', 'w.arrow': 'wjets', 'q1.arrow': 'qcd', 'q2.arrow': 'qcd', 'sig.arrow': 'ttbar', 'bkg.arrow': 'qcd' })) {
    cpSync(join(dir, `${from}.arrow`), join(dir, to));
  }
  await sh(`hep-ml prepare --class qcd=qcd.arrow --class ttbar=ttbar.arrow --class wjets=wjets.arrow --out prep/ ${q} && cp -r prep data`);
  await pool([
    `hep-ml train --model inclusive --data prep/train.arrow --out model/ --epochs 1 ${q} 2>/dev/null`,
    `hep-ml convert prep/train.arrow --to parquet -o train.parquet ${q} && hep-ml convert prep/test.arrow --to parquet -o test.parquet ${q}`,
  ], 2, sh);
}

/** The paths an invocation writes (-o/--out/--write-specs; not '-', not a format name like k8s train --output json). */
function outputsOf(inv: Invocation): string[] {
  const defs = (byId.get(inv.id)!.flags ?? {}) as Record<string, { options?: readonly string[] }>;
  return OUTPUT_FLAGS.filter((f) => typeof inv.flags[f] === 'string' && inv.flags[f] !== '-' && !defs[f]?.options).map((f) => inv.flags[f] as string);
}

/** Top-level fixture entries an example reads: words (and NAME=PATH,PATH parts) naming one, outputs excepted. */
function inputsOf(ex: CheckedExample, fixtures: Set<string>): string[] {
  const outputs = new Set<string>();
  for (const inv of ex.invocations) {
    if (inv.flags.resume) continue; // --resume continues the model directory it names
    for (const o of outputsOf(inv)) outputs.add(o.replace(/\/+$/, ''));
  }
  const found = new Set<string>();
  for (const seg of ex.lines.flatMap((l) => lexShell(l))) {
    for (const w of seg) {
      for (const part of w.text.split(/[=,]/)) {
        const p = part.replace(/\/+$/, '');
        if (!p || outputs.has(p)) continue;
        const top = p.split('/')[0]!;
        if (fixtures.has(top)) found.add(top);
      }
    }
  }
  return [...found];
}

test('the examples run for real (inputs generated or from the test data, sizes scaled down)', { skip: hasTestdata(TESTDATA) ? false : `HEPML_TESTDATA not found: ${TESTDATA} — examples NOT run`, concurrency: 2 }, async (t) => {
  assert.ok(checkedExamples.length > 0, 'the static checks ran first');
  const sandbox = mkdtempSync(join(tmpdir(), 'hepml-help-examples-'));
  try {
    const binDir = join(sandbox, 'bin');
    mkdirSync(binDir);
    writeFileSync(join(binDir, BIN_NAME), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(binDir, BIN_NAME), 0o755);
    const env = { ...process.env, PATH: `${binDir}:${process.env.PATH}`, HEPML_DEBUG: '' };
    const fixtureDir = join(sandbox, 'fixtures');
    mkdirSync(fixtureDir);
    const t0 = Date.now();
    await makeFixtures(fixtureDir, env);
    t.diagnostic(`fixtures made in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${readdirSync(fixtureDir).sort().join(' ')}`);
    const fixtures = new Set(readdirSync(fixtureDir));

    const ran = new Map<string, number>();
    const skipped: string[] = [];
    const runnable = checkedExamples.filter((ex) => {
      const why = notRunnable(ex);
      if (why) skipped.push(`${spaced(ex.cmd)} #${ex.index + 1}: ${why}`);
      return !why;
    });
    for (const s of skipped) t.diagnostic(`not run: ${s}`);

    await pool(runnable, 2, async (ex) => {
      const script = rewrite(ex.lines.join('\n'));
      const cwd = join(sandbox, `${ex.cmd.replace(':', '-')}-${ex.index + 1}`);
      mkdirSync(cwd);
      for (const f of inputsOf(ex, fixtures)) cpSync(join(fixtureDir, f), join(cwd, f), { recursive: true });
      await t.test(`${spaced(ex.cmd)} #${ex.index + 1}: ${script}`, async () => {
        const r = await bash(script, cwd, env, 40000);
        assert.equal(r.code, 0, `exit ${r.code}: ${script}\n${r.out}`);
        for (const inv of ex.invocations) for (const o of outputsOf(inv)) assert.ok(existsSync(join(cwd, o)), `${spaced(inv.id)} wrote ${o}`);
        ran.set(ex.cmd, (ran.get(ex.cmd) ?? 0) + 1);
      });
    });
    const total = [...ran.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`examples run: ${total} of ${checkedExamples.length} (${[...ran].map(([c, n]) => `${spaced(c)} ${n}`).join(', ')})`);
    const missing = MUST_RUN.filter((c) => byId.has(c) && !ran.get(c));
    assert.deepEqual(missing, [], `commands none of whose examples ran: ${missing.join(', ')}`);
  } finally {
    rmSync(sandbox, { recursive: true, force: true });
  }
});
