/**
 * hep-ml as a library: every stage is usable without the CLI.
 *
 *   import { openIngest, makeSchema, toRecordBatch, IpcStreamWriter } from 'hep-ml';
 */
export * from './errors.js';
export * from './root/index.js';
export * from './columnar/index.js';
export { openIngest, selectBranches, type IngestOptions, type IngestJob, type IngestField, type IngestProgress } from './ingest/index.js';
export * as flatten from './flatten/index.js';
export * as features from './features/index.js';
export * as prepare from './prepare/index.js';
export * as generate from './generate/index.js';
export * as convert from './convert/index.js';
