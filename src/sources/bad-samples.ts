import { inputError, PbeError } from '../errors.js';
import { writeCsvAtomic } from '../report/csv.js';

/**
 * Bad samples: the errors that name one sample (or shard), and the log that decides what they do.
 *
 *   const bad = new BadSampleLog({ policy: 'skip', maxBadSamples: 100 });
 *   pipe(raw, decode({ onBadSample: (err) => bad.record(err) }));
 *   await bad.writeCsv('run/bad-samples.csv');  // url,key,reason
 */

export interface SampleLocation {
  url: string;
  key?: string;
}

/** An input error about one sample or shard: its message names the url and key, and it carries them. */
export type BadSampleError = PbeError & { where: SampleLocation; reason: string };

export function badSampleError(where: SampleLocation, reason: string, cause?: unknown): BadSampleError {
  return Object.assign(inputError(where, reason, cause), { where: { url: where.url, key: where.key }, reason });
}

export function isBadSampleError(err: unknown): err is BadSampleError {
  return err instanceof PbeError && typeof (err as Partial<BadSampleError>).where?.url === 'string';
}

/** What the caller of a stage does with a bad sample: return to skip it, throw to stop. */
export type BadSampleHandler = (error: BadSampleError) => void | Promise<void>;

/** The default handler: a bad sample stops the run (WebDataset's `reraise_exception`). */
export const failOnBadSample: BadSampleHandler = (error) => {
  throw error;
};

export type BadSamplePolicy = 'skip' | 'fail';

export interface BadSampleLogOptions {
  /** 'skip': count and keep going; 'fail': the first bad sample stops the run. Default 'fail'. */
  policy?: BadSamplePolicy;
  /** Under 'skip', one more than this many bad samples stops the run. Default 1000. */
  maxBadSamples?: number;
  /** Called once per skipped sample (for the first `logFirst`), e.g. the run's logger. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** How many skips are logged one by one; the rest are only counted. Default 20. */
  logFirst?: number;
}

export const badSampleLogDefaults: Required<Omit<BadSampleLogOptions, 'log'>> = {
  policy: 'fail',
  maxBadSamples: 1000,
  logFirst: 20,
};

export interface BadSampleRow {
  url: string;
  key: string;
  reason: string;
}

/** Counts bad samples, keeps one row each, and enforces the policy and the limit. */
export class BadSampleLog {
  readonly policy: BadSamplePolicy;
  readonly maxBadSamples: number;
  private readonly options: BadSampleLogOptions & typeof badSampleLogDefaults;
  private readonly kept: BadSampleRow[] = [];
  /** url, key and reason of each row: a pass that reads the data again meets the same bad samples again. */
  private readonly seen = new Set<string>();

  constructor(options: BadSampleLogOptions = {}) {
    const o = { ...badSampleLogDefaults, ...options };
    if (o.policy !== 'skip' && o.policy !== 'fail') {
      throw new PbeError('usage', `BadSampleLog: options.policy is expected to be "skip" or "fail", but got ${JSON.stringify(o.policy)}`);
    }
    if (!(o.maxBadSamples === Infinity || (Number.isInteger(o.maxBadSamples) && o.maxBadSamples >= 0))) {
      throw new PbeError('usage', `BadSampleLog: options.maxBadSamples is expected to be a non-negative integer or Infinity, but got ${o.maxBadSamples}`);
    }
    this.options = o;
    this.policy = o.policy;
    this.maxBadSamples = o.maxBadSamples;
  }

  get count(): number {
    return this.kept.length;
  }

  rows(): readonly BadSampleRow[] {
    return this.kept;
  }

  /** A handler to pass to a stage: `decode({ onBadSample: log.handler })`. */
  readonly handler: BadSampleHandler = (error) => this.record(error);

  /**
   * Records one bad sample. Returns (skip) or throws: the error itself under 'fail', a "too many bad
   * samples" error naming the limit once the count passes `maxBadSamples`. The same sample with the same
   * reason again (the next epoch re-reads the data) is neither counted nor listed again.
   */
  record(error: unknown): void {
    const row = toRow(error);
    const id = `${row.url}\n${row.key}\n${row.reason}`;
    if (this.seen.has(id)) return; // listed and counted once, however many passes meet it
    this.seen.add(id);
    this.kept.push(row);
    if (this.policy === 'fail') throw error;
    if (this.count > this.maxBadSamples) {
      throw inputError(
        { url: row.url, key: row.key || undefined },
        `too many bad samples: ${this.count}, more than maxBadSamples=${this.maxBadSamples} (this one: ${row.reason})`,
        error,
      );
    }
    if (this.count <= this.options.logFirst) {
      this.options.log?.(`skipped bad sample: ${error instanceof Error ? error.message : String(error)}`, { ...row });
      if (this.count === this.options.logFirst) this.options.log?.('further bad samples are counted, not logged one by one');
    }
  }

  summary(): string {
    const limit = this.policy === 'skip' ? `, max ${this.maxBadSamples}` : '';
    return `${this.count} bad sample${this.count === 1 ? '' : 's'} (policy ${this.policy}${limit})`;
  }

  /** Writes `url,key,reason` rows (the header alone when there were none), atomically. */
  async writeCsv(path: string): Promise<void> {
    await writeCsvAtomic(path, ['url', 'key', 'reason'], this.kept as unknown as Record<string, unknown>[]);
  }
}

function toRow(error: unknown): BadSampleRow {
  if (isBadSampleError(error)) return { url: error.where.url, key: error.where.key ?? '', reason: error.reason };
  return { url: '', key: '', reason: error instanceof Error ? error.message : String(error) };
}
