import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { format, parse } from 'fast-csv';
import { asOutputError, PbeError, usageError } from '../errors.js';
import { tempPath } from '../pipeline/atomic-write.js';
import { badSampleError } from './bad-samples.js';
import { folderPath } from './folder.js';
import { encodePng, IMAGE_EXTENSIONS } from './image.js';
import { localPath, openUrl, readUrl, schemeOf } from './open.js';
import { DEFAULT_MAX_ENTRY_BYTES, type TarReadOptions } from './tar-reader.js';
import type { RawSample, Sample } from './types.js';

/**
 * CSV manifests: a header with `path` and, optionally, `label`; one image per row. A relative path is relative to
 * the manifest (so a manifest and its images can sit together on a disk, a web server or a bucket). An empty label
 * means unlabelled. The key is the path as written, without its extension; the url is the image's.
 *
 * A manifest is data, not a command, so its rows stay in its place (see rowUrl): a local manifest names files
 * under its own directory (or remote URLs), a remote one only URLs of its own origin; `pipe:` and `-` never run
 * or read from a row. A row outside these bounds is a bad sample naming the row.
 *
 *   path,label
 *   images/0/train-000017.png,0
 *   https://host/x/unlabelled-1.jpg,
 *
 *   for await (const raw of readCsvManifest('data/train.csv')) ...   // 8 images read ahead, in order
 *   const w = new CsvManifestWriter('out/train.csv'); await w.write(sample); await w.close();  // out/<label>/<key>.png
 *
 * A row whose image is missing or unreadable, or that repeats a key, is passed on with `error` set.
 */

const READ_AHEAD = 8;

export async function* readCsvManifest(url: string, opts: TarReadOptions = {}): AsyncGenerator<RawSample> {
  const maxBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const base = url.slice(0, url.lastIndexOf('/') + 1);
  const rows = await readRows(url, opts);
  const seen = new Set<string>();
  const queue: Promise<RawSample>[] = [];
  let line = 1;
  const load = async (row: Record<string, string>, n: number): Promise<RawSample> => {
    const path = (row.path ?? '').trim();
    const key = path.replace(/\.[^./]*$/, '');
    const target = path === '' ? { url } : rowUrl(url, base, path);
    const raw: RawSample = { key: key || `row-${n}`, url: target.url, files: new Map() };
    if (path === '') return Object.assign(raw, { url, error: `row ${n}: empty path` });
    if (target.error) return Object.assign(raw, { url, error: `row ${n}: ${target.error}` });
    const label = (row.label ?? '').trim();
    if (label !== '') raw.files.set('cls', Buffer.from(label));
    if (seen.has(key)) return Object.assign(raw, { error: `duplicate key: "${key}" is listed again (row ${n})` });
    seen.add(key);
    const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext) || !path.includes('.')) return Object.assign(raw, { error: `row ${n}: "${path}" is not a .${IMAGE_EXTENSIONS.join('/.')} file` });
    try {
      raw.files.set(ext, await readUrl(raw.url, { ...opts, allowPipe: false, maxBytes }));
    } catch (err) {
      raw.error = `cannot read the image: ${err instanceof PbeError ? err.message.replace(`${raw.url}: `, '') : (err as Error).message}`;
    }
    return raw;
  };
  try {
    for await (const row of rows) {
      line++;
      queue.push(load(row as Record<string, string>, line));
      if (queue.length >= READ_AHEAD) yield await (queue.shift() as Promise<RawSample>);
    }
  } catch (err) {
    if (err instanceof PbeError || opts.signal?.aborted) throw err;
    throw badSampleError({ url }, `not a valid CSV manifest: ${(err as Error).message} (near row ${line})`, err);
  }
  while (queue.length > 0) yield await (queue.shift() as Promise<RawSample>);
  if (line === 1) throw badSampleError({ url }, 'no rows (an empty CSV manifest)');
}

async function readRows(url: string, opts: TarReadOptions): Promise<AsyncIterable<Record<string, string>>> {
  const source = openUrl(url, opts);
  const parser = parse({ headers: (h) => h.map((x) => x?.trim().toLowerCase()), ignoreEmpty: true, strictColumnHandling: false });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  const headers = new Promise<string[]>((resolve, reject) => {
    parser.once('headers', resolve);
    parser.once('error', reject);
    parser.once('end', () => resolve([]));
  });
  const rows = parser as AsyncIterable<Record<string, string>>;
  return (async function* () {
    const iterator = rows[Symbol.asyncIterator]();
    const first = await iterator.next();
    const names = await headers.catch(() => [] as string[]);
    if (!names.includes('path')) {
      source.destroy();
      throw badSampleError({ url }, `a CSV manifest needs a header row with a "path" column (and optionally "label"); got ${JSON.stringify(names)}`);
    }
    if (first.done) return;
    yield first.value;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  })();
}

