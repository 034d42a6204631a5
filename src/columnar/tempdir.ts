/**
 * A temporary directory removed with everything in it on success, on failure, at process exit and on
 * SIGINT/SIGTERM/SIGHUP (the files inside are also registered with trackTemp; this removes the directory
 * itself, which trackTemp's unlink cannot). After removing, a signal is re-raised once no other handler is
 * left, so the process dies of it as it would have.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IoError } from '../errors.js';

const liveDirs = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      removeAll();
      process.off(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/** Creates `<parent>/.<prefix>XXXXXX`, removed by remove() or when the process exits or is interrupted. */
export async function makeTempDir(parent: string, prefix: string): Promise<TempDir> {
  let path: string;
  try {
    path = await mkdtemp(join(parent, `.${prefix}`));
  } catch (e) {
    throw new IoError(`cannot create a temporary directory: ${(e as Error).message}`, { file: parent }, { cause: e });
  }
  hook();
  liveDirs.add(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      liveDirs.delete(path);
    },
  };
}
