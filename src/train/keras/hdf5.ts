/**
 * A thin, typed wrapper over jsfive (a pure-JS HDF5 reader) with just what the Keras reader needs: groups,
 * datasets as Float32Array with their shape, and string attributes (variable-length or NUL-padded
 * fixed-length, UTF-8). Every failure inside jsfive (which throws strings, or RangeErrors on truncated
 * files) becomes a CorruptDataError naming the file and the object.
 */
import { createRequire } from 'node:module';
import { CorruptDataError, HepMlError } from '../../errors.js';

// ----- the parts of jsfive's (untyped, CommonJS) API used here -----
interface JsfiveNode {
  readonly name: string;
  readonly attrs: Record<string, unknown>;
}
interface JsfiveGroup extends JsfiveNode {
  readonly keys: string[];
  get(path: string): JsfiveGroup | JsfiveDataset | null;
}
interface JsfiveDataset extends JsfiveNode {
  readonly value: ArrayLike<number> | unknown;
  readonly shape: number[];
  readonly dtype: string | unknown[];
}
interface JsfiveModule {
  File: new (buffer: ArrayBuffer, filename?: string) => JsfiveGroup;
  Group: abstract new (...args: never[]) => JsfiveGroup;
  Dataset: abstract new (...args: never[]) => JsfiveDataset;
}

let jsfive: JsfiveModule | undefined;
function lib(): JsfiveModule {
  jsfive ??= createRequire(import.meta.url)('jsfive') as JsfiveModule;
  return jsfive;
}

/** The 8-byte HDF5 signature `\x89HDF\r\n\x1a\n`. */
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** True if the bytes start with the HDF5 signature (files with a user block are not recognised). */
export function isHdf5(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && HDF5_SIGNATURE.every((b, i) => bytes[i] === b);
}

function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Runs `fn`, turning anything jsfive throws into a CorruptDataError about `what` in `file`. */
function guard<T>(file: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof HepMlError) throw e;
    throw new CorruptDataError(`HDF5 ${what}: ${message(e)}`, { file }, { cause: e });
  }
}

/** Removes the NUL padding of fixed-length HDF5 strings. */
function stripNul(s: string): string {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
}

const utf8 = new TextDecoder('utf-8');

function asString(v: unknown): string | undefined {
  if (typeof v === 'string') return stripNul(v);
  if (v instanceof Uint8Array) return stripNul(utf8.decode(v));
  if (v instanceof ArrayBuffer) return stripNul(utf8.decode(new Uint8Array(v)));
  return undefined;
}

/** Shared attribute access of groups and datasets. */
export abstract class Hdf5Object {
  /** Absolute path inside the file ('/' for the root group). */
  readonly path: string;
  /** The file label used in error messages. */
  readonly file: string;
  readonly #attrNode: JsfiveNode;
  #attrCache: Record<string, unknown> | undefined;

  protected constructor(node: unknown, path: string, file: string) {
    this.#attrNode = node as JsfiveNode;
    this.path = path;
    this.file = file;
  }

  private attrs(): Record<string, unknown> {
    this.#attrCache ??= guard(this.file, `attributes of ${this.path}`, () => this.#attrNode.attrs);
    return this.#attrCache;
  }

  /** Names of the attributes. */
  attrNames(): string[] {
    return Object.keys(this.attrs());
  }

