/**
 * A TTree's metadata as hep-ml sees it: every branch (sub-branches included, depth first) with its
 * ROOT type, its column type, and how it is read — by the bulk basket decoder (typed arrays straight
 * from basket bytes) or, for object-valued branches, through jsroot's per-entry path.
 */
import type { KeyInfo, RootFile } from './file.js';
import type { ColumnType, DType } from './columns.js';
import { compressionName } from './decompress.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type JsBranch = any;
type JsLeaf = any;

/** How one value is stored on disk. */
export type ValueCodec =
  | { kind: 'plain'; dtype: DType; bytes: number }
  /** Double32_t / Float16_t: stored as float32, a scaled uint32 (factor), or 3-byte truncated float (nbits). */
  | { kind: 'packed'; dtype: 'float32' | 'float64'; mode: 'float' | 'factor' | 'nbits'; factor: number; xmin: number; nbits: number; bytes: number }
  /** TObject::fBits inside a collection: uint32, plus 2 bytes when the kIsReferenced bit is set. */
  | { kind: 'bits'; dtype: 'uint32'; bytes: 4 };

/** What the bulk decoder does with a branch's baskets. */
export type ReadPlan =
  /** `perEntry` values per entry, each entry the same size: scalars and fixed arrays. */
  | { kind: 'fixed'; value: ValueCodec; perEntry: number }
  /**
   * A variable number of elements per entry, found from the basket's entry offsets: `X[n]` leaves,
   * collection members, std::vector<T> (10-byte header per entry), T* arrays (1-byte header).
   * Each element holds `inner` values (X[n][3] → 3).
   */
  | { kind: 'jagged'; value: ValueCodec; inner: number; header: number }
  /** Strings (TLeafC, TString, std::string): 1-byte length, or 255 then a 4-byte length. */
  | { kind: 'string'; header: number }
  /** Read through jsroot's per-entry path and converted. */
  | { kind: 'jsroot'; convert: 'strings' | 'list-strings' | 'list-list-number' | 'list-number'; dtype?: DType };

export interface BranchInfo {
  /** fName: the column name (`Muon_pt`, `EFlowTrack.PT`, `ArrayI16[10]`). */
  name: string;
  /** Names from the top-level branch down, joined with '/'. */
  path: string;
  depth: number;
  branchClass: string;
  title: string;
  leafClass: string;
  /** C++ type as ROOT names it: `Float_t`, `Int_t[3]`, `vector<float>`, `TClonesArray(Track)`. */
  typeName: string;
  entries: number;
  totBytes: number;
  zipBytes: number;
  basketCount: number;
  /** Effective compression setting (algorithm*100+level), following inheritance. */
  compress: number;
  compression: string;
  /** The branch holding the per-entry count (`nMuon` for `Muon_pt[nMuon]`). */
  counter?: string;
  subBranches: number;
  /** Column type when hep-ml can read the branch. */
  type?: ColumnType;
  /** Why hep-ml cannot read the branch (absent when it can). */
  unsupported?: string;
  plan?: ReadPlan;
  /** The jsroot TBranch object. */
  js: JsBranch;
}

const prim = (dtype: DType): ColumnType => ({ kind: 'primitive', dtype });

const BYTES: Record<DType, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, float32: 4, float64: 8,
};

function plain(dtype: DType): ValueCodec {
  return { kind: 'plain', dtype, bytes: BYTES[dtype] };
}

/** ROOT's basic type codes (TDataType / TStreamerInfo::EReadWrite), without array offsets. */
const BASIC_CODE: Record<number, [DType, string]> = {
  1: ['int8', 'Char_t'],
  2: ['int16', 'Short_t'],
  3: ['int32', 'Int_t'],
  4: ['int64', 'Long_t'],
  5: ['float32', 'Float_t'],
  6: ['int32', 'Int_t'],
  8: ['float64', 'Double_t'],
  9: ['float64', 'Double32_t'],
  11: ['uint8', 'UChar_t'],
  12: ['uint16', 'UShort_t'],
  13: ['uint32', 'UInt_t'],
  14: ['uint64', 'ULong_t'],
  15: ['uint32', 'UInt_t'],
  16: ['int64', 'Long64_t'],
  17: ['uint64', 'ULong64_t'],
  18: ['bool', 'Bool_t'],
  19: ['float32', 'Float16_t'],
};

