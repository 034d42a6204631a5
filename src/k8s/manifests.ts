/**
 * Kubernetes manifests for distributed `hep-ml train`: a headless Service and an Indexed Job whose pod of
 * index 0 runs the coordinator and whose pods of index 1..N run the workers (rank = index − 1). Pure
 * functions building plain objects, plus the sh quoting and the small YAML emitter they are printed with;
 * `hep-ml k8s train` (src/commands/k8s/train.ts) only parses flags and prints. See docs/commands/k8s.md.
 *
 *   const docs = trainManifests({ workers: 4, image: 'ghcr.io/x/hep-ml:0.1', trainArgs: ['--model', 'dnn', ...] });
 *   process.stdout.write(toYamlStream(docs));
 */
import { UsageError } from '../errors.js';

export const DEFAULT_NAME = 'hep-ml-train';
export const DEFAULT_PORT = 7777;
export const DEFAULT_MOUNT = '/data';
export const DEFAULT_RESOURCES = { cpu: '1', memory: '4Gi', coordinatorCpu: '500m', coordinatorMemory: '2Gi' } as const;
/** The longest job name: the pods' host names `<name>-<index>` must fit a 63-character DNS label. */
export const MAX_NAME_LENGTH = 52;
/** The train flags the manifests set themselves, refused among the user's train arguments. */
export const RESERVED_TRAIN_FLAGS = ['join', 'coordinator', 'workers', 'rank'] as const;
/** The train flags every coordinator needs. */
export const REQUIRED_TRAIN_FLAGS = ['model', 'data', 'out'] as const;

export interface TrainJobOptions {
  /** Worker pods (≥ 1); the Job runs one more pod, the coordinator. */
  workers: number;
  /** Container image with `hep-ml` on its PATH (the repository's Dockerfile builds one). */
  image: string;
  /** Job and Service name (an RFC 1035 label of at most 52 characters); default `hep-ml-train`. */
  name?: string;
  namespace?: string;
  /** The coordinator's TCP port; default 7777. */
  port?: number;
  /** Per-pod CPU and memory (request = limit); defaults 1 and 4Gi for a worker, 500m and 2Gi for the coordinator. */
  cpu?: string;
  memory?: string;
  coordinatorCpu?: string;
  coordinatorMemory?: string;
  /** A PersistentVolumeClaim mounted at `mount` (default /data) in every pod. */
  pvc?: string;
  mount?: string;
  /** Extra environment variables of every pod, in order. */
  env?: ReadonlyArray<readonly [string, string]>;
  /** The coordinator's `hep-ml train` arguments (must hold --model, --data, --out). */
  trainArgs: readonly string[];
  /** Pod failures the Job tolerates in all; default workers + 1. */
  backoffLimit?: number;
  /**
   * successPolicy (the Job succeeds when the coordinator, index 0, succeeds) and backoffLimitPerIndex 1
   * (each index is replaced at most once); default true. Needs Kubernetes ≥ 1.31; false for older clusters.
   */
  successPolicy?: boolean;
}

