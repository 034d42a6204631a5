/**
 * Typed errors with stable exit codes. Every error a user can cause is a HepMlError: the CLI prints its
 * one-line message (no stack trace) to stderr and exits with its code. Anything else is a bug (exit 1,
 * with the stack trace when HEPML_DEBUG is set).
 *
 * The codes are part of the CLI's contract (docs/exit-codes.md); never renumber them.
 */
export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  NOT_ROOT: 4,
  SELECTION: 5,
  RANGE: 6,
  CORRUPT: 7,
  SCHEMA: 8,
  IO: 9,
  UNSUPPORTED: 10,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Where in the data an error happened; every field is optional and is printed when present. */
export interface ErrorContext {
  file?: string;
  tree?: string;
  branch?: string;
  entry?: number;
  basket?: number;
}

export class HepMlError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.INTERNAL;
  readonly context: ErrorContext;
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }
  /** One line: `<file>: tree '<tree>', branch '<branch>', entry <n>: <message>`. */
  describe(): string {
    const c = this.context;
    const where: string[] = [];
    if (c.tree !== undefined) where.push(`tree '${c.tree}'`);
    if (c.branch !== undefined) where.push(`branch '${c.branch}'`);
    if (c.basket !== undefined) where.push(`basket ${c.basket}`);
    if (c.entry !== undefined) where.push(`entry ${c.entry}`);
    const prefix = [c.file, where.join(', ')].filter((s) => s).join(': ');
    return prefix ? `${prefix}: ${this.message}` : this.message;
  }
}

/** Bad command-line usage that flag parsing cannot catch (e.g. an unparsable size). */
export class UsageError extends HepMlError {
  override readonly exitCode = ExitCode.USAGE;
}
/** A path or URL that does not exist or is not a regular file. */
export class InputNotFoundError extends HepMlError {
  override readonly exitCode = ExitCode.NOT_FOUND;
}
/** The input exists but is not a ROOT file (bad magic, unreadable header, truncated directory). */
export class NotRootFileError extends HepMlError {
  override readonly exitCode = ExitCode.NOT_ROOT;
}
/** A tree, branch or glob that does not exist in the file. */
export class SelectionError extends HepMlError {
  override readonly exitCode = ExitCode.SELECTION;
}
/** An entry range outside the tree. */
export class EntryRangeError extends HepMlError {
  override readonly exitCode = ExitCode.RANGE;
}
/** Bytes that cannot be what the metadata says they are: truncated or corrupt baskets, bad checksums. */
export class CorruptDataError extends HepMlError {
  override readonly exitCode = ExitCode.CORRUPT;
}
/** Several inputs whose schemas differ, or an input stream whose schema is not what a stage needs. */
export class SchemaMismatchError extends HepMlError {
  override readonly exitCode = ExitCode.SCHEMA;
}
/** Reading or writing failed for a reason outside the data (permissions, disk full, network). */
export class IoError extends HepMlError {
  override readonly exitCode = ExitCode.IO;
}
/** Valid data of a kind hep-ml cannot read yet (documented in docs/root-support.md). */
export class UnsupportedError extends HepMlError {
  override readonly exitCode = ExitCode.UNSUPPORTED;
}

export function isHepMlError(e: unknown): e is HepMlError {
  return e instanceof HepMlError;
}

/** Distributed training failed: a worker reported an error (its exit code is kept), or no worker is left. */
export class DistributedError extends HepMlError {
  override readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.IO, context: ErrorContext = {}) {
    super(message, context);
    this.exitCode = exitCode;
  }
}
