import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { inputError } from '../errors.js';
import { openHttp } from './http.js';
import type { OpenOptions } from './open-options.js';
import { openGs, openS3 } from './object-store.js';
import { openPipe, openStdin } from './process.js';

/**
 * Opening a URL as a byte stream, dispatched through a table of schemes (WebDataset's gopen).
 *
 *   openUrl('data/train-000000.tar')                  // local path (also file:///abs/x.tar)
 *   openUrl('https://host/train-000000.tar')          // retried, resumed by Range after a dropped connection
 *   openUrl('s3://bucket/train-000000.tar', { s3Endpoint: 'http://127.0.0.1:9000' })
 *   openUrl('gs://bucket/train-000000.tar')
 *   openUrl('-')                                      // standard input, once
 *   openUrl('pipe:curl -s https://host/x.tar', { allowPipe: true })
 *   registerScheme('mem', (url, opts) => ...)         // more schemes slot in
 *
 * Every open starts the stream again (sources are restartable), except `-`: standard input can be read once.
 */

export { openDefaults, type OpenOptions } from './open-options.js';

/** Opens one URL. May throw at once (a local file that is missing) or emit 'error' on the stream later. */
export type Opener = (url: string, opts: OpenOptions) => Readable;

const openers = new Map<string, Opener>([
  ['file', openFile],
  ['http', openHttp],
  ['https', openHttp],
  ['s3', openS3],
  ['gs', openGs],
  ['stdin', openStdin],
  ['pipe', openPipe],
]);

/** Adds (or replaces) the opener of a scheme. */
export function registerScheme(scheme: string, opener: Opener): void {
  openers.set(scheme.toLowerCase(), opener);
}

export function knownSchemes(): string[] {
  return [...openers.keys()].sort();
}

/**
 * The scheme of a URL: 'file' for plain paths, 'stdin' for `-`, else the part before the first colon
 * (two letters at least, so a Windows drive `C:\` reads as a path).
 */
export function schemeOf(url: string): string {
  if (url === '-') return 'stdin';
  const m = /^([a-z][a-z0-9+.-]+):/i.exec(url);
  return m ? m[1].toLowerCase() : 'file';
}

/** The local path of a plain path or `file:` URL (`file:///abs`, `file:rel`), else undefined. */
export function localPath(url: string): string | undefined {
  if (schemeOf(url) !== 'file') return undefined;
  if (/^file:\/\//i.test(url)) return url.slice('file://'.length);
  if (/^file:/i.test(url)) return url.slice('file:'.length);
  return url;
}

/** Opens a URL through the scheme table; an unknown scheme is an error that lists the known ones. */
export function openUrl(url: string, opts: OpenOptions = {}): Readable {
  const scheme = schemeOf(url);
  const opener = openers.get(scheme);
  if (!opener) {
    const known = knownSchemes().map((s) => (s === 'stdin' ? '- (stdin)' : s === 'pipe' ? 'pipe:CMD' : s));
    throw inputError({ url }, `unsupported URL scheme "${scheme}"; supported: ${known.join(', ')} (plain paths are files)`);
  }
  return opener(url, opts);
}

/** Reads a whole URL into memory (small files: an image named by a CSV manifest), refusing more than `maxBytes`. */
export async function readUrl(url: string, opts: OpenOptions & { maxBytes?: number } = {}): Promise<Uint8Array> {
  const max = opts.maxBytes ?? Infinity;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const stream = openUrl(url, opts);
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > max) throw inputError({ url }, `file is over the limit of ${max} bytes (maxEntryBytes)`);
      chunks.push(chunk);
    }
  } finally {
    stream.destroy();
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

function openFile(url: string, opts: OpenOptions): Readable {
  const path = localPath(url) as string;
  if (path === '') throw inputError({ url }, 'empty file path');
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const which = path === url ? '' : ` ${path}`;
    const what = code === 'ENOENT' ? `no such file${which}` : `cannot open${which} (${(err as Error).message})`;
    throw inputError({ url }, what, err);
  }
  if (!isFile) throw inputError({ url }, `not a regular file (a directory spec expands to its shard files)`);
  return createReadStream(path, { signal: opts.signal, highWaterMark: 1 << 20 });
}
