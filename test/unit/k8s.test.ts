/**
 * hep-ml k8s train: the manifests' structure (headless Service, Indexed Job, labels, DNS names, policies,
 * resources, volumes, env), option validation (usage errors), sh quoting of nasty strings, the pods'
 * `sh -c` script run for real with a stub `hep-ml` on PATH (the exact argv the coordinator and the workers
 * get), the YAML emitter (exact text, scalar quoting, and a round trip through PyYAML when python3 has it),
 * and the CLI end to end (stdout is only the manifests; usage errors exit 2 with nothing on stdout).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ExitCode, UsageError } from '../../src/errors.js';
import {
  checkTrainArgs,
  coordinatorArgv,
  parseEnv,
  parseQuantity,
  resolveTrainJob,
  shQuote,
  toJsonList,
  toYaml,
  toYamlStream,
  trainManifests,
  yamlString,
  type Manifest,
  type TrainJobOptions,
} from '../../src/k8s/manifests.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/truth.js';

/** Strings a shell or a YAML reader could get wrong. */
const NASTY = [
  '',
  ' ',
  'two words',
  "it's",
  "'",
  "''",
  '"double"',
  '$HOME',
  '${PATH}',
  '$((1+1))',
  '`id`',
  '$(id)',
  'line1\nline2',
  'trailing newline\n',
  '\ttab',
  '\\',
  '\\n',
  '*',
  '?',
  '[a]',
  '~',
  '~/x',
  '-n',
  '-e',
  '--',
  '!',
  ';echo pwned',
  '&& echo pwned',
  '| cat',
  '> /tmp/x',
  '#comment',
  'a=b',
  'ünïcødé → ✓',
  'emoji 🚀',
  '\u2028\u2029',
  '\u007f\u0085',
  '\r',
  'a: b',
  'key: [1, 2]',
  '{x}',
  'null',
  'true',
  'no',
  '0x1F',
  '1e3',
  '007',
  '2001-12-14',
  '1:20',
  '.inf',
  '@at',
  '%pct',
];

const BASE: TrainJobOptions = {
  workers: 4,
  image: 'ghcr.io/x/hep-ml:0.1',
  trainArgs: ['--model', 'inclusive', '--data', '/data/train.arrow', '--out', '/data/model', '--epochs', '5', '--strategy', 'sync'],
};

// the manifests, read back as plain JSON
type Obj = Record<string, any>;

function manifests(o: Partial<TrainJobOptions> = {}): [Obj, Obj] {
  const [svc, job] = trainManifests({ ...BASE, ...o }) as Obj[];
  return [svc, job];
}

function containerOf(job: Obj): Obj {
  return job.spec.template.spec.containers[0];
}

function isUsage(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.exitCode, ExitCode.USAGE);
    assert.match(e.message, re);
    return true;
  };
}

// -------------------------------------------------------------------------------------------------------
// a stub hep-ml that prints its argv (NUL-terminated, so newlines in arguments stay unambiguous)

let stubDir = '';
before(() => {
  stubDir = mkdtempSync(join(tmpdir(), 'hepml-k8s-test-'));
  const stub = join(stubDir, 'hep-ml');
  writeFileSync(stub, '#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done\n');
  chmodSync(stub, 0o755);
});
after(() => rmSync(stubDir, { recursive: true, force: true }));

const SHELLS = ['sh', 'bash', 'dash'].filter((s) => spawnSync(s, ['-c', 'exit 0']).status === 0);

/** Runs the pod's command with JOB_COMPLETION_INDEX = index and the stub first on PATH: the argv hep-ml got. */
function runPod(command: string[], index: number | undefined, shell = command[0]): string[] {
  assert.deepEqual(command.slice(0, 2), ['sh', '-c']);
  const env: NodeJS.ProcessEnv = { PATH: `${stubDir}${delimiter}${process.env.PATH}` };
  if (index !== undefined) env.JOB_COMPLETION_INDEX = String(index);
  const r = spawnSync(shell, ['-c', command[2]], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.endsWith('\0'), JSON.stringify(r.stdout));
  return r.stdout.slice(0, -1).split('\0');
}

