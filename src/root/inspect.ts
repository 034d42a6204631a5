/**
 * What `hep-ml ls` shows: a file's trees and every branch with its types, counter, codec and sizes.
 */
import { blockCodec, compressionName } from './decompress.js';
import { RootFile, type KeyInfo } from './file.js';
import type { SourceOptions } from './source.js';
import { formatColumnType } from './columns.js';
import type { Tree } from './tree.js';

export interface BranchDescription {
  name: string;
  path: string;
  depth: number;
  branchClass: string;
  leafClass: string;
  cppType: string;
  type: string | null;
  counter: string | null;
  jagged: boolean;
  /** Codec of the first basket on disk (`ZLIB`, `LZ4`, `LZMA`, `ZSTD`, `none`), null when it has no basket. */
  codec: string | null;
  /** The branch's compression setting, e.g. `ZLIB-1`. */
  compression: string;
  baskets: number;
  compressedBytes: number;
  uncompressedBytes: number;
  readable: boolean;
  reader: 'bulk' | 'jsroot' | null;
  unsupported: string | null;
}

export interface TreeDescription {
  name: string;
  cycle: number;
  title: string;
  entries: number;
  branches: BranchDescription[];
}

export interface FileDescription {
  file: string;
  rootVersion: string;
  size: number;
  compression: string;
  trees: TreeDescription[];
  /** Keys that are not trees (histograms, directories, RNTuples, ...). */
  otherKeys: { path: string; cycle: number; className: string }[];
}

/** Reads the codec of each branch's first on-disk basket: one coalesced read of the basket headers. */
async function firstBasketCodecs(tree: Tree): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ranges: [number, number][] = [];
  const names: string[] = [];
  for (const b of tree.branches) {
    const seek = Number(b.js.fBasketSeek?.[0] ?? 0);
    const bytes = Number(b.js.fBasketBytes?.[0] ?? 0);
    if (Number(b.js.fWriteBasket ?? 0) > 0 && seek > 0 && bytes > 0) {
      ranges.push([seek, Math.min(bytes, 512)]);
      names.push(b.name);
    } else if ((b.js.fBaskets?.arr ?? []).some((x: unknown) => x)) {
      out.set(b.name, 'none');
    }
  }
  if (ranges.length === 0) return out;
  const heads = await tree.file.source.readMany(ranges);
  heads.forEach((h, i) => {
    const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
    const nbytes = v.getInt32(0);
    const objlen = v.getInt32(6);
    const keylen = v.getInt16(14);
    if (objlen <= nbytes - keylen) out.set(names[i]!, 'none');
    else out.set(names[i]!, keylen + 9 <= h.length ? (blockCodec(h, keylen) ?? 'unknown') : 'unknown');
  });
  return out;
}

export async function describeTree(tree: Tree): Promise<TreeDescription> {
  const codecs = await firstBasketCodecs(tree);
  return {
    name: tree.name,
    cycle: tree.cycle,
    title: tree.title,
    entries: tree.entries,
    branches: tree.branches.map((b) => ({
      name: b.name,
      path: b.path,
      depth: b.depth,
      branchClass: b.branchClass,
      leafClass: b.leafClass,
      cppType: b.typeName,
      type: b.type ? formatColumnType(b.type) : null,
      counter: b.counter ?? null,
      jagged: b.type?.kind === 'list',
      codec: codecs.get(b.name) ?? null,
      compression: b.compression,
      baskets: b.basketCount,
      compressedBytes: b.zipBytes,
      uncompressedBytes: b.totBytes,
      readable: !!b.type,
      reader: b.plan ? (b.plan.kind === 'jsroot' ? 'jsroot' : 'bulk') : null,
      unsupported: b.unsupported ?? null,
    })),
  };
}

/** Describes every tree of a file (all cycles), or only `treeName`. */
export async function describeFile(location: string, treeName?: string, opts: SourceOptions = {}): Promise<FileDescription> {
  const f = await RootFile.open(location, opts);
  try {
    const keys = await f.keys();
    const treeKeys: KeyInfo[] = treeName ? [] : await f.treeKeys();
    const trees: TreeDescription[] = [];
    if (treeName) trees.push(await describeTree(await f.tree(treeName)));
    else for (const k of treeKeys) trees.push(await describeTree(await f.tree(`${k.path};${k.cycle}`)));
    return {
      file: location,
      rootVersion: f.rootVersion,
      size: f.size,
      compression: compressionName(f.compress),
      trees,
      otherKeys: keys
        .filter((k) => !treeKeys.includes(k) && !(treeName && trees.some((t) => t.name === k.path)) && !/^(TTree|TNtuple|TNtupleD)$/.test(k.className))
        .map((k) => ({ path: k.path, cycle: k.cycle, className: k.className })),
    };
  } finally {
    await f.close();
  }
}
