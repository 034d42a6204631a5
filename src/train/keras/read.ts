/**
 * Reads a Keras model file — Keras 3 `.keras` (ZIP: config.json, metadata.json, model.weights.h5) or Keras 2
 * / tf.keras HDF5 (`model.save('x.h5')`: model_config attribute, model_weights group) — into one normalised
 * form: the layer graph in topological order (Sequential models become the same linear graph, with an
 * InputLayer) and the weights of every layer, by name, in Keras order, as float32. See docs/formats/keras.md.
 *
 *   const m = await readKerasModel('myGRUmodel.keras');
 *   m.layers.map((l) => `${l.name} ${l.className} <- ${l.inbound.join(', ')}`);
 *   const [kernel, recurrentKernel, bias] = m.weights.get('gru')!;   // [19,150], [50,150], [2,150]
 */
import { readFile, stat, access } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptDataError, InputNotFoundError, IoError, UnsupportedError } from '../../errors.js';
import { type Hdf5Group, isHdf5, openHdf5 } from './hdf5.js';
import { isZip, openZip } from './zip.js';

// ---------------------------------------------------------------------------------------------------------
// Public types

/** A tensor shape; the batch dimension (first) and any unknown dimension are null. */
export type KerasShape = (number | null)[];

/** One positional argument of a layer call (kept for calls that are not plain tensors, see KerasLayer.callArgs). */
export type KerasCallArg =
  | { kind: 'tensor'; layer: string }
  | { kind: 'value'; value: unknown }
  | { kind: 'list'; items: KerasCallArg[] };

/** One layer (or, in Keras 3 configs, one operation node such as NotEqual/Any) of the graph. */
export interface KerasLayer {
  name: string;
  /** Keras class name: 'InputLayer', 'Masking', 'GRU', 'Dense', … ('NotEqual', 'Any' for Keras 3 operations). */
  className: string;
  /** The layer's config as serialized (untouched). */
  config: Record<string, unknown>;
  /** Names of the layers whose output tensors are the positional inputs of this layer, in order (lists flattened). */
  inbound: string[];
  /** Tensors passed as keyword arguments, by keyword (Keras 3: e.g. `mask` ← 'any' for a GRU). */
  inboundKwargs?: Record<string, string>;
  /** The positional call arguments when some are not tensors (Keras 3 operations: NotEqual(x, 0.0)). */
  callArgs?: KerasCallArg[];
  /** Keras 3: the serialized module ('keras.layers', or 'keras.src.ops.numpy' for an operation). */
  module?: string;
  /** True for a Keras 3 operation node (keras.ops: a function, not a Layer; never has weights). */
  isOperation: boolean;
  /** InputLayer only: the batch input shape (batch_input_shape / batch_shape), e.g. [null, 801, 19]. */
  shape?: KerasShape;
  /** The output shape, inferred for the layer classes the reader knows (batch dimension null); else undefined. */
  outputShape?: KerasShape;
}

/** One variable of a layer. */
export interface KerasWeight {
  /** 'kernel' | 'recurrent_kernel' | 'bias' | 'gamma' | 'beta' | 'moving_mean' | 'moving_variance' | 'embeddings' … */
  name: string;
  shape: number[];
  /** Row-major values, converted to float32 where stored otherwise. */
  data: Float32Array;
  /** The stored HDF5 dtype, e.g. '<f4'. */
  dtype: string;
  /** Where it was read from: the HDF5 dataset path ('/model_weights/gru/gru/kernel:0', '/layers/gru/cell/vars/0'). */
  source: string;
}

/** A Keras model: graph and weights. */
export interface KerasModel {
  format: 'keras3' | 'keras2-h5';
  /** Keras version that saved the file (metadata.json / keras_version attribute). */
  kerasVersion?: string;
  /** Keras 2 HDF5 only: the backend attribute ('tensorflow'). */
  backend?: string;
  modelName: string;
  /** 'Functional' | 'Model' | 'Sequential': the class of the saved model. */
  modelClass: string;
  /** Topological order (a stable sort of the config's order), InputLayers included. */
  layers: KerasLayer[];
  /** Names of the input layers, in the model's input order. */
  inputs: string[];
  /** Names of the layers producing the model's outputs, in order. */
  outputs: string[];
  /** By layer name, in Keras order; layers without variables have no entry. */
  weights: Map<string, KerasWeight[]>;
  /** Keras 2: the training_config attribute (parsed); Keras 3: config.json's compile_config. */
  trainingConfig?: unknown;
}

// ---------------------------------------------------------------------------------------------------------
// Entry point

