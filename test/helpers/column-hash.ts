/** A structural fingerprint of a column, for "same data" assertions between two reads. */
import { createHash } from 'node:crypto';
import type { ColumnData } from '../../src/root/columns.js';

export function sha(b: ArrayBufferView): string {
  return createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');
}

/** Kinds, dtypes, lengths and the sha256 of every array of the column. */
export function columnHash(c: ColumnData): string {
  switch (c.kind) {
    case 'primitive':
      return `${c.dtype}[${c.values.length}]:${sha(c.values)}`;
    case 'fixed':
      return `fixed${c.size}(${columnHash(c.child)})`;
    case 'list':
      return `list[${c.offsets.length}]:${sha(c.offsets)}(${columnHash(c.child)})`;
    case 'utf8':
      return `utf8[${c.offsets.length}]:${sha(c.offsets)}:${sha(c.bytes)}`;
  }
}
