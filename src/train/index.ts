/**
 * hep-ml's training stage as a library (`import * as train from 'hep-ml/train'`; a separate entry point so
 * that `import 'hep-ml'` does not load TensorFlow.js).
 */
export { loadEngine, parseEngine, currentEngine, ENGINE_NAMES, type Engine, type EngineName } from './engine.js';
export { FastGru, SeededDropout, prepareGru } from './layers.js';
export { buildModel, compileModel, countParams, modelInputs, parseUnits, DEFAULT_UNITS, MODEL_KINDS, type ModelInput, type ModelKind, type ModelOptions } from './models.js';
export { streamBatches, checkFields, type Batch, type DataSpec, type StreamOptions } from './data.js';
export { train, predictDatasets, defaultShuffleRows, type TrainOptions, type TrainProgress, type EpochRecord, type TrainResult } from './trainer.js';
export { loadModelDir, saveModelDir, readMeta, META_FILE, MODEL_FORMAT, type ModelMeta } from './model-io.js';
export { rocAuc, classMetrics, type ClassMetrics } from './metrics.js';
export { importKeras, buildFromKeras, type ImportOptions } from './import-keras.js';
export { readKerasModel, type KerasModel, type KerasLayer, type KerasWeight } from './keras/index.js';
export { EventFileWriter, decodeEventFile } from './tensorboard.js';
export { loadGru, gruFactory, GruKernel, jsGru, type GruOp } from './gru/index.js';
