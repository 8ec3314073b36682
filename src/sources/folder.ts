import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inputError, usageError } from '../errors.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { badSampleError } from './bad-samples.js';
import { encodePng, IMAGE_EXTENSIONS } from './image.js';
import { localPath } from './open.js';
import { DEFAULT_MAX_ENTRY_BYTES, type TarReadOptions } from './tar-reader.js';
import type { RawSample, Sample } from './types.js';

/**
 * Image folders, as torchvision's ImageFolder: `root/<class>/.../<name>.png`; images directly in `root` have no
 * label. Class folders named by non-negative integers are those labels; otherwise the classes are numbered in
 * sorted order of their names (`cat` 0, `dog` 1). The key is the path under `root` without the extension
 * (`3/train-000017`), the url the image's path. Only `.png/.jpg/.jpeg/.webp` files are samples; other files and
 * dot-files are ignored. Local directories only.
 *
 *   for await (const raw of readImageFolder('data/images')) raw.key, raw.files.get('png'), raw.files.get('cls')
 *   const w = new ImageFolderWriter('out/images'); await w.write(sample); await w.close();
 *
 * The writer puts a sample at `root/<label>/<key>.png` (`root/<key>.png` without a label), or at
 * `root/<key>.png` when the key already starts with its label folder, so folder → any format → folder keeps
 * keys and paths.
 */

export interface FolderClasses {
  /** Class folder name → label. */
  labels: Map<string, number>;
  numeric: boolean;
}

export async function folderClasses(root: string): Promise<FolderClasses> {
  const dirs = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  const numeric = dirs.length > 0 && dirs.every((d) => /^\d{1,9}$/.test(d));
  return { labels: new Map(dirs.map((d, i) => [d, numeric ? Number(d) : i])), numeric };
}

export async function* readImageFolder(url: string, opts: TarReadOptions = {}): AsyncGenerator<RawSample> {
  const root = localPath(url);
  if (root === undefined) throw usageError(`${url}: image folders are read from local directories only`);
  const maxBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  let classes: FolderClasses;
  try {
    classes = await folderClasses(root);
  } catch (err) {
    throw inputError({ url }, `cannot list the image folder: ${(err as Error).message}`, err);
  }
  let count = 0;
  for await (const rel of walk(root, '')) {
    opts.signal?.throwIfAborted();
    const dot = rel.lastIndexOf('.');
    const ext = rel.slice(dot + 1).toLowerCase();
    if (dot < 0 || !IMAGE_EXTENSIONS.includes(ext)) continue;
    count++;
    const key = rel.slice(0, dot);
    const path = join(root, rel);
    const raw: RawSample = { key, url: path, files: new Map() };
    const top = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : undefined;
    const label = top === undefined ? undefined : classes.labels.get(top);
    if (label !== undefined) raw.files.set('cls', Buffer.from(String(label)));
    try {
      const size = (await stat(path)).size;
      if (size > maxBytes) raw.error = `image file is ${size} bytes, over the limit of ${maxBytes} (maxEntryBytes)`;
      else raw.files.set(ext, await readFile(path));
    } catch (err) {
      raw.error = `cannot read the image: ${(err as Error).message}`;
    }
    yield raw;
  }
  if (count === 0) throw badSampleError({ url }, `no images (.${IMAGE_EXTENSIONS.join('/.')}) in the folder`);
}

/** Relative paths of the files under `dir`, depth first, sorted by name; dot-files and dot-folders skipped. */
async function* walk(root: string, rel: string): AsyncGenerator<string> {
  const entries = (await readdir(join(root, rel), { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) yield* walk(root, path);
    else if (e.isFile() || e.isSymbolicLink()) yield path;
  }
}

export class ImageFolderWriter {
  constructor(readonly root: string) {
    if (localPath(root) === undefined) throw usageError(`${root}: image folders are written to local directories only`);
  }

  async write(s: Sample): Promise<void> {
    const rel = folderPath(s.key, s.label);
    await writeFileAtomic(join(this.root, `${rel}.png`), encodePng(s.pixels, s.height, s.width, s.channels));
  }

  async close(): Promise<string[]> {
    return [this.root];
  }

  async abort(): Promise<void> {}
}

/** Where a key goes in a folder: under its label folder unless it is there already. */
export function folderPath(key: string, label: number | undefined): string {
  if (key.split('/').some((p) => p === '' || p === '..' || p === '.') || key.startsWith('/')) {
    throw badSampleError({ url: 'image folder', key }, 'key cannot be a path in an image folder (empty, "." or ".." parts)');
  }
  if (label === undefined || key.startsWith(`${label}/`)) return key;
  return `${label}/${key}`;
}
