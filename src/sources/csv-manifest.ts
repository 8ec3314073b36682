import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { format, parse } from 'fast-csv';
import { PbeError, usageError } from '../errors.js';
import { badSampleError } from './bad-samples.js';
import { folderPath } from './folder.js';
import { encodePng, IMAGE_EXTENSIONS } from './image.js';
import { localPath, openUrl, readUrl, schemeOf } from './open.js';
import { DEFAULT_MAX_ENTRY_BYTES, type TarReadOptions } from './tar-reader.js';
import type { RawSample, Sample } from './types.js';

/**
 * CSV manifests: a header with `path` and, optionally, `label`; one image per row. A relative path is relative to
 * the manifest (so a manifest and its images can sit together on a disk, a web server or a bucket); a URL or an
 * absolute path is used as it is. An empty label means unlabelled. The key is the path as written, without its
 * extension; the url is the image's.
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
    const raw: RawSample = { key: key || `row-${n}`, url: path === '' ? url : resolve(base, path), files: new Map() };
    if (path === '') return Object.assign(raw, { url, error: `row ${n}: empty path` });
    const label = (row.label ?? '').trim();
    if (label !== '') raw.files.set('cls', Buffer.from(label));
    if (seen.has(key)) return Object.assign(raw, { error: `duplicate key: "${key}" is listed again (row ${n})` });
    seen.add(key);
    const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext) || !path.includes('.')) return Object.assign(raw, { error: `row ${n}: "${path}" is not a .${IMAGE_EXTENSIONS.join('/.')} file` });
    try {
      raw.files.set(ext, await readUrl(raw.url, { ...opts, maxBytes }));
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

/** `base` + a relative path; URLs (any scheme) and absolute paths stay as they are. */
function resolve(base: string, path: string): string {
  if (schemeOf(path) !== 'file' || path.startsWith('/') || /^file:/i.test(path)) return path;
  return base + path;
}

/** Writes images as PNG beside the manifest (`<dir>/<label>/<key>.png`) and the manifest last, atomically. */
export class CsvManifestWriter {
  private readonly dir: string;
  private readonly tmp: string;
  private rows: ReturnType<typeof format> | undefined;
  private file: ReturnType<typeof createWriteStream> | undefined;

  constructor(readonly manifest: string) {
    if (localPath(manifest) === undefined || !manifest.toLowerCase().endsWith('.csv')) {
      throw usageError(`CsvManifestWriter: "${manifest}" is expected to be a local path ending in .csv`);
    }
    this.dir = dirname(manifest);
    this.tmp = `${manifest}.${process.pid}.tmp`;
  }

  async write(s: Sample): Promise<void> {
    if (!this.rows) {
      await mkdir(this.dir, { recursive: true });
      this.file = createWriteStream(this.tmp);
      this.rows = format({ headers: ['path', 'label'], includeEndRowDelimiter: true });
      this.rows.pipe(this.file);
    }
    const rel = `${folderPath(s.key, s.label)}.png`;
    const path = join(this.dir, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.tmp`, encodePng(s.pixels, s.height, s.width, s.channels));
    await rename(`${path}.tmp`, path);
    if (!this.rows.write([rel, s.label ?? ''])) await once(this.rows, 'drain');
  }

  async close(): Promise<string[]> {
    if (!this.rows || !this.file) {
      await mkdir(this.dir, { recursive: true });
      await writeFile(this.tmp, 'path,label\n');
    } else {
      const closed = once(this.file, 'close');
      this.rows.end();
      await closed;
    }
    await rename(this.tmp, this.manifest);
    return [this.manifest];
  }

  async abort(): Promise<void> {
    this.rows?.destroy();
    this.file?.destroy();
    await rm(this.tmp, { force: true });
  }
}
