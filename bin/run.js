#!/usr/bin/env node
// hep-ml entry point. stdout carries data only, so a closed pipe (`hep-ml ingest ... | head`)
// is a normal way for a consumer to stop reading: exit quietly with status 0.
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
