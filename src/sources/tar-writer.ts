import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pack, type Pack } from 'tar-stream';
import { asOutputError, usageError } from '../errors.js';
import { tempPath } from '../pipeline/atomic-write.js';
import { badSampleError } from './bad-samples.js';

/**
 * Writes WebDataset tar shards, a new one every `samplesPerShard` samples (or `maxShardBytes`).
 *
 *   const w = new ShardWriter('out/train', { samplesPerShard: 1000 });   // out/train-000000.tar, ...
 *   const w = new ShardWriter('out/shard-%04d.tar');                     // out/shard-0000.tar, ...
 *   await w.write({ key: 'train-000001', files: new Map([['png', png], ['cls', cls]]) });
 *   const paths = await w.close();
 *
 * Each shard is written under a temporary name and renamed when complete, so a crash never leaves a shard that
 * looks whole. Entries carry a fixed mtime, so the same samples give byte-identical shards.
 */

export interface ShardWriterOptions {
  /** Samples per shard (the last shard may have fewer). Default 1000. */
  samplesPerShard?: number;
  /** Start a new shard once the current one has this many bytes of file data. Default: no limit. */
  maxShardBytes?: number;
  /** Number of the first shard. Default 0. */
  startIndex?: number;
  /** Called after each shard is complete and renamed: progress lines. */
  onShard?: (shard: { path: string; index: number; samples: number; bytes: number }) => void;
}

export const shardWriterDefaults = {
  samplesPerShard: 1000,
  maxShardBytes: Infinity,
  startIndex: 0,
};

/** What a shard holds per sample: files by extension (no leading dot). */
export interface ShardSample {
  key: string;
  files: ReadonlyMap<string, Uint8Array>;
}

const MTIME = new Date(0);

interface OpenShard {
  path: string;
  tmp: string;
  tar: Pack;
  written: Promise<void>;
  samples: number;
  bytes: number;
}

export class ShardWriter {
  readonly pattern: string;
  private readonly options: ShardWriterOptions & typeof shardWriterDefaults;
  private readonly done: string[] = [];
  private current: OpenShard | undefined;
  private index: number;
  private closed = false;

  constructor(pattern: string, options: ShardWriterOptions = {}) {
    const o = { ...shardWriterDefaults, ...options };
    if (!Number.isInteger(o.samplesPerShard) || o.samplesPerShard < 1) {
      throw usageError(`ShardWriter: options.samplesPerShard is expected to be a positive integer, but got ${o.samplesPerShard}`);
    }
    if (!(o.maxShardBytes > 0)) {
      throw usageError(`ShardWriter: options.maxShardBytes is expected to be a positive number, but got ${o.maxShardBytes}`);
    }
    if (!Number.isInteger(o.startIndex) || o.startIndex < 0) {
      throw usageError(`ShardWriter: options.startIndex is expected to be a non-negative integer, but got ${o.startIndex}`);
    }
    shardPath(pattern, 0); // validates the pattern
    this.pattern = pattern;
    this.options = o;
    this.index = o.startIndex;
  }

  /** The shards completed so far. */
  get shards(): readonly string[] {
    return this.done;
  }

  async write(sample: ShardSample): Promise<void> {
    if (this.closed) throw usageError(`ShardWriter(${this.pattern}): write() after close()`);
    checkKey(sample, this.pattern);
    const shard = this.current ?? (await this.open());
    for (const [ext, data] of sample.files) {
      if (!/^[^/]+$/.test(ext) || ext.startsWith('.')) {
        throw badSampleError({ url: shard.path, key: sample.key }, `file extension ${JSON.stringify(ext)} is not valid (no leading dot, no "/")`);
      }
      await addEntry(shard, `${sample.key}.${ext}`, data);
      shard.bytes += data.length;
    }
    shard.samples++;
    if (shard.samples >= this.options.samplesPerShard || shard.bytes >= this.options.maxShardBytes) await this.finish();
  }

  /** Completes the last shard and returns the paths of all shards written, in order. */
  async close(): Promise<string[]> {
    if (!this.closed) {
      this.closed = true;
      await this.finish();
    }
    return [...this.done];
  }

  /** Drops the shard in progress (its temporary file); completed shards stay. */
  async abort(): Promise<void> {
    this.closed = true;
    const shard = this.current;
    this.current = undefined;
    if (!shard) return;
    shard.tar.destroy();
    await shard.written.catch(() => undefined);
    await rm(shard.tmp, { force: true });
  }

