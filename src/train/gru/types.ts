/**
 * Shared types of the fused GRU op: Keras GRU(reset_after=True), tanh activation, sigmoid recurrent
 * activation, Masking(0.0) on the input, zero initial state, final state only (return_sequences=False).
 * See docs/gru-kernel.md.
 */

/** Float arrays accepted as inputs. */
export type FloatArray = Float32Array | Float64Array;

/** One batch and the weights, all row-major in Keras layout. */
export interface GruForwardInput {
  /** [batch, steps, features]. A step whose features are all exactly 0 is masked (state carried over). */
  x: FloatArray;
  batch: number;
  steps: number;
  features: number;
  units: number;
  /** Keras `kernel`: [features, 3 * units], gate blocks z, r, h. */
  kernel: FloatArray;
  /** Keras `recurrent_kernel`: [units, 3 * units], gate blocks z, r, h. */
  recurrentKernel: FloatArray;
  /** Keras `bias` with reset_after=True: [2, 3 * units]; row 0 input bias, row 1 recurrent bias. */
  bias: FloatArray;
}

export interface GruForwardOptions {
  /**
   * Keep the activations needed by backward() (default true). With false the op uses O(batch × units)
   * state memory instead of O(Σ lengths × units) and backward() throws.
   */
  training?: boolean;
}

/** Gradients of the loss with respect to the weights, same layouts as the weights. */
export interface GruGradients<A extends FloatArray = Float32Array> {
  kernel: A;
  recurrentKernel: A;
  bias: A;
}

/**
 * The op. One batch is in flight per instance: forward() keeps what backward() needs until the next
 * forward(). backward() may be called several times for the same forward (e.g. different dh).
 */
export interface GruOp<A extends FloatArray = Float32Array> {
  /** 'wasm' (C kernel, WebAssembly SIMD) or 'js' (plain TypeScript fallback). */
  readonly kind: 'wasm' | 'js';
  /** Runs the GRU over the batch and returns the final state h_T, [batch, units] (a fresh array). */
  forward(input: GruForwardInput, options?: GruForwardOptions): A;
  /** Given dL/dh_T [batch, units] for the last training forward, returns the weight gradients. */
  backward(dh: FloatArray): GruGradients<A>;
  /** Per sample of the last forward: 1 + index of the last step that is not masked (0: all masked). */
  lengths(): Int32Array;
}

/** Validates the sizes of a forward input; returns the number of gate columns (3 * units). */
export function checkForwardInput(input: GruForwardInput): number {
  const { batch: B, steps: T, features: F, units: U } = input;
  for (const [name, v] of [['batch', B], ['steps', T], ['features', F], ['units', U]] as const) {
    if (!Number.isInteger(v) || v < (name === 'batch' || name === 'steps' ? 0 : 1)) {
      throw new RangeError(`gru: ${name} must be a ${name === 'batch' || name === 'steps' ? 'non-negative' : 'positive'} integer, got ${v}`);
    }
  }
  const G = 3 * U;
  const expect = (name: string, got: number, want: number): void => {
    if (got !== want) throw new RangeError(`gru: ${name} has ${got} values, expected ${want}`);
  };
  expect('x', input.x.length, B * T * F);
  expect('kernel', input.kernel.length, F * G);
  expect('recurrentKernel', input.recurrentKernel.length, U * G);
  expect('bias', input.bias.length, 2 * G);
  return G;
}