// -------------------------------------------------------------------------------------------------------

describe('shQuote', () => {
  test('keeps safe words bare and single-quotes everything else', () => {
    for (const s of ['--model', 'inclusive', '/data/train.arrow', '0.0.0.0:7777', 'a=b', 'x,y', '-o', 'user@host', '+1', '50%']) {
      assert.equal(shQuote(s), s);
    }
    assert.equal(shQuote(''), "''");
    assert.equal(shQuote('a b'), "'a b'");
    assert.equal(shQuote("it's"), "'it'\\''s'");
    assert.equal(shQuote('$HOME'), "'$HOME'");
  });

  test('every nasty string survives a real shell unchanged, alone and all together', () => {
    assert.ok(SHELLS.length > 0, 'no POSIX shell found');
    for (const shell of SHELLS) {
      for (const s of NASTY) {
        const r = spawnSync(shell, ['-c', `printf '%s\\0' ${shQuote(s)}`], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${shell}: ${r.stderr}`);
        assert.equal(r.stdout, `${s}\0`, `${shell}: ${JSON.stringify(s)}`);
      }
      const r = spawnSync(shell, ['-c', `printf '%s\\0' ${NASTY.map(shQuote).join(' ')}`], { encoding: 'utf8' });
      assert.deepEqual(r.stdout.slice(0, -1).split('\0'), NASTY, shell);
    }
  });

  test('refuses NUL, which no argv can hold', () => {
    assert.throws(() => shQuote('a\0b'), isUsage(/NUL/));
  });
});

describe('manifests', () => {
  test('a headless Service named after the job, selecting its pods, port named coordinator', () => {
    const [svc] = manifests();
    assert.equal(svc.apiVersion, 'v1');
    assert.equal(svc.kind, 'Service');
    assert.deepEqual(svc.metadata, {
      name: 'hep-ml-train',
      labels: { 'app.kubernetes.io/name': 'hep-ml', 'app.kubernetes.io/component': 'train', 'app.kubernetes.io/instance': 'hep-ml-train' },
    });
    assert.equal(svc.spec.clusterIP, 'None');
    assert.equal(svc.spec.publishNotReadyAddresses, true);
    assert.deepEqual(svc.spec.selector, { 'app.kubernetes.io/name': 'hep-ml', 'app.kubernetes.io/instance': 'hep-ml-train' });
    assert.deepEqual(svc.spec.ports, [{ name: 'coordinator', port: 7777, targetPort: 7777, protocol: 'TCP' }]);
  });

  test('an Indexed Job of N+1 pods under the Service subdomain, restartPolicy Never, policies', () => {
    const [svc, job] = manifests();
    assert.equal(job.apiVersion, 'batch/v1');
    assert.equal(job.kind, 'Job');
    assert.equal(job.metadata.name, 'hep-ml-train');
    assert.equal(job.metadata.namespace, undefined);
    assert.deepEqual(job.metadata.labels, svc.metadata.labels);
    const s = job.spec;
    assert.equal(s.completionMode, 'Indexed');
    assert.equal(s.completions, 5);
    assert.equal(s.parallelism, 5);
    assert.equal(s.backoffLimit, 5);
    assert.equal(s.backoffLimitPerIndex, 1);
    assert.deepEqual(s.successPolicy, { rules: [{ succeededIndexes: '0' }] });
    const pod = s.template;
    // the Service selects every pod of the Job
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(pod.metadata.labels[k], v);
    assert.equal(pod.spec.subdomain, svc.metadata.name);
    assert.equal(pod.spec.restartPolicy, 'Never');
    assert.equal(pod.spec.volumes, undefined);
    assert.equal(pod.spec.containers.length, 1);
    const c = containerOf(job);
    assert.equal(c.name, 'hep-ml');
    assert.equal(c.image, 'ghcr.io/x/hep-ml:0.1');
    assert.equal(c.command.length, 3);
    assert.deepEqual(c.command.slice(0, 2), ['sh', '-c']);
    assert.equal(c.env, undefined);
    assert.equal(c.volumeMounts, undefined);
    assert.deepEqual(c.ports, [{ name: 'coordinator', containerPort: 7777, protocol: 'TCP' }]);
    assert.deepEqual(c.resources, { requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '1', memory: '4Gi' } });
  });

  test('the script: index 0 execs the coordinator, the others join <name>-0.<name>:PORT with rank index - 1', () => {
    const [, job] = manifests({ workers: 3, name: 'run-7', port: 9000 });
    assert.equal(
      containerOf(job).command[2],
      'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exec hep-ml train --model inclusive --data /data/train.arrow --out /data/model --epochs 5 --strategy sync --workers 3 --coordinator 0.0.0.0:9000; ' +
        'else exec hep-ml train --join run-7-0.run-7:9000 --rank $((JOB_COMPLETION_INDEX - 1)); fi',
    );
  });

  test('name, namespace, port, PVC, env, backoff limit, no success policy', () => {
    const [svc, job] = manifests({
      name: 'dnn-run',
      namespace: 'physics',
      port: 8123,
      pvc: 'hep-data',
      mount: '/mnt/hep',
      env: [['HEPML_ENGINE', 'wasm'], ['NOTE', 'a b $c']],
      backoffLimit: 0,
      successPolicy: false,
    });
    for (const m of [svc, job]) {
      assert.equal(m.metadata.name, 'dnn-run');
      assert.equal(m.metadata.namespace, 'physics');
      assert.equal(m.metadata.labels['app.kubernetes.io/instance'], 'dnn-run');
    }
    assert.equal(svc.spec.ports[0].port, 8123);
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal('backoffLimitPerIndex' in job.spec, false);
    assert.equal('successPolicy' in job.spec, false);
    assert.deepEqual(job.spec.template.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'hep-data' } }]);
    const c = containerOf(job);
    assert.deepEqual(c.volumeMounts, [{ name: 'data', mountPath: '/mnt/hep' }]);
    assert.deepEqual(c.env, [{ name: 'HEPML_ENGINE', value: 'wasm' }, { name: 'NOTE', value: 'a b $c' }]);
    assert.equal(c.ports[0].containerPort, 8123);
    assert.match(c.command[2], /--join dnn-run-0\.dnn-run:8123 /);
    // --pvc alone mounts at /data
    assert.deepEqual(containerOf(manifests({ pvc: 'x' })[1]).volumeMounts, [{ name: 'data', mountPath: '/data' }]);
  });

  test('one pod template: every pod gets the larger of the worker and coordinator resources', () => {
    const res = (o: Partial<TrainJobOptions>) => containerOf(manifests(o)[1]).resources;
    assert.deepEqual(res({ cpu: '2', memory: '8Gi' }).requests, { cpu: '2', memory: '8Gi' });
    assert.deepEqual(res({ coordinatorCpu: '1500m', coordinatorMemory: '16Gi' }).limits, { cpu: '1500m', memory: '16Gi' });
    assert.deepEqual(res({ cpu: '250m', memory: '512Mi' }).requests, { cpu: '500m', memory: '2Gi' });
    assert.deepEqual(res({ cpu: '0.5', memory: '3G', coordinatorMemory: '2Gi' }).requests, { cpu: '0.5', memory: '3G' });
  });

  test('parseQuantity reads Kubernetes quantities and refuses anything else', () => {
    assert.equal(parseQuantity('500m', '--cpu'), 0.5);
    assert.equal(parseQuantity('2', '--cpu'), 2);
    assert.equal(parseQuantity('.5', '--cpu'), 0.5);
    assert.equal(parseQuantity('4Gi', '--memory'), 4 * 2 ** 30);
    assert.equal(parseQuantity('1G', '--memory'), 1e9);
    assert.equal(parseQuantity('1E', '--memory'), 1e18);
    assert.equal(parseQuantity('1e3', '--memory'), 1000);
    assert.equal(parseQuantity('1E3', '--memory'), 1000);
    for (const bad of ['', '0', '-1', '1.2.3', 'abc', '4GB', '4 Gi', '1e', 'Gi']) {
      assert.throws(() => parseQuantity(bad, '--memory'), isUsage(/--memory .*not a positive Kubernetes quantity/), bad);
    }
  });

  test('the name must be an RFC 1035 label of at most 52 characters', () => {
    assert.equal(manifests({ name: 'a'.repeat(52) })[1].metadata.name, 'a'.repeat(52));
    assert.equal(manifests({ name: 'x' })[1].metadata.name, 'x');
    for (const bad of ['a'.repeat(53), 'Upper', '1abc', 'a_b', 'a.b', 'ab-', '-ab', '', 'a b']) {
      assert.throws(() => manifests({ name: bad }), isUsage(/--name/), bad);
    }
  });

  test('every other option is validated', () => {
    const cases: Array<[Partial<TrainJobOptions>, RegExp]> = [
      [{ workers: 0 }, /--workers/],
      [{ workers: 1.5 }, /--workers/],
      [{ port: 0 }, /--port/],
      [{ port: 65536 }, /--port/],
      [{ image: '' }, /--image/],
      [{ image: 'a b' }, /--image/],
      [{ namespace: 'Bad' }, /--namespace/],
      [{ namespace: 'n'.repeat(64) }, /--namespace/],
      [{ mount: '/data' }, /--mount needs --pvc/],
      [{ pvc: 'x', mount: 'relative' }, /--mount/],
      [{ pvc: 'Bad_Claim' }, /--pvc/],
      [{ cpu: 'lots' }, /--cpu/],
      [{ coordinatorMemory: '2 Gi' }, /--coordinator-memory/],
      [{ env: [['A', '1'], ['A', '2']] }, /--env A is given twice/],
      [{ env: [['JOB_COMPLETION_INDEX', '3']] }, /JOB_COMPLETION_INDEX/],
      [{ env: [['1A', 'x']] }, /--env/],
      [{ backoffLimit: -1 }, /--backoff-limit/],
    ];
    for (const [o, re] of cases) assert.throws(() => manifests(o), isUsage(re), JSON.stringify(o));
  });

  test('parseEnv splits at the first =', () => {
    assert.deepEqual(parseEnv('A=1'), ['A', '1']);
    assert.deepEqual(parseEnv('HEPML_ENGINE=wasm'), ['HEPML_ENGINE', 'wasm']);
    assert.deepEqual(parseEnv('X=a=b c'), ['X', 'a=b c']);
    assert.deepEqual(parseEnv('EMPTY='), ['EMPTY', '']);
    for (const bad of ['A', '=1', 'A B=1', '1A=2', 'JOB_COMPLETION_INDEX=0']) assert.throws(() => parseEnv(bad), isUsage(/--env/), bad);
  });
});

describe('train arguments', () => {
  test('pass through untouched, in order, --strategy included', () => {
    const args = ['--model', 'dnn', '--data', 'a.arrow', 'b.arrow', '--validation', 'v.arrow', '-o', 'out', '--strategy', 'async', '--lr', '0.003', '--resume'];
    assert.deepEqual(checkTrainArgs(args), args);
    assert.deepEqual(checkTrainArgs(['--model=dnn', '--data=x', '--out=y']), ['--model=dnn', '--data=x', '--out=y']);
    assert.deepEqual(checkTrainArgs(['--model', 'dnn', '--data', 'x', '-oy']), ['--model', 'dnn', '--data', 'x', '-oy']);
  });

  test('--join, --coordinator, --workers, --rank and a second -- are refused', () => {
    const ok = ['--model', 'dnn', '--data', 'x', '--out', 'y'];
    for (const extra of [['--join', 'h:1'], ['--join=h:1'], ['--coordinator', '0.0.0.0:1'], ['--workers', '2'], ['--workers=2'], ['--rank', '0'], ['--rank=1']]) {
      assert.throws(() => checkTrainArgs([...ok, ...extra]), isUsage(/cannot hold --(join|coordinator|workers|rank)/), extra.join(' '));
    }
    assert.throws(() => checkTrainArgs([...ok, '--', 'x']), isUsage(/second '--'/));
    // flags that merely start with a reserved name are someone else's
    assert.deepEqual(checkTrainArgs([...ok, '--workers-file', 'w']), [...ok, '--workers-file', 'w']);
  });

  test('--model, --data and --out are required', () => {
    assert.throws(() => checkTrainArgs([]), isUsage(/no train arguments/));
    assert.throws(() => checkTrainArgs(['--data', 'x', '--out', 'y']), isUsage(/lack --model/));
    assert.throws(() => checkTrainArgs(['--model', 'dnn', '--out', 'y']), isUsage(/lack --data/));
    assert.throws(() => checkTrainArgs(['--model', 'dnn']), isUsage(/lack --data, --out/));
  });
});

describe('the pod script, run by a real shell with a stub hep-ml', () => {
  const nastyArgs = ['--model', 'inclusive', '--data', '/data/train set.arrow', '--data', "/data/it's.arrow", '--out', '/data/$OUT `id`\nx', '--strategy', 'sync', ...NASTY.filter((s) => s !== '--').flatMap((s) => ['--note', s])];

  test('index 0 runs the coordinator with exactly the train arguments, --workers N and --coordinator', () => {
    const [, job] = manifests({ workers: 3, port: 7001, trainArgs: nastyArgs });
    const expected = ['train', ...nastyArgs, '--workers', '3', '--coordinator', '0.0.0.0:7001'];
    assert.deepEqual(coordinatorArgv(resolveTrainJob({ ...BASE, workers: 3, port: 7001, trainArgs: nastyArgs })), expected);
    for (const shell of SHELLS) assert.deepEqual(runPod(containerOf(job).command, 0, shell), expected, shell);
  });

  test('index K ≥ 1 runs the worker of rank K - 1, joining <name>-0.<name>:PORT', () => {
    const [, job] = manifests({ workers: 3, port: 7001, name: 'exp-1', trainArgs: nastyArgs });
    for (const shell of SHELLS) {
      assert.deepEqual(runPod(containerOf(job).command, 2, shell), ['train', '--join', 'exp-1-0.exp-1:7001', '--rank', '1'], shell);
      assert.deepEqual(runPod(containerOf(job).command, 1, shell), ['train', '--join', 'exp-1-0.exp-1:7001', '--rank', '0'], shell);
      assert.deepEqual(runPod(containerOf(job).command, 3, shell), ['train', '--join', 'exp-1-0.exp-1:7001', '--rank', '2'], shell);
    }
  });
});

// -------------------------------------------------------------------------------------------------------
// YAML

const HAVE_PYYAML = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;

/** Loads YAML documents with PyYAML (an independent YAML reader) and returns them as JSON values. */
function pyLoadAll(text: string): unknown[] {
  const r = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(list(yaml.safe_load_all(sys.stdin.read())), sys.stdout)'], {
    input: text,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown[];
}

describe('YAML', () => {
  test('exact text: block maps and lists, nested lists, empty collections, scalars', () => {
    const value = {
      a: 1,
      b: 'plain',
      c: ['x', { d: true, e: [] }, ['w', 'z'], {}],
      f: { g: null, 'h i': '1', j: -2.5 },
      skipped: undefined,
    };
    assert.equal(
      toYaml(value),
      [
        'a: 1',
        'b: plain',
        'c:',
        '  - x',
        '  - d: true',
        '    e: []',
        '  - - w',
        '    - z',
        '  - {}',
        'f:',
        '  g: null',
        '  "h i": "1"',
        '  j: -2.5',
        '',
      ].join('\n'),
    );
    assert.equal(toYamlStream([{ a: 1 }, { b: [2] }]), 'a: 1\n---\nb:\n  - 2\n');
    assert.throws(() => toYaml({ x: NaN }), TypeError);
    assert.throws(() => toYaml({ x: () => 1 }), TypeError);
  });

  test('strings are bare only when unambiguous, else JSON double-quoted (valid YAML)', () => {
    for (const s of ['plain', 'hep-ml-train', 'app.kubernetes.io/name', '/data/x.arrow', 'ghcr.io/x/hep-ml:0.1', 'Gi', 'batch/v1', '_x', 'http://h/p']) {
      assert.equal(yamlString(s), s);
    }
    const quoted = [...NASTY, '4Gi', '1', '-c', 'Yes', 'ON', 'Off', 'y', 'N', 'NULL', '~', '<<', '=', 'a:', 'a:b c', 'x #y', '|', '>', '&a', '*a', '!a', ',', '\ufeffbom', '\ufffe'];
    for (const s of quoted) {
      const y = yamlString(s);
      assert.ok(y.startsWith('"') && y.endsWith('"'), `${JSON.stringify(s)} → ${y}`);
      assert.equal(JSON.parse(y), s);
      // only printable ASCII and ordinary printable Unicode inside: no raw controls, separators or BOM
      assert.doesNotMatch(y, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/, JSON.stringify(s));
    }
  });

  test('round trip through PyYAML: nasty strings as keys and values, and the whole manifests', { skip: HAVE_PYYAML ? false : 'python3 with PyYAML not found' }, () => {
    const value = { list: NASTY, map: Object.fromEntries(NASTY.map((s, i) => [s, i])), nested: [[NASTY[3], { k: NASTY[12] }]] };
    assert.deepEqual(pyLoadAll(toYaml(value)), [value]);
    const docs = trainManifests({ ...BASE, namespace: 'ns', pvc: 'claim', env: NASTY.slice(1).map((s, i) => [`V${i}`, s] as [string, string]), trainArgs: [...BASE.trainArgs, '--note', NASTY.join('|')] });
    const loaded = pyLoadAll(toYamlStream(docs)) as Manifest[];
    assert.deepEqual(loaded, JSON.parse(JSON.stringify(docs)));
    // the script read back from the YAML still gives the coordinator its exact argv
    assert.deepEqual(runPod((loaded[1] as Obj).spec.template.spec.containers[0].command, 0), [
      'train',
      ...BASE.trainArgs,
      '--note',
      NASTY.join('|'),
      '--workers',
      '4',
      '--coordinator',
      '0.0.0.0:7777',
    ]);
  });

  test('JSON output is a v1 List of the same objects', () => {
    const docs = trainManifests(BASE);
    const list = JSON.parse(toJsonList(docs));
    assert.equal(list.apiVersion, 'v1');
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items, docs);
  });
});

// -------------------------------------------------------------------------------------------------------
// the CLI, through a child process (needs `npm run -s build`; npm test builds first)

const DIST = join(REPO_ROOT, 'dist', 'commands', 'k8s', 'train.js');
const cliSkip = existsSync(DIST) ? false : `${DIST} not built: run npm run -s build`;

describe('hep-ml k8s train (CLI)', () => {
  const base = ['k8s', 'train', '--workers', '2', '--image', 'ghcr.io/x/hep-ml:0.1'];
  const train = ['--model', 'inclusive', '--data', '/data/train.arrow', '--out', '/data/model', '--strategy', 'sync'];

  test('the build is not older than the sources', { skip: cliSkip }, () => {
    for (const src of ['src/k8s/manifests.ts', 'src/commands/k8s/train.ts']) {
      const built = src === 'src/k8s/manifests.ts' ? join(REPO_ROOT, 'dist/k8s/manifests.js') : DIST;
      assert.ok(statSync(built).mtimeMs >= statSync(join(REPO_ROOT, src)).mtimeMs, `${built} is older than ${src}: run npm run -s build`);
    }
  });

  test('prints only the manifests on stdout (YAML, then JSON), exit 0', { skip: cliSkip }, async () => {
    const r = await runCli([...base, '--pvc', 'hep-data', '--env', 'HEPML_ENGINE=wasm', '--', ...train, '--note', "it's $x"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const expected = trainManifests({ workers: 2, image: 'ghcr.io/x/hep-ml:0.1', pvc: 'hep-data', env: [['HEPML_ENGINE', 'wasm']], trainArgs: [...train, '--note', "it's $x"] });
    assert.equal(r.stdout.toString(), toYamlStream(expected));
    const j = await runCli([...base, '--output', 'json', '--name', 'run-2', '--namespace', 'physics', '--', ...train]);
    assert.equal(j.code, 0, j.stderr);
    const list = JSON.parse(j.stdout.toString());
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items, trainManifests({ workers: 2, image: 'ghcr.io/x/hep-ml:0.1', name: 'run-2', namespace: 'physics', trainArgs: train }));
    // the printed script, run for the coordinator and a worker
    const command = list.items[1].spec.template.spec.containers[0].command;
    assert.deepEqual(runPod(command, 0), ['train', ...train, '--workers', '2', '--coordinator', '0.0.0.0:7777']);
    assert.deepEqual(runPod(command, 2), ['train', '--join', 'run-2-0.run-2:7777', '--rank', '1']);
  });

  test('a note on stderr (not stdout) when the coordinator needs more than a worker', { skip: cliSkip }, async () => {
    const r = await runCli([...base, '--coordinator-memory', '16Gi', '--output', 'json', '--', ...train]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /every pod requests cpu 1, memory 16Gi/);
    assert.equal(JSON.parse(r.stdout.toString()).items[1].spec.template.spec.containers[0].resources.limits.memory, '16Gi');
  });

  test('--no-success-policy and --backoff-limit', { skip: cliSkip }, async () => {
    const r = await runCli([...base, '--no-success-policy', '--backoff-limit', '9', '--output', 'json', '--', ...train]);
    assert.equal(r.code, 0, r.stderr);
    const spec = JSON.parse(r.stdout.toString()).items[1].spec;
    assert.equal(spec.backoffLimit, 9);
    assert.equal(spec.successPolicy, undefined);
    assert.equal(spec.backoffLimitPerIndex, undefined);
  });

  test('usage errors exit 2 with the reason on stderr and nothing on stdout', { skip: cliSkip }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [[...base, '--', ...train, '--join', 'x:1'], /cannot hold --join/],
      [[...base, '--', ...train, '--workers=3'], /cannot hold --workers/],
      [[...base, '--', '--model', 'dnn', '--data', 'x'], /lack --out/],
      [[...base], /no train arguments/],
      [[...base, ...train], /unknown flag\(s\) --model, --data, --out, --strategy: the train arguments go after --/],
      [[...base, '--bogus', '--', ...train], /unknown flag\(s\) --bogus/],
      [[...base, 'stray', '--', ...train], /unexpected argument\(s\) before '--': stray/],
      [[...base, '--name', 'Bad_Name', '--', ...train], /--name 'Bad_Name'/],
      [[...base, '--mount', '/x', '--', ...train], /--mount needs --pvc/],
      [[...base, '--env', 'NOEQUALS', '--', ...train], /--env/],
      [[...base, '--cpu', 'lots', '--', ...train], /--cpu 'lots'/],
      [['k8s', 'train', '--image', 'i', '--', ...train], /workers/],
      [['k8s', 'train', '--workers', '0', '--image', 'i', '--', ...train], /workers|greater than or equal to 1/],
      [[...base, '--output', 'toml', '--', ...train], /output/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  test('--help after -- is a train argument, not a request for help', { skip: cliSkip }, async () => {
    const help = await runCli(['k8s', 'train', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout.toString(), /k8s train/);
    const r = await runCli([...base, '--output', 'json', '--', ...train, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout.toString()).items[1].spec.template.spec.containers[0].command[2], /--strategy sync --help --workers 2/);
  });
});
