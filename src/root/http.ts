/**
 * HTTP(S) byte source: ROOT files read with Range requests, as XRootD's HTTP interface (XrdHttp), EOS,
 * dCache, S3 and plain web servers serve them.
 *
 * - Opening: one `Range: bytes=0-4095` request gives the size (Content-Range) and the file's head, which
 *   jsroot reads next (kept in a small cache with every recent read, as jsroot reads some ranges twice).
 * - readMany: ranges are coalesced for the network (http-plan.ts: gaps read through only while they stay a
 *   small fraction of the wanted bytes), very large reads split into 8 MiB pieces, and the pieces packed
 *   into multi-range requests (`multipart/byteranges`) below the server's limits: at most 256 ranges
 *   (HEPML_HTTP_MAX_RANGES), a Range header of at most ~8 KB, at most 1,000 chunks of 128 KiB (XrdHttp 5.5
 *   fails past 1,024). A server that answers a multi-range request with anything but multipart (200, one
 *   range, merged ranges, 400/416/501) or with a garbled multipart body is asked one range per request from
 *   then on (remembered per source); what it did send that is usable is used.
 * - Requests run on up to 8 connections at a time per source (HEPML_HTTP_CONCURRENCY), kept alive.
 * - Redirects (301/302/303/307/308, relative Location too) are followed by hand, with the Range header, up to
 *   10 hops; the final location is cached and used directly by later reads (XrdHttp redirectors redirect
 *   every request). Credentials follow a redirect to https:// or to the same host (see http-auth.ts).
 *   A cached location that later answers 401/403/404/410 is dropped and the original URL asked again.
 * - Timeouts (http-client.ts): connect (HEPML_HTTP_CONNECT_TIMEOUT_MS, default 10 s) and idle: no byte for
 *   HEPML_HTTP_TIMEOUT_MS (default 60 s) while waiting for the answer or inside the body.
 * - Retries (HEPML_HTTP_RETRIES, default 4) with exponential backoff and jitter (250 ms, 500 ms, 1 s, 2 s ...
 *   each × 0.5–1, Retry-After honoured up to 30 s) on 5xx and 429, refused or reset connections and bodies cut
 *   short; a timeout is retried once (a stalled server should fail within about two timeouts). 4xx are not
 *   retried. DNS and TLS certificate failures are not retried.
 * - Errors: 404/410 → InputNotFoundError (exit 3); 401/403 → IoError "access denied"; network → IoError (exit 9);
 *   a short read or a malformed answer that cannot be recovered → CorruptDataError (exit 7).
 * - The header is always spelled `Range`: XrdHttp 5.5 ignores a lower-case `range`.
 */
import { CorruptDataError, InputNotFoundError, IoError, NotRootFileError, UsageError } from '../errors.js';
import { credentialsFollowRedirect, discoverBearerToken, isCredentialHeader, tokenAllowed, type DiscoveredToken, type DiscoveryEnv } from './http-auth.js';
import { get, NetFailure, type Answer, type Timeouts } from './http-client.js';
import { contentRangeTotal, multipartBoundary, MultipartError, parseContentRange, parseMultipart, type BytePart } from './http-multipart.js';
import {
  coalesceRemote,
  MULTI_RANGE_COALESCE,
  packRequests,
  rangeHeader,
  SINGLE_RANGE_COALESCE,
  splitUnits,
  type Unit,
} from './http-plan.js';
import type { ByteSource, SourceOptions } from './source.js';

/** Tuning of the HTTP client; every field has an environment variable and a default. */
export interface HttpOptions {
  /** Requests in flight per source (HEPML_HTTP_CONCURRENCY, default 8). */
  concurrency?: number;
  /** TCP+TLS connect timeout (HEPML_HTTP_CONNECT_TIMEOUT_MS, default 10000). */
  connectTimeoutMs?: number;
  /** Idle timeout: no byte received for this long (HEPML_HTTP_TIMEOUT_MS, default 60000). */
  timeoutMs?: number;
  /** Retries after the first attempt (HEPML_HTTP_RETRIES, default 4). */
  retries?: number;
  /** First backoff delay (HEPML_HTTP_RETRY_BASE_MS, default 250); doubles per retry, at most 8 s. */
  retryBaseMs?: number;
  /** Ranges per request; 1 turns multi-range requests off (HEPML_HTTP_MAX_RANGES, default 256). */
  maxRanges?: number;
  /** Token discovery environment (tests); `false` turns discovery off. */
  tokenDiscovery?: DiscoveryEnv | false;
}

