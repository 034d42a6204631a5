/**
 * The tensor engine behind training and inference: TensorFlow.js with one of three backends.
 *
 *  - `node`: `@tensorflow/tfjs-node` (libtensorflow, native, multi-threaded). An optionalDependency pinned to
 *    the same version as `@tensorflow/tfjs`; its install script downloads libtensorflow, so on machines
 *    without that download it is simply absent. Loaded with a dynamic import inside try/catch.
 *  - `wasm`: `@tensorflow/tfjs-backend-wasm` (SIMD, one thread in Node), whose `.wasm` files ship inside the
 *    npm package: always installable offline.
 *  - `cpu`: the pure-JS backend, the last resort.
 *
 * `auto` tries node → wasm → cpu and records why each skipped one was skipped. The recurrent layer never
 * runs on the backend's kernels anyway: it is the fused GRU op (src/train/gru), so the backend only carries
 * the dense layers, the loss and the optimizer.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';

export type Tf = typeof tf;
export type EngineName = 'node' | 'wasm' | 'cpu';
export const ENGINE_NAMES: readonly EngineName[] = ['node', 'wasm', 'cpu'];

export interface Engine {
  /** The tfjs namespace (the same module object whichever backend is active). */
  tf: Tf;
  /** The engine in use. */
  name: EngineName;
  /** tfjs' backend name: 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** One line: what was asked, what was picked and why the others were not. */
  reason: string;
  /** The engines tried before this one and why they were not used. */
  skipped: { name: EngineName; reason: string }[];
}

const BACKEND: Record<EngineName, string> = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

let current: Engine | undefined;
let pending: Promise<Engine> | undefined;

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);

async function tryNode(): Promise<void> {
  // a non-literal specifier: bundlers and tsc leave it alone, and a missing package is a runtime error
  const spec = ['@tensorflow', 'tfjs-node'].join('/');
  const mod = (await import(spec)) as { version?: Record<string, string> };
  const theirs = mod.version?.['tfjs-core'];
  if (theirs && theirs !== tf.version['tfjs-core']) {
    throw new Error(`@tensorflow/tfjs-node uses tfjs-core ${theirs}, hep-ml uses ${tf.version['tfjs-core']} (pin both to the same version)`);
  }
  if (!tf.findBackend('tensorflow')) throw new Error('@tensorflow/tfjs-node loaded but registered no "tensorflow" backend');
}

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  // the package's own dist/ holds tfjs-backend-wasm{,-simd,-threaded-simd}.wasm
  wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
}

async function activate(name: EngineName): Promise<void> {
  if (name === 'node') await tryNode();
  else if (name === 'wasm') await tryWasm();
  const ok = await tf.setBackend(BACKEND[name]);
  if (!ok) throw new Error(`tfjs could not initialise the ${BACKEND[name]} backend`);
  await tf.ready();
}

/** Parses `--engine` / HEPML_ENGINE ('auto' or an engine name; `tensorflow` is accepted for node). */
export function parseEngine(s: string | undefined): EngineName | 'auto' {
  const v = (s ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'tensorflow' || v === 'tfjs-node') return 'node';
  if ((ENGINE_NAMES as readonly string[]).includes(v)) return v as EngineName;
  throw new UsageError(`unknown engine '${s}': expected auto, ${ENGINE_NAMES.join(', ')}`);
}

/**
 * Loads the engine once per process. `prefer` 'auto' (default: HEPML_ENGINE, else auto) tries node → wasm
 * → cpu; a named engine that fails to load is an error (no silent fallback when the user asked for one).
 * A second call returns the engine already loaded when it satisfies the request.
 */
export async function loadEngine(prefer?: EngineName | 'auto'): Promise<Engine> {
  const want = prefer ?? parseEngine(process.env.HEPML_ENGINE);
  if (current && (want === 'auto' || want === current.name)) return current;
  if (pending) {
    const e = await pending;
    if (want === 'auto' || want === e.name) return e;
  }
  pending = (async () => {
    tf.env().set('PROD', true); // no debug checks, no "install the node backend" banner
    const order: EngineName[] = want === 'auto' ? ['node', 'wasm', 'cpu'] : [want];
    const skipped: { name: EngineName; reason: string }[] = [];
    for (const name of order) {
      try {
        await activate(name);
        const reason =
          want === 'auto'
            ? `engine ${name} (auto${skipped.length ? `; ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}` : ''})`
            : `engine ${name} (asked for)`;
        current = { tf, name, backend: tf.getBackend(), reason, skipped };
        return current;
      } catch (e) {
        skipped.push({ name, reason: errText(e) });
      }
    }
    const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
    throw new UsageError(
      want === 'auto'
        ? `no tensor engine could be loaded (${why})`
        : `engine ${want} could not be loaded: ${why}${want === 'node' ? ' (install @tensorflow/tfjs-node with a reachable libtensorflow download, or use --engine wasm)' : ''}`,
    );
  })();
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

/** The loaded engine, or undefined before loadEngine(). */
export function currentEngine(): Engine | undefined {
  return current;
}