/**
 * Reads a Keras model from `path`, detecting the format from its first bytes: ZIP (`PK\x03\x04`, a Keras 3
 * `.keras` archive) or HDF5 (`\x89HDF\r\n\x1a\n`, a Keras 2 / tf.keras `.h5` model).
 *
 * Errors: a missing path (or a directory) → InputNotFoundError; unreadable → IoError; a file of another kind,
 * a weights-only file, a SavedModel directory, nested models, shared layers or an unknown layer class with
 * variables → UnsupportedError; inconsistent content (truncated archive, bad JSON, missing or mis-shaped
 * weights) → CorruptDataError. Messages name the file and, where it applies, the layer.
 */
export async function readKerasModel(path: string): Promise<KerasModel> {
  const bytes = await readModelBytes(path);
  if (isZip(bytes)) return readKeras3(bytes, path);
  if (isHdf5(bytes)) return readKeras2H5(bytes, path);
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new UnsupportedError(
    `not a Keras model file: expected a Keras 3 .keras archive (ZIP) or a Keras 2 HDF5 model; ` +
      (bytes.length === 0 ? 'the file is empty' : `the first bytes are ${head}`),
    { file: path },
  );
}

async function readModelBytes(path: string): Promise<Uint8Array> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputNotFoundError('no such file', { file: path }, { cause: e });
    throw new IoError(`cannot read: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  if (st.isDirectory()) {
    const isSavedModel = await access(join(path, 'saved_model.pb')).then(
      () => true,
      () => false,
    );
    if (isSavedModel) {
      throw new UnsupportedError(
        'a TensorFlow SavedModel directory; hep-ml reads Keras 3 .keras archives and Keras 2 .h5 models ' +
          '(in Python: model.save("model.keras"))',
        { file: path },
      );
    }
    throw new InputNotFoundError('is a directory, not a Keras model file', { file: path });
  }
  if (!st.isFile()) throw new InputNotFoundError('not a regular file', { file: path });
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new IoError(`cannot read: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small JSON helpers

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string, what: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CorruptDataError(`${what} is not valid JSON (${(e as Error).message})`, { file }, { cause: e });
  }
}

function shapeOf(v: unknown): KerasShape | undefined {
  if (!Array.isArray(v)) return undefined;
  if (!v.every((d) => d === null || (typeof d === 'number' && Number.isInteger(d) && d >= 0))) return undefined;
  return v as KerasShape;
}

function fmtShape(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? 'None' : String(d))).join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------------------
// Graph

/** Per-layer raw description before normalisation. */
interface RawLayer {
  name: string;
  className: string;
  config: Json;
  module?: string;
  nodes: unknown[] | undefined;
  buildInputShape?: KerasShape;
}

const NESTED_MODEL_CLASSES = new Set(['Functional', 'Model', 'Sequential']);

function isOperationModule(module: string | undefined): boolean {
  return module !== undefined && /(^|\.)ops(\.|$)/.test(module);
}

function isKerasTensor(v: unknown): v is Json {
  return isObj(v) && v.class_name === '__keras_tensor__' && isObj(v.config);
}

function containsTensor(v: unknown): boolean {
  if (isKerasTensor(v)) return true;
  if (Array.isArray(v)) return v.some(containsTensor);
  if (isObj(v)) return Object.values(v).some(containsTensor);
  return false;
}

class GraphBuilder {
  constructor(private readonly file: string) {}

  private fail(layer: string, msg: string): never {
    throw new CorruptDataError(`layer '${layer}': ${msg}`, { file: this.file });
  }
  private unsupported(layer: string, msg: string): never {
    throw new UnsupportedError(`layer '${layer}': ${msg}`, { file: this.file });
  }

  /** [layer, nodeIndex, tensorIndex] → layer name, rejecting shared layers and multi-output tensors. */
  private history(owner: string, h: unknown): string {
    if (!Array.isArray(h) || typeof h[0] !== 'string') this.fail(owner, `malformed inbound tensor reference ${JSON.stringify(h)}`);
    const [name, node, tensor] = h as [string, unknown, unknown];
    if (node !== 0 && node !== undefined) {
      this.unsupported(owner, `takes node ${String(node)} of layer '${name}': shared layers (called more than once) are not supported`);
    }
    if (tensor !== 0 && tensor !== undefined) {
      this.unsupported(owner, `takes output ${String(tensor)} of layer '${name}': layers with several outputs are not supported`);
    }
    return name;
  }

  private parseArg(owner: string, v: unknown): KerasCallArg {
    if (isKerasTensor(v)) return { kind: 'tensor', layer: this.history(owner, (v.config as Json).keras_history) };
    if (Array.isArray(v)) return { kind: 'list', items: v.map((x) => this.parseArg(owner, x)) };
    if (containsTensor(v)) this.unsupported(owner, 'tensors passed inside a dict are not supported');
    return { kind: 'value', value: v };
  }

