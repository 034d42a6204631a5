/**
 * The C GRU kernel (gru.c compiled to gru.wasm, WebAssembly SIMD128) behind the GruOp interface.
 *
 * gru.wasm has no imports and exports its memory, which the kernel grows itself (a bump arena reset at
 * every forward). The wrapper copies the inputs in and the results out, so callers never hold views on
 * wasm memory; views are re-created after every call because growing the memory detaches the old buffer.
 */
import { readFile } from 'node:fs/promises';
import { checkForwardInput, type FloatArray, type GruForwardInput, type GruForwardOptions, type GruGradients, type GruOp } from './types.js';

/*
 * The few WebAssembly JS-API members used here, typed locally: the project compiles with lib ES2023 and
 * no DOM, where the global `WebAssembly` namespace is not declared (and declaring it globally could
 * clash with another declaration later).
 */
interface WasmModule { readonly __wasmModule?: never }
interface WasmInstance { readonly exports: Record<string, unknown> }
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
  compile(bytes: ArrayBufferView | ArrayBuffer): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: object): Promise<WasmInstance>;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** The kernel's exports (see gru.c). Pointers are byte offsets into `memory`. */
interface GruExports {
  memory: { readonly buffer: ArrayBuffer };
  gru_begin(B: number, T: number, F: number, U: number, training: number): number;
  gru_forward(): number;
  gru_backward(): number;
  gru_x(): number;
  gru_kernel(): number;
  gru_recurrent(): number;
  gru_bias(): number;
  gru_out(): number;
  gru_dh(): number;
  gru_dkernel(): number;
  gru_drecurrent(): number;
  gru_dbias(): number;
  gru_lengths(): number;
}

/** Where the shipped kernel lies: next to this module (src/ under tsx, dist/ once built and copied). */
export const GRU_WASM_URL = new URL('./gru.wasm', import.meta.url);

/** A tiny module using a v128 instruction: does this engine validate WebAssembly SIMD? */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** True when WebAssembly with SIMD128 is available, i.e. GruKernel.load() can work. */
export function gruAvailable(): boolean {
  try {
    return WA !== undefined && WA.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

let compiled: Promise<WasmModule> | undefined;

export class GruKernel implements GruOp<Float32Array> {
  readonly kind = 'wasm' as const;
  private readonly ex: GruExports;
  private dims?: { B: number; F: number; U: number; training: boolean };

  private constructor(instance: WasmInstance) {
    this.ex = instance.exports as unknown as GruExports;
  }

  /**
   * Instantiates a kernel (each instance has its own memory; one batch in flight per instance). The
   * module is read from `wasm` (bytes or a file URL) or else from the shipped gru.wasm, compiled once.
   */
  static async load(options: { wasm?: ArrayBufferView | ArrayBuffer | URL } = {}): Promise<GruKernel> {
    const api = WA;
    if (!api) throw new Error('gru: WebAssembly is not available');
    let module: Promise<WasmModule>;
    if (options.wasm instanceof URL) module = readFile(options.wasm).then((b) => api.compile(b));
    else if (options.wasm) module = api.compile(options.wasm);
    else {
      module = compiled ??= readFile(GRU_WASM_URL).then((b) => api.compile(b));
      module.catch(() => (compiled = undefined)); // do not cache a failure (e.g. a missing file)
    }
    return new GruKernel(await api.instantiate(await module, {}));
  }

  /**
   * Compiles the module once (as load() does) and returns a synchronous maker of kernel instances: for
   * layers that need a kernel of their own where no await is possible (one batch in flight per instance).
   */
  static async factory(options: { wasm?: ArrayBufferView | ArrayBuffer | URL } = {}): Promise<() => GruKernel> {
    const api = WA;
    if (!api) throw new Error('gru: WebAssembly is not available');
    const first = await GruKernel.load(options); // compiles (and caches) the module, checks it instantiates
    const module = await (options.wasm instanceof URL
      ? readFile(options.wasm).then((b) => api.compile(b))
      : options.wasm
        ? api.compile(options.wasm)
        : compiled!);
    let spare: GruKernel | undefined = first;
    return () => {
      const k = spare ?? new GruKernel(new api.Instance(module, {}));
      spare = undefined;
      return k;
    };
  }

  private f32(): Float32Array {
    return new Float32Array(this.ex.memory.buffer);
  }

  forward(input: GruForwardInput, options: GruForwardOptions = {}): Float32Array {
    checkForwardInput(input);
    const { batch: B, steps: T, features: F, units: U } = input;
    const training = options.training ?? true;
    const ex = this.ex;
    this.dims = undefined;
    if (!ex.gru_begin(B, T, F, U, training ? 1 : 0)) throw new RangeError(`gru: out of wasm memory for x [${B}, ${T}, ${F}]`);
    let m = this.f32();
    m.set(input.x, ex.gru_x() >>> 2);
    m.set(input.kernel, ex.gru_kernel() >>> 2);
    m.set(input.recurrentKernel, ex.gru_recurrent() >>> 2);
    m.set(input.bias, ex.gru_bias() >>> 2);
    if (!ex.gru_forward()) throw new RangeError(`gru: out of wasm memory (batch ${B}, steps ${T}, units ${U})`);
    m = this.f32();
    const p = ex.gru_out() >>> 2;
    this.dims = { B, F, U, training };
    return m.slice(p, p + B * U);
  }

  backward(dh: FloatArray): GruGradients<Float32Array> {
    const d = this.dims;
    if (!d || !d.training) throw new Error('gru: backward() needs a preceding forward() with training: true');
    if (dh.length !== d.B * d.U) throw new RangeError(`gru: dh has ${dh.length} values, expected ${d.B * d.U}`);
    const ex = this.ex;
    this.f32().set(dh, ex.gru_dh() >>> 2);
    const rc = ex.gru_backward();
    if (rc !== 1) throw new RangeError(rc === 0 ? 'gru: out of wasm memory in backward' : 'gru: no forward to differentiate');
    const m = this.f32();
    // kernel [F, 3U], recurrent [U, 3U], bias [2, 3U]
    const { F, U } = d, G = 3 * U;
    const k = ex.gru_dkernel() >>> 2, r = ex.gru_drecurrent() >>> 2, b = ex.gru_dbias() >>> 2;
    return {
      kernel: m.slice(k, k + F * G),
      recurrentKernel: m.slice(r, r + U * G),
      bias: m.slice(b, b + 2 * G),
    };
  }

  lengths(): Int32Array {
    if (!this.dims) return new Int32Array(0);
    const p = this.ex.gru_lengths() >>> 2;
    return new Int32Array(this.ex.memory.buffer).slice(p, p + this.dims.B);
  }
}
