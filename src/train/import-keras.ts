/**
 * `import-keras`: a Keras model file (Keras 3 `.keras`, Keras 2 / tf.keras `.h5`) → a hep-ml model directory.
 *
 * The graph is rebuilt with tfjs layers and hep-ml's own: `Masking(0) → GRU` (or Keras 3's equivalent
 * `mask=any(x != 0)` argument) becomes one FastGRU, `Dropout` a SeededDropout (identity at inference),
 * `Dense` and `Concatenate` stay tfjs layers. The weights are copied as they are: Keras' GRU layout
 * (reset_after=True: kernel [F, 3U], recurrent_kernel [U, 3U], bias [2, 3U], gates z, r, h) is FastGRU's.
 * Anything else (other layer classes, a GRU with other activations, reset_after=False, return_sequences,
 * an unmasked GRU) is refused with the layer named: importing it approximately would silently change the
 * model's predictions.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UnsupportedError } from '../errors.js';
import { hepMlVersion } from '../version.js';
import { readKerasModel, type KerasLayer, type KerasModel } from './keras/index.js';
import { FastGru, SeededDropout, prepareGru } from './layers.js';
import { countParams, type ModelInput, type ModelKind } from './models.js';
import { MODEL_FORMAT, MODEL_VERSION, type ModelMeta } from './model-io.js';

export interface ImportOptions {
  /** Class names of the outputs (default qcd, ttbar, wjets when there are 3). */
  classes?: string[];
  /** Dataset column of each model input (default: gru_input → GRU_input, hlf_input → HLF_input, else the input's name). */
  columns?: Record<string, string>;
}

const DEFAULT_COLUMNS: Record<string, string> = { gru_input: 'GRU_input', hlf_input: 'HLF_input' };

function unsupported(file: string, layer: KerasLayer | undefined, why: string): never {
  throw new UnsupportedError(`${layer ? `layer '${layer.name}' (${layer.className}): ` : ''}${why}`, { file });
}

/** Reads and rebuilds a Keras model; returns the tfjs model and its hep-ml description. */
export async function importKeras(path: string, o: ImportOptions = {}): Promise<{ model: tf.LayersModel; meta: ModelMeta; keras: KerasModel }> {
  const keras = await readKerasModel(path);
  const { model, meta } = await buildFromKeras(keras, basename(path), o);
  const bytes = await readFile(path);
  meta.importedFrom = {
    file: basename(path),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    format: keras.format,
    ...(keras.kerasVersion ? { kerasVersion: keras.kerasVersion } : {}),
    ...(keras.backend ? { backend: keras.backend } : {}),
  };
  return { model, meta, keras };
}

