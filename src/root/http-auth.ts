/**
 * Credentials for remote inputs, the way grid tools find them.
 *
 * Bearer tokens follow the WLCG Bearer Token Discovery specification (the order HTCondor, gfal2/davix and
 * xrdcp use), first match wins:
 *   1. $BEARER_TOKEN (the token itself);
 *   2. $BEARER_TOKEN_FILE (a file holding it);
 *   3. $XDG_RUNTIME_DIR/bt_u$UID;
 *   4. /tmp/bt_u$UID.
 * Surrounding white space is dropped. The two default locations (3, 4) are used only when the file
 * belongs to the user (a token planted in /tmp by someone else is ignored); a missing file moves on to
 * the next place; a file named by $BEARER_TOKEN_FILE that exists but cannot be read is an error.
 *
 * Policy (see docs): an `Authorization` header given with --header wins over discovery (an empty one,
 * `--header 'Authorization:'`, turns discovery off). A discovered token is sent only over https://, or
 * over plain http:// to a loopback host (127.0.0.0/8, ::1, localhost), so that it never crosses a network
 * in clear text; an explicit --header is sent as given. On redirects, credentials (Authorization, Cookie)
 * are kept when the new location is https:// or on the same host (XRootD redirectors send clients to a data
 * server that needs the same token, as davix and xrdcp assume), and dropped when a redirect leads to plain
 * http:// on another host.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IoError } from '../errors.js';

export interface DiscoveredToken {
  token: string;
  /** Where it came from, for messages: `$BEARER_TOKEN`, a file path. Never the token. */
  source: string;
}

export interface DiscoveryEnv {
  env?: NodeJS.ProcessEnv;
  /** Effective uid (default process.geteuid()). */
  uid?: number;
  /** Directory of the last fallback (default /tmp). */
  tmpDir?: string;
}

/** Tokens travel in an HTTP header: one line of visible ASCII. */
function checkToken(token: string, source: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new IoError(`the bearer token from ${source} contains characters a token cannot have (spaces, line breaks or non-ASCII)`);
  }
  return token;
}

function readTokenFile(path: string, source: string, mustBeOwnedBy: number | undefined): string | undefined {
  let text: string;
  try {
    if (mustBeOwnedBy !== undefined) {
      const st = statSync(path);
      if (!st.isFile() || st.uid !== mustBeOwnedBy) return undefined;
    }
    text = readFileSync(path, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (mustBeOwnedBy !== undefined) return undefined;
    throw new IoError(`cannot read the bearer token file ${path} (from ${source}): ${(e as Error).message}`, {}, { cause: e });
  }
  const token = text.trim();
  return token ? checkToken(token, path) : undefined;
}

/** The WLCG bearer token of this environment, or undefined when there is none. */
export function discoverBearerToken(opts: DiscoveryEnv = {}): DiscoveredToken | undefined {
  const env = opts.env ?? process.env;
  const direct = env.BEARER_TOKEN?.trim();
  if (direct) return { token: checkToken(direct, '$BEARER_TOKEN'), source: '$BEARER_TOKEN' };
  const file = env.BEARER_TOKEN_FILE;
  if (file) {
    const token = readTokenFile(file, '$BEARER_TOKEN_FILE', undefined);
    if (token) return { token, source: file };
  }
  const uid = opts.uid ?? process.geteuid?.();
  if (uid === undefined) return undefined; // not POSIX: the spec defines no default places
  const name = `bt_u${uid}`;
  const places = [...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, name)] : []), join(opts.tmpDir ?? '/tmp', name)];
  for (const p of places) {
    const token = readTokenFile(p, p, uid);
    if (token) return { token, source: p };
  }
  return undefined;
}

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** May a discovered token be sent to this URL? (https anywhere; plain http only to loopback) */
export function tokenAllowed(url: URL): boolean {
  return url.protocol === 'https:' || isLoopbackHost(url.hostname);
}

/** Header names that carry credentials: dropped on a redirect to plain http on another host. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADERS.has(name.toLowerCase());
}

/** Do credentials given for `from` go along to the redirect target `to`? */
export function credentialsFollowRedirect(from: URL, to: URL): boolean {
  return to.protocol === 'https:' || to.hostname.toLowerCase() === from.hostname.toLowerCase();
}
