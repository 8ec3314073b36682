import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attackOptionError, usageError } from '../errors.js';
import { configDir } from '../config/paths.js';
import type { Attack } from './trigger.js';

/** An attack's defaults: config/attacks/<name>.json. */
export interface AttackDefaults {
  /** Share of samples poisoned; for a clean-label attack, the share of the target class's samples. */
  rate: number;
  /**
   * How the bench trains an infected model: `data` on the shards `pbe poison` writes, `per-batch` with
   * `pbe train --attack` on clean shards (a fresh poisoned subset of every batch, the attack's noise and negative
   * samples: how WaNet and BppAttack train). Default `data`.
   */
  training: AttackTraining;
  options: Record<string, unknown>;
}

export type AttackTraining = 'data' | 'per-batch';
const trainings: readonly AttackTraining[] = ['data', 'per-batch'];

export function attackDefaults(name: string): AttackDefaults {
  const path = join(configDir, 'attacks', `${name}.json`);
  let parsed: { rate?: unknown; training?: unknown; options?: unknown };
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw usageError(`cannot read the defaults of attack "${name}" from ${path}: ${(err as Error).message}`);
  }
  const { rate, training = 'data', options } = parsed;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw attackOptionError(`${name}.rate`, `a number in [0, 1] (in ${path})`, rate);
  if (!trainings.includes(training as AttackTraining)) throw attackOptionError(`${name}.training`, `one of ${trainings.join(', ')} (in ${path})`, training);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw attackOptionError(`${name}.options`, `an object (in ${path})`, options);
  return { rate, training: training as AttackTraining, options: options as Record<string, unknown> };
}

/**
 * `--attack-option k=v` pairs as an object. A value is read as JSON when it parses (numbers, true/false, null,
 * arrays such as [[13,13],[27,27]], quoted strings), else as a plain string (a file name, "top-left").
 */
export function parseAttackOptions(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--attack-option expects key=value, got "${pair}"`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

/** The attack's defaults overridden by `overrides`, validated by its schema; a bad option names itself. */
export function resolveOptions<O>(attack: Attack<O>, overrides: Record<string, unknown>): O {
  const merged = { ...attackDefaults(attack.name).options, ...overrides };
  const result = attack.options.safeParse(merged);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    throw attackOptionError(`${attack.name}.${issue.keys[0]}`, `one of ${Object.keys(attackDefaults(attack.name).options).join(', ')}`, 'an unknown option');
  }
  const path = issue.path.map(String);
  return fail(`${attack.name}.${path.join('.')}`, issue.message, valueAt(merged, path));
}

function fail(path: string, expected: string, actual: unknown): never {
  throw attackOptionError(path, expected, actual);
}

function valueAt(input: unknown, path: string[]): unknown {
  let value = input;
  for (const p of path) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[p] : undefined;
  return value;
}