  /** The inbound description of one layer from its inbound_nodes (Keras 2 lists or Keras 3 {args, kwargs}). */
  inbound(l: RawLayer): Pick<KerasLayer, 'inbound' | 'inboundKwargs' | 'callArgs'> {
    const nodes = l.nodes ?? [];
    if (!Array.isArray(nodes)) this.fail(l.name, 'inbound_nodes is not a list');
    if (nodes.length === 0) return { inbound: [] };
    if (nodes.length > 1) {
      this.unsupported(l.name, `is called ${nodes.length} times: shared layers are not supported`);
    }
    const node = nodes[0];
    if (Array.isArray(node)) {
      // Keras 2: [[name, node_index, tensor_index, kwargs], ...]
      const inbound = node.map((t) => this.history(l.name, t));
      return { inbound };
    }
    if (isObj(node) && Array.isArray(node.args)) {
      const args = node.args.map((a) => this.parseArg(l.name, a));
      const inbound: string[] = [];
      let hasValue = false;
      const walk = (a: KerasCallArg): void => {
        if (a.kind === 'tensor') inbound.push(a.layer);
        else if (a.kind === 'list') a.items.forEach(walk);
        else hasValue = true;
      };
      args.forEach(walk);
      const out: Pick<KerasLayer, 'inbound' | 'inboundKwargs' | 'callArgs'> = { inbound };
      if (hasValue) out.callArgs = args;
      const kwargs = isObj(node.kwargs) ? node.kwargs : {};
      for (const [k, v] of Object.entries(kwargs)) {
        if (isKerasTensor(v)) {
          out.inboundKwargs ??= {};
          out.inboundKwargs[k] = this.history(l.name, (v.config as Json).keras_history);
        } else if (containsTensor(v)) {
          this.unsupported(l.name, `keyword argument '${k}' holds several tensors; not supported`);
        }
      }
      return out;
    }
    return this.fail(l.name, `malformed inbound node ${JSON.stringify(node).slice(0, 200)}`);
  }

  /** The raw layers of a functional config (Keras 2 or 3). */
  functionalLayers(cfg: Json): RawLayer[] {
    if (!Array.isArray(cfg.layers)) throw new CorruptDataError('model config has no layers list', { file: this.file });
    return cfg.layers.map((e, i) => this.rawLayer(e, i, true));
  }

  rawLayer(e: unknown, i: number, functional: boolean): RawLayer {
    if (!isObj(e) || typeof e.class_name !== 'string') {
      throw new CorruptDataError(`model config: layer ${i} has no class_name`, { file: this.file });
    }
    const config = isObj(e.config) ? e.config : {};
    const name = typeof e.name === 'string' ? e.name : typeof config.name === 'string' ? config.name : undefined;
    if (name === undefined) throw new CorruptDataError(`model config: layer ${i} (${e.class_name}) has no name`, { file: this.file });
    if (NESTED_MODEL_CLASSES.has(e.class_name)) {
      this.unsupported(name, `is a nested model (${e.class_name}); nested models are not supported`);
    }
    const raw: RawLayer = {
      name,
      className: e.class_name,
      config,
      nodes: functional ? (e.inbound_nodes as unknown[] | undefined) : undefined,
    };
    if (typeof e.module === 'string') raw.module = e.module;
    const bis = isObj(e.build_config) ? shapeOf(e.build_config.input_shape) : undefined;
    if (bis) raw.buildInputShape = bis;
    return raw;
  }

