import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeIter, Packr } from 'msgpackr';
import { PbeError, usageError } from '../errors.js';
import { badSampleError } from './bad-samples.js';
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
  const options = { useRecords: false, maxIncompleteBufferSize: Math.min(maxBytes + 1024, 1 << 30) };
  // decodeIter yields every complete record before it throws for a cut or corrupt stream
  const records = decodeIter(source as AsyncIterable<Uint8Array>, options as Parameters<typeof decodeIter>[1]);
  let n = 0;
  let lastKey: string | undefined;
  const seen = new Set<string>();
  try {
    for await (const value of records as AsyncIterable<unknown>) {
      n++;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new Error(`value #${n} is ${Array.isArray(value) ? 'an array' : typeof value}, not a record map`);
      }
      const raw = toRawSample(value as Record<string, unknown>, url, n, maxBytes);
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

function toRawSample(r: Record<string, unknown>, url: string, n: number, maxBytes: number): RawSample {
  const key = typeof r.key === 'string' && r.key !== '' ? r.key : `record-${n}`;
  const raw: RawSample = { key, url, files: new Map() };
  const bad = (reason: string) => Object.assign(raw, { error: reason });
  if (typeof r.key !== 'string' || r.key === '') return bad(`record #${n} has no string "key"`);
  if (!Array.isArray(r.shape)) return bad('record has no "shape" array');
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
  private current: { path: string; tmp: string; file: WriteStream; samples: number; bytes: number } | undefined;
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
    if (!shard.file.write(bytes)) await once(shard.file, 'drain');
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
    const tmp = `${path}.${process.pid}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    const file = createWriteStream(tmp);
    await once(file, 'open');
    this.current = { path, tmp, file, samples: 0, bytes: 0 };
    return this.current;
  }

  private async finish(): Promise<void> {
    const shard = this.current;
    if (!shard) return;
    this.current = undefined;
    shard.file.end();
    await once(shard.file, 'close');
    await rename(shard.tmp, shard.path);
    this.done.push(shard.path);
    this.options.onShard?.({ path: shard.path, index: this.index, samples: shard.samples, bytes: shard.bytes });
    this.index++;
  }
}
