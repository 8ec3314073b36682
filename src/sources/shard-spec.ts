import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { localPath } from './open.js';

/**
 * Shard lists, as in WebDataset: brace expansion, several specs joined, local directories and `*` patterns,
 * and a partition for one worker of many.
 *
 *   expandShardSpec('data/train-{0000..0002}.tar s3://b/x-{a,b}.tar')
 *   // ['data/train-0000.tar', 'data/train-0001.tar', 'data/train-0002.tar', 's3://b/x-a.tar', 's3://b/x-b.tar']
 *   partitionShards(urls, 1, 4)  // urls[1], urls[5], ...
 */

/** File endings that make a local directory a directory of shards (tar, msgpack); one without is an image folder. */
export const SHARD_EXTENSIONS = ['.tar', '.msgpack', '.mpk'];

/** More shards than this from one spec is taken for a typo (`{0..99999999}`). */
export const MAX_EXPANDED_SHARDS = 1_000_000;

/**
 * Expands whitespace-separated specs (a `pipe:CMD` spec is one, spaces and all), in order: braces first (`{0000..0099}` keeps the zero padding,
 * `{a,b}` lists, nesting allowed), then, for local paths only, a directory becomes its sorted shard files and a
 * `*`/`?` in the file name matches the files of its directory. Duplicates are kept: a spec means what it says.
 */
export function expandShardSpec(spec: string | readonly string[]): string[] {
  // a pipe: URL is a shell command: its spaces belong to it (braces still expand, as in WebDataset)
  const words = (typeof spec === 'string' ? [spec] : spec).flatMap((s) => (/^\s*pipe:/i.test(s) ? [s.trim()] : s.split(/\s+/))).filter((w) => w !== '');
  if (words.length === 0) throw usageError(`expandShardSpec(): the shard spec is empty (got ${JSON.stringify(spec)})`);
  return words.flatMap((word) => expandBraces(word).flatMap(expandLocal));
}

/** Brace expansion of one word, left to right, like bash and Python's braceexpand. */
export function expandBraces(word: string): string[] {
  const open = word.indexOf('{');
  if (open < 0) {
    if (word.includes('}')) throw usageError(`shard spec "${word}": "}" without a matching "{"`);
    return [word];
  }
  const close = findMatchingClose(word, open);
  const head = word.slice(0, open);
  const body = word.slice(open + 1, close);
  const tails = expandBraces(word.slice(close + 1));
  const alternatives = braceAlternatives(body, word);
  if (alternatives.length * tails.length > MAX_EXPANDED_SHARDS) {
    throw usageError(`shard spec "${word}" expands to more than ${MAX_EXPANDED_SHARDS} names`);
  }
  const out: string[] = [];
  for (const alt of alternatives) for (const tail of tails) out.push(head + alt + tail);
  return out;
}

function findMatchingClose(word: string, open: number): number {
  let depth = 0;
  for (let i = open; i < word.length; i++) {
    if (word[i] === '{') depth++;
    else if (word[i] === '}' && --depth === 0) return i;
  }
  throw usageError(`shard spec "${word}": "{" at position ${open} is never closed`);
}

/** The expanded alternatives of one brace body: a numeric range, a comma list, or (no comma) the literal `{body}`. */
function braceAlternatives(body: string, word: string): string[] {
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  if (range) return numericRange(range[1], range[2], word);
  const parts = splitTopLevelCommas(body);
  if (parts.length === 1) return expandBraces(body).map((b) => `{${b}}`);
  return parts.flatMap((p) => expandBraces(p));
}

function numericRange(a: string, b: string, word: string): string[] {
  const from = Number(a);
  const to = Number(b);
  const count = Math.abs(to - from) + 1;
  if (count > MAX_EXPANDED_SHARDS) throw usageError(`shard spec "${word}": range {${a}..${b}} has ${count} values, more than ${MAX_EXPANDED_SHARDS}`);
  const padded = (s: string) => /^-?0\d/.test(s);
  const width = padded(a) || padded(b) ? Math.max(a.length, b.length) : 0;
  const step = from <= to ? 1 : -1;
  const out: string[] = [];
  for (let n = from; ; n += step) {
    const digits = String(Math.abs(n)).padStart(width - (n < 0 ? 1 : 0), '0');
    out.push(n < 0 ? `-${digits}` : digits);
    if (n === to) break;
  }
  return out;
}

function splitTopLevelCommas(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '{') depth++;
    else if (body[i] === '}') depth--;
    else if (body[i] === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

/**
 * A local directory → its sorted shards (or, with none, itself: an image folder); a local `dir/name-*.tar` → the
 * matching files, sorted; anything else as is.
 */
function expandLocal(url: string): string[] {
  const path = localPath(url);
  const wild = /[*?]/;
  if (path === undefined) {
    if (wild.test(url)) throw usageError(`shard spec "${url}": "*" and "?" patterns are only supported for local paths`);
    return [url];
  }
  const prefix = url.slice(0, url.length - path.length);
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '.' : path.slice(0, slash) || '/';
  const name = path.slice(slash + 1);
  if (wild.test(name)) {
    if (wild.test(path.slice(0, slash + 1))) throw usageError(`shard spec "${url}": "*" and "?" are only supported in the file name, not in directories`);
    const re = new RegExp('^' + name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
    const matches = listFiles(dir, url).filter((f) => re.test(f));
    if (matches.length === 0) throw usageError(`shard spec "${url}" matches no file in ${dir}`);
    return matches.map((f) => prefix + (slash < 0 ? f : join(path.slice(0, slash + 1), f)));
  }
  if (isDirectory(path)) {
    const shards = listFiles(path, url).filter((f) => SHARD_EXTENSIONS.some((ext) => f.endsWith(ext)));
    if (shards.length === 0) return [url]; // an image folder (class subfolders)
    return shards.map((f) => prefix + join(path, f));
  }
  return [url];
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function listFiles(dir: string, url: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() || e.isSymbolicLink())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    throw usageError(`shard spec "${url}": cannot list directory ${dir} (${(err as Error).message})`);
  }
}

/**
 * The shards of partition `shardIndex` of `numShards`, round robin (`urls[i]` with `i % numShards === shardIndex`),
 * so every shard is in exactly one partition. An empty partition is an error: the job would do nothing.
 */
export function partitionShards<T>(urls: readonly T[], shardIndex: number, numShards: number): T[] {
  if (!Number.isInteger(numShards) || numShards < 1) {
    throw usageError(`partitionShards(): numShards is expected to be a positive integer, but got ${numShards}`);
  }
  if (!Number.isInteger(shardIndex) || shardIndex < 0 || shardIndex >= numShards) {
    throw usageError(`partitionShards(): shardIndex is expected to be an integer in [0, ${numShards - 1}], but got ${shardIndex}`);
  }
  const part = urls.filter((_, i) => i % numShards === shardIndex);
  if (part.length === 0) {
    throw usageError(`partitionShards(): partition ${shardIndex} of ${numShards} is empty: there are only ${urls.length} shards`);
  }
  return part;
}
