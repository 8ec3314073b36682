import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeIter, Packr } from 'msgpackr';
import { asOutputError, PbeError, usageError } from '../errors.js';
import { tempPath } from '../pipeline/atomic-write.js';
import { badSampleError } from './bad-samples.js';
import { DEFAULT_MAX_PIXELS } from './image.js';
import { openUrl } from './open.js';
import { shardPath } from './tar-writer.js';
import type { TarReadOptions } from './tar-reader.js';
import type { RawArray, RawSample, Sample } from './types.js';

/**
 * msgpack record shards: a stream of maps `{key, shape, dtype, data, label?}` (`shape` [H, W, C], `dtype`
 * 'uint8' (0..255) or 'float32' ([0,1]), `data` the HWC values as raw little-endian bytes, `label` an integer),
 * one after another in a `.msgpack` file. Plain maps, so Python's `msgpack` reads and writes them too.
 *
 *   for await (const raw of readMsgpackShard('data/train-000000.msgpack')) raw.key, raw.array
 *   const w = new MsgpackShardWriter('out/train', { dtype: 'uint8' }); await w.write(sample); await w.close();
 *
 * Read streamed (a shard never sits in memory whole); each record's bytes are taken into a buffer of their own
 * once, which then crosses to a decode worker by transfer, and float32 data becomes the pixels as a view. A
 * record that is not a valid sample is passed on with `error` set; a stream that is not msgpack, or is cut
 * short, is a bad shard.
 */

export async function* readMsgpackShard(url: string, opts: TarReadOptions = {}): AsyncGenerator<RawSample> {
  const maxBytes = opts.maxEntryBytes ?? Infinity;
  const source = openUrl(url, opts);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  // room for a record well over the limit, so that one such record is a bad sample and the records after it still read
  const options = { useRecords: false, maxIncompleteBufferSize: Math.min(Math.max(4 * maxBytes, 64 << 20), 1 << 30) };
  // decodeIter yields every complete record before it throws for a cut or corrupt stream
  const records = decodeIter(source as AsyncIterable<Uint8Array>, options as Parameters<typeof decodeIter>[1]);
  let n = 0;
  let lastKey: string | undefined;
  const seen = new Set<string>();
  try {
    for await (const value of records as AsyncIterable<unknown>) {
      n++;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        const what = value === null || value === undefined ? 'nil' : Array.isArray(value) ? 'an array' : typeof value;
        // a stream that does not start with a record is no record shard; a stray value later is one bad record
        if (n === 1) throw new Error(`value #${n} is ${what}, not a record map`);
        yield { key: `record-${n}`, url, files: new Map(), error: `record #${n} is ${what}, not a record map` };
        continue;
      }
      const raw = toRawSample(value as Record<string, unknown>, url, n, maxBytes, maxPixels);
      if (!raw.error) {
        if (seen.has(raw.key)) raw.error = `duplicate key: "${raw.key}" appears twice in this shard`;
        seen.add(raw.key);
      }
      lastKey = raw.key;
      yield raw;
    }
  } catch (err) {
    if (opts.signal?.aborted || err instanceof PbeError) throw err;
    const after = lastKey === undefined ? 'no complete record before it' : `last complete record "${lastKey}"`;
    throw badSampleError({ url }, `not a valid msgpack record shard: ${(err as Error).message} (${after})`, err);
  } finally {
    source.destroy();
  }
  if (n === 0) throw badSampleError({ url }, 'no records (an empty msgpack shard)');
}

/** A record as a raw sample, or with `error` set: its shape is checked here, before anything copies it (a worker's Int32Array would truncate 28.5 or 2^32+28). */
function toRawSample(r: Record<string, unknown>, url: string, n: number, maxBytes: number, maxPixels: number): RawSample {
  const key = typeof r.key === 'string' && r.key !== '' ? r.key : `record-${n}`;
  const raw: RawSample = { key, url, files: new Map() };
  const bad = (reason: string) => Object.assign(raw, { error: reason });
  if (typeof r.key !== 'string' || r.key === '') return bad(`record #${n} has no string "key"`);
  const shape = r.shape;
  if (!Array.isArray(shape) || (shape.length !== 2 && shape.length !== 3) || !shape.every((d) => Number.isSafeInteger(d) && d > 0 && d < 2 ** 31)) {
    return bad(`record shape ${JSON.stringify(shape)?.slice(0, 60)} is not [height, width] or [height, width, channels] of positive integers`);
  }
  if (shape[0] * shape[1] > maxPixels) return bad(`record is ${shape[0]}x${shape[1]} pixels, over the limit of ${maxPixels} (maxPixels)`);
  if (r.dtype !== 'uint8' && r.dtype !== 'float32') return bad(`record dtype ${JSON.stringify(r.dtype)} is not "uint8" or "float32"`);
  if (!(r.data instanceof Uint8Array)) return bad('record "data" is not binary');
  if (r.data.byteLength > maxBytes) return bad(`record data is ${r.data.byteLength} bytes, over the limit of ${maxBytes} (maxEntryBytes)`);
  if (r.label !== undefined && r.label !== null) {
    if (!Number.isInteger(r.label) || (r.label as number) < 0) return bad(`record label ${JSON.stringify(r.label)} is not a non-negative integer`);
    raw.files.set('cls', Buffer.from(String(r.label)));
  }
  if (r.meta !== undefined) raw.files.set('json', Buffer.from(JSON.stringify(r.meta)));
  // its own buffer: the record is a view into a stream chunk shared with its neighbours
  raw.array = { shape: r.shape as number[], dtype: r.dtype, data: new Uint8Array(r.data) } satisfies RawArray;
  return raw;
}