  /** Normalised layers in topological order (stable with respect to `raw`'s order). */
  build(raw: RawLayer[], linear: boolean): KerasLayer[] {
    const byName = new Map<string, KerasLayer>();
    const list: KerasLayer[] = [];
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!;
      if (byName.has(r.name)) throw new CorruptDataError(`model config: two layers are named '${r.name}'`, { file: this.file });
      const layer: KerasLayer = {
        name: r.name,
        className: r.className,
        config: r.config,
        ...(linear ? { inbound: i === 0 ? [] : [raw[i - 1]!.name] } : this.inbound(r)),
        isOperation: isOperationModule(r.module),
      };
      if (r.module !== undefined) layer.module = r.module;
      if (r.className === 'InputLayer') {
        const s = shapeOf(r.config.batch_input_shape) ?? shapeOf(r.config.batch_shape);
        if (s) layer.shape = s;
        else if (shapeOf(r.config.shape)) layer.shape = [null, ...shapeOf(r.config.shape)!];
        else this.fail(r.name, 'InputLayer without batch_input_shape / batch_shape');
      }
      byName.set(r.name, layer);
      list.push(layer);
    }
    // stable topological sort
    const deps = (l: KerasLayer): string[] => [...l.inbound, ...Object.values(l.inboundKwargs ?? {})];
    for (const l of list) {
      for (const d of deps(l)) if (!byName.has(d)) this.fail(l.name, `takes its input from '${d}', which is not a layer of the model`);
    }
    const placed = new Set<string>();
    const order: KerasLayer[] = [];
    while (order.length < list.length) {
      const next = list.find((l) => !placed.has(l.name) && deps(l).every((d) => placed.has(d)));
      if (!next) {
        const stuck = list.filter((l) => !placed.has(l.name)).map((l) => l.name);
        throw new CorruptDataError(`model config: the layer graph has a cycle (through ${stuck.join(', ')})`, { file: this.file });
      }
      placed.add(next.name);
      order.push(next);
    }
    // shapes
    const buildShapes = new Map(raw.filter((r) => r.buildInputShape).map((r) => [r.name, r.buildInputShape!]));
    for (const l of order) {
      const ins = l.inbound.map((n) => byName.get(n)!.outputShape);
      const s = inferOutputShape(l, ins.length > 0 ? ins : [buildShapes.get(l.name)]);
      if (s) l.outputShape = s;
    }
    return order;
  }

  /** input_layers / output_layers: [[name, 0, 0], …] or a single [name, 0, 0]. */
  endpoints(v: unknown, what: string, layers: Map<string, KerasLayer>): string[] {
    if (!Array.isArray(v)) throw new CorruptDataError(`model config has no ${what}`, { file: this.file });
    const refs: unknown[] = typeof v[0] === 'string' ? [v] : v;
    return refs.map((r) => {
      if (isObj(r)) throw new UnsupportedError(`model config: dict-valued ${what} are not supported`, { file: this.file });
      const name = this.history('(model)', r);
      if (!layers.has(name)) throw new CorruptDataError(`model config: ${what} names '${name}', which is not a layer`, { file: this.file });
      return name;
    });
  }
}

