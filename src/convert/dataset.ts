/**
 * Opening any hep-ml dataset for reading (Arrow IPC stream or file, Parquet, TFRecord, or a directory of
 * shards with a manifest), and writing one as a single file or as shards `part-00000.<ext>` plus
 * `_manifest.json` (a leading underscore: pyarrow, Spark and DuckDB globs ignore it).
 */
import { randomBytes } from 'node:crypto';
import { open as fsOpen, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { fromRecordBatch, IpcStreamWriter, makeSchema, openIpcStream, schemaFields, toRecordBatch } from '../columnar/index.js';
import { makeTempDir } from '../columnar/tempdir.js';
import { CorruptDataError, InputNotFoundError, IoError, SchemaMismatchError, UsageError } from '../errors.js';
import { formatColumnType, sliceRows as sliceRowsOf, type ColumnBatch } from '../root/columns.js';
import { isParquetFile, openParquetSource, openParquetWriter } from './parquet.js';
import { isTfRecordPath, openTfRecordSource, openTfRecordWriter } from './tfrecord.js';
import type { BatchSink, BatchSource, Compression, Field, OutputFormat } from './types.js';

export const MANIFEST = '_manifest.json';
export const MANIFEST_FORMAT = 'hep-ml/dataset';

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  hepml: string;
  data_format: OutputFormat;
  compression: Compression;
  layout: string;
  rows: number;
  files: { path: string; rows: number; bytes: number }[];
  schema: { fields: (Field & { arrow: string })[]; metadata: Record<string, string> };
}

export type InputFormat = OutputFormat | 'dataset';

// ---------------------------------------------------------------------------------------------------
// Reading

/** Arrow IPC (stream or file format) as a BatchSource. */
export async function openArrowSource(path: string, name?: string): Promise<BatchSource> {
  const input = await openIpcStream(path, { name });
  const fields = schemaFields(input.schema);
  return {
    name: input.source,
    fields,
    metadata: Object.fromEntries(input.schema.metadata),
    async *batches() {
      let rows = 0;
      for await (const rb of input.batches) {
        yield fromRecordBatch(rb, rows);
        rows += rb.numRows;
      }
    },
    close: () => input.close(),
  };
}

/** True when the first 12 bytes are a TFRecord frame header (length + its masked CRC32C). */
export function looksLikeTfRecord(head: Uint8Array): boolean {
  if (head.length < 12) return false;
  const c = crc32c(Buffer.from(head.buffer, head.byteOffset, 8));
  const masked = ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
  return new DataView(head.buffer, head.byteOffset, 12).getUint32(8, true) === masked;
}

/** What a path holds, from its first bytes (and name for gzip TFRecord). */
export async function detectFormat(path: string): Promise<InputFormat> {
  if (path === '-') return 'arrow';
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new InputNotFoundError('no such file or directory', { file: path }, { cause: e });
  }
  if (st.isDirectory()) {
    try {
      await stat(join(path, MANIFEST));
    } catch {
      throw new InputNotFoundError(`a directory without ${MANIFEST}: not a hep-ml dataset (give a file, or a directory written by hep-ml convert --rows-per-file)`, { file: path });
    }
    return 'dataset';
  }
  const fh = await fsOpen(path, 'r');
  const head = new Uint8Array(12);
  try {
    await fh.read(head, 0, 12, 0);
  } finally {
    await fh.close();
  }
  if (st.size === 0) {
    if (isTfRecordPath(path)) return 'tfrecord'; // a TFRecord file with no records
    throw new CorruptDataError('the file is empty', { file: path });
  }
  if (isParquetFile(head)) return 'parquet';
  const ascii = Buffer.from(head.subarray(0, 6)).toString('latin1');
  if (ascii === 'ARROW1' || (head[0] === 0xff && head[1] === 0xff && head[2] === 0xff && head[3] === 0xff)) return 'arrow';
  if (head[0] === 0x1f && head[1] === 0x8b && isTfRecordPath(path)) return 'tfrecord';
  if (looksLikeTfRecord(head)) return 'tfrecord';
  if (isTfRecordPath(path)) return 'tfrecord';
  throw new CorruptDataError('not an Arrow IPC, Parquet or TFRecord file (unknown first bytes)', { file: path });
}

