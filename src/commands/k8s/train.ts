import { Flags } from '@oclif/core';
import { HepMlCommand } from '../../cli/base.js';
import { UsageError } from '../../errors.js';
import {
  DEFAULT_MOUNT,
  DEFAULT_NAME,
  DEFAULT_PORT,
  DEFAULT_RESOURCES,
  MAX_NAME_LENGTH,
  parseEnv,
  resolveTrainJob,
  toJsonList,
  toYamlStream,
  trainJob,
  trainService,
} from '../../k8s/manifests.js';

export default class K8sTrain extends HepMlCommand {
  static override summary = 'Print Kubernetes manifests (a headless Service and an Indexed Job) for distributed hep-ml train.';
  static override description = `Prints, on stdout, manifests for kubectl apply -f -: a headless Service NAME and an Indexed Job NAME of WORKERS + 1 pods. The pod of index 0 runs the coordinator, hep-ml train TRAIN-ARGS --workers WORKERS --coordinator 0.0.0.0:PORT; the pod of index K (1..WORKERS) runs the worker hep-ml train --join NAME-0.NAME:PORT --rank K-1. Everything after -- is passed to the coordinator, shell-quoted: it must hold --model, --data and --out, and must not hold --join, --coordinator, --workers or --rank.

The Job succeeds when the coordinator succeeds (successPolicy; each index is replaced at most once, backoffLimitPerIndex 1): this needs Kubernetes 1.31 or newer; --no-success-policy leaves both out for older clusters. One pod template serves both roles, so every pod requests the larger of the worker and coordinator CPU and memory. --pvc mounts a PersistentVolumeClaim (ReadWriteMany, holding the data and OUT) at --mount in every pod. See docs/commands/k8s.md.`;
  static override examples = [
    '<%= config.bin %> k8s train --workers 4 --image ghcr.io/ORG/hep-ml:0.1.0 --pvc hep-data -- --model inclusive --data /data/train.arrow --out /data/model --epochs 5 --strategy sync | kubectl apply -f -',
    '<%= config.bin %> k8s train --workers 2 --image ghcr.io/ORG/hep-ml:0.1.0 --name dnn-run --namespace physics --output json -- --model dnn --data /data/train.parquet --out /data/dnn',
  ];
  // The train arguments after `--` are read from this.argv, not declared.
  static override strict = false;
  static override flags = {
    workers: Flags.integer({ description: 'worker pods (the Job runs one more pod: the coordinator)', required: true, min: 1 }),
    image: Flags.string({ description: 'container image with hep-ml on its PATH (the repository Dockerfile builds one)', required: true }),
    name: Flags.string({ description: `Job and Service name (≤ ${MAX_NAME_LENGTH} characters: a-z, 0-9, '-')`, default: DEFAULT_NAME }),
    namespace: Flags.string({ description: "metadata.namespace of both manifests (default: kubectl's current namespace)" }),
    port: Flags.integer({ description: 'TCP port the coordinator listens on', default: DEFAULT_PORT, min: 1, max: 65535 }),
    cpu: Flags.string({ description: 'CPU of a worker pod (request = limit)', default: DEFAULT_RESOURCES.cpu }),
    memory: Flags.string({ description: 'memory of a worker pod (request = limit)', default: DEFAULT_RESOURCES.memory }),
    'coordinator-cpu': Flags.string({ description: 'CPU of the coordinator pod (every pod gets the larger of this and --cpu)', default: DEFAULT_RESOURCES.coordinatorCpu }),
    'coordinator-memory': Flags.string({ description: 'memory of the coordinator pod (every pod gets the larger of this and --memory)', default: DEFAULT_RESOURCES.coordinatorMemory }),
    pvc: Flags.string({ description: 'PersistentVolumeClaim to mount in every pod (holds the data and OUT)' }),
    mount: Flags.string({ description: `where --pvc is mounted (default ${DEFAULT_MOUNT})` }),
    env: Flags.string({ description: 'KEY=VALUE environment variable of every pod (repeatable)', multiple: true, multipleNonGreedy: true }),
    'backoff-limit': Flags.integer({ description: 'pod failures the Job tolerates in all (default: workers + 1)', min: 0 }),
    'success-policy': Flags.boolean({
      description: 'the Job succeeds when the coordinator does, each index replaced at most once (Kubernetes ≥ 1.31); --no-success-policy for older clusters',
      default: true,
      allowNo: true,
    }),
    output: Flags.string({ description: 'yaml: documents separated by ---; json: a v1 List', options: ['yaml', 'json'], default: 'yaml' }),
  };

  async run(): Promise<void> {
    const dashdash = this.argv.indexOf('--');
    const own = dashdash < 0 ? this.argv : this.argv.slice(0, dashdash);
    const trainArgs = dashdash < 0 ? [] : this.argv.slice(dashdash + 1);
    const { flags, argv } = await this.parse(K8sTrain, own).catch((err: unknown) => {
      // train flags given before `--` (or a typo): say where they belong, without oclif's full help text
      const unknown = (err as { flags?: unknown }).flags;
      if (err instanceof Error && err.constructor.name === 'NonExistentFlagsError' && Array.isArray(unknown)) {
        throw new UsageError(`unknown flag(s) ${unknown.join(', ')}: the train arguments go after --, e.g. hep-ml k8s train --workers N --image IMAGE -- --model M --data D --out OUT`);
      }
      throw err;
    });
    if (argv.length > 0) {
      throw new UsageError(`unexpected argument(s) before '--': ${argv.join(' ')} (the train arguments go after --)`);
    }
    const job = resolveTrainJob({
      workers: flags.workers,
      image: flags.image,
      name: flags.name,
      namespace: flags.namespace,
      port: flags.port,
      cpu: flags.cpu,
      memory: flags.memory,
      coordinatorCpu: flags['coordinator-cpu'],
      coordinatorMemory: flags['coordinator-memory'],
      pvc: flags.pvc,
      mount: flags.mount,
      env: (flags.env ?? []).map(parseEnv),
      trainArgs,
      backoffLimit: flags['backoff-limit'],
      successPolicy: flags['success-policy'],
    });
    if (job.podCpu !== flags.cpu || job.podMemory !== flags.memory) {
      this.note(`hep-ml k8s train: one pod template serves the coordinator and the workers: every pod requests cpu ${job.podCpu}, memory ${job.podMemory}`);
    }
    const docs = [trainService(job), trainJob(job)];
    process.stdout.write(flags.output === 'json' ? toJsonList(docs) : toYamlStream(docs));
  }
}
