import { createRng, shuffleInPlace } from '../pipeline/random.js';
import { decode, type DecodeOptions } from '../stages/decode.js';
import { failOnBadSample, isBadSampleError, type BadSampleHandler } from './bad-samples.js';
import { encodePng } from './image.js';
import { expandShardSpec, partitionShards } from './shard-spec.js';
import { readTarShard, type TarReadOptions } from './tar-reader.js';
import { ShardWriter, type ShardWriterOptions } from './tar-writer.js';
import type { RawSample, Sample, SampleSource } from './types.js';

/**
 * Datasets of WebDataset tar shards: read as a restartable source of decoded samples, or write samples out.
 *
 *   const train = shardSource('data/train-{000000..000003}.tar', { expected: { height: 28, width: 28, channels: 1 } });
 *   for await (const s of train()) ...   // each call reads every shard again
 *   await writeShards(samples, 'out/train', { samplesPerShard: 1000 });  // out/train-000000.tar, ...
 */

export interface ShardSourceOptions extends DecodeOptions, TarReadOptions {
  /** Shuffle the shard order, differently on each call (call n uses seed and n), reproducibly. */
  shuffleShards?: { seed: number };
  /** Read only partition `shardIndex` of `numShards` (round robin over the expanded list). */
  shardIndex?: number;
  numShards?: number;
}

export type ShardSource = SampleSource & { urls: readonly string[]; summary(): string };

/**
 * expand → (partition) → per call: (shuffle) → open → tar → decode. A damaged shard is a bad sample too: its
 * error (naming url and key) goes to `onBadSample`, and a handler that returns moves on to the next shard.
 */
export function shardSource(spec: string | readonly string[], opts: ShardSourceOptions = {}): ShardSource {
  let urls = expandShardSpec(spec);
  if (opts.shardIndex !== undefined || opts.numShards !== undefined) {
    urls = partitionShards(urls, opts.shardIndex ?? 0, opts.numShards ?? 1);
  }
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  const decodeStage = decode({ ...opts, onBadSample });
  let calls = 0;
  const shuffled = opts.shuffleShards ? ', shuffled' : '';
  const source = (() => {
    const order = [...urls];
    if (opts.shuffleShards) shuffleInPlace(order, createRng(mixSeed(opts.shuffleShards.seed, calls)));
    calls++;
    return decodeStage(readShards(order, opts, onBadSample), { signal: opts.signal });
  }) as ShardSource;
  source.urls = urls;
  source.summary = () => `tar(${urls.length} shard${urls.length === 1 ? '' : 's'}${shuffled}) -> ${decodeStage.summary()}`;
  return source;
}

async function* readShards(urls: readonly string[], opts: TarReadOptions, onBadSample: BadSampleHandler): AsyncGenerator<RawSample> {
  for (const url of urls) {
    try {
      yield* readTarShard(url, opts);
    } catch (err) {
      if (!isBadSampleError(err) || err.where.url !== url) throw err;
      await onBadSample(err);
    }
  }
}

function mixSeed(seed: number, call: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(call + 1, 0x85ebca6b)) >>> 0;
}

/**
 * Writes samples as WebDataset shards `<outPrefix>-000000.tar, ...` (or a `%06d` pattern): `<key>.png`, plus
 * `<key>.cls` when the sample has a label. Pixels are rounded to 8 bits. Returns the shard paths.
 */
export async function writeShards(samples: AsyncIterable<Sample>, outPrefix: string, opts: ShardWriterOptions = {}): Promise<string[]> {
  const writer = new ShardWriter(outPrefix, opts);
  try {
    for await (const s of samples) {
      const files = new Map<string, Uint8Array>([['png', encodePng(s.pixels, s.height, s.width, s.channels)]]);
      if (s.label !== undefined) files.set('cls', Buffer.from(String(s.label)));
      await writer.write({ key: s.key, files });
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.close();
}
