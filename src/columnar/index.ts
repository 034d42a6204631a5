/** The columnar layer: Arrow RecordBatches built from the reader's ColumnData, and IPC streams in/out. */
export {
  LIST_ITEM_NAME,
  arrowType,
  columnTypeFromArrow,
  emptyColumn,
  fromArrowData,
  fromRecordBatch,
  makeSchema,
  packBools,
  schemaFields,
  toArrowData,
  toRecordBatch,
  unpackBools,
} from './arrow.js';
export {
  BrokenPipeError,
  IpcStreamWriter,
  isBrokenPipe,
  trackTemp,
  openTempOutput,
  untrackTemp,
  openIpcStream,
  readIpcStream,
  type IpcSource,
  type IpcStreamInput,
  type IpcStreamWriterOptions,
  type OpenIpcOptions,
} from './ipc.js';
export { makeTempDir, type TempDir } from './tempdir.js';