/** Rebuilds a Keras model already read (readKerasModel) as a tfjs model; `file` names it in errors. */
export async function buildFromKeras(keras: KerasModel, file: string, o: ImportOptions = {}): Promise<{ model: tf.LayersModel; meta: ModelMeta }> {
  const byName = new Map(keras.layers.map((l) => [l.name, l]));
  const built = new Map<string, tf.SymbolicTensor>();
  const inputs: tf.SymbolicTensor[] = [];
  const modelInputs: ModelInput[] = [];
  const weightsFor: { layer: tf.layers.Layer; values: Float32Array[]; shapes: number[][] }[] = [];
  let hasGru = false;

  /** The input that a zero-mask refers to, when `l` is Masking(0) or Keras 3's any(not_equal(x, 0), -1). */
  const maskedSource = (l: KerasLayer | undefined): string | undefined => {
    if (!l) return undefined;
    if (l.className === 'Masking') return Number(l.config.mask_value ?? 0) === 0 ? l.inbound[0] : undefined;
    return undefined;
  };
  const keras3Mask = (gru: KerasLayer): string | undefined => {
    const maskName = gru.inboundKwargs?.mask;
    if (!maskName) return undefined;
    const any = byName.get(maskName);
    if (!any || any.className !== 'Any') return undefined;
    const ne = byName.get(any.inbound[0] ?? '');
    if (!ne || ne.className !== 'NotEqual') return undefined;
    const zero = ne.callArgs?.find((a) => a.kind === 'value');
    if (!zero || zero.kind !== 'value' || Number(zero.value) !== 0) return undefined;
    const axis = any.config.axis;
    if (axis !== -1 && !(Array.isArray(axis) && axis.length === 1 && axis[0] === -1)) return undefined;
    return ne.inbound[0] === gru.inbound[0] ? gru.inbound[0] : undefined;
  };

  for (const l of keras.layers) {
    const src = (i = 0): tf.SymbolicTensor => {
      const t = built.get(l.inbound[i] ?? '');
      if (!t) unsupported(file, l, `its input '${l.inbound[i]}' is not a supported layer`);
      return t;
    };
    const w = keras.weights.get(l.name) ?? [];
    const c = l.config;
    switch (l.className) {
      case 'InputLayer': {
        const shape = (l.shape ?? []).slice(1);
        if (shape.some((d) => typeof d !== 'number')) unsupported(file, l, `inputs need a fixed shape, got [${shape.join(', ')}]`);
        const t = tf.input({ shape: shape as number[], name: l.name });
        built.set(l.name, t);
        inputs.push(t);
        modelInputs.push({ name: l.name, column: o.columns?.[l.name] ?? DEFAULT_COLUMNS[l.name] ?? l.name, shape: shape as number[] });
        break;
      }
      case 'Masking': {
        // consumed by the GRU that reads it; any other use is refused below (the mask would be lost)
        if (maskedSource(l) === undefined) unsupported(file, l, `only mask_value 0 is supported, got ${String(c.mask_value)}`);
        const users = keras.layers.filter((x) => x.inbound.includes(l.name));
        if (users.some((u) => u.className !== 'GRU')) unsupported(file, l, `a Masking layer must feed a GRU directly (it feeds ${users.map((u) => u.name).join(', ')})`);
        break;
      }
      case 'NotEqual':
      case 'Any':
        if (!l.isOperation) unsupported(file, l, 'unexpected layer');
        break; // Keras 3's mask computation, checked when the GRU uses it
      case 'GRU': {
        const via = byName.get(l.inbound[0] ?? '');
        const seqName = maskedSource(via) ?? keras3Mask(l);
        if (seqName === undefined) {
          unsupported(file, l, 'a GRU without Masking(0) in front: hep-ml’s GRU always skips all-zero steps (Keras Masking semantics), so this model would predict differently');
        }
        const checks: [string, unknown, unknown][] = [
          ['reset_after', c.reset_after ?? true, true],
          ['activation', c.activation, 'tanh'],
          ['recurrent_activation', c.recurrent_activation, 'sigmoid'],
          ['return_sequences', c.return_sequences ?? false, false],
          ['return_state', c.return_state ?? false, false],
          ['go_backwards', c.go_backwards ?? false, false],
          ['stateful', c.stateful ?? false, false],
          ['use_bias', c.use_bias ?? true, true],
        ];
        for (const [k, got, want] of checks) if (got !== want) unsupported(file, l, `${k} = ${JSON.stringify(got)} (supported: ${JSON.stringify(want)})`);
        const seq = built.get(seqName!);
        if (!seq) unsupported(file, l, `its input '${seqName}' is not an input layer`);
        const units = Number(c.units);
        const layer = new FastGru({ units, name: l.name });
        built.set(l.name, layer.apply(seq) as tf.SymbolicTensor);
        weightsFor.push({ layer, values: w.map((x) => x.data), shapes: w.map((x) => x.shape) });
        hasGru = true;
        break;
      }
      case 'Dropout':
        built.set(l.name, new SeededDropout({ rate: Number(c.rate), name: l.name }).apply(src()) as tf.SymbolicTensor);
        break;
      case 'Dense': {
        const act = String(c.activation ?? 'linear');
        if (!['linear', 'relu', 'softmax', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus'].includes(act)) unsupported(file, l, `activation ${act}`);
        const layer = tf.layers.dense({ units: Number(c.units), activation: act as 'relu', useBias: c.use_bias !== false, name: l.name });
        built.set(l.name, layer.apply(src()) as tf.SymbolicTensor);
        weightsFor.push({ layer, values: w.map((x) => x.data), shapes: w.map((x) => x.shape) });
        break;
      }
      case 'Concatenate': {
        const axis = Number(c.axis ?? -1);
        built.set(l.name, tf.layers.concatenate({ axis, name: l.name }).apply(l.inbound.map((_, i) => src(i))) as tf.SymbolicTensor);
        break;
      }
      default:
        unsupported(file, l, 'this layer class is not supported by import-keras (supported: InputLayer, Masking(0) + GRU, Dropout, Dense, Concatenate)');
    }
  }
  if (keras.outputs.length !== 1) throw new UnsupportedError(`models with ${keras.outputs.length} outputs are not supported (one softmax output expected)`, { file });
  const out = built.get(keras.outputs[0]!);
  if (!out) throw new UnsupportedError(`the output layer '${keras.outputs[0]}' is not supported`, { file });
  if (hasGru) await prepareGru();
  const model = tf.model({ inputs: keras.inputs.map((n) => built.get(n)!), outputs: out, name: keras.modelName });
  for (const { layer, values, shapes } of weightsFor) {
    const want = layer.weights.map((v) => v.shape.join('×'));
    const got = shapes.map((s) => s.join('×'));
    if (want.join(',') !== got.join(',')) {
      throw new UnsupportedError(`layer '${layer.name}': weights [${got.join(', ')}] do not fit the rebuilt layer [${want.join(', ')}]`, { file });
    }
    layer.setWeights(values.map((v, i) => tf.tensor(v, shapes[i]!)));
  }

  const nOut = (out.shape[out.shape.length - 1] as number) ?? 0;
  const classes = o.classes ?? (nOut === 3 ? ['qcd', 'ttbar', 'wjets'] : Array.from({ length: nOut }, (_, i) => `class_${i}`));
  if (classes.length !== nOut) throw new UnsupportedError(`--classes names ${classes.length} classes, the model has ${nOut} outputs`, { file });
  const orderedInputs = keras.inputs.map((n) => modelInputs.find((m) => m.name === n)!);
  const cols = orderedInputs.map((i) => i.column).sort().join(',');
  const kind: ModelKind | 'keras' = cols === 'GRU_input,HLF_input' ? 'inclusive' : cols === 'GRU_input' ? 'gru' : cols === 'HLF_input' ? 'dnn' : 'keras';
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    hepml: hepMlVersion(),
    created: new Date().toISOString(),
    model: kind,
    inputs: orderedInputs.map((i) => ({ ...i, dtype: 'float32' as const })),
    output: { name: 'probabilities', classes },
    params: countParams(model),
    recipe: null,
    scaler: null,
  };
  return { model, meta };
}