interface Settings {
  concurrency: number;
  timeouts: Timeouts;
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxRanges: number;
}

const DEFAULTS = { concurrency: 8, connectTimeoutMs: 10_000, timeoutMs: 60_000, retries: 4, retryBaseMs: 250, maxRanges: 256 };
/** Size of the first request (the file's head: jsroot reads 0..400 and the top directory next). */
const HEAD_BYTES = 4096;
/** Reads larger than this are split into pieces fetched in parallel. */
const PIECE_BYTES = 8 * 1024 * 1024;
/** A request (multi-range) carries at least this much before another one is started... */
const MIN_REQUEST_BYTES = 1024 * 1024;
/** ...and at most this much. */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Request header budget (servers refuse ~16 KB of headers; XrdHttp has a fixed buffer). */
const HEADER_BUDGET = 14 * 1024;
const MAX_RANGE_HEADER = 8 * 1024;
/** 1,024 readv chunks is XrdHttp 5.5's hard limit. */
const MAX_CHUNKS = 1000;
const MAX_REDIRECTS = 10;
const RETRY_MAX_MS = 8_000;
const RETRY_AFTER_MAX_MS = 30_000;
/** A server that ignores Range: files up to this size are downloaded whole instead. */
const WHOLE_FILE_MAX = 64 * 1024 * 1024;
/** Cache of recent reads (jsroot reads some ranges twice while opening a file). */
const CACHE_ITEM_MAX = 2 * 1024 * 1024;
const CACHE_TOTAL_MAX = 8 * 1024 * 1024;

function envInt(name: string, min: number): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function resolveSettings(o: HttpOptions): Settings {
  return {
    concurrency: Math.max(1, o.concurrency ?? envInt('HEPML_HTTP_CONCURRENCY', 1) ?? DEFAULTS.concurrency),
    timeouts: {
      connectMs: o.connectTimeoutMs ?? envInt('HEPML_HTTP_CONNECT_TIMEOUT_MS', 1) ?? DEFAULTS.connectTimeoutMs,
      idleMs: o.timeoutMs ?? envInt('HEPML_HTTP_TIMEOUT_MS', 1) ?? DEFAULTS.timeoutMs,
    },
    retries: o.retries ?? envInt('HEPML_HTTP_RETRIES', 0) ?? DEFAULTS.retries,
    retryBaseMs: o.retryBaseMs ?? envInt('HEPML_HTTP_RETRY_BASE_MS', 0) ?? DEFAULTS.retryBaseMs,
    retryMaxMs: RETRY_MAX_MS,
    maxRanges: Math.max(1, o.maxRanges ?? envInt('HEPML_HTTP_MAX_RANGES', 1) ?? DEFAULTS.maxRanges),
  };
}

/** A 5xx/429 answer, retried. */
class RetryableStatus extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
    readonly text: string,
  ) {
    super(`HTTP ${status}`);
  }
}

/** A 4xx from a cached redirect target: ask the original URL again. */
class StaleLocation extends Error {}

/** The source was closed, or a sibling request of the same read failed. */
class Cancelled extends IoError {}

function retryAfterMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.min(RETRY_AFTER_MAX_MS, s * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.min(RETRY_AFTER_MAX_MS, Math.max(0, t - Date.now())) : undefined;
}

