import { hashUniform } from '../pipeline/random.js';
import type { AdversarialGenerator, GeneratorBatch } from './generator.js';
import { stamp, type InvertedTrigger } from './trigger-inversion.js';

export interface TriggerUnlearningOptions {
  /** The flagged class's trigger, and those of classes that tie with it: a stamped sample gets one, drawn by its key. */
  triggers: Pick<InvertedTrigger, 'mask' | 'pattern' | 'target'>[];
  /** Share of the samples that carry a trigger. */
  share: number;
}

/**
 * Trigger unlearning (Neural Cleanse's mitigation, Wang et al., S&P 2019 §VI-C): a seeded share of the samples
 * carry the trigger recovered by masked inversion (adversarial/trigger-probe.ts), x' = (1 − m)·x + m·p, and keep
 * their training label, so fine-tuning teaches the model that the trigger does not mean its class. Threat model:
 * a mask-bounded change of any strength (patches, stamped objects) that L∞ PGD cannot reach. Chosen when
 * inversion finds a class whose trigger is an outlier by size.
 *
 * Contract: a sample is stamped or left untouched, and with which trigger, by (key, seed) alone; a stamped sample
 * changes only where its trigger's mask is non-zero and stays in [0,1] (a convex combination of two images in [0,1]).
 *
 *   const x2 = triggerUnlearning.generate({ model, x, shape, labels, keys, seed }, { triggers: [trigger], share: 0.3 });
 */
export const triggerUnlearning: AdversarialGenerator<TriggerUnlearningOptions> = {
  name: 'trigger-unlearning',
  paper: 'Wang et al., Neural Cleanse, S&P 2019',
  describe: (o) => `the recovered trigger${o.triggers.length > 1 ? 's' : ''} of class${o.triggers.length > 1 ? 'es' : ''} ${o.triggers.map((t) => t.target).join(', ')} on ${o.share} of samples`,
  generate({ x, shape, keys, seed }: GeneratorBatch, { triggers, share }: TriggerUnlearningOptions): Float32Array {
    const per = shape[1] * shape[2] * shape[3];
    const out = x.slice();
    keys.forEach((key, i) => {
      if (isStamped(key, seed, share)) stamp(triggers[drawnIndex(key, seed, triggers.length)], x.subarray(i * per, (i + 1) * per), shape[3], out, i * per);
    });
    return out;
  },
};

export function isStamped(key: string, seed: number, share: number): boolean {
  return hashUniform(key, seed) < share;
}

/** Which of `count` changes a stamped sample gets, by (key, seed) alone. */
export function drawnIndex(key: string, seed: number, count: number): number {
  return count === 1 ? 0 : Math.min(count - 1, Math.floor(hashUniform(key, seed + 1) * count));
}
