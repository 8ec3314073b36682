import type { Corpus } from '../defenses/pbe.js';
import type { BadSampleLog } from '../sources/bad-samples.js';
import { expandShardSpec } from '../sources/shard-spec.js';
import { readTarShard } from '../sources/tar-reader.js';
import type { RawSample } from '../sources/types.js';
import { decode } from '../stages/decode.js';
import { select } from '../stages/select.js';
import { described, pipe } from './pipe.js';

export interface ShardCorpusOptions {
  /** Expected image shape (the model's input); samples are converted to its channels or reported bad. */
  expected?: { height: number; width: number; channels: number };
  badSamples: BadSampleLog;
}

/**
 * A corpus of WebDataset tar shards: each call to samples() re-reads every shard (open -> tar -> select ->
 * decode), so nothing needs the data to fit in memory.
 */
export function shardCorpus(spec: string | string[], opts: ShardCorpusOptions): Corpus & { urls: string[] } {
  const urls = (Array.isArray(spec) ? spec : [spec]).flatMap((s) => expandShardSpec(s));
  const raw = () =>
    described<RawSample>(
      `tar(${urls.length} shard${urls.length === 1 ? '' : 's'})`,
      (async function* () {
        for (const url of urls) yield* readTarShard(url);
      })(),
    );
  const decodeStage = () => decode({ expected: opts.expected, onBadSample: (err) => opts.badSamples.record(err) });
  return {
    urls,
    samples(keys, keysName) {
      return keys ? pipe(raw(), select(keys, keysName), decodeStage()) : pipe(raw(), decodeStage());
    },
  };
}