/** Resolved options: every default applied, everything validated. */
export interface ResolvedTrainJob {
  workers: number;
  image: string;
  name: string;
  namespace?: string;
  port: number;
  /** What every pod requests (and is limited to): one pod template serves both roles. */
  podCpu: string;
  podMemory: string;
  pvc?: string;
  mount?: string;
  env: Array<[string, string]>;
  trainArgs: string[];
  backoffLimit: number;
  successPolicy: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// sh quoting and the container script

const SH_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for POSIX sh: words made only of characters no shell treats specially stay bare, anything
 * else is single-quoted, with each `'` written as `'\''`. The result expands to exactly `s` (spaces,
 * quotes, `$`, backticks, backslashes, newlines, globs and all).
 */
export function shQuote(s: string): string {
  if (s.includes('\0')) throw new UsageError('an argument cannot contain a NUL character');
  if (SH_SAFE.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The DNS name and port the workers join: the coordinator pod's stable name under the headless Service. */
export function coordinatorAddress(name: string, port: number): string {
  return `${name}-0.${name}:${port}`;
}

/** The argv (after `hep-ml`) the coordinator pod runs. */
export function coordinatorArgv(job: Pick<ResolvedTrainJob, 'trainArgs' | 'workers' | 'port'>): string[] {
  return ['train', ...job.trainArgs, '--workers', String(job.workers), '--coordinator', `0.0.0.0:${job.port}`];
}

/**
 * The `sh -c` script of every pod: index 0 (`$JOB_COMPLETION_INDEX`, set by Kubernetes in an Indexed Job)
 * execs the coordinator, index K ≥ 1 execs the worker of rank K − 1.
 */
export function trainScript(job: Pick<ResolvedTrainJob, 'trainArgs' | 'workers' | 'port' | 'name'>): string {
  const coordinator = ['hep-ml', ...coordinatorArgv(job)].map(shQuote).join(' ');
  const worker = ['hep-ml', 'train', '--join', coordinatorAddress(job.name, job.port), '--rank'].map(shQuote).join(' ');
  return `if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exec ${coordinator}; else exec ${worker} $((JOB_COMPLETION_INDEX - 1)); fi`;
}

// ---------------------------------------------------------------------------------------------------------
// validation

const RFC1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const RFC1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const RFC1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const QUANTITY_FACTOR: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Checks a Job/Service name: an RFC 1035 label (a Service name must start with a letter) of ≤ 52 characters. */
export function checkName(name: string): string {
  if (!RFC1035_LABEL.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new UsageError(
      `--name '${name}': must be at most ${MAX_NAME_LENGTH} characters of lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (the pods are named <name>-<index>)`,
    );
  }
  return name;
}

/** The value of a Kubernetes resource quantity (`500m` → 0.5, `4Gi` → 4·2³⁰); a usage error if it is not one. */
export function parseQuantity(q: string, flag: string): number {
  const m = QUANTITY.exec(q);
  const value = m ? Number(m[1]) * (m[2] && /^[eE][+-]?\d+$/.test(m[2]) ? 10 ** Number(m[2].slice(1)) : QUANTITY_FACTOR[m[2] ?? '']) : NaN;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`${flag} '${q}': not a positive Kubernetes quantity (e.g. 500m, 2, 4Gi, 512Mi)`);
  }
  return value;
}

/** Parses `--env KEY=VALUE`. */
export function parseEnv(arg: string): [string, string] {
  const eq = arg.indexOf('=');
  const key = eq < 0 ? '' : arg.slice(0, eq);
  if (!ENV_NAME.test(key)) throw new UsageError(`--env takes KEY=VALUE with KEY of letters, digits, '_', '-', '.' (not starting with a digit), got '${arg}'`);
  if (key === 'JOB_COMPLETION_INDEX') throw new UsageError('--env cannot set JOB_COMPLETION_INDEX: Kubernetes sets it to the pod index');
  return [key, arg.slice(eq + 1)];
}

function flagNamed(arg: string, flag: string): boolean {
  return arg === `--${flag}` || arg.startsWith(`--${flag}=`);
}

/**
 * Checks the coordinator's train arguments: the flags the manifests set (--join, --coordinator, --workers,
 * --rank) and a `--` (after which train would take them as positional arguments) are refused; --model,
 * --data and --out (or -o) must be present. Everything else (--strategy, --epochs, ...) passes untouched.
 */
export function checkTrainArgs(args: readonly string[]): string[] {
  const usage = 'give the train arguments after --: hep-ml k8s train --workers N --image IMAGE -- --model M --data D --out OUT [...]';
  if (args.length === 0) throw new UsageError(`no train arguments: ${usage}`);
  for (const a of args) {
    const reserved = RESERVED_TRAIN_FLAGS.find((f) => flagNamed(a, f));
    if (reserved) throw new UsageError(`the train arguments cannot hold --${reserved}: hep-ml k8s train sets --workers and --coordinator for the coordinator and --join and --rank for the workers`);
    if (a === '--') throw new UsageError(`the train arguments cannot hold a second '--': --workers and --coordinator are appended after them`);
  }
  const has = (flag: string) => args.some((a) => flagNamed(a, flag) || (flag === 'out' && /^-o/.test(a)));
  const missing = REQUIRED_TRAIN_FLAGS.filter((f) => !has(f));
  if (missing.length) throw new UsageError(`the train arguments lack ${missing.map((f) => `--${f}`).join(', ')}: ${usage}`);
  return [...args];
}

/** Applies the defaults and validates every option (usage errors, exit 2). */
export function resolveTrainJob(o: TrainJobOptions): ResolvedTrainJob {
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new UsageError(`--workers must be an integer ≥ 1, got ${o.workers}`);
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be an integer in 1..65535, got ${port}`);
  if (!o.image || /[\s\0-\x1f\x7f]/.test(o.image)) throw new UsageError(`--image '${o.image}': give an image reference without spaces, e.g. ghcr.io/org/hep-ml:0.1`);
  const name = checkName(o.name ?? DEFAULT_NAME);
  if (o.namespace !== undefined && (!RFC1123_LABEL.test(o.namespace) || o.namespace.length > 63)) {
    throw new UsageError(`--namespace '${o.namespace}': must be at most 63 characters of lower-case letters, digits and '-', starting and ending with a letter or digit`);
  }
  if (o.mount !== undefined && o.pvc === undefined) throw new UsageError('--mount needs --pvc (the PersistentVolumeClaim to mount)');
  if (o.pvc !== undefined && (!RFC1123_SUBDOMAIN.test(o.pvc) || o.pvc.length > 253)) {
    throw new UsageError(`--pvc '${o.pvc}': not a valid PersistentVolumeClaim name (lower-case letters, digits, '-' and '.')`);
  }
  const mount = o.pvc !== undefined ? (o.mount ?? DEFAULT_MOUNT) : undefined;
  if (mount !== undefined && (!mount.startsWith('/') || mount.includes(':') || /[\0-\x1f]/.test(mount))) {
    throw new UsageError(`--mount '${mount}': must be an absolute path without ':'`);
  }
  const env = (o.env ?? []).map(([k, v]) => [k, v] as [string, string]);
  for (const [k] of env) parseEnv(`${k}=`);
  const dup = env.find(([k], i) => env.findIndex(([k2]) => k2 === k) !== i);
  if (dup) throw new UsageError(`--env ${dup[0]} is given twice`);
  const cpu = o.cpu ?? DEFAULT_RESOURCES.cpu;
  const memory = o.memory ?? DEFAULT_RESOURCES.memory;
  const coordinatorCpu = o.coordinatorCpu ?? DEFAULT_RESOURCES.coordinatorCpu;
  const coordinatorMemory = o.coordinatorMemory ?? DEFAULT_RESOURCES.coordinatorMemory;
  // One pod template serves both roles: every pod gets the larger of the two values.
  const podCpu = parseQuantity(coordinatorCpu, '--coordinator-cpu') > parseQuantity(cpu, '--cpu') ? coordinatorCpu : cpu;
  const podMemory = parseQuantity(coordinatorMemory, '--coordinator-memory') > parseQuantity(memory, '--memory') ? coordinatorMemory : memory;
  const backoffLimit = o.backoffLimit ?? o.workers + 1;
  if (!Number.isInteger(backoffLimit) || backoffLimit < 0) throw new UsageError(`--backoff-limit must be an integer ≥ 0, got ${backoffLimit}`);
  return {
    workers: o.workers,
    image: o.image,
    name,
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    port,
    podCpu,
    podMemory,
    ...(o.pvc !== undefined ? { pvc: o.pvc, mount } : {}),
    env,
    trainArgs: checkTrainArgs(o.trainArgs),
    backoffLimit,
    successPolicy: o.successPolicy ?? true,
  };
}

// ---------------------------------------------------------------------------------------------------------
// manifests

export type Manifest = { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec: Record<string, unknown> };

/** The labels of the Service, the Job and every pod; the Service selects on name + instance. */
export function trainLabels(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'hep-ml', 'app.kubernetes.io/component': 'train', 'app.kubernetes.io/instance': name };
}

function metadata(job: ResolvedTrainJob): Record<string, unknown> {
  return { name: job.name, ...(job.namespace !== undefined ? { namespace: job.namespace } : {}), labels: trainLabels(job.name) };
}

/** The headless Service that gives every pod the DNS name `<name>-<index>.<name>`. */
export function trainService(job: ResolvedTrainJob): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(job),
    spec: {
      clusterIP: 'None',
      // The coordinator's name resolves as soon as its pod has an address, before it is Ready.
      publishNotReadyAddresses: true,
      selector: { 'app.kubernetes.io/name': 'hep-ml', 'app.kubernetes.io/instance': job.name },
      ports: [{ name: 'coordinator', port: job.port, targetPort: job.port, protocol: 'TCP' }],
    },
  };
}

/** The Indexed Job: index 0 the coordinator, indices 1..N the workers. */
export function trainJob(job: ResolvedTrainJob): Manifest {
  const resources = { cpu: job.podCpu, memory: job.podMemory };
  const container: Record<string, unknown> = {
    name: 'hep-ml',
    image: job.image,
    command: ['sh', '-c', trainScript(job)],
    ...(job.env.length ? { env: job.env.map(([name, value]) => ({ name, value })) } : {}),
    ports: [{ name: 'coordinator', containerPort: job.port, protocol: 'TCP' }],
    resources: { requests: { ...resources }, limits: { ...resources } },
    ...(job.pvc !== undefined ? { volumeMounts: [{ name: 'data', mountPath: job.mount }] } : {}),
  };
  const pods = job.workers + 1;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(job),
    spec: {
      completionMode: 'Indexed',
      completions: pods,
      parallelism: pods,
      backoffLimit: job.backoffLimit,
      ...(job.successPolicy ? { backoffLimitPerIndex: 1, successPolicy: { rules: [{ succeededIndexes: '0' }] } } : {}),
      template: {
        metadata: { labels: trainLabels(job.name) },
        spec: {
          subdomain: job.name,
          restartPolicy: 'Never',
          containers: [container],
          ...(job.pvc !== undefined ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: job.pvc } }] } : {}),
        },
      },
    },
  };
}

/** Validates the options and returns [Service, Job], in the order `kubectl apply` should create them. */
export function trainManifests(o: TrainJobOptions): Manifest[] {
  const job = resolveTrainJob(o);
  return [trainService(job), trainJob(job)];
}

// ---------------------------------------------------------------------------------------------------------
// output: JSON List and a small deterministic YAML emitter

/** A `v1` `List` of the manifests, as `kubectl get -o json` prints several objects. */
export function toJsonList(docs: readonly unknown[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }, null, 2) + '\n';
}

/** Strings YAML reads back as themselves when written bare (no numbers, booleans, nulls, indicators, spaces). */
const YAML_PLAIN = /^[A-Za-z_/][A-Za-z0-9_./-]*(?::[A-Za-z0-9_./-]+)*$/;
/** YAML 1.1 and 1.2 booleans and null that YAML_PLAIN would let through. */
const YAML_KEYWORD = /^(?:y|n|yes|no|true|false|on|off|null)$/i;

/** A YAML scalar for a string: bare when unambiguous, else a JSON string (a valid YAML double-quoted scalar). */
export function yamlString(s: string): string {
  if (YAML_PLAIN.test(s) && !YAML_KEYWORD.test(s)) return s;
  // JSON escapes what YAML must not see raw, except DEL, C1 controls, line/paragraph separators (line
  // breaks to YAML 1.1 readers), the BOM and the noncharacters: escape those too.
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function yamlScalar(v: unknown): string {
  if (typeof v === 'string') return yamlString(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`toYaml: cannot write ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (isMap(v) && entries(v).length === 0) return '{}';
  throw new TypeError(`toYaml: cannot write a ${typeof v}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A map's entries, leaving out undefined values (as JSON.stringify does). */
function entries(v: Record<string, unknown>): Array<[string, unknown]> {
  return Object.entries(v).filter(([, x]) => x !== undefined);
}

function isBlock(v: unknown): boolean {
  return (Array.isArray(v) && v.length > 0) || (isMap(v) && entries(v).length > 0);
}

function yamlBlock(v: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  const lines: string[] = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item === undefined) throw new TypeError('toYaml: undefined in a list');
      if (isBlock(item)) {
        const inner = yamlBlock(item, indent + 2);
        inner[0] = `${pad}- ${inner[0].slice(indent + 2)}`;
        lines.push(...inner);
      } else {
        lines.push(`${pad}- ${yamlScalar(item)}`);
      }
    }
  } else if (isMap(v)) {
    for (const [k, x] of entries(v)) {
      if (isBlock(x)) lines.push(`${pad}${yamlString(k)}:`, ...yamlBlock(x, indent + 2));
      else lines.push(`${pad}${yamlString(k)}: ${yamlScalar(x)}`);
    }
  } else {
    lines.push(pad + yamlScalar(v));
  }
  return lines;
}

/**
 * One YAML document (block style, two-space indentation, keys in insertion order) for plain data: maps,
 * lists, strings, finite numbers, booleans, null. Deterministic: the same value gives the same text.
 */
export function toYaml(value: unknown): string {
  return yamlBlock(value, 0).join('\n') + '\n';
}

/** Several YAML documents separated by `---` lines, for `kubectl apply -f -`. */
export function toYamlStream(docs: readonly unknown[]): string {
  return docs.map(toYaml).join('---\n');
}
