/**
 * The process a local coordinator spawns for each worker: `node worker-main.js --join unix:/… --rank K`.
 * (Remote workers run `hep-ml train --join HOST:PORT`, which calls the same runWorker.)
 */
import { HepMlError } from '../../errors.js';
import { runWorker } from './worker.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const join = arg('--join');
if (!join) {
  process.stderr.write('usage: worker-main --join ADDRESS [--rank K]\n');
  process.exit(2);
}
const rank = arg('--rank');
runWorker({ join, rank: rank === undefined ? undefined : Number(rank), log: (l) => process.stderr.write(`${l}\n`) }).then(
  () => process.exit(0),
  (e: unknown) => {
    const msg = e instanceof HepMlError ? e.describe() : e instanceof Error ? e.message : String(e);
    process.stderr.write(`${msg}\n`);
    process.exit(e instanceof HepMlError ? e.exitCode : 1);
  },
);