async function readManifest(dir: string): Promise<Manifest> {
  const p = join(dir, MANIFEST);
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(p, 'utf8')) as Manifest;
  } catch (e) {
    throw new CorruptDataError(`cannot read the manifest: ${(e as Error).message}`, { file: p });
  }
  if (m?.format !== MANIFEST_FORMAT || m.version !== 1 || !Array.isArray(m.files) || !m.schema?.fields) {
    throw new CorruptDataError(`not a ${MANIFEST_FORMAT} v1 manifest`, { file: p });
  }
  return m;
}

/** A directory of shards, read in manifest order as one source. */
async function openDatasetSource(dir: string): Promise<BatchSource> {
  const m = await readManifest(dir);
  const fields = m.schema.fields.map(({ name, type }) => ({ name, type }));
  let current: BatchSource | undefined;
  return {
    name: dir,
    fields,
    metadata: m.schema.metadata,
    rows: m.rows,
    async *batches() {
      let base = 0;
      for (const f of m.files) {
        const path = join(dir, f.path);
        current = await openFile(path, m.data_format, fields);
        try {
          const names = current.fields.map((x) => `${x.name}:${formatColumnType(x.type)}`).join(',');
          const want = fields.map((x) => `${x.name}:${formatColumnType(x.type)}`).join(',');
          if (names !== want) throw new SchemaMismatchError(`shard schema differs from the manifest (${names} vs ${want})`, { file: path });
          let rows = 0;
          for await (const b of current.batches()) {
            const n = b.entryStop - b.entryStart;
            yield { entryStart: base + rows, entryStop: base + rows + n, columns: b.columns };
            rows += n;
          }
          if (rows !== f.rows) throw new CorruptDataError(`the shard has ${rows} rows, the manifest says ${f.rows}`, { file: path });
          base += rows;
        } finally {
          await current.close();
          current = undefined;
        }
      }
    },
    async close() {
      await current?.close();
    },
  };
}

async function openFile(path: string, format: OutputFormat, fields?: Field[]): Promise<BatchSource> {
  switch (format) {
    case 'arrow':
      return openArrowSource(path);
    case 'parquet':
      return openParquetSource(path);
    case 'tfrecord':
      return openTfRecordSource(path, { fields });
  }
}

/**
 * The files a dataset path reads, in order: the shard files of a directory with a manifest, else the path
 * itself ('-' included). Distributed training assigns these to workers.
 */
export async function datasetPieces(path: string): Promise<string[]> {
  if (path === '-') return [path];
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    return [path]; // openDataset reports it
  }
  if (!isDir) return [path];
  const m = await readManifest(path);
  return m.files.map((f) => join(path, f.path));
}

/**
 * Opens any input hep-ml writes: '-' (an Arrow IPC stream on stdin), an Arrow IPC / Parquet / TFRecord
 * file (detected from its bytes), or a sharded directory with `_manifest.json`.
 */
export async function openDataset(path: string, opts: { fields?: Field[] } = {}): Promise<{ format: InputFormat; source: BatchSource }> {
  const format = await detectFormat(path);
  if (format === 'dataset') return { format, source: await openDatasetSource(path) };
  if (path === '-') return { format, source: await openArrowSource('-') };
  return { format, source: await openFile(path, format, opts.fields) };
}

// ---------------------------------------------------------------------------------------------------
// Writing

export interface SinkOptions {
  compression: Compression;
  rowGroupSize?: number;
  metadata: Record<string, string>;
}

/** The extension of a shard. */
export function extensionOf(to: OutputFormat, compression: Compression): string {
  if (to === 'tfrecord') return compression === 'gzip' ? 'tfrecord.gz' : 'tfrecord';
  return to;
}

/** One output file ('-' = stdout) in a format. */
export async function openFileSink(target: string, to: OutputFormat, fields: Field[], o: SinkOptions): Promise<BatchSink> {
  switch (to) {
    case 'parquet':
      return openParquetWriter(target, fields, { compression: o.compression, rowGroupSize: o.rowGroupSize, metadata: o.metadata });
    case 'tfrecord':
      return openTfRecordWriter(target, fields, { gzip: o.compression === 'gzip' });
    case 'arrow': {
      const schema = makeSchema(fields, o.metadata);
      const w = await IpcStreamWriter.open(target, { schema });
      return {
        write: (b: ColumnBatch) => w.write(toRecordBatch(schema, b)),
        async close() {
          await w.close();
          return { bytes: w.bytesWritten, rows: w.rowsWritten };
        },
        abort: () => w.abort(),
      };
    }
  }
}

