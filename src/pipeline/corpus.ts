import type { BadSampleLog } from '../sources/bad-samples.js';
import { rawSource, type DataOptions } from '../sources/dataset.js';
import type { RawSample, Sample } from '../sources/types.js';
import { decode } from '../stages/decode.js';
import { select } from '../stages/select.js';
import { shuffle } from '../stages/shuffle.js';
import { described, pipe, type Described } from './pipe.js';

/** The corpus a training job reads: restartable, optionally keeping only some keys (selected before decoding). */
export interface Corpus {
  /** The samples (of `keys` only, when given); `shuffle` buffer-shuffles them before decoding, on raw bytes. */
  samples(keys?: ReadonlySet<string>, keysName?: string, shuffle?: { bufferSize: number; seed: number }): Described<Sample>;
}

export interface ShardCorpusOptions extends DataOptions {
  /** Expected image shape (the model's input); samples are converted to its channels or reported bad. */
  expected?: { height: number; width: number; channels: number };
  badSamples: BadSampleLog;
}

/**
 * A corpus of shards in any format and place (sources/dataset.ts): each call to samples() re-reads every shard
 * (open -> read -> select -> shuffle -> decode, in `workers` threads when given), so nothing needs the data to fit
 * in memory. The shuffle buffer holds the samples' encoded bytes, not their pixels: at 224x224x3 a 10,000-sample
 * buffer holds 10,000 PNG/JPEG files instead of 6 GB of float32.
 */
export function shardCorpus(spec: string | string[], opts: ShardCorpusOptions): Corpus & { urls: string[] } {
  const onBadSample = (err: unknown) => opts.badSamples.record(err);
  const source = rawSource(spec, { ...opts, onBadSample });
  const raw = () => described<RawSample>(source.summary(), source.open());
  const decodeStage = decode({ ...opts, onBadSample }); // one stage, so one decode pool for every pass
  return {
    urls: [...source.urls],
    samples(keys, keysName, order) {
      const selected = keys ? pipe(raw(), select(keys, keysName)) : raw();
      return order ? pipe(selected, shuffle<RawSample>(order), decodeStage) : pipe(selected, decodeStage);
    },
  };
}
