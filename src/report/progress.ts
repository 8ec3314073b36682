import cliProgress from 'cli-progress';

/** What a long job reports as it goes; a renderer turns it into bars or nothing. */
export type ProgressEvent =
  | { kind: 'pass'; name: string; done: number; total?: number }
  | { kind: 'epoch'; round: number; rounds: number; epoch: number; epochs: number; samples: number }
  | { kind: 'step'; done: number }
  | { kind: 'end' };

export type ProgressSink = (event: ProgressEvent) => void;

/**
 * Bars for rounds, epochs and samples (with throughput and ETA) on a terminal. Log lines written through
 * `log` appear above the bars instead of breaking them.
 */
export class TerminalProgress {
  private readonly bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: ' {label} |{bar}| {value}/{total} {unit} {rate} {eta_formatted}',
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

  readonly sink: ProgressSink = (e) => {
    if (e.kind === 'epoch') {
      this.rounds ??= this.bars.create(e.rounds, 0, { label: 'rounds ', unit: '', rate: '' });
      this.epochs ??= this.bars.create(e.epochs, 0, { label: 'epochs ', unit: '', rate: '' });
      this.samples ??= this.bars.create(e.samples, 0, { label: 'samples', unit: 'samples', rate: '' });
      this.rounds.update(e.round);
      this.epochs.setTotal(e.epochs);
      this.epochs.update(e.epoch);
      this.samples.setTotal(e.samples);
      this.samples.update(0, { label: 'samples', unit: 'samples', rate: '' });
      this.started = performance.now();
    } else if (e.kind === 'step' && this.samples) {
      const seconds = (performance.now() - this.started) / 1000;
      this.samples.update(e.done, { rate: seconds > 0 ? `${Math.round(e.done / seconds)}/s` : '' });
    } else if (e.kind === 'pass') {
      this.samples ??= this.bars.create(e.total ?? 0, 0, { label: 'samples', unit: 'samples', rate: '' });
      if (e.done === 0) this.started = performance.now();
      const seconds = (performance.now() - this.started) / 1000;
      if (e.total !== undefined) this.samples.setTotal(e.total);
      this.samples.update(e.done, { label: e.name.padEnd(7).slice(0, 7), rate: seconds > 0 ? `${Math.round(e.done / seconds)}/s` : '' });
    } else if (e.kind === 'end') {
      this.bars.stop();
    }
  };

  /** Writes a log line above the bars instead of through them. */
  readonly write = (line: string): void => {
    this.bars.log(line);
  };
}
