// Minimal declarations for the part of jsroot 7.11 hep-ml uses (jsroot ships `any` stubs only).
// Only jsroot/io, jsroot/tree and jsroot/core are imported: never the main entry, which loads the
// graphics stack.
declare module 'jsroot/core' {
  export const internals: Record<string, unknown>;
  export const settings: Record<string, unknown>;
}

declare module 'jsroot/io' {
  export class FileProxy {
    openFile(): Promise<boolean>;
    getFileName(): string;
    getFileSize(): number;
    readBuffer(pos: number, len: number): Promise<DataView | null>;
    closeFile(): void;
  }
  export class TBuffer {
    constructor(arr: DataView | null, pos?: number, file?: unknown, length?: number);
    arr: DataView;
    o: number;
    fTagOffset: number;
  }
  export interface JsrootKey {
    fName: string;
    fTitle: string;
    fClassName: string;
    fCycle: number;
    fNbytes: number;
    fObjlen: number;
    fKeylen: number;
    fSeekKey: number;
  }
  export interface JsrootFile {
    fFileName: string;
    fKeys: JsrootKey[];
    fVersion: number;
    fEND: number;
    fCompress?: number;
    fDirectories?: unknown[];
    readObject(name: string, cycle?: number): Promise<any>;
    readDirectory(name: string, cycle?: number): Promise<JsrootDirectory>;
    readBuffer(place: number[]): Promise<DataView | DataView[]>;
    delete(): void;
  }
  export interface JsrootDirectory {
    fKeys: JsrootKey[];
    dir_name?: string;
  }
  export function openFile(arg: string | FileProxy | ArrayBuffer, opts?: object): Promise<JsrootFile>;
  export function R__unzip(arr: DataView, tgtsize: number, noalert?: boolean, src_shift?: number): Promise<DataView | null>;
}

declare module 'jsroot/tree' {
  export class TSelector {
    constructor();
    tgtobj: Record<string, unknown>;
    addBranch(branch: unknown, name?: string, direct?: boolean): number;
    Begin(tree: unknown): void;
    Process(entry: number): void;
    Terminate(res: boolean): void;
  }
  export function treeProcess(
    tree: unknown,
    selector: TSelector,
    args?: { firstentry?: number; numentries?: number },
  ): Promise<TSelector>;
}