  private async open(): Promise<OpenShard> {
    const path = shardPath(this.pattern, this.index);
    const tmp = tempPath(path);
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (err) {
      throw asOutputError(path, err);
    }
    const tar = pack();
    const file = createWriteStream(tmp);
    const written = new Promise<void>((resolve, reject) => {
      file.on('close', resolve);
      file.on('error', reject);
      tar.on('error', (err: Error) => {
        file.destroy();
        reject(err);
      });
    });
    written.catch(() => undefined); // observed in finish()/abort()
    await Promise.race([once(file, 'open'), written]).catch((err) => {
      throw asOutputError(path, err);
    }); // fail here if the file cannot be created
    tar.pipe(file);
    this.current = { path, tmp, tar, written, samples: 0, bytes: 0 };
    return this.current;
  }

  private async finish(): Promise<void> {
    const shard = this.current;
    if (!shard) return;
    this.current = undefined;
    shard.tar.finalize();
    try {
      await shard.written;
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

/**
 * The path of shard `index`: `%d`/`%06d` in the pattern is replaced by the number; a pattern without one is a
 * prefix, `prefix-000000.tar` (or the given extension).
 */
export function shardPath(pattern: string, index: number, ext = '.tar'): string {
  const m = /%(0?)(\d*)d/.exec(pattern);
  if (m) {
    if (/%(0?)(\d*)d/.test(pattern.slice(m.index + m[0].length))) throw usageError(`shard pattern "${pattern}" has more than one %d`);
    const number = m[1] ? String(index).padStart(Number(m[2] || 1), '0') : String(index);
    return pattern.slice(0, m.index) + number + pattern.slice(m.index + m[0].length);
  }
  if (pattern.endsWith(ext)) {
    throw usageError(`shard pattern "${pattern}" names one file; use a prefix ("out/train") or a pattern with %06d ("out/train-%06d${ext}")`);
  }
  if (pattern === '' || pattern.endsWith('/')) throw usageError(`shard pattern "${pattern}" needs a file name prefix, e.g. "${pattern}train"`);
  return `${pattern}-${String(index).padStart(6, '0')}${ext}`;
}

/** The shards of `pattern` (as shardPath numbers them, any number) that exist now, sorted. */
export async function existingShards(pattern: string, ext: string): Promise<string[]> {
  const probe = shardPath(pattern, 0, ext);
  const dir = dirname(probe);
  const name = probe.slice(dir === '.' && !probe.startsWith('./') ? 0 : dir.length + 1);
  const m = /\d+(?=\D*$)/.exec(name.slice(0, name.length - ext.length));
  if (!m) return [];
  const re = new RegExp(`^${escape(name.slice(0, m.index))}\\d+${escape(name.slice(m.index + m[0].length))}$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names.filter((n) => re.test(n)).sort().map((n) => (dir === '.' && !probe.startsWith('./') ? n : join(dir, n)));
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A key must read back as itself: no dot in its file name, no empty or `..` parts, not absolute. */
function checkKey(sample: ShardSample, pattern: string): void {
  const key = sample.key;
  const name = key.slice(key.lastIndexOf('/') + 1);
  const ok = name !== '' && !name.includes('.') && !key.startsWith('/') && !key.split('/').some((p) => p === '' || p === '..');
  if (!ok) throw badSampleError({ url: pattern, key }, 'sample key cannot be written to a tar shard: it needs a file name with no dot, and no empty, ".." or leading "/" parts');
  if (sample.files.size === 0) throw badSampleError({ url: pattern, key }, 'sample has no files to write');
}

function addEntry(shard: OpenShard, name: string, data: Uint8Array): Promise<void> {
  const entry = new Promise<void>((resolve, reject) => {
    const sink = shard.tar.entry({ name, size: data.length, mode: 0o644, mtime: MTIME, uid: 0, gid: 0, uname: '', gname: '' }, Buffer.from(data.buffer, data.byteOffset, data.byteLength), (err) =>
      err ? reject(err) : resolve(),
    );
    sink.on('error', reject); // a failed file (a full disk) destroys the entry too: an error, never an unhandled event
  });
  // a failure of the file itself (ENOSPC, EIO) ends the wait too
  return Promise.race([entry, shard.written.then(() => entry)]).catch((err) => {
    throw asOutputError(shard.path, err);
  });
}
