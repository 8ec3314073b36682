import { stage, type Stage } from '../pipeline/pipe.js';
import type { Batch } from '../stages/batch-types.js';
import type { AdversarialGenerator } from './generator.js';
import { perturbationUnlearning, type PerturbationUnlearningOptions } from './perturbation-unlearning.js';
import { triggerUnlearning, type TriggerUnlearningOptions } from './trigger-unlearning.js';

/**
 * An unlearning generator as a stage of the fine-tuning chain: changes its seeded share of each batch's samples
 * (the recovered trigger stamped, or the universal perturbation added), and gives the samples in `relabel` (likely
 * poisoned, from adversarial/repair.ts) the label found for them there.
 *
 *   pipe(batches, unlearnTrigger({ triggers: [trigger], share: 0.3, seed: epochSeed, relabel: new Map() }), train)
 */
export function unlearnTrigger(opts: TriggerUnlearningOptions & { seed: number; relabel: ReadonlyMap<string, number> }): Stage<Batch, Batch> {
  return unlearnWith(triggerUnlearning, opts);
}

/** The perturbation-unlearning generator as a stage (no relabelling: its suspects are not known). */
export function unlearnPerturbation(opts: PerturbationUnlearningOptions & { seed: number }): Stage<Batch, Batch> {
  return unlearnWith(perturbationUnlearning, { ...opts, relabel: new Map() });
}

function unlearnWith<O>(generator: AdversarialGenerator<O>, opts: O & { seed: number; relabel: ReadonlyMap<string, number> }): Stage<Batch, Batch> {
  const { seed, relabel } = opts;
  return stage(`unlearn(${generator.describe(opts)}, ${relabel.size} suspects relabelled)`, async function* (source) {
    for await (const b of source) {
      const x = generator.generate({ x: b.x, shape: b.shape, labels: b.labels, keys: b.keys, seed }, opts);
      const labels = Int32Array.from(b.keys, (key, i) => relabel.get(key) ?? b.labels[i]);
      yield { ...b, x, labels };
    }
  });
}
