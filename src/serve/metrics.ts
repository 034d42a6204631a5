/**
 * Prometheus text exposition (format 0.0.4) of the server's counters and histograms: requests by route and
 * status, request latency by route, model-call batch sizes and durations by model, in-flight requests.
 */

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`).join(',');

export class ServerMetrics {
  private readonly requests = new Map<string, { route: string; code: string; n: number }>();
  private readonly latency = new Map<string, Histogram>();
  private readonly batches = new Map<string, Histogram>();
  private readonly batchSeconds = new Map<string, Histogram>();
  inflight = 0;
  readonly started = Date.now();
  get = 0;
  post = 0;

  request(route: string, status: number, seconds: number): void {
    const key = `${route} ${status}`;
    const r = this.requests.get(key);
    if (r) r.n++;
    else this.requests.set(key, { route, code: String(status), n: 1 });
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = new Histogram(LATENCY_BUCKETS)));
    h.observe(seconds);
  }

  batch(model: string, rows: number, seconds: number): void {
    let h = this.batches.get(model);
    if (!h) this.batches.set(model, (h = new Histogram(BATCH_BUCKETS)));
    h.observe(rows);
    let s = this.batchSeconds.get(model);
    if (!s) this.batchSeconds.set(model, (s = new Histogram(LATENCY_BUCKETS)));
    s.observe(seconds);
  }

  /** Total requests answered. */
  total(): number {
    let n = 0;
    for (const r of this.requests.values()) n += r.n;
    return n;
  }

  render(models: { name: string; ready: boolean }[]): string {
    const out: string[] = [];
    out.push('# HELP hepml_requests_total HTTP requests answered, by route and status code.', '# TYPE hepml_requests_total counter');
    for (const r of [...this.requests.values()].sort((a, b) => (a.route + a.code).localeCompare(b.route + b.code))) out.push(`hepml_requests_total{${labels({ route: r.route, code: r.code })}} ${r.n}`);
    const hist = (name: string, help: string, label: string, m: Map<string, Histogram>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      for (const [key, h] of [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
        h.buckets.forEach((b, i) => out.push(`${name}_bucket{${labels({ [label]: key, le: String(b) })}} ${h.counts[i]}`));
        out.push(`${name}_bucket{${labels({ [label]: key, le: '+Inf' })}} ${h.count}`);
        out.push(`${name}_sum{${labels({ [label]: key })}} ${h.sum}`);
        out.push(`${name}_count{${labels({ [label]: key })}} ${h.count}`);
      }
    };
    hist('hepml_request_duration_seconds', 'Time from the request to its response, by route.', 'route', this.latency);
    hist('hepml_batch_size', 'Events per model call (micro-batches of concurrent requests), by model.', 'model', this.batches);
    hist('hepml_batch_duration_seconds', 'Duration of a model call, by model.', 'model', this.batchSeconds);
    out.push('# HELP hepml_requests_in_flight Requests being handled.', '# TYPE hepml_requests_in_flight gauge', `hepml_requests_in_flight ${this.inflight}`);
    out.push('# HELP hepml_model_ready 1 when a model is loaded and ready.', '# TYPE hepml_model_ready gauge');
    for (const m of models) out.push(`hepml_model_ready{${labels({ model: m.name })}} ${m.ready ? 1 : 0}`);
    const mem = process.memoryUsage();
    out.push('# HELP process_resident_memory_bytes Resident memory.', '# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
    out.push('# HELP process_start_time_seconds Start time of the process since the Unix epoch.', '# TYPE process_start_time_seconds gauge', `process_start_time_seconds ${Math.floor(this.started / 1000)}`);
    return out.join('\n') + '\n';
  }
}
