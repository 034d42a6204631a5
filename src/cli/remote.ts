/** Flags shared by every command that reads ROOT files: how remote (http/https/root://) inputs are reached. */
import { Flags } from '@oclif/core';
import { UsageError } from '../errors.js';
import type { SourceOptions } from '../root/source.js';

export const remoteFlags = {
  header: Flags.string({
    char: 'H',
    description: "extra HTTP header for remote inputs, 'Name: value' (repeat -H for more); a bearer token is otherwise found as WLCG tools do (BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u$UID)",
    multiple: true,
    multipleNonGreedy: true,
    helpGroup: 'REMOTE',
  }),
  'xrootd-http-port': Flags.integer({
    description: 'read root://host//path URLs through the server\'s HTTPS interface on this port (https://host:PORT/path)',
    min: 1,
    max: 65535,
    helpGroup: 'REMOTE',
  }),
};

/** Turns `--header` / `--xrootd-http-port` into SourceOptions; a malformed header is a usage error. */
export function sourceOptions(flags: { header?: string[]; 'xrootd-http-port'?: number }): SourceOptions {
  const headers: Record<string, string> = {};
  for (const h of flags.header ?? []) {
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(.*?)\s*$/.exec(h);
    if (!m) throw new UsageError(`--header must look like 'Name: value', got '${h}'`);
    headers[m[1]!] = m[2]!;
  }
  return { headers, xrootdHttpPort: flags['xrootd-http-port'] };
}
