/** ROOT I/O: files, trees, branches, the bulk reader, byte sources and decompression. */
export { RootFile, type KeyInfo } from './file.js';
export { Tree, type BranchInfo, type ReadPlan, type ValueCodec } from './tree.js';
export { TreeReader, checkEntryRange, parseStepSize, type ReadStats, type TreeReaderOptions } from './reader.js';
export { describeFile, describeTree, type FileDescription, type TreeDescription, type BranchDescription } from './inspect.js';
export { openSource, LocalFileSource, type ByteSource } from './source.js';
export { HttpSource, type HttpOptions, type HttpStats } from './http.js';
export { rootUnzip, initCodecs, compressionName, blockCodec, type Codec } from './decompress.js';
export {
  allocTyped,
  columnRows,
  columnType,
  concatColumns,
  formatColumnType,
  sliceRows,
  type ColumnBatch,
  type ColumnData,
  type ColumnType,
  type DType,
  type NumericArray,
} from './columns.js';
