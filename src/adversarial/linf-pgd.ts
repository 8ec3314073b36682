import * as tf from '@tensorflow/tfjs';
import { pgdExamples, type PgdOptions } from '../stages/pgd.js';
import type { AdversarialGenerator, GeneratorBatch } from './generator.js';

/**
 * Untargeted L∞ PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018),
 * PBE's generator (Mu et al., CVPR 2023): maximise cross-entropy against the training label with signed
 * steps of alpha, projected to the eps ball around x and to [0,1], against the current model in inference mode.
 * Threat model: a small perturbation of every pixel; a blended trigger lives there, a small patch does not.
 * Chosen when the probe's PGD flips pile up on one class (stages/pgd.ts runs it in the pipeline and on workers).
 *
 * Contract: every sample changes, |x' − x|∞ ≤ eps, x' in [0,1]; deterministic (no random start) for a model.
 *
 *   const adv = linfPgd.generate({ model, x, shape, labels, keys, seed }, { eps: 0.05, alpha: 0.01, steps: 7, randomStart: false });
 */
export const linfPgd: AdversarialGenerator<PgdOptions> = {
  name: 'linf-pgd',
  paper: 'Madry et al., ICLR 2018; as PBE uses it (Mu et al., CVPR 2023)',
  describe: (o) => `L∞ PGD (eps ${o.eps}, ${o.steps} steps)`,
  generate({ model, x, shape, labels }: GeneratorBatch, opts: PgdOptions): Float32Array {
    if (!model) throw new Error('linf-pgd: generate() needs the model to attack');
    return tf.tidy(() => pgdExamples(model, tf.tensor4d(x, shape), tf.tensor1d(labels, 'int32'), opts).dataSync() as Float32Array);
  },
};
