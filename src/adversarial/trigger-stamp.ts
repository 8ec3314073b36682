import { stage, type Stage } from '../pipeline/pipe.js';
import type { Batch } from '../stages/batch-types.js';
import { triggerUnlearning, type TriggerUnlearningOptions } from './trigger-unlearning.js';

/**
 * The trigger-unlearning generator as a stage of the fine-tuning chain: stamps the recovered trigger on its
 * seeded share of each batch's samples, and gives the samples in `relabel` (likely poisoned, from
 * adversarial/repair.ts) the label found for them there.
 *
 *   pipe(batches, unlearnTrigger({ trigger, share: 0.3, seed: epochSeed, relabel: new Map() }), train)
 */
export function unlearnTrigger(opts: TriggerUnlearningOptions & { seed: number; relabel: ReadonlyMap<string, number> }): Stage<Batch, Batch> {
  const { seed, relabel } = opts;
  return stage(`unlearn(${triggerUnlearning.describe(opts)}, ${relabel.size} suspects relabelled)`, async function* (source) {
    for await (const b of source) {
      const x = triggerUnlearning.generate({ x: b.x, shape: b.shape, labels: b.labels, keys: b.keys, seed }, opts);
      const labels = Int32Array.from(b.keys, (key, i) => relabel.get(key) ?? b.labels[i]);
      yield { ...b, x, labels };
    }
  });
}
