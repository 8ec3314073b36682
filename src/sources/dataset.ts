import { rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { usageError } from '../errors.js';
import { createRng, shuffleInPlace } from '../pipeline/random.js';
import { decode, type DecodeOptions } from '../stages/decode.js';
import { shuffle } from '../stages/shuffle.js';
import { failOnBadSample, isBadSampleError, type BadSampleHandler } from './bad-samples.js';
import { formatOf, formats, type FormatName, type WriterOptions } from './formats.js';
import { schemeOf } from './open.js';
import { expandShardSpec, partitionShards } from './shard-spec.js';
import type { TarReadOptions } from './tar-reader.js';
import { existingShards } from './tar-writer.js';
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

/**
 * Reads the shards one after another. A key is one sample across the whole corpus: a key met again (in the same
 * shard or another) is passed on with `error` set, naming where it was first met and which occurrence this is, so
 * every repeat is listed as a bad sample and the first copy alone is used.
 */
async function* readShards(urls: readonly string[], named: FormatName | 'auto', opts: TarReadOptions, onBadSample: BadSampleHandler): AsyncGenerator<RawSample> {
  const firstSeen = new Map<string, { url: string; count: number }>();
  for (const url of urls) {
    try {
      for await (const raw of formats[formatOf(url, named)].read(url, opts)) {
        const first = firstSeen.get(raw.key);
        if (first === undefined) {
          if (raw.error === undefined) firstSeen.set(raw.key, { url: raw.url, count: 1 });
        } else if (raw.error === undefined || raw.error.startsWith('duplicate key')) {
          first.count++;
          raw.error =
            raw.error === undefined
              ? `duplicate key: "${raw.key}" was first read from ${first.url} (occurrence ${first.count}); only the first copy is used`
              : `${raw.error} (occurrence ${first.count})`;
        }
        yield raw;
      }
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

export interface WriteSamplesOptions extends WriterOptions {
  format?: FormatName;
  /** A sample the format cannot hold (a key that is not a path inside the output...) goes here. Default: throw. */
  onBadSample?: BadSampleHandler;
  /**
   * Shards of the same pattern already in the output directory (an earlier run's, which a `train-*.tar` would
   * still match): 'refuse' fails before writing; 'replace' (default) removes those this write did not replace,
   * once it is complete, so the output never mixes two writes.
   */
  existing?: 'refuse' | 'replace';
}

/**
 * Writes samples in a format: tar and msgpack as shards `<out>-000000.tar, ...` (or a `%06d` pattern), csv as a
 * manifest `out` (a .csv path) with its images beside it, folder as an image folder `out`. Pixels are stored as
 * 8-bit PNG (msgpack: uint8 or float32). Returns the files written. A failure removes the file in progress.
 */
export async function writeSamples(samples: AsyncIterable<Sample>, out: string, opts: WriteSamplesOptions = {}): Promise<string[]> {
  const format = opts.format ?? 'tar';
  const ext = format === 'tar' ? '.tar' : format === 'msgpack' ? '.msgpack' : undefined;
  const before = ext ? await existingShards(out, ext) : [];
  if (before.length > 0 && opts.existing === 'refuse') {
    throw usageError(`${dirname(out) || '.'} already holds ${before.length} shard${before.length === 1 ? '' : 's'} of ${out} (${before[0]}...); a reader's pattern would mix them with the new ones: choose another output, or replace them (--overwrite)`);
  }
  const writer = formats[format].writer(out, opts);
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  try {
    for await (const s of samples) {
      try {
        await writer.write(s);
      } catch (err) {
        if (!isBadSampleError(err)) throw err;
        await onBadSample(err);
      }
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const written = await writer.close();
  const keep = new Set(written.map((p) => resolve(p)));
  for (const stale of before) if (!keep.has(resolve(stale))) await rm(stale, { force: true });
  return written;
}

/** WebDataset tar shards `<outPrefix>-000000.tar, ...`: `<key>.png`, plus `<key>.cls` when labelled. */
export async function writeShards(samples: AsyncIterable<Sample>, outPrefix: string, opts: WriterOptions = {}): Promise<string[]> {
  return writeSamples(samples, outPrefix, { ...opts, format: 'tar' });
}
