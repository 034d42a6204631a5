/**
 * The prepare stage: labels, undersampling, min-max scaling, a stratified train/test split and a seeded
 * shuffle, in bounded memory. Usable without the CLI:
 *
 *   import { prepare } from 'hep-ml';   // namespace: prepare.prepare(...), prepare.loadScaler(...)
 */
export {
  prepare,
  LABEL_COLUMN,
  ONEHOT_COLUMN,
  HLF_NAMES_KEY,
  PREPARE_META_KEY,
  SUMMARY_FORMAT,
  type PrepareOptions,
  type PrepareProgress,
  type PrepareSummary,
  type PrepareClassSummary,
  type ScalerFit,
} from './stage.js';
export { parseClassArg, resolveClasses, defaultLabel, parseSize, parseFraction, type PrepareClass, type PrepareClassSpec } from './classes.js';
export {
  fitMinMax,
  applyMinMax,
  loadScaler,
  parseScaler,
  scalerJson,
  scalerCoefficients,
  MinMaxAccumulator,
  SCALER_FORMAT,
  SCALER_VERSION,
  type MinMaxScaler,
} from './scaler.js';
export { Rng, randomPermutation, randomPrefix, splitmix64 } from './rng.js';
export { gatherColumn } from './gather.js';
