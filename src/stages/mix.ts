import { stage, type Stage } from '../pipeline/pipe.js';
import { createRng } from '../pipeline/random.js';
import type { EpochPlan } from '../pipeline/controller.js';
import type { Batch } from './batch-types.js';

/**
 * Marks which batches of an epoch become adversarial, per the controller's plan: each of the first
 * `maxAdversarialBatches` batches with probability `adversarialShare` (seeded).
 *
 *   pipe(batches, mix(controller.plan(t, e), seed), pgd(...))
 */
export function mix(plan: EpochPlan, seed: number): Stage<Batch, Batch> {
  const limit = plan.maxAdversarialBatches === null ? 'all' : String(plan.maxAdversarialBatches);
  return stage(`mix(adversarial=${plan.adversarialShare}, first ${limit} batches)`, async function* (source) {
    const rng = createRng(seed);
    let index = 0;
    for await (const b of source) {
      const inWindow = plan.maxAdversarialBatches === null || index < plan.maxAdversarialBatches;
      index++;
      const draw = rng();
      yield { ...b, adversarial: inWindow && plan.adversarialShare > 0 && draw < plan.adversarialShare };
    }
  });
}
