/**
 * The base of every hep-ml command: maps errors to one-line messages and stable exit codes
 * (docs/exit-codes.md). A user's mistake never prints a stack trace; a bug does only with HEPML_DEBUG=1.
 */
import { Command } from '@oclif/core';
import { isBrokenPipe } from '../columnar/ipc.js';
import { ExitCode, isHepMlError, UsageError } from '../errors.js';

export abstract class HepMlCommand extends Command {
  /** Writes a line to stderr (stdout carries data only). */
  protected note(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  /** Refuses to write binary data ('-' = stdout) to a terminal: a user's mistake, exit 2. */
  protected refuseBinaryToTerminal(output: string, what = 'Arrow'): void {
    if (output === '-' && process.stdout.isTTY) {
      throw new UsageError(`refusing to write binary ${what} data to a terminal: use -o FILE or pipe the output`);
    }
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // A consumer that stopped reading (`hep-ml ingest ... | head`) is not a failure.
    if (isBrokenPipe(err)) this.exit(ExitCode.OK);
    if (isHepMlError(err)) {
      this.note(`hep-ml ${(this.id ?? '').replaceAll(':', ' ')}: ${err.describe()}`.replace(/ +:/, ':'));
      if (process.env.HEPML_DEBUG && err.stack) this.note(err.stack);
      this.exit(err.exitCode);
    }
    // oclif's own errors (unknown flag, missing argument, exit) keep their handling and codes.
    if (err.oclif || (err as { code?: string }).code?.startsWith?.('EEXIT')) return super.catch(err);
    this.note(`hep-ml ${(this.id ?? '').replaceAll(':', ' ')}: internal error: ${err.message}${process.env.HEPML_DEBUG ? '' : ' (run with HEPML_DEBUG=1 for details)'}`);
    if (process.env.HEPML_DEBUG && err.stack) this.note(err.stack);
    this.exit(ExitCode.INTERNAL);
  }
}
