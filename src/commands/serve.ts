import { Flags } from '@oclif/core';
import { HepMlCommand } from '../cli/base.js';
import { IoError, UsageError } from '../errors.js';
import { startServer } from '../serve/server.js';

export default class Serve extends HepMlCommand {
  static override summary = 'Serve models over HTTP: Open Inference Protocol v2 (KServe) and TFaaS-compatible routes, with micro-batching.';
  static override description = `Loads every model directory in --models (a directory with one subdirectory per model, named by it; or one model directory) and answers:

  OIP v2: GET /v2/health/live, /v2/health/ready, GET /v2/models/{name} (inputs, outputs, shapes), POST /v2/models/{name}/infer (named tensors; shape includes the batch), POST /v2/repository/index, /v2/repository/models/{name}/load and /unload, PUT /v2/repository/models/{name} (upload a tar, tar.gz or ZIP of a model directory).
  TFaaS: POST /json ({"keys": [...], "values": [...], "model": "name"} → class probabilities), GET /models, GET /status.
  GET /metrics (Prometheus): requests, latency histograms, batch sizes.

Inputs are raw features as hep-ml features writes them; the server applies the model's own min-max scaler (send "parameters": {"scaled": true} for scaled inputs). Concurrent requests to a model are joined into one model call (up to --max-batch events, waiting at most --max-delay-ms for more). Errors are JSON {"error": "..."} with a 4xx/5xx status. Logs go to stderr; SIGINT/SIGTERM stop the server after the requests in flight. See docs/serve.md.`;
  static override examples = [
    '<%= config.bin %> serve --models models/ --port 8080',
    '<%= config.bin %> serve --models model/ --host 0.0.0.0 --max-batch 512 --max-delay-ms 2',
    // models/dnn/ answers as model "dnn"; one event of raw HLF features, as hep-ml features writes them.
    `<%= config.bin %> serve --models models/ &\n$ curl -s localhost:8080/v2/models/dnn/infer -d '{"inputs":[{"name":"hlf_input","shape":[1,14],"datatype":"FP32","data":[263.091,49.9667,2.67401,110.717,5,2,64.9742,-1.76652,0.0104706,0.0590999,0,0.0155326,1,1]}]}'`,
  ];
  static override flags = {
    models: Flags.string({ description: 'model repository: a directory of model directories, or one model directory', required: true }),
    host: Flags.string({ description: 'address to listen on', default: '127.0.0.1' }),
    port: Flags.integer({ char: 'p', description: 'port (0: any free port)', default: 8080, min: 0, max: 65535 }),
    'max-batch': Flags.integer({ description: 'most events in one model call', default: 256, min: 1 }),
    'max-delay-ms': Flags.string({ description: 'how long a batch waits for more requests (0: it takes what has arrived)', default: '0' }),
    'max-queue': Flags.integer({ description: 'events waiting per model before requests are refused (503)', default: 65536, min: 1 }),
    'max-body-mb': Flags.string({ description: 'largest inference request body, MB', default: '16' }),
    'max-inflight-mb': Flags.string({ description: 'most MB of request bodies being received over all connections together (beyond: 503)', default: '256' }),
    'max-upload-mb': Flags.string({ description: 'largest model upload (and its unpacked size), MB', default: '512' }),
    'body-timeout': Flags.integer({ description: 'seconds a client has to send a whole request', default: 30, min: 1 }),
    'max-connections': Flags.integer({ description: 'most open connections', default: 4096, min: 1 }),
    'allow-overwrite': Flags.boolean({ description: 'let uploads replace an existing model' }),
    json: Flags.boolean({ description: 'print {"url": ..., "models": [...]} on stdout once listening' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const num = (name: string, v: string, min: number) => {
      const x = Number(v);
      if (!(x >= min) || !Number.isFinite(x)) throw new UsageError(`--${name} must be a number ≥ ${min}, got '${v}'`);
      return x;
    };
    const mb = 1024 * 1024;
    let s;
    try {
      s = await startServer({
        models: flags.models,
        host: flags.host,
        port: flags.port,
        maxBatch: flags['max-batch'],
        maxDelayMs: num('max-delay-ms', flags['max-delay-ms'], 0),
        maxQueue: flags['max-queue'],
        maxBodyBytes: Math.round(num('max-body-mb', flags['max-body-mb'], 0.001) * mb),
        maxUploadBytes: Math.round(num('max-upload-mb', flags['max-upload-mb'], 0.001) * mb),
        maxInflightBytes: Math.round(num('max-inflight-mb', flags['max-inflight-mb'], 0.001) * mb),
        bodyTimeoutMs: flags['body-timeout'] * 1000,
        maxConnections: flags['max-connections'],
        allowOverwrite: flags['allow-overwrite'],
        log: (l) => this.note(`hep-ml serve: ${l}`),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new UsageError(`port ${flags.port} on ${flags.host} is in use (--port)`);
      if (code === 'EACCES') throw new UsageError(`no permission to listen on ${flags.host}:${flags.port} (--port)`);
      if (code === 'ENOENT') throw new IoError(`no such model repository: ${flags.models}`, { file: flags.models });
      throw e;
    }
    const models = s.repository.index();
    if (models.length === 0) this.note(`hep-ml serve: no model directories in ${flags.models} yet (upload with PUT /v2/repository/models/NAME)`);
    this.note(`hep-ml serve: listening on ${s.url} (${models.filter((m) => m.state === 'READY').length}/${models.length} models ready)`);
    if (flags.json) process.stdout.write(JSON.stringify({ url: s.url, models }) + '\n');
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        this.note(`hep-ml serve: ${sig}: stopping after the requests in flight`);
        void s.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  }
}
