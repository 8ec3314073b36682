import { extract, type Extract } from 'tar-stream';
import { PbeError } from '../errors.js';
import { badSampleError } from './bad-samples.js';
import { openUrl, type OpenOptions } from './open.js';
import type { RawSample } from './types.js';

/**
 * Reads one WebDataset tar shard as samples: open → expand tar → group consecutive files by key.
 *
 *   for await (const s of readTarShard('data/train-000000.tar')) s.key, s.files.get('png'), s.files.get('cls')
 *
 * The key is the path up to the first dot of the file name (directories kept): `a/b/x.seg.png` is key `a/b/x`,
 * extension `seg.png`. Extensions are lower-cased. Entries that are not regular files, or whose name has no
 * extension, are skipped as WebDataset does. A damaged shard throws a {@link BadSampleError} naming the url,
 * the sample being read and the last complete one; a shard cut exactly between two entries is caught by its
 * missing end-of-archive blocks (the sample in progress is not passed on: it may lack files).
 *
 * Problems with one sample do not end the shard: an entry over `maxEntryBytes` (drained, never held), the same
 * file twice for a key, or a key that comes back after other keys (a duplicate) yield the sample with `error`
 * set, for the decode stage to report as a bad sample.
 */

type Entry = Extract extends AsyncIterable<infer E> ? E : never;

export const DEFAULT_MAX_ENTRY_BYTES = 16 * 1024 * 1024;

export interface TarReadOptions extends OpenOptions {
  /** An entry larger than this is refused before it is read. Default 16 MiB. */
  maxEntryBytes?: number;
  /** A record shard's array of more pixels (height × width) than this is a bad sample. Default 16777216. */
  maxPixels?: number;
}

export async function* readTarShard(url: string, opts: TarReadOptions = {}): AsyncGenerator<RawSample> {
  const maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const source = openUrl(url, opts);
  const tar = extract();
  let bytesIn = 0;
  let tail: Uint8Array = new Uint8Array(0); // the last 1024 bytes: a whole tar ends with two zero blocks
  source.on('data', (chunk: Uint8Array) => {
    bytesIn += chunk.length;
    tail = lastBytes(tail, chunk, 1024);
  });
  source.on('error', (err) => tar.destroy(err));
  source.pipe(tar);

  let current: RawSample | undefined;
  let lastKey: string | undefined;
  const seen = new Set<string>(); // keys of this shard: a shard holds thousands, not millions
  let entryName: string | undefined;
  let entryRead = false;
  try {
    for await (const entry of tar) {
      const { name, size = 0, type } = entry.header;
      entryName = name;
      entryRead = false;
      const parts = splitKey(name);
      if ((type !== 'file' && type !== 'contiguous-file') || !parts) {
        entry.resume();
        continue;
      }
      if (current && current.key !== parts.key) {
        // A new key closes the previous sample: hand it on before this entry's body can fail.
        lastKey = current.key;
        yield current;
        current = undefined;
      }
      if (!current) {
        current = { key: parts.key, url, files: new Map() };
        if (seen.has(parts.key)) current.error = `duplicate key: "${parts.key}" appears again after other samples in this shard`;
        seen.add(parts.key);
      }
      if (size > maxEntryBytes) {
        current.error ??= `tar entry "${name}" is ${size} bytes, over the limit of ${maxEntryBytes} (maxEntryBytes)`;
        await drain(entry);
        entryRead = true;
        continue;
      }
      const data = await readEntry(entry, size);
      entryRead = true;
      if (current.files.has(parts.ext)) {
        current.error ??= `duplicate file "${name}" in the tar (extension ${parts.ext} twice for one key)`;
        continue;
      }
      current.files.set(parts.ext, data);
    }
  } catch (err) {
    if (err instanceof PbeError || opts.signal?.aborted) throw err;
    const key = current?.key ?? (entryName !== undefined ? splitKey(entryName)?.key : undefined);
    const at = entryName === undefined ? 'before the first entry' : `${entryRead ? 'after' : 'in'} entry "${entryName}"`;
    const after = lastKey === undefined ? 'no complete sample before it' : `last complete sample "${lastKey}"`;
    throw badSampleError({ url, key }, `not a valid tar shard: ${(err as Error).message} (${at}; ${after})`, err);
  } finally {
    tar.destroy();
    source.destroy();
  }
  if (bytesIn === 0) throw badSampleError({ url }, 'empty file (0 bytes), not a tar shard');
  if (tail.length < 1024 || tail.some((b) => b !== 0)) {
    const after = lastKey === undefined ? 'no complete sample before it' : `last complete sample "${lastKey}"`;
    throw badSampleError({ url, key: current?.key }, `truncated tar shard: it ends without the end-of-archive blocks (after entry "${entryName}"; ${after})`);
  }
  if (current) yield current;
}

function lastBytes(prev: Uint8Array, chunk: Uint8Array, n: number): Uint8Array {
  if (chunk.length >= n) return chunk.slice(chunk.length - n);
  const keep = Math.min(prev.length, n - chunk.length);
  const out = new Uint8Array(keep + chunk.length);
  out.set(prev.subarray(prev.length - keep));
  out.set(chunk, keep);
  return out;
}

/** WebDataset's split of a tar path into key and extension; undefined for names without one. */
export function splitKey(path: string): { key: string; ext: string } | undefined {
  const m = /^((?:.*\/)?[^./]+)\.([^/]+)$/.exec(path);
  return m ? { key: m[1], ext: m[2].toLowerCase() } : undefined;
}

async function drain(entry: Entry): Promise<void> {
  for await (const _ of entry as AsyncIterable<Uint8Array>) void _;
}

/** Copies an entry's body into its own array (chunks are views into larger read buffers). */
async function readEntry(entry: Entry, size: number): Promise<Uint8Array> {
  const data = new Uint8Array(size);
  let offset = 0;
  for await (const chunk of entry as AsyncIterable<Uint8Array>) {
    if (offset + chunk.length > size) throw new Error(`entry "${entry.header.name}" has more bytes than its header says (${size})`);
    data.set(chunk, offset);
    offset += chunk.length;
  }
  if (offset !== size) throw new Error(`entry "${entry.header.name}" ended after ${offset} of ${size} bytes`);
  return data;
}
