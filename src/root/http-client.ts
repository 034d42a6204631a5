/**
 * One HTTP GET over node:http / node:https, with the two timeouts a remote read needs:
 *
 * - connect timeout: TCP (and TLS) connection set-up of a new socket;
 * - idle timeout: no byte received for this long, while waiting for the response headers or between two
 *   pieces of the body (a frozen server: the kernel still accepts the connection, nothing answers).
 *
 * Header names go out exactly as written (`Range`, never `range`: XrdHttp 5.5 ignores lower case).
 * Keep-alive connections are pooled per process (idle pooled sockets do not keep the process alive).
 *
 * Why node:http and not fetch or the undici package (measured against XrdHttp 5.5.3 on loopback, Node 20,
 * in docs/decisions.md): fetch cannot set a connect timeout (no dispatcher without the undici package) and
 * costs ~25 ms to load and ~0.15 ms per request; undici is as fast as node:http per request but takes ~45 ms to
 * load in a CLI process; node:http starts in ~7 ms, gives a socket-level idle timeout and needs no dependency.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });

export type NetFailureKind = 'connect-timeout' | 'idle-timeout' | 'refused' | 'reset' | 'dns' | 'tls' | 'other';

/** A request that failed below HTTP (no status, or a body cut short). */
export class NetFailure extends Error {
  constructor(
    readonly kind: NetFailureKind,
    message: string,
    /** True when the response headers had arrived (the body was cut short). */
    readonly afterHeaders: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Timeouts {
  connectMs: number;
  idleMs: number;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Reads the whole body (at most `limit` bytes; a longer body resolves with the first `limit` bytes and closes). */
  body(limit?: number): Promise<Buffer>;
  /** Drops the body: the connection is closed unless the body is empty. */
  discard(): void;
}

const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH|ERR_OSSL)/;

function classify(e: NodeJS.ErrnoException, afterHeaders: boolean): NetFailure {
  const code = e.code ?? '';
  if (e instanceof NetFailure) return e;
  if (code === 'ECONNREFUSED') return new NetFailure('refused', 'connection refused', afterHeaders, { cause: e });
  if (code === 'ENOTFOUND' || code === 'EAI_NONAME' || code === 'EAI_NODATA') {
    return new NetFailure('dns', `cannot resolve the host name (${code})`, afterHeaders, { cause: e });
  }
  if (TLS_CODES.test(code) || /certificate|ssl|tls/i.test(e.message)) {
    return new NetFailure('tls', `TLS failed: ${e.message} (${code}); for a private CA, set NODE_EXTRA_CA_CERTS=/path/to/ca.pem`, afterHeaders, {
      cause: e,
    });
  }
  if (['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'HPE_INVALID_CONSTANT', 'HPE_INVALID_EOF_STATE'].includes(code) || /socket hang up|aborted|closed/i.test(e.message)) {
    return new NetFailure('reset', afterHeaders ? 'connection closed in the middle of the answer' : 'connection closed by the server', afterHeaders, {
      cause: e,
    });
  }
  return new NetFailure('other', `${e.message}${code ? ` (${code})` : ''}`, afterHeaders, { cause: e });
}

/** Sends `GET url` with exactly these headers; resolves when the response headers are in. */
export function get(
  url: URL,
  headers: Record<string, string>,
  t: Timeouts,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<Answer> {
  const isHttps = url.protocol === 'https:';
  const mod = isHttps ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    let headersIn = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let failure: NetFailure | undefined;
    const fail = (f: NetFailure) => {
      failure ??= f;
      if (!settled) {
        settled = true;
        reject(failure);
      }
    };
    const req = mod.request(
      url,
      {
        method: 'GET',
        headers,
        agent: isHttps ? httpsAgent : httpAgent,
        signal,
      },
      (res) => {
        headersIn = true;
        clearTimeout(connectTimer);
        let bodyPromise: Promise<Buffer> | undefined;
        const answer: Answer = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body(limit = Infinity) {
            bodyPromise ??= new Promise<Buffer>((res2, rej2) => {
              if (res.destroyed && !res.complete) {
                rej2(failure ?? new NetFailure('reset', 'connection closed in the middle of the answer', true));
                return;
              }
              const chunks: Buffer[] = [];
              let n = 0;
              let done = false;
              const finish = (err?: NetFailure) => {
                if (done) return;
                done = true;
                if (err) rej2(err);
                else res2(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n));
              };
              res.on('data', (c: Buffer) => {
                onBytes(c.length);
                if (n + c.length >= limit) {
                  chunks.push(c.subarray(0, limit - n));
                  n = limit;
                  finish();
                  res.destroy();
                  return;
                }
                chunks.push(c);
                n += c.length;
              });
              res.on('end', () => {
                const expected = Number(res.headers['content-length']);
                if (res.complete === false || (Number.isFinite(expected) && !res.headers['content-encoding'] && n < expected)) {
                  finish(new NetFailure('reset', `connection closed in the middle of the answer (${n} of ${expected} bytes)`, true));
                } else finish();
              });
              res.on('aborted', () => finish(failure ?? new NetFailure('reset', 'connection closed in the middle of the answer', true)));
              res.on('error', (e) => finish(failure ?? classify(e, true)));
              res.on('close', () => {
                if (!res.complete) finish(failure ?? new NetFailure('reset', `connection closed in the middle of the answer (${n} bytes received)`, true));
              });
            });
            return bodyPromise;
          },
          discard() {
            if (res.complete || res.headers['content-length'] === '0') res.resume();
            else res.destroy();
          },
        };
        settled = true;
        resolve(answer);
      },
    );
    req.setTimeout(t.idleMs, () => {
      const f = new NetFailure('idle-timeout', `no answer for ${fmtMs(t.idleMs)} (server stalled)`, headersIn);
      failure ??= f;
      req.destroy(f);
    });
    req.on('socket', (socket: Socket) => {
      if (!socket.connecting) return; // a pooled keep-alive connection
      connectTimer = setTimeout(() => {
        const f = new NetFailure('connect-timeout', `cannot connect within ${fmtMs(t.connectMs)}`, false);
        failure ??= f;
        req.destroy(f);
      }, t.connectMs);
      socket.once(isHttps ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
      socket.once('close', () => clearTimeout(connectTimer));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      fail(failure ?? classify(e, headersIn));
    });
    req.end();
  });
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}
