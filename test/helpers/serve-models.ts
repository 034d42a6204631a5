/** Model directories for the serving tests: an untrained DNN with a scaler and feature names (seeded weights). */
import { join } from 'node:path';
import { buildModel, countParams, modelInputs, type ModelKind } from '../../src/train/models.js';
import { saveModelDir, MODEL_FORMAT, MODEL_VERSION, type ModelMeta } from '../../src/train/model-io.js';
import { loadEngine } from '../../src/train/engine.js';

export const HLF_NAMES = ['HT', 'MET', 'phiMET', 'MT', 'nJets', 'nBjets', 'LepPt', 'LepEta', 'LepPhi', 'LepIsoCh', 'LepIsoGamma', 'LepIsoNeu', 'LepCharge', 'LepIsEle'];
export const SCALER_MIN = [0, 0.7, -3.14, 0.03, 0, 0, 23, -2.5, -3.14, 0, 0, 0, -1, 0];
export const SCALER_MAX = [780, 250, 3.14, 315, 7, 3, 255, 2.5, 3.14, 0.45, 0.45, 0.45, 1, 1];

/** Writes `<dir>/<name>` as a model directory of `kind` (weights from `seed`); returns its path. */
export async function writeServeModel(dir: string, name: string, kind: ModelKind = 'dnn', seed = 1): Promise<string> {
  await loadEngine();
  const model = await buildModel(kind, { seed });
  const inputs = modelInputs(kind);
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    hepml: 'test',
    created: new Date(0).toISOString(),
    model: kind,
    inputs: inputs.map((i) => ({ ...i, dtype: 'float32' as const })),
    output: { name: 'probabilities', classes: ['qcd', 'ttbar', 'wjets'] },
    params: countParams(model),
    recipe: { format: 'hep-ml/features', hlf_names: HLF_NAMES },
    scaler: { kind: 'minmax', column: 'HLF_input', fit: 'all', format: 'hep-ml/minmax-scaler', version: 1, rows: 100, min: SCALER_MIN, max: SCALER_MAX },
  };
  const path = join(dir, name);
  await saveModelDir(model, meta, path);
  return path;
}

/** A raw HLF row (physical units) for event i. */
export function rawEvent(i: number): number[] {
  return SCALER_MIN.map((lo, k) => lo + ((SCALER_MAX[k]! - lo) * ((i * 7 + k * 13) % 17)) / 16);
}

/** The same row min-max scaled as the server should scale it. */
export function scaledEvent(i: number): Float32Array {
  const raw = rawEvent(i);
  return Float32Array.from(raw, (x, k) => (x - SCALER_MIN[k]!) / (SCALER_MAX[k]! - SCALER_MIN[k]!));
}
