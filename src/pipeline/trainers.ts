import type * as tf from '@tensorflow/tfjs';
import { attackStats, formatEps, inProcessAttacker, pgd, type Attacker, type PgdOptions } from '../stages/pgd.js';
import { applyFlatGradients, trainStep } from '../stages/train.js';
import { weightsSnapshot, type WeightsSnapshot } from './compute-pool.js';
import type { Compute } from './compute.js';
import type { Trainer } from './engine.js';

/**
 * Trainers: how the engine turns a batch into a train step. Each returns the step, the stages that prepare its
 * batches and a summary for the pipeline description.
 */

/** One optimizer step on the batch's cross-entropy (plus weight decay); batches marked adversarial are trained on as they are. */
export function plainTrainer(model: tf.LayersModel, optimizer: tf.Optimizer, opts: { weightDecay: number; summary: string }): Trainer {
  return {
    stages: [],
    step: async (b) => ({ loss: trainStep(model, optimizer, b, opts.weightDecay) }),
    summary: opts.summary,
  };
}

export interface AdversarialTrainerOptions {
  pgd: PgdOptions;
  /** How the attack is described (default: its eps and steps). */
  attackSummary?: string;
  weightDecay: number;
  /** The train step's summary, e.g. `train(sgd lr=0.01)`. */
  trainSummary: string;
}

/**
 * Adversarial fine-tuning: batches marked adversarial by mix are replaced by their untargeted PGD examples
 * against the current model before the step. By where the compute runs:
 *  - main thread: a pgd stage attacks adversarial batches, then one step here;
 *  - pool, weights every epoch: the pgd stage attacks the next batches on the workers (look-ahead, with the
 *    weights the epoch started with, kept in checkpoints) while the main thread takes the steps;
 *  - pool, weights every step (exact): data-parallel; each worker attacks its part of the batch and computes that
 *    part's gradients with the current weights, and the main thread sums them and applies the step.
 */
export function adversarialTrainer(model: tf.LayersModel, optimizer: tf.Optimizer, compute: Compute, opts: AdversarialTrainerOptions): Trainer {
  const numClasses = model.outputs[0].shape[1] as number;
  const attack = opts.attackSummary ?? `eps=${formatEps(opts.pgd.eps)}, steps=${opts.pgd.steps}`;
  const { workers, weightsRefresh } = compute.options;
  if (workers > 0 && weightsRefresh === 'steps') {
    return {
      stages: [],
      step: async (b) => {
        const pool = compute.pool();
        pool.refreshWeights(model); // the model as it stands: after the last step, or as restored from a checkpoint
        const { grads, lossSum, predicted } = await pool.gradients(b, b.adversarial ? opts.pgd : null);
        applyFlatGradients(model, optimizer, grads, opts.weightDecay);
        return { loss: lossSum / b.keys.length, attack: predicted ? attackStats(predicted, b.labels, numClasses) : undefined };
      },
      summary: `pgd+gradients(${attack}, data-parallel on ${workers} worker${workers === 1 ? '' : 's'}) -> ${opts.trainSummary}`,
    };
  }
  const attacker: Attacker = workers > 0 ? (b) => compute.pool().pgd(b.x, b.labels, b.shape, opts.pgd) : inProcessAttacker(() => model, opts.pgd);
  const where = workers > 0 ? `${workers} workers, weights every epoch` : 'main thread';
  return {
    stages: [pgd(attacker, { pgd: opts.pgd, numClasses, lookahead: workers, where, summary: attack })],
    step: async (b) => ({ loss: trainStep(model, optimizer, b, opts.weightDecay), attack: b.attack }),
    summary: opts.trainSummary,
    beginEpoch:
      workers > 0
        ? (saved) => {
            // the epoch's attacks all use the weights it started with, also after a resume in the middle of it
            const weights = (saved as WeightsSnapshot | undefined) ?? weightsSnapshot(model);
            compute.pool().useWeights(weights);
            return weights;
          }
        : undefined,
  };
}
