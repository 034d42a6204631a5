/**
 * The model directory that `train` and `import-keras` write and `evaluate` / `serve` read:
 *
 *   model.json          tfjs layers format (topology + weights manifest); custom layers HepMlFastGRU, HepMlDropout
 *   weights.bin         the weights, float32 little-endian, in manifest order
 *   hep-ml-model.json   what the model needs to be used: inputs (name, dataset column, shape), classes,
 *                       the feature recipe and scaler of its training data, training parameters, hep-ml version
 *
 * A checkpoint directory (train's OUT/checkpoints/epoch-NNNN) is the same, so it is a model directory too,
 * plus optimizer.json/optimizer.bin (Adam's moments and iteration count). The loop state (epoch, dropout
 * counters, settings) is not in a checkpoint: train keeps it in OUT/state.json, at the output root.
 * Every file is written under a temporary name and renamed into place; a directory is staged beside its
 * target and swapped in.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CorruptDataError, InputNotFoundError, UsageError } from '../errors.js';
import { concatTyped } from './data.js';
import { prepareGru } from './layers.js';
import type { ModelInput, ModelKind } from './models.js';

export const MODEL_FORMAT = 'hep-ml/model';
export const MODEL_VERSION = 1;
export const META_FILE = 'hep-ml-model.json';

export interface ModelMeta {
  format: typeof MODEL_FORMAT;
  version: number;
  hepml: string;
  created: string;
  /** 'dnn' | 'gru' | 'inclusive', or 'keras' for an imported graph of another shape. */
  model: ModelKind | 'keras';
  inputs: (ModelInput & { dtype: 'float32' })[];
  output: { name: string; classes: string[] };
  units?: number[];
  params: number;
  /** `hep-ml features` metadata of the training data (recipe, sort, feature names), when known. */
  recipe?: Record<string, unknown> | null;
  /** The min-max scaler `hep-ml prepare` applied to the training data (column, min, max), when known. */
  scaler?: Record<string, unknown> | null;
  training?: Record<string, unknown>;
  importedFrom?: { file: string; sha256: string; format: string; kerasVersion?: string; backend?: string };
}

/** Writes `data` to `path` through a temp file + rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function joinWeights(w: tf.io.WeightData | undefined): Uint8Array {
  if (!w) return new Uint8Array(0);
  const buf = Array.isArray(w) ? tf.io.CompositeArrayBuffer.join(w) : w;
  return new Uint8Array(buf);
}

/** model.json + weights.bin of a tfjs model into `dir` (created). */
export async function saveLayers(model: tf.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const weights = joinWeights(a.weightData);
      await writeFileAtomic(join(dir, 'weights.bin'), weights);
      const json = {
        format: 'layers-model',
        generatedBy: a.generatedBy,
        convertedBy: null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
}

async function readJson<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new InputNotFoundError(`no ${what} (${basename(path)}) in ${dirname(path)}`, { file: path });
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CorruptDataError(`${what} is not valid JSON: ${(e as Error).message}`, { file: path });
  }
}

/** Loads model.json + weights.bin from `dir` (prepares the GRU op first). */
export async function loadLayers(dir: string): Promise<tf.LayersModel> {
  const json = await readJson<{ modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] }>(
    join(dir, 'model.json'),
    'tfjs model',
  );
  if (typeof json !== 'object' || json === null || typeof json.modelTopology !== 'object' || json.modelTopology === null || !Array.isArray(json.weightsManifest)) {
    throw new CorruptDataError('not a tfjs layers model (model.json needs "modelTopology" and a "weightsManifest" list)', { file: join(dir, 'model.json') });
  }
  for (const g of json.weightsManifest) {
    if (!Array.isArray(g?.paths) || !Array.isArray(g?.weights) || g.paths.some((p) => typeof p !== 'string' || p.includes('/') || p.includes('\\') || p.startsWith('.'))) {
      throw new CorruptDataError('model.json has a malformed weightsManifest entry (paths must be plain file names in the model directory)', { file: join(dir, 'model.json') });
    }
  }
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const parts: Buffer[] = [];
  for (const g of json.weightsManifest) for (const p of g.paths) parts.push(await readFile(join(dir, p)));
  const data = new Uint8Array(Buffer.concat(parts)); // a copy of its own: fromMemory takes the whole ArrayBuffer
  const total = data.length;
  const need = specs.reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
  if (need !== total) throw new CorruptDataError(`weights are ${total} bytes, the manifest needs ${need}`, { file: join(dir, 'weights.bin') });
  if (JSON.stringify(json.modelTopology).includes('HepMlFastGRU')) await prepareGru();
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data.buffer }));
}

