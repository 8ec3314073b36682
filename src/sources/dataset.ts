import { createRng, shuffleInPlace } from '../pipeline/random.js';
import { decode, type DecodeOptions } from '../stages/decode.js';
import { shuffle } from '../stages/shuffle.js';
import { failOnBadSample, isBadSampleError, type BadSampleHandler } from './bad-samples.js';
import { formatOf, formats, type FormatName, type WriterOptions } from './formats.js';
import { schemeOf } from './open.js';
import { expandShardSpec, partitionShards } from './shard-spec.js';
import type { TarReadOptions } from './tar-reader.js';
import type { RawSample, Sample, SampleSource } from './types.js';

/**
 * Datasets: a shard spec read as a restartable source of samples, or samples written out in any format.
 *
 *   const train = shardSource('s3://b/train-{000000..000099}.tar', { expected, workers: 2, shuffleShards: { seed: 1 } });
 *   for await (const s of train()) ...   // each call reads every shard again
 *   await writeSamples(samples, 'out/train', { format: 'msgpack', samplesPerShard: 1000 });
 *
 * Each URL is read in its format (formats.ts: tar, msgpack, csv manifest, image folder; named or by extension).
 */

export interface RawSourceOptions extends TarReadOptions {
  /** The format of every URL, or 'auto' (by extension; a local directory without shards is an image folder). */
  format?: FormatName | 'auto';
  /** Shuffle the shard order, differently on each call (call n uses seed and n), reproducibly. */
  shuffleShards?: { seed: number };
  /** Read only partition `shardIndex` of `numShards` (round robin over the expanded list). */
  shardIndex?: number;
  numShards?: number;
  /** A damaged or missing shard goes here (default: throw); returning moves on to the next shard. */
  onBadSample?: BadSampleHandler;
}

export interface RawSource {
  urls: readonly string[];
  /** Reads every shard (of this partition) again, in this call's order. */
  open(): AsyncIterable<RawSample>;
  summary(): string;
}

/** expand → (partition) → per call: (shuffle the shard order) → open → read in the URL's format. */
export function rawSource(spec: string | readonly string[], opts: RawSourceOptions = {}): RawSource {
  let urls = expandShardSpec(spec);
  if (opts.shardIndex !== undefined || opts.numShards !== undefined) {
    urls = partitionShards(urls, opts.shardIndex ?? 0, opts.numShards ?? 1);
  }
  const named = opts.format ?? 'auto';
  const kinds = [...new Set(urls.map((u) => formatOf(u, named)))];
  const schemes = [...new Set(urls.map(schemeOf))].filter((s) => s !== 'file');
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  let calls = 0;
  return {
    urls,
    open() {
      const order = [...urls];
      if (opts.shuffleShards) shuffleInPlace(order, createRng(mixSeed(opts.shuffleShards.seed, calls)));
      calls++;
      return readShards(order, named, opts, onBadSample);
    },
    summary() {
      const n = `${urls.length} shard${urls.length === 1 ? '' : 's'}`;
      const via = schemes.length ? ` via ${schemes.join('+')}` : '';
      return `${kinds.join('+')}(${n}${via}${opts.shuffleShards ? ', shuffled' : ''})`;
    },
  };
}

async function* readShards(urls: readonly string[], named: FormatName | 'auto', opts: TarReadOptions, onBadSample: BadSampleHandler): AsyncGenerator<RawSample> {
  for (const url of urls) {
    try {
      yield* formats[formatOf(url, named)].read(url, opts);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      // a damaged shard is a bad sample; one that cannot be opened (missing, 404, denied) stops the job: the spec is wrong
      if (isBadSampleError(err) && err.where.url === url) await onBadSample(err);
      else throw err;
    }
  }
}

function mixSeed(seed: number, call: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(call + 1, 0x85ebca6b)) >>> 0;
}

export interface ShardSourceOptions extends DecodeOptions, RawSourceOptions {
  /** Buffer-shuffle the raw samples (before decoding, so the buffer holds compressed bytes), reseeded per call. */
  shuffle?: { bufferSize: number; seed: number };
}

/** What a command's data flags set (cli/common.ts): where and how the data is read and decoded. */
export type DataOptions = Pick<
  ShardSourceOptions,
  | 'format' | 'shardIndex' | 'numShards' | 'shuffleShards' | 's3Endpoint' | 'gsEndpoint' | 'allowPipe' | 'retries' | 'retryDelayMs' | 'idleTimeoutMs' | 'log'
  | 'maxEntryBytes' | 'maxPixels' | 'workers' | 'imageSize' | 'requireLabels' | 'numClasses'
>;

export type ShardSource = SampleSource & { urls: readonly string[]; summary(): string };

/**
 * rawSource → (shuffle) → decode (in `workers` threads when given). A damaged shard is a bad sample too: its
 * error (naming url and key) goes to `onBadSample`, and a handler that returns moves on to the next shard.
 */
export function shardSource(spec: string | readonly string[], opts: ShardSourceOptions = {}): ShardSource {
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  const raw = rawSource(spec, { ...opts, onBadSample });
  const decodeStage = decode({ ...opts, onBadSample });
  let calls = 0;
  const source = (() => {
    let samples = raw.open();
    if (opts.shuffle) samples = shuffle<RawSample>({ bufferSize: opts.shuffle.bufferSize, seed: mixSeed(opts.shuffle.seed, calls) })(samples, {});
    calls++;
    return decodeStage(samples, { signal: opts.signal });
  }) as ShardSource;
  source.urls = raw.urls;
  source.summary = () => [raw.summary(), ...(opts.shuffle ? [`shuffle(${opts.shuffle.bufferSize})`] : []), decodeStage.summary()].join(' -> ');
  return source;
}

/**
 * Writes samples in a format: tar and msgpack as shards `<out>-000000.tar, ...` (or a `%06d` pattern), csv as a
 * manifest `out` (a .csv path) with its images beside it, folder as an image folder `out`. Pixels are stored as
 * 8-bit PNG (msgpack: uint8 or float32). Returns the files written.
 */
export async function writeSamples(samples: AsyncIterable<Sample>, out: string, opts: WriterOptions & { format?: FormatName } = {}): Promise<string[]> {
  const writer = formats[opts.format ?? 'tar'].writer(out, opts);
  try {
    for await (const s of samples) await writer.write(s);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.close();
}

/** WebDataset tar shards `<outPrefix>-000000.tar, ...`: `<key>.png`, plus `<key>.cls` when labelled. */
export async function writeShards(samples: AsyncIterable<Sample>, outPrefix: string, opts: WriterOptions = {}): Promise<string[]> {
  return writeSamples(samples, outPrefix, { ...opts, format: 'tar' });
}