/** Shards of at most `rowsPerFile` rows in a directory, plus the manifest; the directory appears whole at close(). */
export async function openShardedSink(
  dir: string,
  to: OutputFormat,
  fields: Field[],
  o: SinkOptions & { rowsPerFile: number; layout: string; hepml: string },
): Promise<BatchSink & { files(): Manifest['files'] }> {
  const final = resolve(dir);
  // never replace something that is not a previous hep-ml dataset
  let replace = false;
  try {
    const st = await stat(final);
    if (!st.isDirectory()) throw new UsageError('exists and is not a directory (with --rows-per-file the output is a directory of shards)', { file: dir });
    const entries = await readdir(final);
    if (entries.length > 0) {
      if (!entries.includes(MANIFEST)) throw new UsageError(`the directory exists and is not a hep-ml dataset (no ${MANIFEST}): not replacing it`, { file: dir });
      replace = true;
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new IoError(`cannot check the output directory: ${(e as Error).message}`, { file: dir });
  }
  const tmp = await makeTempDir(dirname(final), `${basename(final)}.`);
  const ext = extensionOf(to, o.compression);
  const files: Manifest['files'] = [];
  let sink: BatchSink | undefined;
  let inShard = 0;
  let total = 0;
  let totalBytes = 0;
  const finishShard = async () => {
    if (!sink) return;
    const r = await sink.close();
    files[files.length - 1]!.rows = r.rows;
    files[files.length - 1]!.bytes = r.bytes;
    totalBytes += r.bytes;
    sink = undefined;
    inShard = 0;
  };
  const nextShard = async () => {
    await finishShard();
    const name = `part-${String(files.length).padStart(5, '0')}.${ext}`;
    files.push({ path: name, rows: 0, bytes: 0 });
    sink = await openFileSink(join(tmp.path, name), to, fields, o);
  };
  const slice = (b: ColumnBatch, from: number, to_: number): ColumnBatch => {
    if (from === 0 && to_ === b.entryStop - b.entryStart) return b;
    return { entryStart: b.entryStart + from, entryStop: b.entryStart + to_, columns: b.columns.map((c) => ({ name: c.name, data: sliceRowsOf(c.data, from, to_) })) };
  };
  return {
    files: () => files,
    async write(b) {
      const n = b.entryStop - b.entryStart;
      let at = 0;
      while (at < n) {
        if (!sink || inShard >= o.rowsPerFile) await nextShard();
        const take = Math.min(n - at, o.rowsPerFile - inShard);
        await sink!.write(slice(b, at, at + take));
        inShard += take;
        total += take;
        at += take;
      }
    },
    async close() {
      if (files.length === 0) await nextShard(); // an empty dataset still has one (empty) shard with the schema
      await finishShard();
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        version: 1,
        hepml: o.hepml,
        data_format: to,
        compression: o.compression,
        layout: o.layout,
        rows: total,
        files,
        schema: { fields: fields.map((f) => ({ ...f, arrow: formatColumnType(f.type) })), metadata: o.metadata },
      };
      const text = JSON.stringify(manifest, null, 2) + '\n';
      await writeFile(join(tmp.path, MANIFEST), text);
      try {
        if (replace) {
          const old = join(dirname(final), `.${basename(final)}.old.${randomBytes(4).toString('hex')}`);
          await rename(final, old);
          await rename(tmp.path, final);
          await rm(old, { recursive: true, force: true });
        } else {
          await rename(tmp.path, final);
        }
      } catch (e) {
        await tmp.remove();
        throw new IoError(`cannot move the dataset into place: ${(e as Error).message}`, { file: dir }, { cause: e });
      }
      await tmp.remove(); // forgets the (renamed) temp path
      return { bytes: totalBytes + Buffer.byteLength(text), rows: total };
    },
    async abort() {
      await sink?.abort().catch(() => undefined);
      await tmp.remove();
    },
  };
}
