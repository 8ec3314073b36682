import { hashUniform } from '../pipeline/random.js';
import type { Sample } from '../sources/types.js';
import type { TriggerBuilder, PatternTrigger } from './pattern-trigger.js';

/** One row of poison-manifest.csv: ground truth for evaluation only; purification never reads it. */
export interface ManifestRow {
  key: string;
  poisoned: boolean;
  original_label: number | '';
}

export interface PoisonOptions {
  trigger: TriggerBuilder;
  target: number;
  /** Share of samples poisoned (all-to-one): each sample independently, by a seeded hash of its key. */
  rate: number;
  seed: number;
}

/**
 * All-to-one poisoning: a seeded `rate` share of the samples gets the trigger and the target label. The choice
 * depends only on (key, seed), so it does not change with shard order. Every sample yields a manifest row.
 */
export async function* poisonSamples(
  samples: AsyncIterable<Sample>,
  opts: PoisonOptions,
): AsyncIterable<{ sample: Sample; row: ManifestRow }> {
  const triggers = new Map<string, PatternTrigger>();
  for await (const s of samples) {
    const row: ManifestRow = { key: s.key, poisoned: false, original_label: s.label ?? '' };
    if (hashUniform(s.key, opts.seed) >= opts.rate) {
      yield { sample: s, row };
      continue;
    }
    const shapeKey = `${s.height}x${s.width}x${s.channels}`;
    let trigger = triggers.get(shapeKey);
    if (!trigger) {
      trigger = opts.trigger({ height: s.height, width: s.width, channels: s.channels });
      triggers.set(shapeKey, trigger);
    }
    row.poisoned = true;
    yield { sample: { ...s, pixels: trigger.apply(s.pixels), label: opts.target }, row };
  }
}
