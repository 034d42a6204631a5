/**
 * The one place hep-ml talks to jsroot. jsroot decodes ROOT metadata (keys, directories, streamer infos,
 * TTree/TBranch/TLeaf objects) very well; this module makes it safe to use from a data-carrying CLI:
 *
 * - all bytes come from our ByteSource (a FileProxy), so file descriptors are closed and remote reads
 *   go through our HTTP client;
 * - key payloads (TTree objects, streamer infos, directories) are decompressed with hep-ml's native
 *   codecs instead of jsroot's pure-JS ones (15-35x faster for zlib; jsroot's LZMA needs ~170 MB);
 * - jsroot's console output (some of it on stdout) is captured, never printed on stdout;
 * - jsroot's ZSTD decoder is hep-ml's, so its per-entry path never loads @oneidentity/zstd-js.
 */
import { FileProxy, TBuffer, openFile as jsrootOpenFile, type JsrootFile, type JsrootKey } from 'jsroot/io';
import { internals } from 'jsroot/core';
import { rootUnzip, zstdDecompress } from './decompress.js';
import type { ByteSource } from './source.js';

internals._ZstdStream = { decompress: (src: Uint8Array) => zstdDecompress(src) };

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;
let quietDepth = 0;
const saved: Partial<Record<(typeof CONSOLE_METHODS)[number], (...a: unknown[]) => void>> = {};
/** Messages jsroot printed while quiet; shown on stderr with HEPML_DEBUG=1. */
export const jsrootMessages: string[] = [];

/** Runs fn with console.* captured (jsroot prints diagnostics, some on stdout). */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  if (quietDepth++ === 0) {
    for (const m of CONSOLE_METHODS) {
      saved[m] = console[m];
      console[m] = (...args: unknown[]) => {
        const line = args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
        if (jsrootMessages.length < 1000) jsrootMessages.push(line);
        if (process.env.HEPML_DEBUG) process.stderr.write(`[jsroot] ${line}\n`);
      };
    }
  }
  try {
    return await fn();
  } finally {
    if (--quietDepth === 0) for (const m of CONSOLE_METHODS) console[m] = saved[m] as never;
  }
}

function toDataView(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

class SourceProxy extends FileProxy {
  constructor(private readonly source: ByteSource) {
    super();
  }
  override async openFile(): Promise<boolean> {
    return true;
  }
  override getFileName(): string {
    return this.source.name;
  }
  override getFileSize(): number {
    return this.source.size;
  }
  override async readBuffer(pos: number, len: number): Promise<DataView> {
    return toDataView(await this.source.read(pos, len));
  }
  async readBuffers(place: number[]): Promise<DataView[]> {
    const ranges: [number, number][] = [];
    for (let k = 0; k < place.length; k += 2) ranges.push([place[k]!, place[k + 1]!]);
    return (await this.source.readMany(ranges)).map(toDataView);
  }
  override closeFile(): void {}
}

/** jsroot's TFile.readObjBuffer, with native decompression. */
async function readObjBuffer(this: JsrootFile, key: JsrootKey): Promise<TBuffer> {
  const blob = (await this.readBuffer([key.fSeekKey + key.fKeylen, key.fNbytes - key.fKeylen])) as DataView;
  let view = blob;
  if (key.fObjlen > key.fNbytes - key.fKeylen) {
    const src = new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
    view = toDataView(rootUnzip(src, key.fObjlen, { file: this.fFileName }));
  }
  const buf = new TBuffer(view, 0, this);
  buf.fTagOffset = key.fKeylen;
  return buf;
}

let tfilePatched = false;
function patchTFilePrototype(proto: Record<string, unknown>) {
  if (tfilePatched || typeof proto.readObjBuffer !== 'function') return;
  proto.readObjBuffer = readObjBuffer;
  tfilePatched = true;
}

/**
 * Opens a ROOT file through jsroot, reading bytes from `source`.
 * jsroot does not export its TFile class; the first open captures its prototype while jsroot constructs
 * the file object (the TProxyFile constructor assigns `this.proxy`), so that even the first file's
 * streamer infos are decompressed natively.
 */
export async function openJsrootFile(source: ByteSource): Promise<JsrootFile> {
  const proxy = new SourceProxy(source);
  let promise: Promise<JsrootFile>;
  if (!tfilePatched) {
    const objProto = Object.prototype as Record<string, unknown>;
    Object.defineProperty(objProto, 'proxy', {
      configurable: true,
      set(this: object, v: unknown) {
        delete objProto.proxy;
        const tfileProto = Object.getPrototypeOf(Object.getPrototypeOf(this));
        if (tfileProto) patchTFilePrototype(tfileProto);
        Object.defineProperty(this, 'proxy', { value: v, writable: true, configurable: true, enumerable: true });
      },
    });
    try {
      promise = jsrootOpenFile(proxy);
    } finally {
      delete objProto.proxy;
    }
  } else {
    promise = jsrootOpenFile(proxy);
  }
  const file = await quietly(() => promise);
  if (!tfilePatched) patchTFilePrototype(Object.getPrototypeOf(Object.getPrototypeOf(file)));
  return file;
}

export function isTFilePatched(): boolean {
  return tfilePatched;
}
