/**
 * SVG → PNG with resvg (WebAssembly: no native dependency, no browser). The module is
 * instantiated once per process, on first use.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { initWasm, Resvg } from '@resvg/resvg-wasm';

let ready: Promise<void> | undefined;

/** Instantiates the resvg WebAssembly module (once; later calls return the same promise). */
export function initPng(): Promise<void> {
  ready ??= (async () => {
    const wasmPath = createRequire(import.meta.url).resolve('@resvg/resvg-wasm/index_bg.wasm');
    try {
      await initWasm(await readFile(wasmPath));
    } catch (e) {
      // Another part of the process may have initialized the (shared, module-global) instance.
      if (!(e instanceof Error && /already initialized/i.test(e.message))) {
        ready = undefined;
        throw e;
      }
    }
  })();
  return ready;
}

/** An RGBA raster: width × height pixels, 4 bytes each, rows top to bottom. */
export interface Raster {
  width: number;
  height: number;
  pixels: Uint8Array;
}

function renderer(svg: string, scale: number): InstanceType<typeof Resvg> {
  return new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: false },
    background: 'white',
    shapeRendering: 2,
  });
}

/** Rasterizes an SVG (its text already converted to outlines) at `scale` × its size, as PNG bytes. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  await initPng();
  const r = renderer(svg, scale);
  try {
    const img = r.render();
    try {
      return img.asPng();
    } finally {
      img.free();
    }
  } finally {
    r.free();
  }
}

/** Rasterizes an SVG at `scale` × its size to RGBA pixels (tests, image checks). */
export async function svgToRaster(svg: string, scale = 2): Promise<Raster> {
  await initPng();
  const r = renderer(svg, scale);
  try {
    const img = r.render();
    try {
      return { width: img.width, height: img.height, pixels: img.pixels.slice() };
    } finally {
      img.free();
    }
  } finally {
    r.free();
  }
}
