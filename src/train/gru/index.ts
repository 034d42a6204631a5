/**
 * Fused GRU op for training (Keras GRU(reset_after=True) with Masking(0.0), final state only):
 * a C kernel compiled to WebAssembly SIMD (GruKernel) and a plain TypeScript fallback (jsGru) with the
 * same semantics and API. See docs/gru-kernel.md.
 *
 *   const gru = await loadGru();                       // wasm when SIMD is available, else js
 *   const h = gru.forward({ x, batch, steps, features, units, kernel, recurrentKernel, bias });
 *   const g = gru.backward(dLdh);                      // { kernel, recurrentKernel, bias }
 */
import { JsGru, jsGru } from './js.js';
import type { GruOp } from './types.js';
import { GRU_WASM_URL, GruKernel, gruAvailable } from './wasm.js';

export type { FloatArray, GruForwardInput, GruForwardOptions, GruGradients, GruOp } from './types.js';
export { GRU_WASM_URL, GruKernel, JsGru, gruAvailable, jsGru };

/**
 * A GRU op: with prefer 'wasm' (the default) the wasm kernel when WebAssembly SIMD is available and the
 * module loads, else the JS fallback (about 25× slower); with prefer 'js' always the fallback.
 * `op.kind` tells which one was picked; `onFallback` receives the reason when wasm was wanted but not used.
 */
export async function loadGru(
  options: { prefer?: 'wasm' | 'js'; onFallback?: (reason: string) => void } = {},
): Promise<GruOp<Float32Array>> {
  if ((options.prefer ?? 'wasm') === 'wasm') {
    if (!gruAvailable()) {
      options.onFallback?.('WebAssembly SIMD is not available');
    } else {
      try {
        return await GruKernel.load();
      } catch (e) {
        // e.g. gru.wasm missing next to the compiled module
        options.onFallback?.(`gru.wasm did not load: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return jsGru();
}

/**
 * Like loadGru(), but returns a synchronous maker of independent op instances (each with its own state, so
 * each GRU layer of a model has its own: one batch in flight per instance).
 */
export async function gruFactory(
  options: { prefer?: 'wasm' | 'js'; onFallback?: (reason: string) => void } = {},
): Promise<{ kind: 'wasm' | 'js'; make: () => GruOp<Float32Array> }> {
  if ((options.prefer ?? 'wasm') === 'wasm') {
    if (!gruAvailable()) {
      options.onFallback?.('WebAssembly SIMD is not available');
    } else {
      try {
        return { kind: 'wasm', make: await GruKernel.factory() };
      } catch (e) {
        options.onFallback?.(`gru.wasm did not load: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return { kind: 'js', make: () => jsGru() };
}
