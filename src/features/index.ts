/** The SparkDLTrigger feature recipe as a library: physics helpers, the per-event extractor, stream transforms. */
export * from './physics.js';
export * from './recipe.js';
export * from './stream.js';
export * from './run.js';
