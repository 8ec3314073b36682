import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { validatePurifyConfig, type PurifyConfig } from './schema.js';
import { configDir } from './paths.js';

/** defaults.json's inference batching, for passes that run without a purify config (evaluation, trigger search). */
export const defaultInferenceBatching: { batchSize: number; batchMiB: number } = JSON.parse(readFileSync(join(configDir, 'defaults.json'), 'utf8')).inference;

export async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    const { $comment: _comment, ...rest } = JSON.parse(await readFile(path, 'utf8'));
    return rest;
  } catch (err) {
    throw usageError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
}

/** Deep merge of plain objects; arrays and scalars from `over` replace those in `base`. */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergeConfig(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export async function presetNames(): Promise<string[]> {
  const files = await readdir(join(configDir, 'presets'));
  return files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** defaults.json, then the preset, then a user file, then CLI overrides; validated once. */
export async function loadPurifyConfig(opts: {
  preset?: string;
  file?: string;
  overrides?: Record<string, unknown>;
}): Promise<PurifyConfig> {
  let merged = await readJson(join(configDir, 'defaults.json'));
  if (opts.preset) {
    const names = await presetNames();
    if (!names.includes(opts.preset)) {
      throw usageError(`unknown preset "${opts.preset}"; known presets: ${names.join(', ')}`);
    }
    merged = mergeConfig(merged, await readJson(join(configDir, 'presets', `${opts.preset}.json`)));
  }
  if (opts.file) merged = mergeConfig(merged, await readJson(opts.file));
  if (opts.overrides) merged = mergeConfig(merged, opts.overrides);
  return validatePurifyConfig(merged);
}
