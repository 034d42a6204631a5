/**
 * `npm run bench -- <stage>`: runs bench/<stage>.ts, which prints one JSON document on stdout.
 * Stages: ingest, remote, flatten, features, columnar, codecs, generate, prepare, convert, gru, train, distributed, evaluate, serve.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const stage = process.argv[2];
const here = dirname(fileURLToPath(import.meta.url));
if (!stage || !existsSync(join(here, `${stage}.ts`))) {
  process.stderr.write(`usage: npm run bench -- <stage>   (stages: ingest, remote, flatten, features, columnar, codecs, generate, prepare, convert, gru, train, distributed, evaluate, serve)\n`);
  process.exit(2);
}
process.argv.splice(2, 1);
await import(pathToFileURL(join(here, `${stage}.ts`)).href);
