import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { inputError } from '../errors.js';

/**
 * Opening a URL as a byte stream, dispatched through a table of schemes (WebDataset's gopen).
 *
 *   openUrl('data/train-000000.tar')          // local path
 *   openUrl('file:///data/train-000000.tar')  // same, as a URL
 *   registerScheme('https', (url, opts) => ...) // how http(s), s3, gs, pipe: and `-` (stdin) slot in
 */

export interface OpenOptions {
  signal?: AbortSignal;
}

/** Opens one URL. May throw at once (a local file that is missing) or emit 'error' on the stream later. */
export type Opener = (url: string, opts: OpenOptions) => Readable;

const openers = new Map<string, Opener>([['file', openFile]]);

/** Adds (or replaces) the opener of a scheme, e.g. 'https', 's3', 'gs', 'pipe', 'stdin'. */
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
    throw inputError({ url }, `unsupported URL scheme "${scheme}"; supported: ${knownSchemes().join(', ')} (plain paths are files)`);
  }
  return opener(url, opts);
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