/** Output shape for known classes; undefined otherwise. `ins` are the input shapes (undefined when unknown). */
function inferOutputShape(l: KerasLayer, ins: (KerasShape | undefined)[]): KerasShape | undefined {
  const c = l.config;
  const x = ins[0];
  switch (l.className) {
    case 'InputLayer':
      return l.shape;
    case 'Masking':
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
    case 'Activation':
    case 'ReLU':
    case 'LeakyReLU':
    case 'PReLU':
    case 'ELU':
    case 'Softmax':
    case 'BatchNormalization':
    case 'LayerNormalization':
      return x;
    case 'NotEqual':
    case 'Equal':
      return x;
    case 'Any':
    case 'All': {
      if (!x || typeof c.axis !== 'number') return undefined;
      const ax = c.axis < 0 ? x.length + c.axis : c.axis;
      if (ax < 0 || ax >= x.length) return undefined;
      return c.keepdims === true ? x.map((d, i) => (i === ax ? 1 : d)) : x.filter((_, i) => i !== ax);
    }
    case 'Dense':
      return x && typeof c.units === 'number' ? [...x.slice(0, -1), c.units] : undefined;
    case 'GRU':
    case 'LSTM':
    case 'SimpleRNN':
      if (!x || typeof c.units !== 'number' || x.length !== 3) return undefined;
      return c.return_sequences === true ? [x[0]!, x[1]!, c.units] : [x[0]!, c.units];
    case 'Embedding':
      return x && typeof c.output_dim === 'number' ? [...x, c.output_dim] : undefined;
    case 'Flatten': {
      if (!x) return undefined;
      const rest = x.slice(1);
      return [x[0]!, rest.some((d) => d === null) ? null : rest.reduce<number>((a, b) => a * (b as number), 1)];
    }
    case 'Concatenate': {
      if (ins.length === 0 || ins.some((s) => !s)) return undefined;
      const shapes = ins as KerasShape[];
      const rank = shapes[0]!.length;
      if (shapes.some((s) => s.length !== rank)) return undefined;
      const axis = typeof c.axis === 'number' ? c.axis : -1;
      const ax = axis < 0 ? rank + axis : axis;
      const out = [...shapes[0]!];
      out[ax] = shapes.some((s) => s[ax] === null) ? null : shapes.reduce((a, s) => a + (s[ax] as number), 0);
      return out;
    }
    case 'Add':
    case 'Subtract':
    case 'Multiply':
    case 'Average':
    case 'Maximum':
    case 'Minimum':
      return x;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Variables: names by class and expected shapes

/** Variable names of a layer class in Keras order; `cell` for recurrent layers (Keras 3 stores them under cell/). */
interface VarSpec {
  names: string[];
  cell: boolean;
}

/** Classes known to have no variables. */
const WEIGHTLESS = new Set([
  'InputLayer',
  'Masking',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'Flatten',
  'Reshape',
  'Permute',
  'RepeatVector',
  'Concatenate',
  'Add',
  'Subtract',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
  'GlobalAveragePooling1D',
  'GlobalMaxPooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'MaxPooling1D',
  'MaxPooling2D',
  'AveragePooling1D',
  'AveragePooling2D',
  'Lambda',
  'TFOpLambda',
  'SlicingOpLambda',
]);

function varSpec(l: KerasLayer): VarSpec | undefined {
  const c = l.config;
  const bias = c.use_bias !== false;
  switch (l.className) {
    case 'Dense':
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
      return { names: ['kernel', ...(bias ? ['bias'] : [])], cell: false };
    case 'GRU':
    case 'LSTM':
    case 'SimpleRNN':
      return { names: ['kernel', 'recurrent_kernel', ...(bias ? ['bias'] : [])], cell: true };
    case 'BatchNormalization':
      return {
        names: [...(c.scale !== false ? ['gamma'] : []), ...(c.center !== false ? ['beta'] : []), 'moving_mean', 'moving_variance'],
        cell: false,
      };
    case 'LayerNormalization':
      return { names: [...(c.scale !== false ? ['gamma'] : []), ...(c.center !== false ? ['beta'] : [])], cell: false };
    case 'Embedding':
      return { names: ['embeddings'], cell: false };
    case 'PReLU':
      return { names: ['alpha'], cell: false };
    default:
      if (l.isOperation || WEIGHTLESS.has(l.className)) return { names: [], cell: false };
      return undefined;
  }
}

/** Expected shape of each variable (null: not checked), from the config and the input feature count `f`. */
function expectedShapes(l: KerasLayer, names: string[], f: number | null): Map<string, (number | null)[]> {
  const c = l.config;
  const m = new Map<string, (number | null)[]>();
  const units = typeof c.units === 'number' ? c.units : null;
  switch (l.className) {
    case 'Dense':
      m.set('kernel', [f, units]);
      m.set('bias', [units]);
      break;
    case 'GRU':
    case 'LSTM':
    case 'SimpleRNN': {
      const g = l.className === 'GRU' ? 3 : l.className === 'LSTM' ? 4 : 1;
      const gu = units === null ? null : g * units;
      m.set('kernel', [f, gu]);
      m.set('recurrent_kernel', [units, gu]);
      m.set('bias', l.className === 'GRU' && c.reset_after !== false ? [2, gu] : [gu]);
      break;
    }
    case 'BatchNormalization':
    case 'LayerNormalization': {
      const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : c.axis;
      if (axis === -1 || axis === undefined) for (const n of names) m.set(n, [f]);
      break;
    }
    case 'Embedding':
      m.set('embeddings', [typeof c.input_dim === 'number' ? c.input_dim : null, typeof c.output_dim === 'number' ? c.output_dim : null]);
      break;
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D': {
      const filters = typeof c.filters === 'number' ? c.filters : null;
      const ks = Array.isArray(c.kernel_size) ? (c.kernel_size as unknown[]).map((k) => (typeof k === 'number' ? k : null)) : null;
      const groups = typeof c.groups === 'number' ? c.groups : 1;
      const fromChannels = c.data_format === undefined || c.data_format === 'channels_last';
      if (ks) m.set('kernel', [...ks, fromChannels && f !== null ? f / groups : null, filters]);
      m.set('bias', [filters]);
      break;
    }
    default:
      break;
  }
  return m;
}

/** Checks the variable names (Keras 2) and every shape against the layer config. */
function checkWeights(l: KerasLayer, weights: KerasWeight[], inputFeatures: number | null, file: string): void {
  const spec = varSpec(l);
  if (!spec) return;
  const names = weights.map((w) => w.name);
  if (names.length !== spec.names.length || names.some((n, i) => n !== spec.names[i])) {
    throw new CorruptDataError(
      `layer '${l.name}' (${l.className}): variables [${names.join(', ')}], expected [${spec.names.join(', ')}] from its config`,
      { file },
    );
  }
  const expected = expectedShapes(l, names, inputFeatures);
  for (const w of weights) {
    const e = expected.get(w.name);
    if (!e) continue;
    const ok = e.length === w.shape.length && e.every((d, i) => d === null || d === w.shape[i]);
    if (!ok) {
      throw new CorruptDataError(
        `layer '${l.name}' (${l.className}): ${w.name} has shape ${fmtShape(w.shape)}, expected ${fmtShape(e)} ` +
          `(from its config${inputFeatures !== null ? ` and ${inputFeatures} input features` : ''})`,
        { file },
      );
    }
  }
}

function inputFeatures(l: KerasLayer, byName: Map<string, KerasLayer>, buildShapes: Map<string, KerasShape>): number | null {
  const first = l.inbound[0];
  const s = (first !== undefined ? byName.get(first)?.outputShape : undefined) ?? buildShapes.get(l.name);
  const last = s?.[s.length - 1];
  return typeof last === 'number' ? last : null;
}

function checkAll(model: KerasModel, buildShapes: Map<string, KerasShape>, file: string): void {
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  for (const l of model.layers) {
    const w = model.weights.get(l.name) ?? [];
    checkWeights(l, w, inputFeatures(l, byName, buildShapes), file);
  }
}

function readVar(g: Hdf5Group, path: string, name: string, layer: KerasLayer): KerasWeight {
  const d = g.tryDataset(path);
  if (!d) {
    throw new CorruptDataError(`layer '${layer.name}' (${layer.className}): weight dataset ${g.path}/${path} is missing`, {
      file: g.file,
    });
  }
  const dtype = d.dtype;
  if (!/^[<>=|]?f(2|4|8)$/.test(dtype)) {
    throw new CorruptDataError(`layer '${layer.name}' (${layer.className}): weight ${d.path} has dtype ${dtype}, not floating point`, {
      file: g.file,
    });
  }
  return { name, shape: d.shape, data: d.toFloat32(), dtype, source: d.path };
}

// ---------------------------------------------------------------------------------------------------------
// Keras 2 / tf.keras HDF5

function readKeras2H5(bytes: Uint8Array, file: string): KerasModel {
  const root = openHdf5(bytes, file);
  const cfgText = root.attrString('model_config');
  if (cfgText === undefined) {
    if (root.tryGroup('layers') && root.tryGroup('vars')) {
      throw new UnsupportedError(
        'a Keras 3 weights file (.weights.h5) holds no model config; pass the .keras archive saved with model.save()',
        { file },
      );
    }
    if (root.hasAttr('layer_names')) {
      throw new UnsupportedError(
        'a weights-only Keras HDF5 file (model.save_weights) holds no model config; save the whole model with model.save()',
        { file },
      );
    }
    throw new UnsupportedError('an HDF5 file but not a Keras model: no model_config attribute', { file });
  }
  const cfg = parseJson(cfgText, 'the model_config attribute', file);
  const builder = new GraphBuilder(file);
  const { name, modelClass, layers, inputs, outputs, buildShapes } = graphFromConfig(cfg, builder, file);

  const weightsRoot = root.tryGroup('model_weights');
  if (!weightsRoot) throw new CorruptDataError('Keras HDF5 model has no model_weights group', { file });
  const weights = new Map<string, KerasWeight[]>();
  for (const l of layers) {
    if (l.isOperation) continue;
    const g = weightsRoot.tryGroup(l.name);
    const spec = varSpec(l);
    if (!g) {
      if (spec && spec.names.length > 0) {
        throw new CorruptDataError(`layer '${l.name}' (${l.className}): no weight group /model_weights/${l.name}`, { file });
      }
      continue;
    }
    const names = chunkedStrings(g, 'weight_names') ?? [];
    if (names.length === 0) continue;
    const list = names.map((wn) => readVar(g, wn, weightShortName(wn), l));
    weights.set(l.name, list);
  }
  const model: KerasModel = { format: 'keras2-h5', modelName: name, modelClass, layers, inputs, outputs, weights };
  const kv = root.attrString('keras_version');
  if (kv !== undefined) model.kerasVersion = kv;
  const be = root.attrString('backend');
  if (be !== undefined) model.backend = be;
  const tc = root.attrString('training_config');
  if (tc !== undefined) model.trainingConfig = parseJson(tc, 'the training_config attribute', file);
  checkAll(model, buildShapes, file);
  return model;
}

/** 'gru/gru_cell/kernel:0' → 'kernel'. */
function weightShortName(path: string): string {
  const last = path.split('/').pop() ?? path;
  return last.replace(/:\d+$/, '');
}

/** A string-list attribute that Keras may split into name0, name1, … when it is over 64 KiB. */
function chunkedStrings(g: Hdf5Group, name: string): string[] | undefined {
  const whole = g.attrStrings(name);
  if (whole !== undefined) return whole;
  if (!g.hasAttr(`${name}0`)) return undefined;
  const out: string[] = [];
  for (let i = 0; g.hasAttr(`${name}${i}`); i++) out.push(...g.attrStrings(`${name}${i}`)!);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Config → graph (both formats)

interface Graph {
  name: string;
  modelClass: string;
  layers: KerasLayer[];
  inputs: string[];
  outputs: string[];
  buildShapes: Map<string, KerasShape>;
  /** The layers in the config's order (for Keras 3 weight paths). */
  configOrder: KerasLayer[];
  /** Sequential: the InputLayer (given or synthesized) at the bottom, which Keras 3 does not store weights for. */
  sequentialInput?: string;
}

function graphFromConfig(cfg: unknown, builder: GraphBuilder, file: string): Graph {
  if (!isObj(cfg) || typeof cfg.class_name !== 'string') {
    throw new CorruptDataError('model config has no class_name', { file });
  }
  const cls = cfg.class_name;
  if (cls === 'Sequential') return sequentialGraph(cfg, builder, file);
  if (cls !== 'Functional' && cls !== 'Model') {
    throw new UnsupportedError(
      `model class '${cls}' is not supported (only Functional and Sequential models; subclassed models have no graph in the file)`,
      { file },
    );
  }
  const c = isObj(cfg.config) ? cfg.config : {};
  const raw = builder.functionalLayers(c);
  const layers = builder.build(raw, false);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const inputs = builder.endpoints(c.input_layers, 'input_layers', byName);
  const outputs = builder.endpoints(c.output_layers, 'output_layers', byName);
  for (const i of inputs) {
    if (byName.get(i)!.className !== 'InputLayer') {
      throw new CorruptDataError(`model config: input '${i}' is a ${byName.get(i)!.className}, not an InputLayer`, { file });
    }
  }
  return {
    name: typeof c.name === 'string' ? c.name : 'model',
    modelClass: cls,
    layers,
    inputs,
    outputs,
    buildShapes: buildShapesOf(raw),
    configOrder: raw.map((r) => byName.get(r.name)!),
  };
}

function buildShapesOf(raw: RawLayer[]): Map<string, KerasShape> {
  return new Map(raw.filter((r) => r.buildInputShape).map((r) => [r.name, r.buildInputShape!]));
}

function sequentialGraph(cfg: Json, builder: GraphBuilder, file: string): Graph {
  // Keras 2.0–2.2 wrote the layer list as the config itself.
  const c: Json = Array.isArray(cfg.config) ? { layers: cfg.config } : isObj(cfg.config) ? cfg.config : {};
  if (!Array.isArray(c.layers) || c.layers.length === 0) throw new CorruptDataError('Sequential model config has no layers', { file });
  const raw = c.layers.map((e, i) => builder.rawLayer(e, i, false));
  if (raw[0]!.className !== 'InputLayer') {
    const first = raw[0]!;
    const shape =
      shapeOf(first.config.batch_input_shape) ??
      shapeOf(first.config.batch_shape) ??
      first.buildInputShape ??
      shapeOf(c.build_input_shape) ??
      (isObj(cfg.build_config) ? shapeOf(cfg.build_config.input_shape) : undefined);
    if (!shape) {
      throw new UnsupportedError(`Sequential model without an input shape (first layer '${first.name}' has none); build the model before saving`, {
        file,
      });
    }
    let name = `${first.name}_input`;
    while (raw.some((r) => r.name === name)) name += '_';
    raw.unshift({ name, className: 'InputLayer', config: { batch_input_shape: shape, name }, nodes: undefined });
  }
  const layers = builder.build(raw, true);
  const byName = new Map(layers.map((l) => [l.name, l]));
  return {
    name: typeof c.name === 'string' ? c.name : 'sequential',
    modelClass: 'Sequential',
    layers,
    inputs: [layers[0]!.name],
    outputs: [layers[layers.length - 1]!.name],
    buildShapes: buildShapesOf(raw),
    configOrder: raw.map((r) => byName.get(r.name)!),
    sequentialInput: layers[0]!.name,
  };
}

/**
 * The normalised layer graph of a model config — a .keras archive's config.json or an HDF5 model's model_config
 * attribute, parsed — without weights (Sequential configs become a linear graph with an InputLayer). `file`
 * names the source in error messages.
 */
export function kerasGraphFromConfig(
  config: unknown,
  file = '(model config)',
): Pick<KerasModel, 'modelName' | 'modelClass' | 'layers' | 'inputs' | 'outputs'> {
  const g = graphFromConfig(config, new GraphBuilder(file), file);
  return { modelName: g.name, modelClass: g.modelClass, layers: g.layers, inputs: g.inputs, outputs: g.outputs };
}

// ---------------------------------------------------------------------------------------------------------
// Keras 3 .keras

/** Keras 3's naming.to_snake_case, used for the weight groups (named by class, not by layer name). */
function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** Numbered variables under `<g>/vars` in order 0, 1, …; [] when there are none. */
function varKeys(g: Hdf5Group | undefined): string[] {
  const vars = g?.tryGroup('vars');
  if (!vars) return [];
  const keys = vars.keys();
  const nums = keys.map(Number).sort((a, b) => a - b);
  if (nums.some((k, i) => k !== i)) {
    throw new CorruptDataError(`${vars.path}: variables [${keys.join(', ')}] are not numbered 0..${keys.length - 1}`, { file: vars.file });
  }
  return nums.map(String);
}

/** True if any group at or below `g` has variables. */
function hasAnyVars(g: Hdf5Group, depth = 0): boolean {
  if (varKeys(g).length > 0) return true;
  if (depth > 8) return false;
  return g.keys().some((k) => {
    const child = g.tryGroup(k);
    return child !== undefined && k !== 'vars' && hasAnyVars(child, depth + 1);
  });
}

function readKeras3(bytes: Uint8Array, file: string): KerasModel {
  const zip = openZip(bytes, file);
  if (!zip.entry('config.json')) {
    const names = zip.entries.slice(0, 5).map((e) => e.name);
    throw new UnsupportedError(
      `a ZIP archive but not a Keras 3 model: no config.json (entries: ${names.join(', ')}${zip.entries.length > 5 ? ', …' : ''})`,
      { file },
    );
  }
  const cfg = parseJson(zip.readText('config.json'), 'config.json', file);
  let kerasVersion: string | undefined;
  if (zip.entry('metadata.json')) {
    const meta = parseJson(zip.readText('metadata.json'), 'metadata.json', file);
    if (isObj(meta) && typeof meta.keras_version === 'string') kerasVersion = meta.keras_version;
  }
  if (!zip.entry('model.weights.h5')) {
    const npz = zip.entry('model.weights.npz') ? ' (model.weights.npz: saved with the npz weights store, not supported)' : '';
    throw new CorruptDataError(`Keras 3 archive has no model.weights.h5${npz}`, { file });
  }
  const builder = new GraphBuilder(file);
  const graph = graphFromConfig(cfg, builder, file);
  const wfile = `${file}!model.weights.h5`;
  const wroot = openHdf5(zip.read('model.weights.h5'), wfile);
  const layersGroup = wroot.tryGroup('layers');

  // Keras 3 saves the layers of model.layers (Sequential: without its bottom InputLayer) under
  // layers/<snake_case(class name)>[_<n>], numbered per class in that order — not under the layer names.
  const used = new Map<string, number>();
  const claimed = new Set<string>();
  const weights = new Map<string, KerasWeight[]>();
  for (const l of graph.configOrder) {
    if (l.isOperation || l.name === graph.sequentialInput) continue;
    const base = toSnakeCase(l.className);
    const count = used.get(base);
    const key = count === undefined ? base : `${base}_${count + 1}`;
    used.set(base, count === undefined ? 0 : count + 1);
    claimed.add(key);
    const g = layersGroup?.tryGroup(key);
    const spec = varSpec(l);
    if (!spec) {
      if (g && hasAnyVars(g)) {
        throw new UnsupportedError(
          `layer '${l.name}' (${l.className}): a layer class with variables that hep-ml cannot map (it knows Dense, GRU, LSTM, ` +
            'SimpleRNN, Conv1D/2D/3D, BatchNormalization, LayerNormalization, Embedding, PReLU)',
          { file: wfile },
        );
      }
      continue;
    }
    const owner = spec.cell ? g?.tryGroup('cell') : g;
    const keys = varKeys(owner);
    const extra = spec.cell ? varKeys(g) : [];
    if (keys.length !== spec.names.length || extra.length > 0) {
      const where = `/layers/${key}${spec.cell ? '/cell' : ''}/vars`;
      if (!g && spec.names.length > 0) {
        throw new CorruptDataError(`layer '${l.name}' (${l.className}): no weight group /layers/${key}`, { file: wfile });
      }
      throw new CorruptDataError(
        `layer '${l.name}' (${l.className}): ${keys.length + extra.length} variables under /layers/${key}, expected ` +
          `${spec.names.length} (${spec.names.join(', ')}) in ${where}`,
        { file: wfile },
      );
    }
    if (keys.length === 0) continue;
    weights.set(
      l.name,
      keys.map((k, i) => readVar(owner!.group('vars'), k, spec.names[i]!, l)),
    );
  }
  if (layersGroup) {
    for (const k of layersGroup.keys()) {
      const g = layersGroup.tryGroup(k);
      if (!claimed.has(k) && g && hasAnyVars(g)) {
        throw new CorruptDataError(
          `weight group /layers/${k} belongs to no layer of the config (layers: ${graph.configOrder.map((l) => l.name).join(', ')})`,
          { file: wfile },
        );
      }
    }
  }

  const model: KerasModel = {
    format: 'keras3',
    modelName: graph.name,
    modelClass: graph.modelClass,
    layers: graph.layers,
    inputs: graph.inputs,
    outputs: graph.outputs,
    weights,
  };
  if (kerasVersion !== undefined) model.kerasVersion = kerasVersion;
  if (isObj(cfg) && cfg.compile_config !== undefined && cfg.compile_config !== null) model.trainingConfig = cfg.compile_config;
  checkAll(model, graph.buildShapes, file);
  return model;
}