/** C++ element types of std::vector<T> that are read in bulk. */
const STL_ELEMENT: Record<string, DType> = {
  bool: 'bool', char: 'int8', 'unsigned char': 'uint8', 'signed char': 'int8', short: 'int16', 'unsigned short': 'uint16',
  int: 'int32', 'unsigned int': 'uint32', long: 'int64', 'unsigned long': 'uint64', 'long long': 'int64',
  'unsigned long long': 'uint64', float: 'float32', double: 'float64', Bool_t: 'bool', Char_t: 'int8', UChar_t: 'uint8',
  Short_t: 'int16', UShort_t: 'uint16', Int_t: 'int32', UInt_t: 'uint32', Long_t: 'int64', ULong_t: 'uint64',
  Long64_t: 'int64', ULong64_t: 'uint64', Float_t: 'float32', Double_t: 'float64', int8_t: 'int8', uint8_t: 'uint8',
  int16_t: 'int16', uint16_t: 'uint16', int32_t: 'int32', uint32_t: 'uint32', int64_t: 'int64', uint64_t: 'uint64',
};

function normType(t: string): string {
  return t.replace(/\s+/g, ' ').replace(/\s*([<>,])\s*/g, '$1').replace(/^std::/, '').replace(/([<,])std::/g, '$1').trim();
}

/** `vector<float>` → 'float'; anything else → undefined. */
function vectorElement(typeName: string): string | undefined {
  const m = /^vector<(.+)>$/.exec(normType(typeName));
  return m ? m[1] : undefined;
}

const PI = Math.PI;
function parseBound(s: string): number {
  const t = s.toLowerCase().replace(/\s+/g, '');
  if (t.includes('pi')) {
    let v = PI;
    if (/2pi|2\*pi|twopi/.test(t)) v = 2 * PI;
    else if (t.includes('pi/2')) v = PI / 2;
    else if (t.includes('pi/4')) v = PI / 4;
    return t.includes('-') ? -v : v;
  }
  const v = Number.parseFloat(t);
  return Number.isFinite(v) ? v : 0;
}

/**
 * Double32_t / Float16_t storage from the `[xmin, xmax (, nbits)]` comment, as TStreamerElement::GetRange
 * and TBufferFile::ReadDouble32/ReadFloat16 do it.
 */
export function packedCodec(kind: 'double32' | 'float16', title: string): ValueCodec {
  const dtype = kind === 'double32' ? 'float64' : 'float32';
  let xmin = 0;
  let xmax = 0;
  let factor = 0;
  let nbits = 32;
  const groups = [...title.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!).filter((g) => g.includes(','));
  if (groups.length > 0) {
    const parts = groups[0]!.split(',');
    xmin = parseBound(parts[0]!);
    xmax = parseBound(parts[1] ?? '0');
    if (parts.length > 2) {
      nbits = Number.parseInt(parts[2]!, 10);
      if (!(nbits >= 2 && nbits <= 32)) nbits = 32;
    }
    const bigint = nbits < 32 ? 2 ** nbits : 0xffffffff;
    if (xmin < xmax) factor = bigint / (xmax - xmin);
    if (xmin >= xmax && nbits < 15) xmin = nbits + 0.1;
  }
  if (factor !== 0) return { kind: 'packed', dtype, mode: 'factor', factor, xmin, nbits, bytes: 4 };
  let n = Math.trunc(xmin);
  if (kind === 'float16' && n === 0) n = 12;
  if (n === 0) return { kind: 'packed', dtype, mode: 'float', factor: 0, xmin: 0, nbits: 0, bytes: 4 };
  return { kind: 'packed', dtype, mode: 'nbits', factor: 0, xmin: 0, nbits: n, bytes: 3 };
}

/** `x[3][4]` → {counter: undefined, dims: [3,4]}; `Muon_pt[nMuon]` → {counter: 'nMuon', dims: []}. */
export function parseDims(title: string): { counter?: string; dims: number[] } {
  const base = title.split('/')[0]!;
  const dims: number[] = [];
  let counter: string | undefined;
  for (const m of base.matchAll(/\[([^\]]+)\]/g)) {
    const s = m[1]!.trim();
    if (/^\d+$/.test(s)) dims.push(Number(s));
    else if (counter === undefined && dims.length === 0 && /^[A-Za-z_][\w.]*$/.test(s)) counter = s;
  }
  return { counter, dims };
}