function header(a: Answer, name: string): string | undefined {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A short, printable excerpt of an error page. */
function excerpt(body: Buffer): string {
  const text = body.toString('utf8').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > 160 ? `${text.slice(0, 160)}...` : text;
}

const STATUS_TEXT: Record<number, string> = { 500: 'internal server error', 502: 'bad gateway', 503: 'service unavailable', 504: 'gateway timeout', 429: 'too many requests' };

/** Runs at most `n` tasks at a time. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** Per-read cancellation: once one request of a read fails for good, the others stop retrying. */
interface ReadScope {
  failed: boolean;
}

export interface HttpStats {
  /** HTTP requests sent (redirect hops and retries included). */
  requests: number;
  /** Body bytes received (multipart framing, error pages and discarded answers included). */
  bytes: number;
  redirects: number;
  retries: number;
  /** Requests with more than one range. */
  multiRangeRequests: number;
  /** Bytes asked for by callers (read/readMany), before coalescing; cache hits included. */
  wantedBytes: number;
  /** Reads answered from the cache of recent reads. */
  cacheHits: number;
}

export class HttpSource implements ByteSource {
  readonly stats: HttpStats = { requests: 0, bytes: 0, redirects: 0, retries: 0, multiRangeRequests: 0, wantedBytes: 0, cacheHits: 0 };
  /** Where requests go: the original URL, or the final location of its redirects. */
  private location: URL;
  /** May credentials go to `location`? (false when a redirect led to plain http on another host) */
  private locationCredentials = true;
  /** Does the server answer multi-range requests with multipart/byteranges? undefined: not known yet. */
  private multi: boolean | undefined;
  private maxRanges: number;
  private readonly limiter: Limiter;
  private readonly abort = new AbortController();
  private closed = false;
  private readonly sleeps = new Set<() => void>();
  private cache: { start: number; data: Uint8Array }[] = [];
  private cacheBytes = 0;
  /** The whole file, when the server ignores Range and the file is small enough. */
  private whole: Uint8Array | undefined;
  size = 0;

  private constructor(
    readonly name: string,
    private readonly url: URL,
    private readonly headers: Record<string, string>,
    private readonly token: DiscoveredToken | undefined,
    private readonly settings: Settings,
  ) {
    this.location = url;
    this.maxRanges = settings.maxRanges;
    this.multi = settings.maxRanges > 1 ? undefined : false;
    this.limiter = new Limiter(settings.concurrency);
  }

  /** Multi-range support as found so far: 'yes', 'no' (one range per request), or 'unknown'. */
  get multiRange(): 'yes' | 'no' | 'unknown' {
    return this.multi === undefined ? 'unknown' : this.multi ? 'yes' : 'no';
  }

  /** Where requests go now (the cached final location after redirects). */
  get effectiveUrl(): string {
    return this.location.href;
  }

  /** Where the bearer token came from (never the token), or undefined when none is sent. */
  get tokenSource(): string | undefined {
    return this.token?.source;
  }

  static async open(location: string, opts: SourceOptions = {}): Promise<HttpSource> {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      throw new UsageError(`not a valid URL: '${location}'`, { file: location });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`unsupported URL scheme '${url.protocol}'`, { file: location });
    const settings = resolveSettings(opts.http ?? {});
    const headers: Record<string, string> = {};
    let explicitAuth: string | undefined;
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      const lower = k.toLowerCase();
      if (lower === 'range' || lower === 'host' || lower === 'content-length' || lower === 'connection' || lower === 'transfer-encoding') continue;
      if (lower === 'authorization') explicitAuth = v;
      if (lower === 'authorization' && v === '') continue; // `--header 'Authorization:'`: no credentials at all
      headers[k] = v;
    }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'user-agent')) headers['User-Agent'] = 'hep-ml';
    const discovery = opts.http?.tokenDiscovery;
    const token = explicitAuth === undefined && discovery !== false ? discoverBearerToken(discovery ?? {}) : undefined;
    const src = new HttpSource(location, url, headers, token, settings);
    try {
      await src.probe();
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  // ------------------------------------------------------------------------------------------------
  // requests

  private headersFor(url: URL, credentials: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.headers)) if (credentials || !isCredentialHeader(k)) h[k] = v;
    if (this.token && credentials && tokenAllowed(url)) h.Authorization = `Bearer ${this.token.token}`;
    return h;
  }

  private get sentCredentials(): boolean {
    return (this.token !== undefined && tokenAllowed(this.location)) || Object.keys(this.headers).some((k) => k.toLowerCase() === 'authorization');
  }

  /** One request with its redirects; resolves with the first non-redirect answer. */
  private async send(range: string): Promise<Answer> {
    let url = this.location;
    let credentials = this.locationCredentials;
    for (let hop = 0; ; hop++) {
      if (this.closed) throw new Cancelled('the source was closed', { file: this.name });
      this.stats.requests++;
      const h = this.headersFor(url, credentials);
      if (range) h.Range = range;
      const a = await get(url, h, this.settings.timeouts, (n) => (this.stats.bytes += n), this.abort.signal);
      const loc = header(a, 'location');
      if ([301, 302, 303, 307, 308].includes(a.status) && loc) {
        a.discard();
        this.stats.redirects++;
        if (hop >= MAX_REDIRECTS) throw new IoError(`more than ${MAX_REDIRECTS} redirects (last to ${loc})`, { file: this.name });
        let next: URL;
        try {
          next = new URL(loc, url);
        } catch {
          throw new IoError(`the server redirected to an invalid location '${loc}'`, { file: this.name });
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new IoError(`the server redirected to an unsupported location '${next.href}'`, { file: this.name });
        }
        credentials &&= credentialsFollowRedirect(url, next);
        url = next;
        continue;
      }
      if (url !== this.location && a.status >= 200 && a.status < 300) {
        this.location = url;
        this.locationCredentials = credentials;
      }
      return a;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cancel = () => {
        clearTimeout(timer);
        this.sleeps.delete(cancel);
        reject(new Cancelled('the source was closed', { file: this.name }));
      };
      const timer = setTimeout(() => {
        this.sleeps.delete(cancel);
        resolve();
      }, ms);
      this.sleeps.add(cancel);
    });
  }

  /**
   * Sends `range` and hands the answer to `handle`, retrying transient failures: 5xx and 429 answers, and
   * network failures (`handle` may throw a NetFailure while it reads the body).
   */
  private async exchange<T>(range: string, what: string, handle: (a: Answer) => Promise<T>, scope?: ReadScope): Promise<T> {
    let retries = 0;
    let stalls = 0;
    let staleRetried = false;
    for (;;) {
      if (this.closed) throw new Cancelled('the source was closed', { file: this.name });
      if (scope?.failed) throw new Cancelled('another request of the same read failed', { file: this.name });
      let delay: number | undefined;
      let err: unknown;
      try {
        const a = await this.send(range);
        if (a.status >= 500 || a.status === 429) {
          const text = a.status >= 500 ? excerpt(await a.body(512).catch(() => Buffer.alloc(0))) : '';
          a.discard();
          throw new RetryableStatus(a.status, retryAfterMs(header(a, 'retry-after')), text);
        }
        if ([401, 403, 404, 410].includes(a.status) && this.location !== this.url) {
          if (!staleRetried) {
            a.discard();
            throw new StaleLocation();
          }
        }
        return await handle(a);
      } catch (e) {
        err = e;
      }
      if (this.closed) throw new Cancelled('the source was closed', { file: this.name });
      if (scope?.failed && !(err instanceof Error && 'exitCode' in err)) throw new Cancelled('another request of the same read failed', { file: this.name });
      if (err instanceof StaleLocation) {
        staleRetried = true;
        this.resetLocation();
        continue;
      }
      let retryable = false;
      if (err instanceof RetryableStatus) {
        retryable = true;
        delay = err.retryAfterMs;
      } else if (err instanceof NetFailure) {
        if (err.kind === 'connect-timeout' || err.kind === 'idle-timeout') retryable = stalls++ < 1;
        else retryable = err.kind === 'refused' || err.kind === 'reset' || err.kind === 'other';
        // a failure of the cached redirect target: ask the original URL again
        if (this.location !== this.url && (err.kind === 'refused' || err.kind === 'dns')) {
          this.resetLocation();
          retryable = true;
        }
      }
      if (!retryable || retries >= this.settings.retries) throw this.finalError(err, what, retries + 1);
      const backoff = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** retries) * (0.5 + Math.random() * 0.5);
      retries++;
      this.stats.retries++;
      if (process.env.HEPML_DEBUG) {
        process.stderr.write(`hep-ml: ${this.name}: ${describe(err)}; retry ${retries}/${this.settings.retries} in ${Math.round(delay ?? backoff)} ms\n`);
      }
      await this.sleep(delay ?? backoff);
    }
  }

  private resetLocation(): void {
    this.location = this.url;
    this.locationCredentials = true;
  }

  private finalError(err: unknown, what: string, attempts: number): Error {
    const after = attempts > 1 ? ` (${attempts} attempts)` : '';
    if (err instanceof RetryableStatus) {
      return new IoError(`HTTP ${err.status} (${STATUS_TEXT[err.status] ?? 'server error'}) for ${what}${err.text ? `: ${err.text}` : ''}${after}`, { file: this.name });
    }
    if (err instanceof NetFailure) return new IoError(`cannot read ${what}: ${err.message}${after}`, { file: this.name }, { cause: err });
    if (err instanceof Error && 'exitCode' in err) return err;
    return new IoError(`request failed for ${what}: ${(err as Error)?.message ?? String(err)}`, { file: this.name }, { cause: err });
  }

  /** An answer that is not what a range request expects. */
  private async statusError(a: Answer, what: string): Promise<Error> {
    const body = a.status === 200 ? Buffer.alloc(0) : await a.body(512).catch(() => Buffer.alloc(0));
    a.discard();
    const text = excerpt(body);
    const detail = text ? `: ${text}` : '';
    if (a.status === 404 || a.status === 410) return new InputNotFoundError(`no such file on the server (HTTP ${a.status})`, { file: this.name });
    if (a.status === 401 || a.status === 403) {
      const hint = this.sentCredentials
        ? this.token
          ? `the server refused the bearer token from ${this.token.source}`
          : 'the server refused the credentials given with --header'
        : 'no credentials were sent: set BEARER_TOKEN / BEARER_TOKEN_FILE, or pass --header "Authorization: Bearer ..."';
      return new IoError(`access denied (HTTP ${a.status}${detail}); ${hint}`, { file: this.name });
    }
    if (a.status === 416) return new CorruptDataError(`the server cannot serve ${what} (HTTP 416): the file is shorter than expected (did it change?)`, { file: this.name });
    if (a.status === 200) return new IoError(`the server ignored the Range header (HTTP 200 to a request for ${what})`, { file: this.name });
    return new IoError(`unexpected HTTP ${a.status} for ${what}${detail}`, { file: this.name });
  }

  // ------------------------------------------------------------------------------------------------
  // opening

  private async probe(): Promise<void> {
    const what = `bytes 0..${HEAD_BYTES}`;
    const head = await this.exchange(`bytes=0-${HEAD_BYTES - 1}`, what, async (a) => {
      if (a.status === 206) {
        const cr = parseContentRange(header(a, 'content-range'));
        if (!cr || cr.total === undefined) {
          a.discard();
          throw new IoError('the server sent no usable Content-Range header, so the file size is unknown', { file: this.name });
        }
        this.size = cr.total;
        if (cr.start !== 0 || cr.end >= cr.total) {
          // the file is smaller than the request (XrdHttp 5.5 then announces the full length and sends nothing)
          a.discard();
          return undefined;
        }
        return this.readBody(a, cr.end + 1, what);
      }
      if (a.status === 416) {
        const total = contentRangeTotal(header(a, 'content-range'));
        a.discard();
        if (total === undefined) throw new IoError('HTTP 416 without the file size', { file: this.name });
        this.size = total;
        return undefined;
      }
      if (a.status === 200) return this.takeWhole(a);
      throw await this.statusError(a, what);
    });
    if (this.size === 0) throw new NotRootFileError('not a ROOT file (empty)', { file: this.name });
    if (head) {
      this.remember(0, head);
    } else if (!this.whole && this.size > 0) {
      const n = Math.min(this.size, HEAD_BYTES);
      this.remember(0, await this.fetchSingle({ start: 0, end: n }));
    }
  }

  /** The server ignores Range: reject directories (an HTML listing), download small files whole. */
  private async takeWhole(a: Answer): Promise<undefined> {
    const len = Number(header(a, 'content-length'));
    const first = await a.body(256);
    const text = first.toString('latin1').trimStart().toLowerCase();
    if (text.startsWith('<!doctype') || text.startsWith('<html') || text.startsWith('<?xml')) {
      a.discard();
      throw new InputNotFoundError('is a directory, not a ROOT file (the server answered with an HTML listing)', { file: this.name });
    }
    a.discard();
    if (!Number.isFinite(len) || len > WHOLE_FILE_MAX) {
      throw new IoError(
        `the server ignores Range requests (HTTP 200) and the file is ${Number.isFinite(len) ? `${len} bytes` : 'of unknown size'}: too large to download whole (limit ${WHOLE_FILE_MAX} bytes)`,
        { file: this.name },
      );
    }
    // download it whole, once (a fresh request: the first one was cut short)
    const data = await this.exchange('', 'the whole file', async (b) => {
      if (b.status === 206 || b.status === 200) return this.readBody(b, Number(header(b, 'content-length')), 'the whole file');
      throw await this.statusError(b, 'the whole file');
    });
    this.whole = data;
    this.size = data.length;
    return undefined;
  }

  /** The body, which must be exactly `len` bytes. */
  private async readBody(a: Answer, len: number, what: string): Promise<Buffer> {
    const body = await a.body();
    if (Number.isFinite(len) && body.length !== len) {
      throw new CorruptDataError(`short read: asked ${len} bytes (${what}), the server sent ${body.length}`, { file: this.name });
    }
    return body;
  }

  // ------------------------------------------------------------------------------------------------
  // cache of recent reads

  private remember(start: number, data: Uint8Array): void {
    if (data.length > CACHE_ITEM_MAX || data.length === 0) return;
    this.cache.push({ start, data });
    this.cacheBytes += data.length;
    while (this.cacheBytes > CACHE_TOTAL_MAX || this.cache.length > 32) this.cacheBytes -= this.cache.shift()!.data.length;
  }

  private cached(pos: number, len: number): Uint8Array | undefined {
    for (let k = this.cache.length - 1; k >= 0; k--) {
      const c = this.cache[k]!;
      if (pos >= c.start && pos + len <= c.start + c.data.length) {
        this.stats.cacheHits++;
        return c.data.subarray(pos - c.start, pos - c.start + len);
      }
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------------------------
  // reading

  private check(pos: number, len: number): void {
    if (this.closed) throw new IoError('file already closed', { file: this.name });
    if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > this.size) {
      throw new CorruptDataError(`needs bytes ${pos}..${pos + len} but the file has ${this.size} bytes (truncated or corrupt file)`, { file: this.name });
    }
  }

  async read(pos: number, len: number): Promise<Uint8Array> {
    return (await this.readMany([[pos, len]]))[0]!;
  }

  async readMany(ranges: readonly (readonly [number, number])[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(ranges.length);
    const todo: number[] = [];
    for (let i = 0; i < ranges.length; i++) {
      const [pos, len] = ranges[i]!;
      this.check(pos, len);
      this.stats.wantedBytes += len;
      if (len === 0) out[i] = new Uint8Array(0);
      else if (this.whole) out[i] = this.whole.subarray(pos, pos + len);
      else {
        const c = this.cached(pos, len);
        if (c) out[i] = c;
        else todo.push(i);
      }
    }
    if (todo.length === 0) return out;
    const sub = todo.map((i) => ranges[i]!);
    const groups = coalesceRemote(sub, this.multi === false ? SINGLE_RANGE_COALESCE : MULTI_RANGE_COALESCE);
    const pieces = splitUnits(groups, PIECE_BYTES);
    const units = pieces.flat();
    const data = await this.fetchUnits(units);
    let k = 0;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      const parts = pieces[g]!;
      let buf: Uint8Array;
      if (parts.length === 1) buf = data[k++]!;
      else {
        buf = new Uint8Array(group.end - group.start);
        for (const p of parts) buf.set(data[k++]!, p.start - group.start);
      }
      this.remember(group.start, buf);
      for (const m of group.members) {
        const [pos, len] = sub[m]!;
        out[todo[m]!] = buf.subarray(pos - group.start, pos - group.start + len);
      }
    }
    return out;
  }

  /** Fetches every unit (exact bytes), with multi-range requests where the server takes them. */
  private async fetchUnits(units: Unit[]): Promise<Uint8Array[]> {
    const scope: ReadScope = { failed: false };
    const result = new Map<Unit, Uint8Array>();
    const guard = async (p: Promise<unknown>): Promise<void> => {
      try {
        await p;
      } catch (e) {
        scope.failed = true;
        throw e;
      }
    };
    const singles = (list: Unit[]) =>
      Promise.all(list.map((u) => guard(this.limiter.run(async () => void result.set(u, await this.fetchSingle(u, scope))))));
    if (this.multi === false || units.length === 1) {
      await singles(units);
    } else {
      const total = units.reduce((s, u) => s + u.end - u.start, 0);
      const otherHeaders = Object.entries(this.headersFor(this.location, true)).reduce((s, [k, v]) => s + k.length + v.length + 4, 0);
      const batches = packRequests(units, {
        maxRanges: this.maxRanges,
        maxHeaderBytes: Math.max(1024, Math.min(MAX_RANGE_HEADER, HEADER_BUDGET - otherHeaders)),
        maxChunks: MAX_CHUNKS,
        targetBytes: Math.min(MAX_REQUEST_BYTES, Math.max(MIN_REQUEST_BYTES, Math.ceil(total / this.settings.concurrency))),
      });
      const runBatch = async (b: Unit[]) => {
        if (this.multi === false || b.length === 1) return singles(b);
        const missing = await this.limiter.run(() => this.fetchMulti(b, result, scope));
        if (missing.length) await singles(missing);
      };
      let rest = batches;
      if (this.multi === undefined) {
        // the first multi-range request tells whether the server does multipart; then the rest
        await guard(runBatch(batches[0]!));
        rest = batches.slice(1);
      }
      await Promise.all(rest.map((b) => guard(runBatch(b))));
    }
    return units.map((u) => {
      const d = result.get(u);
      if (!d) throw new CorruptDataError(`bytes ${u.start}..${u.end} missing from the server's answers`, { file: this.name });
      return d;
    });
  }

  /** One range per request; a server that answers with less than asked is asked for the rest. */
  private async fetchSingle(u: Unit, scope?: ReadScope): Promise<Uint8Array> {
    const len = u.end - u.start;
    let out: Uint8Array | undefined;
    let done = 0;
    for (let round = 0; done < len; round++) {
      const a0 = u.start + done;
      const what = `bytes ${a0}..${u.end}`;
      const piece = await this.exchange(
        `bytes=${a0}-${u.end - 1}`,
        what,
        async (a) => {
          if (a.status !== 206) throw await this.statusError(a, what);
          const boundary = multipartBoundary(header(a, 'content-type'));
          if (boundary) {
            // a multipart answer to a single range (allowed): take the part that starts at a0
            const parts = this.parseParts(await a.body(), boundary, what);
            const p = parts.find((x) => x.start <= a0 && x.end >= a0);
            if (!p) throw new CorruptDataError(`the server's answer for ${what} does not contain it`, { file: this.name });
            return p.data.subarray(a0 - p.start, Math.min(p.data.length, u.end - p.start));
          }
          const cr = parseContentRange(header(a, 'content-range'));
          if (cr && (cr.start > a0 || cr.end < a0)) {
            a.discard();
            throw new CorruptDataError(`asked ${what}, the server sent bytes ${cr.start}..${cr.end + 1}`, { file: this.name });
          }
          const expected = cr ? cr.end - cr.start + 1 : u.end - a0;
          const body = await this.readBody(a, expected, what);
          const from = cr ? a0 - cr.start : 0;
          return body.subarray(from, Math.min(body.length, from + (u.end - a0)));
        },
        scope,
      );
      if (piece.length === 0) throw new CorruptDataError(`short read: the server sent no bytes for ${what}`, { file: this.name });
      if (done === 0 && piece.length === len) return piece;
      out ??= new Uint8Array(len);
      out.set(piece, done);
      done += piece.length;
      if (round > 64) throw new CorruptDataError(`short reads: the server keeps sending less than asked for ${what}`, { file: this.name });
    }
    return out!;
  }

  private parseParts(body: Uint8Array, boundary: string, what: string): BytePart[] {
    try {
      return parseMultipart(body, boundary);
    } catch (e) {
      throw new CorruptDataError(`malformed multipart/byteranges answer for ${what}: ${(e as Error).message}`, { file: this.name }, { cause: e });
    }
  }

  /**
   * One multi-range request; stores what the answer holds in `result` and returns the units it lacks
   * (to be fetched one per request). Settles this.multi on the way.
   */
  private async fetchMulti(units: Unit[], result: Map<Unit, Uint8Array>, scope: ReadScope): Promise<Unit[]> {
    const what = `${units.length} ranges (bytes ${units[0]!.start}..${units[units.length - 1]!.end})`;
    this.stats.multiRangeRequests++;
    const parts = await this.exchange(
      rangeHeader(units),
      what,
      async (a): Promise<BytePart[] | undefined> => {
        if (a.status === 200 || a.status === 400 || a.status === 416 || a.status === 501) {
          // ignored (200: do not download the whole file) or refused: one range per request from now on
          a.discard();
          this.noMulti(`HTTP ${a.status} to a multi-range request`);
          return undefined;
        }
        if (a.status !== 206) throw await this.statusError(a, what);
        const boundary = multipartBoundary(header(a, 'content-type'));
        if (!boundary) {
          // one range back: the first range only, or the ranges merged into one
          this.noMulti(`a ${header(a, 'content-type') ? `'${header(a, 'content-type')}'` : 'non-multipart'} answer to a multi-range request`);
          const cr = parseContentRange(header(a, 'content-range'));
          if (!cr || cr.end - cr.start + 1 > 2 * (units[units.length - 1]!.end - units[0]!.start) + 65536) {
            a.discard();
            return undefined;
          }
          const body = await this.readBody(a, cr.end - cr.start + 1, what);
          return [{ ...cr, data: body }];
        }
        const body = await a.body();
        try {
          const parts = parseMultipart(body, boundary);
          this.multi = true;
          return parts;
        } catch (e) {
          // garbled (XrdHttp 5.5 past its readv limit writes an HTTP 500 into the body): fewer ranges per
          // request from now on, and these ranges one by one
          this.maxRanges = Math.max(1, Math.floor(units.length / 2));
          if (this.maxRanges === 1) this.noMulti('garbled multipart answers');
          if (process.env.HEPML_DEBUG) process.stderr.write(`hep-ml: ${this.name}: malformed multipart answer (${(e as Error).message}); ranges one by one\n`);
          return undefined;
        }
      },
      scope,
    );
    if (!parts) return units;
    const missing: Unit[] = [];
    for (const u of units) {
      const p = parts.find((x) => x.start <= u.start && x.end + 1 >= u.end);
      if (p) result.set(u, p.data.subarray(u.start - p.start, u.end - p.start));
      else missing.push(u);
    }
    return missing;
  }

  private noMulti(why: string): void {
    if (this.multi === false) return;
    this.multi = false;
    if (process.env.HEPML_DEBUG) process.stderr.write(`hep-ml: ${this.name}: ${why}; one range per request from now on\n`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.sleeps]) cancel();
    this.abort.abort();
    this.cache = [];
    this.cacheBytes = 0;
    this.whole = undefined;
  }
}

function describe(e: unknown): string {
  if (e instanceof RetryableStatus) return `HTTP ${e.status}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
