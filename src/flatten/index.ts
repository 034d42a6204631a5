/**
 * The flatten stage as a library: pass 1 (Scanner → Specs) and pass 2 (Padder: jagged columns → fixed-size
 * Float32 tensors + masks). Pure transforms over ColumnBatches; no I/O.
 */
export { Scanner, classifyColumn, listLeaf, type ColumnClass } from './scan.js';
export { Padder } from './pad.js';
export { SPECS_FORMAT, SPECS_VERSION, type GroupOption, type PadOptions, type Specs, type TruncationReport } from './types.js';
export { scanStream, padStream, spillStdin, loadSpecs, parsePad, parseMaxLen, parseGroups, type FlattenSummary, type FlattenInput } from './stream.js';