function nest(dims: number[], inner: ColumnType): ColumnType {
  let t = inner;
  for (let i = dims.length - 1; i >= 0; i--) t = { kind: 'fixed', size: dims[i]!, child: t };
  return t;
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function leafDType(leaf: JsLeaf): DType | 'string' | 'double32' | 'float16' | undefined {
  const u = !!leaf.fIsUnsigned;
  switch (leaf._typename) {
    case 'TLeafB':
      return u ? 'uint8' : 'int8';
    case 'TLeafS':
      return u ? 'uint16' : 'int16';
    case 'TLeafI':
      return u ? 'uint32' : 'int32';
    case 'TLeafL':
    case 'TLeafG':
      return u ? 'uint64' : 'int64';
    case 'TLeafF':
      return 'float32';
    case 'TLeafD':
      return 'float64';
    case 'TLeafO':
      return 'bool';
    case 'TLeafC':
      return 'string';
    case 'TLeafD32':
      return 'double32';
    case 'TLeafF16':
      return 'float16';
    default:
      return undefined;
  }
}

const CPP_NAME: Record<string, string> = {
  int8: 'Char_t', uint8: 'UChar_t', int16: 'Short_t', uint16: 'UShort_t', int32: 'Int_t', uint32: 'UInt_t',
  int64: 'Long64_t', uint64: 'ULong64_t', float32: 'Float_t', float64: 'Double_t', bool: 'Bool_t',
  string: 'char*', double32: 'Double32_t', float16: 'Float16_t',
};

function valueCodec(d: DType | 'double32' | 'float16', title: string): ValueCodec {
  if (d === 'double32' || d === 'float16') return packedCodec(d, title);
  return plain(d);
}

interface Classified {
  typeName: string;
  counter?: string;
  type?: ColumnType;
  plan?: ReadPlan;
  unsupported?: string;
}

export class Tree {
  readonly name: string;
  readonly cycle: number;
  readonly title: string;
  readonly entries: number;
  readonly branches: BranchInfo[] = [];
  private readonly byName = new Map<string, BranchInfo>();

  constructor(
    readonly file: RootFile,
    readonly key: KeyInfo,
    readonly js: any,
  ) {
    this.name = key.path;
    this.cycle = key.cycle;
    this.title = js.fTitle ?? '';
    this.entries = Number(js.fEntries);
    const fileCompress = file.compress;
    const walk = (list: JsBranch[], parentPath: string, depth: number, parentCompress: number, parent?: JsBranch) => {
      for (const b of list ?? []) {
        const path = parentPath ? `${parentPath}/${b.fName}` : b.fName;
        const compress = b.fCompress >= 0 ? b.fCompress : parentCompress;
        const info = this.describe(b, path, depth, compress, parent);
        this.branches.push(info);
        if (!this.byName.has(info.name)) this.byName.set(info.name, info);
        walk(b.fBranches?.arr ?? [], path, depth + 1, compress, b);
      }
    };
    walk(js.fBranches?.arr ?? [], '', 0, fileCompress);
  }

  get location(): string {
    return this.file.location;
  }

  branch(name: string): BranchInfo | undefined {
    return this.byName.get(name);
  }

  /** Branches whose data hep-ml can read (containers without data of their own are left out). */
  readable(): BranchInfo[] {
    return this.branches.filter((b) => b.type !== undefined);
  }

  private streamerElement(b: JsBranch): any {
    try {
      const si = this.js.$file?.findStreamerInfo?.(b.fClassName, b.fClassVersion, b.fCheckSum);
      return si?.fElements?.arr?.[b.fID];
    } catch {
      return undefined;
    }
  }

  private describe(b: JsBranch, path: string, depth: number, compress: number, parent?: JsBranch): BranchInfo {
    const leaves: JsLeaf[] = b.fLeaves?.arr ?? [];
    const nBaskets = Number(b.fWriteBasket ?? 0);
    const embedded = (b.fBaskets?.arr ?? []).filter((x: unknown) => x).length;
    const c = this.classify(b, leaves, parent);
    return {
      name: b.fName,
      path,
      depth,
      branchClass: b._typename,
      title: b.fTitle ?? '',
      leafClass: leaves.length === 1 ? leaves[0]._typename : leaves.map((l) => l._typename).join(','),
      typeName: c.typeName,
      entries: Number(b.fEntries),
      totBytes: Number(b.fTotBytes),
      zipBytes: Number(b.fZipBytes),
      basketCount: Math.max(nBaskets, embedded),
      compress,
      compression: compressionName(compress),
      counter: c.counter,
      subBranches: b.fBranches?.arr?.length ?? 0,
      type: c.type,
      unsupported: c.type ? undefined : c.unsupported,
      plan: c.plan,
      js: b,
    };
  }

  private classify(b: JsBranch, leaves: JsLeaf[], parent?: JsBranch): Classified {
    const sub = b.fBranches?.arr?.length ?? 0;
    if (b._typename === 'TBranch') {
      if (leaves.length !== 1) {
        return {
          typeName: leaves.map((l) => l.fTitle).join(':'),
          unsupported: `leaf-list branch with ${leaves.length} leaves (${leaves.map((l) => l.fTitle).join(':')}) is not supported yet`,
        };
      }
      return this.classifyLeaf(leaves[0], b);
    }
    if (b._typename !== 'TBranchElement') {
      return { typeName: b._typename, unsupported: `${b._typename} (unsplit object branch) is not supported` };
    }
    const leaf = leaves[0];
    const fType = Number(b.fType);
    const stype = Number(b.fStreamerType);
    // The top of a split TClonesArray / STL collection: its own data is the number of elements.
    if (fType === 3 || fType === 4) {
      const cls = fType === 3 ? `TClonesArray(${b.fClonesName})` : b.fClassName;
      return { typeName: cls, type: prim('int32'), plan: { kind: 'fixed', value: plain('int32'), perEntry: 1 } };
    }
    if (sub > 0 && (fType === 0 || fType === 1 || fType === 2) && (stype === -1 || stype === 62 || stype === 61 || stype === 67)) {
      return { typeName: b.fClassName ?? '', unsupported: `container of ${sub} sub-branches (read the sub-branches)` };
    }
    const inCollection = fType === 31 || fType === 41;
    const counter = inCollection ? parent?.fName : undefined;
    const el = this.streamerElement(b);
    const elTitle: string = el?.fTitle ?? '';
    // Type code: the leaf's fType for collection members, else the streamer type.
    const code = inCollection ? Number(leaf?.fType ?? stype) : stype;
    if (code >= 1 && code <= 19 && BASIC_CODE[code]) {
      const [dtype, cpp] = BASIC_CODE[code]!;
      const value: ValueCodec =
        code === 9 ? packedCodec('double32', elTitle) : code === 19 ? packedCodec('float16', elTitle) : code === 15 && inCollection ? { kind: 'bits', dtype: 'uint32', bytes: 4 } : plain(dtype);
      if (inCollection) {
        return { typeName: `${cpp}[${counter}]`, counter, type: { kind: 'list', child: prim(dtype) }, plan: { kind: 'jagged', value, inner: 1, header: 0 } };
      }
      return { typeName: cpp, type: prim(dtype), plan: { kind: 'fixed', value, perEntry: 1 } };
    }
    if (code > 20 && code < 40 && BASIC_CODE[code - 20]) {
      const [dtype, cpp] = BASIC_CODE[code - 20]!;
      const dims = parseDims(leaf?.fTitle ?? b.fTitle).dims;
      const shape = dims.length ? dims : [Number(leaf?.fLen ?? el?.fArrayLength ?? 1)];
      const value = code - 20 === 9 ? packedCodec('double32', elTitle) : code - 20 === 19 ? packedCodec('float16', elTitle) : plain(dtype);
      const typeName = `${cpp}${shape.map((d) => `[${d}]`).join('')}`;
      if (inCollection) {
        return { typeName: `${typeName}[${counter}]`, counter, type: { kind: 'list', child: nest(shape, prim(dtype)) }, plan: { kind: 'jagged', value, inner: product(shape), header: 0 } };
      }
      return { typeName, type: nest(shape, prim(dtype)), plan: { kind: 'fixed', value, perEntry: product(shape) } };
    }
    if (code > 40 && code < 60 && BASIC_CODE[code - 40] && !inCollection) {
      const [dtype, cpp] = BASIC_CODE[code - 40]!;
      const cnt = el?.fCountName ?? parseDims(leaf?.fTitle ?? '').counter;
      const value = code - 40 === 9 ? packedCodec('double32', elTitle) : code - 40 === 19 ? packedCodec('float16', elTitle) : plain(dtype);
      return { typeName: `${cpp}*[${cnt}]`, counter: cnt, type: { kind: 'list', child: prim(dtype) }, plan: { kind: 'jagged', value, inner: 1, header: 1 } };
    }
    if ((code === 65 || stype === 65) && !inCollection) {
      return { typeName: 'TString', type: { kind: 'utf8' }, plan: { kind: 'string', header: 0 } };
    }
    // STL members of split classes (kSTL = 300, kSTLp = 500, via their type name) and top-level STL branches.
    const typeName: string = normType((stype === -1 ? b.fClassName : el?.fTypeName) ?? b.fClassName ?? '');
    if (!inCollection && (stype === -1 || stype === 300 || stype === 365 || stype === 500)) {
      if (typeName === 'TString' && stype === -1) return { typeName, type: { kind: 'utf8' }, plan: { kind: 'string', header: 0 } };
      if (typeName === 'string') return { typeName: 'std::string', type: { kind: 'utf8' }, plan: { kind: 'string', header: stype === -1 ? 0 : 6 } };
      const elem = vectorElement(typeName);
      if (elem !== undefined) {
        const e = normType(elem);
        const dt = STL_ELEMENT[e];
        if (dt) return { typeName, type: { kind: 'list', child: prim(dt) }, plan: { kind: 'jagged', value: plain(dt), inner: 1, header: 10 } };
        if (e === 'Double32_t' || e === 'Float16_t') {
          const value = packedCodec(e === 'Double32_t' ? 'double32' : 'float16', elTitle);
          return { typeName, type: { kind: 'list', child: prim(value.dtype) }, plan: { kind: 'jagged', value, inner: 1, header: 10 } };
        }
        if (e === 'string' || e === 'TString') return { typeName, type: { kind: 'list', child: { kind: 'utf8' } }, plan: { kind: 'jsroot', convert: 'list-strings' } };
        const inner = vectorElement(e);
        if (inner !== undefined && STL_ELEMENT[normType(inner)]) {
          const dt = STL_ELEMENT[normType(inner)]!;
          return { typeName, type: { kind: 'list', child: { kind: 'list', child: prim(dt) } }, plan: { kind: 'jsroot', convert: 'list-list-number', dtype: dt } };
        }
      }
      const set = /^set<(.+)>$/.exec(typeName);
      if (set) {
        const e = normType(set[1]!);
        if (STL_ELEMENT[e]) return { typeName, type: { kind: 'list', child: prim(STL_ELEMENT[e]!) }, plan: { kind: 'jsroot', convert: 'list-number', dtype: STL_ELEMENT[e] } };
        if (e === 'string') return { typeName, type: { kind: 'list', child: { kind: 'utf8' } }, plan: { kind: 'jsroot', convert: 'list-strings' } };
      }
      return { typeName, unsupported: `${typeName || 'object'} values are not supported yet (see docs/root-support.md)` };
    }
    const what = inCollection ? `${typeName || el?.fTypeName || 'object'} member of a collection` : typeName || `streamer type ${stype}`;
    return { typeName: typeName || String(el?.fTypeName ?? stype), counter, unsupported: `${what} is not supported yet (see docs/root-support.md)` };
  }

  private classifyLeaf(leaf: JsLeaf, b: JsBranch): Classified {
    const d = leafDType(leaf);
    const { counter, dims } = parseDims(leaf.fTitle ?? b.fTitle);
    const counterName: string | undefined = leaf.fLeafCount?.fName ?? counter;
    if (d === undefined) return { typeName: leaf._typename, unsupported: `leaf type ${leaf._typename} is not supported` };
    if (d === 'string') {
      return { typeName: 'char*', type: { kind: 'utf8' }, plan: { kind: 'string', header: 0 } };
    }
    const value = valueCodec(d, leaf.fTitle ?? '');
    const dtype = value.dtype;
    const cpp = CPP_NAME[d]!;
    const fixedDims = dims.length ? dims : Number(leaf.fLen) > 1 ? [Number(leaf.fLen)] : [];
    const typeName = `${cpp}${counterName && leaf.fLeafCount ? `[${counterName}]` : ''}${fixedDims.map((x) => `[${x}]`).join('')}`;
    if (leaf.fLeafCount) {
      return { typeName, counter: counterName, type: { kind: 'list', child: nest(fixedDims, prim(dtype)) }, plan: { kind: 'jagged', value, inner: product(fixedDims), header: 0 } };
    }
    return { typeName, type: nest(fixedDims, prim(dtype)), plan: { kind: 'fixed', value, perEntry: product(fixedDims) } };
  }
}
