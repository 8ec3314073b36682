import { createHash } from 'node:crypto';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { usageError } from '../errors.js';

/**
 * The cells of a `pbe bench` matrix and the hashes that say when a cached result still holds: an infected model
 * is reused while its data, attack settings, seed and training settings are the same; a defense's result while
 * also its config is.
 */
export interface Cell {
  attack: string;
  defense: string;
  seed: number;
}

/** Seed by seed, attack by attack, so a bench stopped early has whole attacks done. */
export function benchCells(attacks: readonly string[], defenses: readonly string[], seeds: readonly number[]): Cell[] {
  return seeds.flatMap((seed) => attacks.flatMap((attack) => defenses.map((defense) => ({ attack, defense, seed }))));
}

/** Paths under the bench's `--out`, written relative to it for cache keys: a moved or copied bench keeps its cache. */
export function outRelative(paths: readonly string[], out: string): string[] {
  const root = resolve(out) + sep;
  return paths.map((p) => (resolve(p).startsWith(root) ? `$OUT${sep}${relative(resolve(out), resolve(p))}` : p));
}

/** An attack's settings with absolute paths among its options (lc's clean model, cached under `--out`) made out-relative. */
export function outRelativeSettings<T extends { options: unknown }>(settings: T, out: string): T {
  if (!settings.options || typeof settings.options !== 'object') return settings;
  const options = Object.entries(settings.options as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' && isAbsolute(v) ? outRelative([v], out)[0] : v]);
  return { ...settings, options: Object.fromEntries(options) };
}

/** A short hash of a JSON value, the same for the same content whatever the key order. */
export function settingsHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 12);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * A comma-separated selection of known names ("all" or absent: every one), in the registry's order, each name
 * checked.
 */
export function pickNames(flag: string, value: string | undefined, known: readonly string[], fallback: readonly string[] = known): string[] {
  if (value === undefined) return [...fallback];
  if (value.trim() === 'all') return [...known];
  const asked = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = asked.filter((n) => !known.includes(n));
  if (unknown.length) throw usageError(`${flag}: unknown ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${known.join(', ')}`);
  if (!asked.length) throw usageError(`${flag}: name at least one of ${known.join(', ')}`);
  return known.filter((n) => asked.includes(n));
}

export function parseSeeds(value: string): number[] {
  const seeds = value.split(',').map((s) => s.trim());
  if (seeds.some((s) => !/^\d+$/.test(s))) throw usageError(`--seeds expects comma-separated non-negative integers such as 1,2,3, got "${value}"`);
  return [...new Set(seeds.map(Number))];
}

/** The `--attack-option NAME:key=value` flags of one attack, as `key=value`. */
export function attackOptionsFor(attack: string, options: readonly string[]): string[] {
  return options.flatMap((o) => {
    const m = /^([a-z0-9-]+):(.+=.*)$/.exec(o);
    if (!m) throw usageError(`--attack-option expects ATTACK:key=value in a bench (e.g. badnets:position=top-left), got "${o}"`);
    return m[1] === attack ? [m[2]] : [];
  });
}
