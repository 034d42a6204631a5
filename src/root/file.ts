/**
 * A ROOT file: its keys (walked through sub-directories), its trees, and opening a tree by name.
 */
import type { JsrootFile, JsrootKey } from 'jsroot/io';
import { CorruptDataError, HepMlError, NotRootFileError, SelectionError } from '../errors.js';
import { initCodecs } from './decompress.js';
import { openJsrootFile, quietly } from './jsroot.js';
import { openSource, type ByteSource, type SourceOptions } from './source.js';
import { Tree } from './tree.js';

export interface KeyInfo {
  /** Path inside the file, directories separated by '/': `Events`, `dir/sub/tree`. */
  path: string;
  name: string;
  cycle: number;
  className: string;
  title: string;
  /** Bytes on disk (compressed) and in memory. */
  nbytes: number;
  objlen: number;
}

const TREE_CLASSES = new Set(['TTree', 'TNtuple', 'TNtupleD', 'TTreeSQL']);
const DIR_CLASSES = new Set(['TDirectory', 'TDirectoryFile']);

export function isTreeClass(className: string): boolean {
  return TREE_CLASSES.has(className);
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Up to `n` candidates closest to `name` (case-insensitive), closest first. */
export function closest(name: string, candidates: readonly string[], n = 3): string[] {
  const lower = name.toLowerCase();
  return [...candidates]
    .map((c) => ({ c, d: editDistance(lower, c.toLowerCase()) - (c.toLowerCase().includes(lower) ? 2 : 0) }))
    .sort((x, y) => x.d - y.d)
    .slice(0, n)
    .map((x) => x.c);
}

export class RootFile {
  private keysCache?: KeyInfo[];

  private constructor(
    readonly location: string,
    readonly source: ByteSource,
    readonly js: JsrootFile,
  ) {}

  /** Opens a local path or URL. Checks the magic bytes before anything else. */
  static async open(location: string, opts: SourceOptions = {}): Promise<RootFile> {
    const source = await openSource(location, opts);
    try {
      if (source.size < 64) throw new NotRootFileError(`not a ROOT file (only ${source.size} bytes)`, { file: location });
      const head = await source.read(0, 4);
      if (head[0] !== 0x72 || head[1] !== 0x6f || head[2] !== 0x6f || head[3] !== 0x74) {
        throw new NotRootFileError("not a ROOT file (the first bytes are not 'root')", { file: location });
      }
      await initCodecs();
      let js: JsrootFile;
      try {
        js = await openJsrootFile(source);
      } catch (e) {
        if (e instanceof HepMlError) {
          if (!e.context.file) (e.context as { file?: string }).file = location;
          throw e;
        }
        throw new NotRootFileError(`cannot read the ROOT file header or directory: ${(e as Error).message}`, {
          file: location,
        });
      }
      if (!js || !Array.isArray(js.fKeys)) {
        throw new CorruptDataError('cannot read the top directory of the file', { file: location });
      }
      return new RootFile(location, source, js);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  /** ROOT version that wrote the file, e.g. "6.24/06". */
  get rootVersion(): string {
    const v = this.js.fVersion % 1000000;
    const major = Math.floor(v / 10000);
    const minor = Math.floor((v % 10000) / 100);
    const patch = v % 100;
    return `${major}.${String(minor).padStart(2, '0')}/${String(patch).padStart(2, '0')}`;
  }

  get size(): number {
    return this.source.size;
  }

  /** The file-level compression setting (fCompress): algorithm*100 + level. */
  get compress(): number {
    return (this.js as unknown as { fCompress?: number }).fCompress ?? 0;
  }

  /** Every key in the file, depth first; directories are walked, not listed as leaves only. */
  async keys(): Promise<KeyInfo[]> {
    if (this.keysCache) return this.keysCache;
    const out: KeyInfo[] = [];
    const walk = async (keys: JsrootKey[], prefix: string, depth: number) => {
      for (const k of keys) {
        const path = prefix ? `${prefix}/${k.fName}` : k.fName;
        out.push({
          path,
          name: k.fName,
          cycle: k.fCycle,
          className: k.fClassName,
          title: k.fTitle,
          nbytes: k.fNbytes,
          objlen: k.fObjlen,
        });
        if (DIR_CLASSES.has(k.fClassName) && depth < 32) {
          const dir = await quietly(() => this.js.readDirectory(path, k.fCycle)).catch((e: unknown) => {
            throw new CorruptDataError(`cannot read directory '${path}': ${(e as Error).message}`, {
              file: this.location,
            });
          });
          await walk(dir?.fKeys ?? [], path, depth + 1);
        }
      }
    };
    await walk(this.js.fKeys, '', 0);
    this.keysCache = out;
    return out;
  }

  /** TTrees (all cycles), in file order. */
  async treeKeys(): Promise<KeyInfo[]> {
    return (await this.keys()).filter((k) => isTreeClass(k.className));
  }

  /**
   * Opens a tree by path (`Events`, `dir/tree`), optionally with a cycle (`Delphes;1`).
   * Without a cycle, the highest cycle is used (as ROOT does). Without a name, the file's only tree.
   */
  async tree(name?: string): Promise<Tree> {
    const trees = await this.treeKeys();
    const names = [...new Set(trees.map((k) => k.path))];
    if (name === undefined || name === '') {
      if (names.length === 1) name = names[0]!;
      else if (names.length === 0) throw new SelectionError('the file has no TTree', { file: this.location });
      else
        throw new SelectionError(`the file has several trees, choose one with --tree: ${names.join(', ')}`, {
          file: this.location,
        });
    }
    const m = /^(.*?)(?:;(\d+))?$/.exec(name)!;
    const path = m[1]!.replace(/^\/+/, '');
    const cycle = m[2] !== undefined ? Number(m[2]) : undefined;
    const matches = trees.filter((k) => k.path === path && (cycle === undefined || k.cycle === cycle));
    if (matches.length === 0) {
      const other = (await this.keys()).find((k) => k.path === path);
      if (other && cycle === undefined) {
        throw new SelectionError(`'${path}' is a ${other.className}, not a TTree`, { file: this.location });
      }
      const hint = names.length ? `; trees in this file: ${closest(path, names, 5).join(', ')}` : '; the file has no TTree';
      throw new SelectionError(`no tree '${name}'${hint}`, { file: this.location });
    }
    const key = matches.reduce((a, b) => (b.cycle > a.cycle ? b : a));
    let obj: unknown;
    try {
      obj = await quietly(() => this.js.readObject(`${key.path};${key.cycle}`));
    } catch (e) {
      if (e instanceof HepMlError) throw e;
      throw new CorruptDataError(`cannot read the TTree object: ${(e as Error).message}`, {
        file: this.location,
        tree: key.path,
      });
    }
    if (!obj) throw new CorruptDataError('cannot read the TTree object', { file: this.location, tree: key.path });
    return new Tree(this, key, obj as never);
  }

  async close(): Promise<void> {
    try {
      this.js.delete();
    } catch {
      // jsroot's delete() only drops references
    }
    await this.source.close();
  }
}