  /** True if the attribute exists. */
  hasAttr(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.attrs(), name);
  }

  /**
   * A string attribute (scalar, or a one-element array), NUL padding removed; undefined when absent.
   * CorruptDataError when present but not a string.
   */
  attrString(name: string): string | undefined {
    if (!this.hasAttr(name)) return undefined;
    let v = this.attrs()[name];
    if (Array.isArray(v) && v.length === 1) v = v[0];
    const s = asString(v);
    if (s === undefined) {
      throw new CorruptDataError(`HDF5 attribute '${name}' of ${this.path} is not a string`, { file: this.file });
    }
    return s;
  }

  /**
   * A string-array attribute (a scalar string reads as one element), NUL padding removed; undefined when
   * absent. CorruptDataError when present but not strings.
   */
  attrStrings(name: string): string[] | undefined {
    if (!this.hasAttr(name)) return undefined;
    const v = this.attrs()[name];
    const list: unknown[] = Array.isArray(v) ? v : [v];
    return list.map((x, i) => {
      const s = asString(x);
      if (s === undefined) {
        throw new CorruptDataError(`HDF5 attribute '${name}' of ${this.path}: element ${i} is not a string`, { file: this.file });
      }
      return s;
    });
  }

  /** A numeric attribute (scalar), undefined when absent or not a number. */
  attrNumber(name: string): number | undefined {
    if (!this.hasAttr(name)) return undefined;
    let v = this.attrs()[name];
    if (Array.isArray(v) && v.length === 1) v = v[0];
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  }
}

function joinPath(base: string, name: string): string {
  return base === '/' ? `/${name}` : `${base}/${name}`;
}

/** A group: named children (groups or datasets) and attributes. */
export class Hdf5Group extends Hdf5Object {
  readonly #node: JsfiveGroup;

  /** @internal use openHdf5 (`node` is a jsfive Group) */
  constructor(node: unknown, path: string, file: string) {
    super(node, path, file);
    this.#node = node as JsfiveGroup;
  }

  /** Names of the direct children, in the file's link order. */
  keys(): string[] {
    return guard(this.file, `group ${this.path}`, () => this.#node.keys);
  }

  /**
   * The child at a relative '/'-separated path (e.g. 'gru/kernel:0'), or undefined when any part of the path
   * does not exist.
   */
  get(path: string): Hdf5Group | Hdf5Dataset | undefined {
    const parts = path.split('/').filter((p) => p.length > 0);
    let cur: Hdf5Group = this;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (!cur.keys().includes(part)) return undefined;
      const childPath = joinPath(cur.path, part);
      const child = guard(this.file, childPath, () => cur.#node.get(part));
      if (child === null || child === undefined) return undefined; // dangling soft link
      const { Dataset } = lib();
      if (child instanceof Dataset) {
        return i === parts.length - 1 ? new Hdf5Dataset(child as JsfiveDataset, childPath, this.file) : undefined;
      }
      cur = new Hdf5Group(child as JsfiveGroup, childPath, this.file);
    }
    return cur;
  }

  /** The group at a relative path, or undefined when absent or not a group. */
  tryGroup(path: string): Hdf5Group | undefined {
    const g = this.get(path);
    return g instanceof Hdf5Group ? g : undefined;
  }

  /** The group at a relative path; CorruptDataError when it is absent or a dataset. */
  group(path: string): Hdf5Group {
    const g = this.get(path);
    if (!(g instanceof Hdf5Group)) {
      throw new CorruptDataError(`HDF5 group ${joinPath(this.path, path)} ${g ? 'is a dataset' : 'does not exist'}`, {
        file: this.file,
      });
    }
    return g;
  }

  /** The dataset at a relative path, or undefined when absent or not a dataset. */
  tryDataset(path: string): Hdf5Dataset | undefined {
    const d = this.get(path);
    return d instanceof Hdf5Dataset ? d : undefined;
  }

  /** The dataset at a relative path; CorruptDataError when it is absent or a group. */
  dataset(path: string): Hdf5Dataset {
    const d = this.get(path);
    if (!(d instanceof Hdf5Dataset)) {
      throw new CorruptDataError(`HDF5 dataset ${joinPath(this.path, path)} ${d ? 'is a group' : 'does not exist'}`, {
        file: this.file,
      });
    }
    return d;
  }
}

/** A dataset: shape, dtype and values. */
export class Hdf5Dataset extends Hdf5Object {
  readonly #node: JsfiveDataset;

  /** @internal use Hdf5Group.dataset (`node` is a jsfive Dataset) */
  constructor(node: unknown, path: string, file: string) {
    super(node, path, file);
    this.#node = node as JsfiveDataset;
  }

