import cliProgress from 'cli-progress';

/** What a long job reports as it goes; a renderer turns it into bars or nothing. */
export type ProgressEvent =
  | { kind: 'pass'; name: string; done: number; total?: number }
  /** samples: the epoch's size, or undefined while not known yet (a first pass over a stream). */
  | { kind: 'epoch'; round: number; rounds: number; epoch: number; epochs: number; samples?: number }
  | { kind: 'step'; done: number }
  | { kind: 'end' };

export type ProgressSink = (event: ProgressEvent) => void;

/**
 * Bars for rounds, epochs and samples (with throughput and ETA) on a terminal. Log lines written through
 * `log` appear above the bars instead of breaking them. A pass of unknown size shows its count as `n/?`, no ETA.
 */
export class TerminalProgress {
  private readonly bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: ' {label} |{bar}| {count}/{of} {unit} {rate} {remaining}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  private rounds?: cliProgress.SingleBar;
  private epochs?: cliProgress.SingleBar;
  private samples?: cliProgress.SingleBar;
  private started = 0;
  private total: number | undefined;

  readonly sink: ProgressSink = (e) => {
    if (e.kind === 'epoch') {
      this.rounds ??= this.bars.create(e.rounds, 0, { label: 'rounds ', unit: '', rate: '', count: e.round, of: e.rounds, remaining: '' });
      this.epochs ??= this.bars.create(e.epochs, 0, { label: 'epochs ', unit: '', rate: '', count: e.epoch, of: e.epochs, remaining: '' });
      this.rounds.update(e.round, { count: e.round });
      this.epochs.setTotal(e.epochs);
      this.epochs.update(e.epoch, { count: e.epoch, of: e.epochs });
      this.startPass('samples', e.samples);
    } else if (e.kind === 'step') {
      this.advance(e.done);
    } else if (e.kind === 'pass') {
      if (e.done === 0 || !this.samples) this.startPass(e.name, e.total);
      this.advance(e.done);
    } else if (e.kind === 'end') {
      this.bars.stop();
    }
  };

  private startPass(name: string, total: number | undefined): void {
    this.samples ??= this.bars.create(0, 0, { unit: 'samples' });
    this.total = total;
    this.samples.setTotal(total ?? 1);
    this.samples.update(0, { label: name.padEnd(7).slice(0, 7), count: 0, of: total ?? '?', rate: '', remaining: '' });
    this.started = performance.now();
  }

  private advance(done: number): void {
    if (!this.samples) return;
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const remaining = this.total !== undefined && rate > 0 ? `ETA ${formatSeconds((this.total - done) / rate)}` : '';
    // the bar stays empty while the total is unknown; the count still moves
    this.samples.update(this.total === undefined ? 0 : done, { count: done, rate: rate > 0 ? `${Math.round(rate)}/s` : '', remaining });
  }

  /** Writes a log line above the bars instead of through them. */
  readonly write = (line: string): void => {
    this.bars.log(line);
  };
}

function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}
