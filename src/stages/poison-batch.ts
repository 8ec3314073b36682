import { poisonedLabel, type PoisonMode } from '../attacks/poison.js';
import type { TriggerBuilder } from '../attacks/registry.js';
import type { Trigger } from '../attacks/trigger.js';
import { stage, type Stage } from '../pipeline/pipe.js';
import { createRng, hashUniform, shuffleInPlace } from '../pipeline/random.js';
import type { Batch } from './batch-types.js';

/** How `pbe train --attack` poisons each batch of clean data (the training-time control of WaNet and BppAttack). */
export interface BatchPoisoningOptions {
  /** The attack's name, for the pipeline's description. */
  attack: string;
  trigger: TriggerBuilder;
  target: number;
  /** Share of each batch that gets the trigger (clean-label: of the batch's target-class samples). */
  rate: number;
  mode: PoisonMode;
  numClasses: number;
  /** Seeds every draw together with the epoch's seed and the batch's index. */
  seed: number;
}

/** What one batch got: samples with the trigger, in the attack's noise mode, and negative samples. */
export interface BatchPoisoningCounts {
  samples: number;
  triggered: number;
  noise: number;
  negative: number;
}

/**
 * Poisons a fresh random subset of every batch, as WaNet's and BppAttack's training loops do (BackdoorBench's
 * attack/wanet.py and attack/bpp.py): round(rate·n) samples get the trigger and the poisoned label; of the others,
 * round(rate·noiseRatio·n) get the attack's noise mode (WaNet's warp + random grid noise) and round(negativeRatio·n)
 * become negative samples (BppAttack: the quantisation residual of another sample of the batch added), both with
 * their labels kept. Counts are rounded stochastically, so the expected shares are exact at any batch size. Every
 * draw of batch i comes from (seed, epochSeed, i): a resumed epoch sees the same batches.
 *
 *   pipe(batches, poisonBatches({ attack: 'wanet', trigger: triggerFor('wanet'), target: 0, rate: 0.1, mode: 'all2one', numClasses: 10, seed: 1 }, epochSeed))
 */
export function poisonBatches(opts: BatchPoisoningOptions, epochSeed: number, onBatch?: (counts: BatchPoisoningCounts) => void): Stage<Batch, Batch> {
  const triggers = new Map<string, Trigger>();
  return stage(`poison(${opts.attack} per batch, rate=${opts.rate}, target=${opts.mode === 'all2all' ? 'all2all' : opts.target})`, async function* (source) {
    let index = 0;
    for await (const b of source) {
      const [n, height, width, channels] = b.shape;
      const shapeKey = `${height}x${width}x${channels}`;
      let trigger = triggers.get(shapeKey);
      if (!trigger) {
        trigger = opts.trigger({ height, width, channels });
        triggers.set(shapeKey, trigger);
      }
      const rng = createRng(Math.floor(hashUniform(`${epochSeed}:${index++}`, opts.seed) * 2 ** 32));
      const count = (expected: number, available: number) => Math.min(available, Math.floor(expected) + (rng() < expected % 1 ? 1 : 0));
      const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), rng);
      const eligible = order.filter((i) => !trigger.cleanLabel || b.labels[i] === opts.target);
      const triggered = eligible.slice(0, count(opts.rate * eligible.length, eligible.length));
      const chosen = new Set(triggered);
      const rest = order.filter((i) => !chosen.has(i));
      const noisy = trigger.noise ? rest.splice(0, count(opts.rate * trigger.noiseRatio * n, rest.length)) : [];
      const negative = trigger.negative && n > 1 ? rest.splice(0, count(trigger.negativeRatio * n, rest.length)) : [];

      const per = height * width * channels;
      const x = b.x.slice();
      const labels = b.labels.slice();
      const pixels = (i: number) => b.x.subarray(i * per, (i + 1) * per);
      for (const i of triggered) {
        x.set(trigger.poison ? await trigger.poison(pixels(i), b.labels[i]) : trigger.apply(pixels(i)), i * per);
        if (!trigger.cleanLabel) labels[i] = poisonedLabel(b.labels[i], opts);
      }
      for (const i of noisy) x.set(trigger.noise!(pixels(i), rng), i * per);
      for (const i of negative) {
        const donor = (i + 1 + Math.floor(rng() * (n - 1))) % n; // any other sample of the batch
        x.set(trigger.negative!(pixels(i), pixels(donor)), i * per);
      }
      onBatch?.({ samples: n, triggered: triggered.length, noise: noisy.length, negative: negative.length });
      yield { ...b, x, labels };
    }
  });
}
