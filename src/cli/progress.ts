/**
 * Progress on stderr: a bar on a TTY, JSON lines with `--progress json`, nothing otherwise.
 */
import cliProgress from 'cli-progress';

export type ProgressMode = 'auto' | 'json' | 'none';

export interface ProgressState {
  entriesDone: number;
  entriesTotal: number;
  bytes: number;
}

export class ProgressReporter {
  private bar?: cliProgress.SingleBar;
  private readonly t0 = performance.now();
  private lastJson = 0;

  constructor(
    private readonly mode: ProgressMode,
    private readonly label: string,
  ) {}

  private seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  update(s: ProgressState): void {
    const secs = this.seconds();
    const mbs = secs > 0 ? s.bytes / 1e6 / secs : 0;
    if (this.mode === 'json') {
      const now = performance.now();
      if (now - this.lastJson < 200 && s.entriesDone < s.entriesTotal) return;
      this.lastJson = now;
      const eta = s.entriesDone > 0 ? (secs * (s.entriesTotal - s.entriesDone)) / s.entriesDone : null;
      process.stderr.write(
        JSON.stringify({
          event: 'progress',
          stage: this.label,
          entries: s.entriesDone,
          total: s.entriesTotal,
          mb: +(s.bytes / 1e6).toFixed(3),
          mb_per_s: +mbs.toFixed(2),
          elapsed_s: +secs.toFixed(3),
          eta_s: eta === null ? null : +eta.toFixed(1),
        }) + '\n',
      );
      return;
    }
    if (this.mode !== 'auto' || !process.stderr.isTTY) return;
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${this.label} [{bar}] {percentage}% | {value}/{total} entries | {mb} MB | {mbs} MB/s | ETA {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(s.entriesTotal, 0, { mb: '0.0', mbs: '0.0' });
    }
    this.bar.update(s.entriesDone, { mb: (s.bytes / 1e6).toFixed(1), mbs: mbs.toFixed(1) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
