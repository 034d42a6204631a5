import { Flags } from '@oclif/core';
import cliProgress from 'cli-progress';
import { HepMlCommand } from '../cli/base.js';
import { UsageError } from '../errors.js';
import { parseEngine } from '../train/engine.js';
import { MODEL_KINDS, parseUnits, type ModelKind } from '../train/models.js';
import { train, type TrainProgress } from '../train/trainer.js';
import type { DistributedOptions } from '../train/distributed/coordinator.js';
import { DEFAULT_ELASTIC_LR, DEFAULT_MOMENTUM, DEFAULT_RHO, STRATEGIES, strategyParams, type Strategy } from '../train/distributed/strategies.js';
import { parseAddress } from '../train/distributed/transport.js';
import { runWorker } from '../train/distributed/worker.js';

export default class Train extends HepMlCommand {
  static override summary = 'Train the DNN, GRU or inclusive classifier of the CERN recipe on hep-ml datasets.';
  static override description = `Streams the training data (Arrow, Parquet, TFRecord or a shard directory; the output of hep-ml prepare) through a seeded shuffle buffer into batches, trains with Adam (Keras defaults) and categorical cross-entropy, validates after every epoch, and writes OUT as a model directory that hep-ml evaluate and serve read: model.json + weights.bin (tfjs layers format), hep-ml-model.json (inputs, classes, recipe, scaler, training parameters), metrics.jsonl, tensorboard/ event files, checkpoints/epoch-NNNN and state.json (for --resume).

Models: dnn (HLF_input 14 → 50 → 20 → 10 → 3), gru (GRU_input 801×19 → Masking + GRU 50 → Dropout 0.2 → 3), inclusive (GRU 50 + Dropout on HLF, concatenated → Dense 25 → 3). The GRU runs on hep-ml's fused kernel (C → WebAssembly SIMD), the rest on TensorFlow.js (--engine: node when @tensorflow/tfjs-node loads, else wasm, else cpu). See docs/commands/train.md.

--workers N trains across N worker processes (sync all-reduce, or a dist-keras parameter-server strategy); --coordinator/--join run them on several hosts. See docs/training.md.`;
  static override examples = [
    '<%= config.bin %> train --model inclusive --data prep/train.arrow --validation prep/test.arrow --out model/ --epochs 5',
    '<%= config.bin %> train --model dnn --data train.parquet --out dnn/ --epochs 20 --lr 0.003 --units 100,50,20',
    '<%= config.bin %> train --model inclusive --data prep/train.arrow --out model/ --epochs 10 --resume',
    '<%= config.bin %> train --model inclusive --data prep/train.arrow --validation prep/test.arrow --out model/ --workers 2',
    '<%= config.bin %> train --model dnn --data train.parquet --out dnn/ --workers 4 --strategy adag --communication-window 12',
    'On several hosts: the coordinator on node01 waits for 8 workers; the second line runs on each worker host\n<%= config.bin %> train --model inclusive --data /data/train.arrow --out /data/model --workers 8 --coordinator 0.0.0.0:7777\n<%= config.bin %> train --join node01:7777',
  ];
  static override flags = {
    model: Flags.string({ description: 'the classifier (required, except with --join)', options: [...MODEL_KINDS] }),
    data: Flags.string({ description: 'training data: Arrow/Parquet/TFRecord file, shard directory, or - (stdin, one epoch) (required, except with --join)', multiple: true }),
    validation: Flags.string({ description: 'validation data, evaluated after every epoch (loss, accuracy, AUC per class)', multiple: true }),
    out: Flags.string({ char: 'o', description: 'the model directory to write (required, except with --join)' }),
    epochs: Flags.integer({ description: 'epochs (with --resume: the total to reach)', default: 5, min: 1 }),
    'batch-size': Flags.integer({ description: 'rows per training step', default: 128, min: 1 }),
    lr: Flags.string({ description: 'Adam learning rate', default: '0.001' }),
    units: Flags.string({ description: 'layer widths: dnn hidden widths (50,20,10), gru units (50), inclusive GRU units,dense width (50,25)' }),
    dropout: Flags.string({ description: 'dropout rate (gru, inclusive)', default: '0.2' }),
    seed: Flags.integer({ description: 'seed of the initial weights, the shuffle and the dropout masks', default: 0 }),
    'shuffle-buffer': Flags.integer({ description: 'rows held for shuffling (default: what fits in 128 MiB, at most 100,000; 0 keeps the file order)', min: 0 }),
    resume: Flags.boolean({ description: "continue OUT's training from its latest checkpoint up to --epochs" }),
    overwrite: Flags.boolean({ description: 'replace an existing, non-empty OUT' }),
    engine: Flags.string({ description: 'tensor engine: auto (node, else wasm, else cpu), node (@tensorflow/tfjs-node), wasm, cpu', default: 'auto' }),
    json: Flags.boolean({ description: 'print the result (epochs, metrics, paths) as JSON on stdout' }),
    progress: Flags.string({ description: 'progress on stderr: auto (a bar per epoch on a TTY), json (JSON lines), none', options: ['auto', 'json', 'none'], default: 'auto' }),
    workers: Flags.integer({ description: 'train across N worker processes (one per core); this process coordinates', min: 1, helpGroup: 'DISTRIBUTED' }),
    strategy: Flags.string({ description: 'with --workers: sync (all-reduce of gradients) or a parameter-server strategy', options: [...STRATEGIES], default: 'sync', helpGroup: 'DISTRIBUTED' }),
    'communication-window': Flags.integer({ description: 'parameter-server strategies: local steps between exchanges (default: downpour 5, adag 12, dynsgd 5, aeasgd/eamsgd 32)', min: 1, helpGroup: 'DISTRIBUTED' }),
    rho: Flags.string({ description: 'aeasgd/eamsgd: elastic force ρ (α = ρ × --elastic-lr)', default: String(DEFAULT_RHO), helpGroup: 'DISTRIBUTED' }),
    'elastic-lr': Flags.string({ description: 'aeasgd/eamsgd: the elastic learning rate η', default: String(DEFAULT_ELASTIC_LR), helpGroup: 'DISTRIBUTED' }),
    momentum: Flags.string({ description: 'eamsgd: momentum μ', default: String(DEFAULT_MOMENTUM), helpGroup: 'DISTRIBUTED' }),
    'lr-scaling': Flags.string({ description: 'linear: multiply --lr by the number of workers', options: ['none', 'linear'], default: 'none', helpGroup: 'DISTRIBUTED' }),
    coordinator: Flags.string({ description: 'listen on HOST:PORT (TCP) for --workers N remote workers instead of spawning local ones', helpGroup: 'DISTRIBUTED' }),
    join: Flags.string({ description: 'run as a worker of the coordinator at HOST:PORT (everything else comes from the coordinator)', helpGroup: 'DISTRIBUTED', exclusive: ['coordinator', 'workers', 'model', 'data', 'out', 'validation', 'resume'] }),
    rank: Flags.integer({ description: 'with --join: this worker\'s rank (0..N-1; default: the coordinator assigns one)', min: 0, dependsOn: ['join'], helpGroup: 'DISTRIBUTED' }),
    transport: Flags.string({ description: 'local workers: ipc (Unix sockets) or tcp (loopback)', options: ['ipc', 'tcp'], default: 'ipc', helpGroup: 'DISTRIBUTED' }),
    'heartbeat-timeout': Flags.integer({ description: 'seconds of silence after which a worker counts as lost (dead processes are noticed at once)', default: 30, min: 1, helpGroup: 'DISTRIBUTED' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Train);
    if (flags.join !== undefined) {
      try {
        parseAddress(flags.join);
      } catch (e) {
        throw new UsageError(`--join: ${(e as Error).message}`);
      }
      // a worker: its stdout stays empty; the coordinator reports progress. SIGTERM (Kubernetes deleting the
      // pod; as PID 1 node would ignore it) ends it at once: the coordinator carries on without it.
      const onTerm = () => process.exit(143);
      process.once('SIGTERM', onTerm);
      try {
        await runWorker({ join: flags.join, rank: flags.rank, log: (l) => this.note(`hep-ml train worker: ${l}`) });
      } finally {
        process.off('SIGTERM', onTerm);
      }
      return;
    }
    for (const f of ['model', 'data', 'out'] as const) if (flags[f] === undefined) throw new UsageError(`--${f} is required (or run a worker with --join HOST:PORT)`);
    if (flags.coordinator !== undefined && flags.workers === undefined) throw new UsageError('--coordinator needs --workers N (how many workers to wait for)');
    const model = flags.model as ModelKind;
    const lr = Number(flags.lr);
    if (!(lr > 0 && Number.isFinite(lr))) throw new UsageError(`--lr must be a positive number, got '${flags.lr}'`);
    const dropout = Number(flags.dropout);
    if (!(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got '${flags.dropout}'`);
    if (flags.resume && flags.overwrite) throw new UsageError('--resume and --overwrite contradict each other');
    const mode = flags.progress;
    let distributed: DistributedOptions | undefined;
    if (flags.workers !== undefined) {
      const num = (name: string, v: string) => {
        const x = Number(v);
        if (!Number.isFinite(x)) throw new UsageError(`--${name} must be a number, got '${v}'`);
        return x;
      };
      let params;
      try {
        params = strategyParams(flags.strategy as Strategy, {
          window: flags['communication-window'],
          rho: num('rho', flags.rho),
          momentum: num('momentum', flags.momentum),
          elasticLr: num('elastic-lr', flags['elastic-lr']),
        });
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      distributed = {
        workers: flags.workers,
        strategy: params,
        lrScaling: flags['lr-scaling'] as 'none' | 'linear',
        coordinator: flags.coordinator,
        transport: flags.transport as 'ipc' | 'tcp',
        heartbeatTimeoutMs: flags['heartbeat-timeout'] * 1000,
        onEvent: mode === 'json' ? (e) => process.stderr.write(JSON.stringify({ ...e, stage: 'train' }) + '\n') : undefined,
      };
    } else if (flags.strategy !== 'sync' || flags['communication-window'] !== undefined) {
      throw new UsageError('--strategy and --communication-window need --workers N');
    }
    const engine = parseEngine(process.env.HEPML_ENGINE && flags.engine === 'auto' ? process.env.HEPML_ENGINE : flags.engine);

    let bar: cliProgress.SingleBar | undefined;
    let barEpoch = 0;
    let lastJson = 0;
    const progress = (p: TrainProgress) => {
      if (mode === 'json') {
        const now = performance.now();
        if (now - lastJson < 500) return;
        lastJson = now;
        process.stderr.write(JSON.stringify({ event: 'progress', stage: 'train', ...p }) + '\n');
        return;
      }
      if (mode !== 'auto' || !process.stderr.isTTY) return;
      if (!bar || barEpoch !== p.epoch) {
        bar?.stop();
        barEpoch = p.epoch;
        const total = p.totalRows ?? 0;
        bar = new cliProgress.SingleBar(
          {
            format: `epoch ${p.epoch}/${p.epochs} [{bar}] ${total ? '{percentage}% | ' : ''}{value}${total ? '/{total}' : ''} rows | loss {loss} | acc {acc} | {rate}/s${total ? ' | ETA {eta_formatted}' : ''}`,
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total || 1, 0, { loss: '-', acc: '-', rate: '-' });
      }
      if (p.totalRows && p.rows > p.totalRows) bar.setTotal(p.rows);
      bar.update(p.rows, { loss: p.loss.toFixed(4), acc: p.accuracy.toFixed(4), rate: p.samplesPerS.toFixed(0) });
    };

    // Ctrl-C: finish the batch, keep the last epoch's checkpoint; a second Ctrl-C exits at once
    const abort = new AbortController();
    const onSigint = () => {
      if (abort.signal.aborted) process.exit(130);
      this.note('hep-ml train: interrupted; stopping (Ctrl-C again to quit at once)');
      abort.abort(new InterruptedTraining(130));
    };
    process.on('SIGINT', onSigint);
    // SIGTERM (kill, Kubernetes): stop as on Ctrl-C, keeping the last completed epoch
    const onSigterm = () => {
      if (abort.signal.aborted) process.exit(143);
      this.note('hep-ml train: terminated; stopping');
      abort.abort(new InterruptedTraining(143));
    };
    process.on('SIGTERM', onSigterm);
    let result;
    try {
      result = await train({
        model,
        data: flags.data!,
        validation: flags.validation,
        out: flags.out!,
        epochs: flags.epochs,
        batchSize: flags['batch-size'],
        lr,
        units: flags.units === undefined ? undefined : parseUnits(model, flags.units),
        dropout,
        seed: flags.seed,
        shuffleRows: flags['shuffle-buffer'],
        resume: flags.resume,
        overwrite: flags.overwrite,
        engine,
        log: (l) => this.note(`hep-ml train: ${l}`),
        progress,
        onEpoch: (r) => {
          bar?.stop();
          bar = undefined;
          const val =
            r.val_loss === undefined
              ? ''
              : `; val loss ${r.val_loss.toFixed(4)}, acc ${r.val_accuracy!.toFixed(4)}, AUC ${Object.entries(r.val_auc!)
                  .map(([c, a]) => `${c} ${a.toFixed(4)}`)
                  .join(' ')}`;
          this.note(`hep-ml train: epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, acc ${r.accuracy.toFixed(4)}${val} (${r.rows} rows, ${r.seconds.toFixed(1)} s, ${r.samples_per_s.toFixed(0)} samples/s)`);
        },
        signal: abort.signal,
        distributed,
      });
    } catch (e) {
      bar?.stop();
      if (e instanceof InterruptedTraining) {
        this.note(`hep-ml train: stopped; ${flags.out} holds the last completed epoch (continue with --resume)`);
        this.exit(e.exitCode);
      }
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    }
    const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    this.note(`hep-ml train: model in ${result.out} (${result.epochs.length ? `epoch ${result.epochs[result.epochs.length - 1]!.epoch}` : 'no epoch'}; peak memory ${peakRssMb} MB)`);
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({ out: result.out, model, engine: result.engine, gruKernel: result.gruKernel, params: result.params, peakRssMb, epochs: result.epochs }) + '\n',
      );
    }
  }
}

class InterruptedTraining extends Error {
  constructor(readonly exitCode: number) {
    super('interrupted');
  }
}