export async function readMeta(dir: string): Promise<ModelMeta> {
  const meta = await readJson<ModelMeta>(join(dir, META_FILE), 'hep-ml model description');
  if (meta.format !== MODEL_FORMAT) throw new CorruptDataError(`not a hep-ml model description (format ${JSON.stringify(meta.format)})`, { file: join(dir, META_FILE) });
  if (meta.version > MODEL_VERSION) {
    throw new CorruptDataError(`model description version ${meta.version} is newer than this hep-ml understands (${MODEL_VERSION}); upgrade hep-ml`, { file: join(dir, META_FILE) });
  }
  return meta;
}

/** Loads a model directory: the tfjs model and its description. */
export async function loadModelDir(dir: string): Promise<{ model: tf.LayersModel; meta: ModelMeta }> {
  const meta = await readMeta(dir);
  return { model: await loadLayers(dir), meta };
}

/**
 * Writes a complete model directory at `dir` atomically: staged in a sibling temp directory, then renamed
 * (an existing model directory at `dir` is replaced, any other non-empty directory refused; `extra` files
 * are written into it too).
 */
export async function saveModelDir(
  model: tf.LayersModel,
  meta: ModelMeta,
  dir: string,
  extra: Record<string, string | Uint8Array> = {},
): Promise<void> {
  try {
    const entries = await readdir(dir);
    if (entries.length > 0 && !entries.includes(META_FILE)) {
      throw new UsageError(`${dir} exists and is not a hep-ml model directory (no ${META_FILE}): refusing to replace it`);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`${dir} exists and is not a directory`);
    if (code !== 'ENOENT') throw e;
  }
  const stage = join(dirname(dir), `.${basename(dir)}.${process.pid}.staging`);
  await rm(stage, { recursive: true, force: true });
  try {
    await saveLayers(model, stage);
    await writeFile(join(stage, META_FILE), JSON.stringify(meta, null, 2) + '\n');
    for (const [name, data] of Object.entries(extra)) await writeFile(join(stage, name), data);
    const old = join(dirname(dir), `.${basename(dir)}.${process.pid}.old`);
    let moved = false;
    try {
      await rename(dir, old);
      moved = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await rename(stage, dir);
    if (moved) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Optimizer state

/** Adam's state as JSON (names, shapes) + one float32 buffer. */
export async function optimizerState(opt: tf.Optimizer): Promise<{ json: string; bin: Uint8Array }> {
  const named = await opt.getWeights();
  const specs: { name: string; shape: number[] }[] = [];
  const arrays: Float32Array[] = [];
  for (const n of named) {
    specs.push({ name: n.name, shape: n.tensor.shape });
    arrays.push((await n.tensor.data()) as Float32Array);
  }
  const all = concatTyped(arrays, (n) => new Float32Array(n));
  return { json: JSON.stringify({ optimizer: opt.getClassName(), config: opt.getConfig(), weights: specs }), bin: new Uint8Array(all.buffer) };
}

export async function restoreOptimizer(opt: tf.Optimizer, json: string, bin: Uint8Array, where: string): Promise<void> {
  const { weights } = JSON.parse(json) as { weights: { name: string; shape: number[] }[] };
  const f = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  let at = 0;
  const named: { name: string; tensor: tf.Tensor }[] = [];
  for (const w of weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (at + n > f.length) throw new CorruptDataError('optimizer state is shorter than its description', { file: where });
    named.push({ name: w.name, tensor: tf.tensor(f.subarray(at, at + n), w.shape) });
    at += n;
  }
  await opt.setWeights(named);
}