export interface MsgpackShardWriterOptions {
  /** Samples per shard. Default 1000. */
  samplesPerShard?: number;
  /** 'uint8' (pixels rounded to 8 bits, 4× smaller) or 'float32' (exact). Default 'uint8'. */
  dtype?: 'uint8' | 'float32';
  onShard?: (shard: { path: string; index: number; samples: number; bytes: number }) => void;
}

/** Writes msgpack record shards `<prefix>-000000.msgpack ...` (or a `%06d` pattern), each under a temporary name first. */
export class MsgpackShardWriter {
  private readonly packr = new Packr({ useRecords: false });
  private readonly done: string[] = [];
  private current: { path: string; tmp: string; file: WriteStream; samples: number; bytes: number; failure?: Error } | undefined;
  private index = 0;
  private readonly samplesPerShard: number;
  private readonly dtype: 'uint8' | 'float32';

  constructor(readonly pattern: string, private readonly options: MsgpackShardWriterOptions = {}) {
    this.samplesPerShard = options.samplesPerShard ?? 1000;
    this.dtype = options.dtype ?? 'uint8';
    if (!Number.isInteger(this.samplesPerShard) || this.samplesPerShard < 1) {
      throw usageError(`MsgpackShardWriter: options.samplesPerShard is expected to be a positive integer, but got ${this.samplesPerShard}`);
    }
    if (this.dtype !== 'uint8' && this.dtype !== 'float32') {
      throw usageError(`MsgpackShardWriter: options.dtype is expected to be "uint8" or "float32", but got ${JSON.stringify(this.dtype)}`);
    }
    shardPath(pattern, 0, '.msgpack');
  }

  async write(s: Sample): Promise<void> {
    const shard = this.current ?? (await this.open());
    let data: Uint8Array;
    if (this.dtype === 'uint8') {
      data = new Uint8Array(s.pixels.length);
      for (let i = 0; i < data.length; i++) {
        const v = s.pixels[i];
        data[i] = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
      }
    } else {
      data = new Uint8Array(s.pixels.buffer, s.pixels.byteOffset, s.pixels.byteLength);
    }
    const record: Record<string, unknown> = { key: s.key, shape: [s.height, s.width, s.channels], dtype: this.dtype, data };
    if (s.label !== undefined) record.label = s.label;
    if (s.meta !== undefined) record.meta = s.meta;
    const bytes = this.packr.pack(record);
    shard.bytes += bytes.length;
    try {
      if (shard.failure) throw shard.failure;
      if (!shard.file.write(bytes)) await once(shard.file, 'drain');
    } catch (err) {
      throw asOutputError(shard.path, err);
    }
    if (++shard.samples >= this.samplesPerShard) await this.finish();
  }

  async close(): Promise<string[]> {
    await this.finish();
    return [...this.done];
  }

  async abort(): Promise<void> {
    const shard = this.current;
    this.current = undefined;
    if (!shard) return;
    shard.file.destroy();
    await rm(shard.tmp, { force: true });
  }

  private async open() {
    const path = shardPath(this.pattern, this.index, '.msgpack');
    const tmp = tempPath(path);
    try {
      await mkdir(dirname(path), { recursive: true });
      const file = createWriteStream(tmp);
      await once(file, 'open');
      const shard: NonNullable<typeof this.current> = { path, tmp, file, samples: 0, bytes: 0 };
      file.on('error', (err) => (shard.failure ??= err));
      this.current = shard;
      return shard;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw asOutputError(path, err);
    }
  }

  private async finish(): Promise<void> {
    const shard = this.current;
    if (!shard) return;
    this.current = undefined;
    try {
      if (!shard.file.closed) {
        const closed = once(shard.file, 'close');
        shard.file.end();
        await closed;
      }
      if (shard.failure) throw shard.failure;
      await rename(shard.tmp, shard.path);
    } catch (err) {
      await rm(shard.tmp, { force: true }).catch(() => undefined);
      throw asOutputError(shard.path, err);
    }
    this.done.push(shard.path);
    this.options.onShard?.({ path: shard.path, index: this.index, samples: shard.samples, bytes: shard.bytes });
    this.index++;
  }
}
