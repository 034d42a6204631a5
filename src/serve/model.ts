/**
 * A model as the server serves it: its inputs (names, shapes, feature names), the model's own min-max scaler
 * applied to raw features (what `hep-ml features` writes; a request may say its inputs are already scaled),
 * and a micro-batcher in front of the model call.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { loadEngine } from '../train/engine.js';
import { openModel, type LoadedModel } from '../evaluate/model.js';
import { predictRows } from '../train/trainer.js';
import { scalerCoefficients, scaleInto, type MinMaxScaler } from '../prepare/scaler.js';
import { MicroBatcher } from './batcher.js';

export interface ServedInput {
  /** The model's input name (e.g. hlf_input), as OIP requests name it. */
  name: string;
  /** The dataset column (e.g. HLF_input), also accepted as a name. */
  column: string;
  /** Shape of one event. */
  shape: number[];
  width: number;
  /** Names of the values of one event when known (the 14 high-level features). */
  features?: string[];
  /** The model's scaler for this input, applied unless a request says its values are scaled. */
  scale?: { lo: Float64Array; k: Float64Array };
}

export interface BatchSettings {
  maxBatch: number;
  maxDelayMs: number;
  maxQueueRows: number;
  onBatch?: (model: string, rows: number, seconds: number) => void;
}

export class ServedModel {
  readonly inputs: ServedInput[];
  readonly classes: string[];
  readonly batcher: MicroBatcher;
  readonly loadedAt = new Date();
  private disposed = false;

  private constructor(
    readonly name: string,
    readonly loaded: LoadedModel,
    settings: BatchSettings,
    private readonly tf: typeof tfTypes,
  ) {
    const meta = loaded.meta;
    const scaler = meta.scaler as (Partial<MinMaxScaler> & { column?: unknown }) | null | undefined;
    const hlfNames = (meta.recipe as { hlf_names?: unknown } | null | undefined)?.hlf_names;
    this.classes = loaded.classes;
    this.inputs = loaded.inputs.map((i) => {
      const width = i.shape.reduce((a, b) => a * b, 1);
      const s: ServedInput = { name: i.name, column: i.column, shape: i.shape, width };
      if (Array.isArray(hlfNames) && hlfNames.length === width && hlfNames.every((n) => typeof n === 'string') && i.shape.length === 1) s.features = hlfNames as string[];
      if (scaler && scaler.column === i.column && Array.isArray(scaler.min) && scaler.min.length === width) s.scale = scalerCoefficients(scaler as MinMaxScaler);
      return s;
    });
    this.batcher = new MicroBatcher((inputs, rows) => this.run(inputs, rows), {
      widths: this.inputs.map((i) => i.width),
      outWidth: this.classes.length,
      maxBatch: settings.maxBatch,
      maxDelayMs: settings.maxDelayMs,
      maxQueueRows: settings.maxQueueRows,
      onBatch: settings.onBatch ? (rows, s) => settings.onBatch!(name, rows, s) : undefined,
    });
  }

  static async load(name: string, dir: string, settings: BatchSettings): Promise<ServedModel> {
    const eng = await loadEngine();
    const loaded = await openModel(dir);
    return new ServedModel(name, loaded, settings, eng.tf);
  }

  /** The input a request names (by input name or column, case-sensitive), or undefined. */
  input(name: string): ServedInput | undefined {
    return this.inputs.find((i) => i.name === name) ?? this.inputs.find((i) => i.column === name);
  }

  /** Scales raw rows of input k in place with the model's scaler (no-op without one). */
  scaleRows(k: number, values: Float32Array, rows: number): void {
    const s = this.inputs[k]!.scale;
    if (s) scaleInto(values, values, s.lo, s.k, 0, rows);
  }

  /** Class probabilities of `rows` events (inputs already scaled), through the micro-batcher. */
  infer(inputs: Float32Array[], rows: number): Promise<Float32Array> {
    return this.batcher.submit(inputs, rows);
  }

  private async run(inputs: Float32Array[], rows: number): Promise<Float32Array> {
    if (this.disposed) throw new Error(`model ${this.name} was unloaded`);
    return predictRows(this.tf, this.loaded.model, this.loaded.inputs, inputs, rows);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.batcher.close(new Error(`model ${this.name} was unloaded`));
    this.loaded.model.dispose();
  }
}