const REMOTE = new Set(['http', 'https', 's3', 'gs']);

/**
 * Where a row's path points, kept inside the manifest's place:
 *  - a relative path resolves against the manifest and must stay under its directory (no `..` out of it);
 *  - a local manifest may also name remote URLs (http(s), s3, gs), never an absolute path or a `file:` URL;
 *  - a remote manifest may name URLs of its own origin only (same scheme and host, or bucket);
 *  - `pipe:`, `-` and unknown schemes are refused.
 */
export function rowUrl(manifest: string, base: string, path: string): { url: string; error?: string } {
  const scheme = schemeOf(path);
  const manifestScheme = schemeOf(manifest);
  const refuse = (why: string) => ({ url: path, error: `path ${JSON.stringify(path)} ${why}` });
  if (path === '-' || scheme === 'pipe' || scheme === 'stdin') return refuse('would read standard input or run a command; a manifest row never does');
  if (scheme !== 'file') {
    if (!REMOTE.has(scheme)) return refuse(`has an unsupported scheme "${scheme}"`);
    if (manifestScheme === 'file' || origin(path) === origin(manifest)) return { url: path };
    return refuse(`is not of the manifest's origin ${origin(manifest)}; a remote manifest names only its own origin's files`);
  }
  if (path.startsWith('/') || /^file:/i.test(path) || /^[a-z]:[\\/]/i.test(path) || path.startsWith('\\')) {
    return refuse("is absolute; a manifest's paths are relative to it");
  }
  if (manifestScheme === 'file') {
    const dir = resolvePath(dirname(localPath(manifest) ?? manifest));
    const file = resolvePath(dir, path);
    if (!file.startsWith(dir + sep)) return refuse("is outside the manifest's directory");
    return { url: base + path };
  }
  if (path.split(/[\\/]/).includes('..')) return refuse("climbs out of the manifest's directory (\"..\")");
  return { url: base + path };
}

function origin(url: string): string {
  const m = /^([a-z][a-z0-9+.-]+):\/\/([^/]*)/i.exec(url);
  return m ? `${m[1].toLowerCase()}://${m[2].toLowerCase()}` : url;
}

/**
 * Writes images as PNG beside the manifest (`<dir>/<label>/<key>.png`) and the manifest last, atomically. A key
 * that is no path inside the directory is a bad sample; a failed write (a full disk) removes the files in progress.
 */
export class CsvManifestWriter {
  private readonly dir: string;
  private readonly tmp: string;
  private rows: ReturnType<typeof format> | undefined;
  private file: ReturnType<typeof createWriteStream> | undefined;
  private failure: Error | undefined;

  constructor(readonly manifest: string) {
    if (localPath(manifest) === undefined || !manifest.toLowerCase().endsWith('.csv')) {
      throw usageError(`CsvManifestWriter: "${manifest}" is expected to be a local path ending in .csv`);
    }
    this.dir = dirname(manifest);
    this.tmp = tempPath(manifest);
  }

  async write(s: Sample): Promise<void> {
    const rel = `${folderPath(s.key, s.label)}.png`; // a bad key is refused before anything is written
    const path = join(this.dir, rel);
    if (!this.rows) {
      await this.guard(this.tmp, () => mkdir(this.dir, { recursive: true }));
      this.file = createWriteStream(this.tmp);
      this.rows = format({ headers: ['path', 'label'], includeEndRowDelimiter: true });
      const fail = (err: Error) => (this.failure ??= err);
      this.file.on('error', fail);
      this.rows.on('error', fail);
      this.rows.pipe(this.file);
    }
    this.check();
    await this.guard(path, async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(tempPath(path), encodePng(s.pixels, s.height, s.width, s.channels));
      await rename(tempPath(path), path);
    }, tempPath(path));
    if (!this.rows.write([rel, s.label ?? ''])) await Promise.race([once(this.rows, 'drain'), once(this.file!, 'error')]);
    this.check();
  }

  async close(): Promise<string[]> {
    if (!this.rows || !this.file) {
      await this.guard(this.manifest, async () => {
        await mkdir(this.dir, { recursive: true });
        await writeFile(this.tmp, 'path,label\n');
      }, this.tmp);
    } else {
      const closed = once(this.file, 'close');
      this.rows.end();
      await closed;
      this.check();
    }
    await this.guard(this.manifest, () => rename(this.tmp, this.manifest), this.tmp);
    return [this.manifest];
  }

  async abort(): Promise<void> {
    this.rows?.unpipe();
    this.rows?.destroy();
    this.file?.destroy();
    await rm(this.tmp, { force: true });
  }

  private check(): void {
    if (this.failure) throw asOutputError(this.manifest, this.failure);
  }

  private async guard(path: string, work: () => Promise<unknown>, tmp?: string): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (tmp) await rm(tmp, { force: true }).catch(() => undefined);
      throw asOutputError(path, err);
    }
  }
}
