import type { BadSampleLog } from '../sources/bad-samples.js';
import { rawSource, type DataOptions } from '../sources/dataset.js';
import type { RawSample, Sample } from '../sources/types.js';
import { decode } from '../stages/decode.js';
import { select } from '../stages/select.js';
import { described, pipe, type Described } from './pipe.js';

/** The corpus a training job reads: restartable, optionally keeping only some keys (selected before decoding). */
export interface Corpus {
  samples(keys?: ReadonlySet<string>, keysName?: string): Described<Sample>;
}

export interface ShardCorpusOptions extends DataOptions {
  /** Expected image shape (the model's input); samples are converted to its channels or reported bad. */
  expected?: { height: number; width: number; channels: number };
  badSamples: BadSampleLog;
}

/**
 * A corpus of shards in any format and place (sources/dataset.ts): each call to samples() re-reads every shard
 * (open -> read -> select -> decode, in `workers` threads when given), so nothing needs the data to fit in memory.
 */
export function shardCorpus(spec: string | string[], opts: ShardCorpusOptions): Corpus & { urls: string[] } {
  const onBadSample = (err: unknown) => opts.badSamples.record(err);
  const source = rawSource(spec, { ...opts, onBadSample });
  const raw = () => described<RawSample>(source.summary(), source.open());
  const decodeStage = decode({ ...opts, onBadSample }); // one stage, so one decode pool for every pass
  return {
    urls: [...source.urls],
    samples(keys, keysName) {
      return keys ? pipe(raw(), select(keys, keysName), decodeStage) : pipe(raw(), decodeStage);
    },
  };
}
