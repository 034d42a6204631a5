/**
 * The flatten stage over Arrow IPC streams: pass 1 (scan) and pass 2 (pad) from a file or stdin.
 * stdin can only be read once, so without a specs file it is spilled to a temporary file first (bytes
 * copied as they come: bounded memory), which is removed afterwards, on error and on interrupt.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fromRecordBatch, makeSchema, openIpcStream, schemaFields, toRecordBatch, trackTemp, untrackTemp, type IpcStreamWriter } from '../columnar/index.js';
import { CorruptDataError, InputNotFoundError, IoError, SchemaMismatchError, UsageError } from '../errors.js';
import { Padder } from './pad.js';
import { Scanner } from './scan.js';
import { SPECS_FORMAT, SPECS_VERSION, type PadOptions, type Specs, type TruncationReport } from './types.js';

export interface FlattenSummary {
  entries: number;
  columns: string[];
  truncation: TruncationReport;
}

/** A readable input: a path, read as often as needed; `cleanup` removes a spilled copy of stdin. */
export interface FlattenInput {
  path: string;
  /** The name used in messages: the path, or `<stdin>`. */
  name: string;
  cleanup(): Promise<void>;
}

/** Copies stdin to a temporary file (removed by cleanup(), or on exit/interrupt). */
export async function spillStdin(stdin: NodeJS.ReadableStream = process.stdin): Promise<FlattenInput> {
  if ((stdin as { isTTY?: boolean }).isTTY) {
    throw new UsageError('stdin is a terminal: pipe an Arrow IPC stream in (hep-ml ingest ... | hep-ml flatten), or give a file');
  }
  const path = join(tmpdir(), `hep-ml-flatten-${process.pid}-${randomBytes(6).toString('hex')}.arrow`);
  trackTemp(path);
  const cleanup = async () => {
    untrackTemp(path);
    await rm(path, { force: true });
  };
  try {
    await pipeline(stdin, createWriteStream(path, { flags: 'wx' }));
  } catch (e) {
    await cleanup();
    throw new IoError(`cannot spill stdin to a temporary file: ${(e as Error).message}`, { file: '<stdin>' }, { cause: e });
  }
  return { path, name: '<stdin>', cleanup };
}

/** Pass 1: scans a stream and returns its specs. */
export async function scanStream(source: string, opts: { name?: string; hepmlVersion: string }): Promise<Specs> {
  const input = await openIpcStream(source, { name: opts.name });
  try {
    const fields = schemaFields(input.schema);
    const scanner = new Scanner(fields);
    for await (const rb of input.batches) scanner.add(fromRecordBatch(rb));
    const meta = input.schema.metadata;
    const origin = meta.get('hep-ml.source') ?? opts.name ?? (source === '-' ? '<stdin>' : source);
    return scanner.specs({ source: origin, hepmlVersion: opts.hepmlVersion });
  } finally {
    await input.close();
  }
}

/** Pass 2: pads a stream with the given specs and writes it; returns what was written and truncated. */
export async function padStream(
  source: string,
  specs: Specs,
  padOpts: PadOptions,
  writer: IpcStreamWriter,
  opts: { name?: string; onBatch?: (entries: number) => void } = {},
): Promise<FlattenSummary> {
  const input = await openIpcStream(source, { name: opts.name });
  try {
    const fields = schemaFields(input.schema);
    const padder = new Padder(fields, specs, padOpts);
    const metadata = new Map(input.schema.metadata);
    metadata.set('hep-ml.flatten.pad', Number.isNaN(padOpts.pad) ? 'NaN' : String(padOpts.pad));
    metadata.set('hep-ml.flatten.mask', '1 = real value, 0 = padding');
    if (padOpts.normalize) metadata.set('hep-ml.flatten.normalize', padOpts.normalize);
    const schema = makeSchema(padder.fields, Object.fromEntries(metadata));
    await writer.writeSchema(schema);
    let entries = 0;
    for await (const rb of input.batches) {
      const out = padder.pad(fromRecordBatch(rb, entries));
      await writer.write(toRecordBatch(schema, out));
      entries += rb.numRows;
      opts.onBatch?.(entries);
    }
    return { entries, columns: padder.fields.map((f) => f.name), truncation: padder.truncation };
  } finally {
    await input.close();
  }
}

/** Reads and checks a specs file. */
export async function loadSpecs(path: string): Promise<Specs> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new InputNotFoundError('no such specs file', { file: path });
    throw new IoError(`cannot read the specs file: ${(e as Error).message}`, { file: path });
  }
  let specs: Specs;
  try {
    specs = JSON.parse(text) as Specs;
  } catch (e) {
    throw new CorruptDataError(`the specs file is not JSON: ${(e as Error).message}`, { file: path });
  }
  if (specs?.format !== SPECS_FORMAT || specs.version !== SPECS_VERSION || typeof specs.jdim !== 'object' || !Array.isArray(specs.jkeys)) {
    throw new SchemaMismatchError(`not a hep-ml flatten specs file (format '${SPECS_FORMAT}' version ${SPECS_VERSION}; write one with hep-ml flatten --scan-only)`, { file: path });
  }
  return specs;
}

/** `--pad nan|zero|VALUE` → the number written into padding. */
export function parsePad(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === 'nan') return Number.NaN;
  if (t === 'zero') return 0;
  const v = Number(t);
  if (t === '' || !Number.isFinite(v)) throw new UsageError(`--pad takes nan, zero or a number, got '${s}'`);
  return v;
}

/** `--max-len Muon_pt=8` pairs → {Muon_pt: 8}. */
export function parseMaxLen(items: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) {
    const m = /^(.+)=(\d+)$/.exec(it.trim());
    if (!m) throw new UsageError(`--max-len takes BRANCH=N (a non-negative integer), got '${it}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** `--group muon='Muon_*'` → {name: 'muon', glob: 'Muon_*'}. */
export function parseGroups(items: string[]): { name: string; glob: string }[] {
  return items.map((it) => {
    const m = /^([^=]+)=(.+)$/.exec(it);
    if (!m || !m[1]!.trim() || !m[2]!.trim()) throw new UsageError(`--group takes NAME='GLOB', got '${it}'`);
    return { name: m[1]!.trim(), glob: m[2]!.trim().replace(/^'(.*)'$/, '$1') };
  });
}