  /** Dimensions ([] for a scalar). */
  get shape(): number[] {
    return guard(this.file, `dataset ${this.path}`, () => [...this.#node.shape]);
  }

  /** numpy-style dtype string ('<f4', '>f8', '<i8', 'S12' …), or a description of a compound/vlen type. */
  get dtype(): string {
    return guard(this.file, `dataset ${this.path}`, () => {
      const d = this.#node.dtype;
      return typeof d === 'string' ? d : JSON.stringify(d);
    });
  }

  /** Number of elements (1 for a scalar). */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * The values as float32, row-major. Floating-point (f2/f4/f8) and integer datasets are converted;
   * anything else is a CorruptDataError.
   */
  toFloat32(): Float32Array {
    const dtype = this.dtype;
    if (!/^[<>=|]?[fiu]\d+$/.test(dtype)) {
      throw new CorruptDataError(`HDF5 dataset ${this.path} has dtype ${dtype}, not a numeric type`, { file: this.file });
    }
    const n = this.size;
    const v = guard(this.file, `dataset ${this.path}`, () => this.#node.value);
    if (!v || typeof (v as ArrayLike<number>).length !== 'number') {
      throw new CorruptDataError(`HDF5 dataset ${this.path}: no data`, { file: this.file });
    }
    const arr = v as ArrayLike<number>;
    if (arr.length !== n) {
      throw new CorruptDataError(`HDF5 dataset ${this.path}: ${arr.length} values for shape [${this.shape.join(', ')}]`, {
        file: this.file,
      });
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = arr[i];
      out[i] = typeof x === 'bigint' ? Number(x) : (x as number);
    }
    return out;
  }
}

/** Little-endian unsigned integer of `size` bytes (4 or 8) at `p`; undefined for the undefined address (all ones). */
function readOffset(bytes: Uint8Array, p: number, size: number): number | undefined {
  if (p + size > bytes.length || (size !== 4 && size !== 8)) return undefined;
  let v = 0n;
  let allOnes = true;
  for (let i = size - 1; i >= 0; i--) {
    const b = bytes[p + i]!;
    if (b !== 0xff) allOnes = false;
    v = (v << 8n) | BigInt(b);
  }
  return allOnes ? undefined : Number(v);
}

/**
 * The end-of-file address the superblock records (base address + EOF address), i.e. the size the file must have
 * at least; undefined when the superblock version is unknown. Superblock v0/v1 and v2/v3 layouts.
 */
function endOfFileAddress(bytes: Uint8Array): number | undefined {
  if (bytes.length < 12) return undefined;
  const version = bytes[8]!;
  let sizeOfOffsets: number;
  let baseAt: number;
  if (version === 0 || version === 1) {
    sizeOfOffsets = bytes[13]!;
    baseAt = version === 0 ? 24 : 28;
  } else if (version === 2 || version === 3) {
    sizeOfOffsets = bytes[9]!;
    baseAt = 12;
  } else {
    return undefined;
  }
  const base = readOffset(bytes, baseAt, sizeOfOffsets) ?? 0;
  const eof = readOffset(bytes, baseAt + 2 * sizeOfOffsets, sizeOfOffsets);
  return eof === undefined ? undefined : base + eof;
}

/**
 * Opens an HDF5 file held in memory and returns its root group. `file` names it in error messages.
 * CorruptDataError when the signature or the superblock cannot be read.
 */
export function openHdf5(bytes: Uint8Array, file: string): Hdf5Group {
  if (!isHdf5(bytes)) throw new CorruptDataError('not an HDF5 file (no HDF5 signature at byte 0)', { file });
  const eof = endOfFileAddress(bytes);
  if (eof !== undefined && eof > bytes.length) {
    throw new CorruptDataError(`HDF5 file is truncated: its superblock says ${eof} bytes, there are ${bytes.length}`, { file });
  }
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const root = guard(file, 'superblock', () => {
    const f = new (lib().File)(ab, file);
    void f.keys; // reads the root group's links now, so that a truncated file fails here
    return f;
  });
  return new Hdf5Group(root, '/', file);
}
