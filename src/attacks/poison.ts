import { createReadStream } from 'node:fs';
import { parse } from 'fast-csv';
import { createRng, hashUniform } from '../pipeline/random.js';
import { usageError } from '../errors.js';
import type { Sample } from '../sources/types.js';
import type { TriggerBuilder } from './registry.js';
import type { Trigger } from './trigger.js';

/**
 * One row of poison-manifest.csv: ground truth for evaluation only; purification never reads it.
 * `change` is "trigger" for a poisoned sample, "noise" for an attack's noise-mode sample (WaNet: changed, label
 * kept, not poisoned), "" otherwise; `label` is the label the sample was written with.
 */
export interface ManifestRow {
  key: string;
  poisoned: boolean;
  original_label: number | '';
  label: number | '';
  attack: string;
  change: 'trigger' | 'noise' | '';
}

export const manifestHeaders = ['key', 'poisoned', 'original_label', 'label', 'attack', 'change'];

/** all2one: every poisoned sample gets `target`; all2all: label y becomes (y + 1) mod numClasses. */
export type PoisonMode = 'all2one' | 'all2all';

export interface PoisonOptions {
  trigger: TriggerBuilder;
  target: number;
  /**
   * Share of samples poisoned, each independently by a seeded hash of its key. For a clean-label attack, the
   * share of the target class's samples (the others are never poisoned).
   */
  rate: number;
  seed: number;
  mode?: PoisonMode;
  /** Needed by all2all. */
  numClasses?: number;
}

/** The label a poisoned sample of label y gets. */
export function poisonedLabel(y: number, opts: { target: number; mode?: PoisonMode; numClasses?: number }): number {
  return opts.mode === 'all2all' ? (y + 1) % opts.numClasses! : opts.target;
}

/**
 * Poisoning: a seeded `rate` share of the samples gets the trigger (and, dirty-label, its poisoned label; a
 * clean-label attack poisons only target-class samples and keeps labels); an attack with a noise mode changes a
 * further rate·noiseRatio share by its noise and keeps their labels. Choices depend only on (key, seed), so
 * they do not change with shard order. Every sample yields a manifest row.
 */
export async function* poisonSamples(
  samples: AsyncIterable<Sample>,
  opts: PoisonOptions,
): AsyncIterable<{ sample: Sample; row: ManifestRow }> {
  if (opts.mode === 'all2all' && !(Number.isInteger(opts.numClasses) && opts.numClasses! > 1)) {
    throw usageError(`all2all poisoning needs the number of classes (an integer > 1), got ${opts.numClasses}`);
  }
  const triggers = new Map<string, Trigger>();
  for await (const s of samples) {
    const shapeKey = `${s.height}x${s.width}x${s.channels}`;
    let trigger = triggers.get(shapeKey);
    if (!trigger) {
      trigger = opts.trigger({ height: s.height, width: s.width, channels: s.channels });
      if (trigger.cleanLabel && opts.mode === 'all2all') throw usageError(`${trigger.attack} is a clean-label attack: it poisons the target class only and has no all2all mode`);
      triggers.set(shapeKey, trigger);
    }
    const label = s.label ?? '';
    const row: ManifestRow = { key: s.key, poisoned: false, original_label: label, label, attack: '', change: '' };
    const u = hashUniform(s.key, opts.seed);
    const eligible = !trigger.cleanLabel || s.label === opts.target;
    if (eligible && u < opts.rate) {
      if (s.label === undefined && !trigger.cleanLabel && opts.mode === 'all2all') throw usageError(`all2all poisoning needs labels; sample ${s.key} (${s.url}) has none`);
      const pixels = trigger.poison && s.label !== undefined ? await trigger.poison(s.pixels, s.label) : trigger.apply(s.pixels);
      const newLabel = trigger.cleanLabel ? s.label : poisonedLabel(s.label ?? 0, opts);
      Object.assign(row, { poisoned: true, label: newLabel ?? '', attack: trigger.attack, change: 'trigger' });
      yield { sample: { ...s, pixels, label: newLabel }, row };
    } else if (trigger.noise && u >= opts.rate && u < opts.rate * (1 + trigger.noiseRatio)) {
      Object.assign(row, { attack: trigger.attack, change: 'noise' });
      yield { sample: { ...s, pixels: trigger.noise(s.pixels, createRng(Math.floor(hashUniform(s.key, opts.seed + 1) * 2 ** 32))) }, row };
    } else {
      yield { sample: s, row };
    }
  }
}

/** poison-manifest.csv as key → poisoned (the ground truth a defense's suspicion is scored against). */
export async function readPoisonManifest(path: string): Promise<Map<string, boolean>> {
  const truth = new Map<string, boolean>();
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('error', reject)
      .pipe(parse({ headers: true }))
      .on('data', (row: { key: string; poisoned: string }) => truth.set(row.key, row.poisoned === '1'))
      .on('error', reject)
      .on('end', () => resolve());
  });
  return truth;
}
