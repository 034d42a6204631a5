/**
 * hep-ml's evaluation stage as a library (`import * as evaluate from 'hep-ml/evaluate'`; like 'hep-ml/train',
 * a separate entry point because it loads TensorFlow.js).
 */
export { evaluate, EVALUATION_FORMAT, type EvaluateOptions, type EvaluateResult } from './run.js';
export { predict, formatOf, probColumn, PREDICT_META_KEY, type PredictOptions, type PredictSummary } from './predict.js';
export { evaluateScores, DEFAULT_BKG_EFFS, DEFAULT_SCORE_BINS, type Evaluation, type ClassReport, type EvaluateOptions as MetricOptions } from './metrics.js';
export { rocCurve, type WorkingPoint, type RocOptions } from './roc.js';
export { openModel, scoreBatches, readHistory, sourceCheck, type LoadedModel, type ScoredBatch, type ScoreOptions } from './model.js';
export { rocCsv, formatTable } from './report.js';
export { evaluationPlots, type PlotFile } from './plots.js';
export type { RocCurve, ScoreHistograms, HistoryPoint, EvaluationPlotsInput } from './types.js';
