import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import { Compute } from '../pipeline/compute.js';
import { adversarialTrainer } from '../pipeline/trainers.js';
import { formatEps } from '../stages/pgd.js';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext } from './defense.js';

/**
 * Adversarial fine-tuning (AFT), PBE's model-repair setting (Mu et al., CVPR 2023, §4 "AFT"; the authors'
 * aft_train.py): with a clean extra set, one round of fine-tuning in which every batch of the first
 * `adversarialEpochs` epochs is replaced by its untargeted L∞ PGD examples against the current model (the same
 * trainer as PBE's purification). Setting: clean (the clean extra set, its labels).
 *
 * Options (config/defenses/aft.json): epochs 20, adversarialEpochs 3 (the authors'), pgd.eps 0.05, alphaRatio
 * 0.2, steps 7 and lr 0.01 (this project's Fashion-MNIST preset for PBE; the authors' eps 6/255 is tuned for
 * CIFAR-10), momentum 0.9, weight decay 5e-4.
 *
 * Contract: the model is fine-tuned in place; a resumed run ends with the same weights.
 */
const schema = fineTuneSchema.extend({
  adversarialEpochs: z.number({ error: 'a non-negative integer' }).int({ error: 'a non-negative integer' }).nonnegative({ error: 'a non-negative integer' }),
  pgd: z.object({ eps: schemaParts.positive, alphaRatio: schemaParts.positive, steps: schemaParts.positiveInt, randomStart: z.boolean({ error: 'true or false' }) }),
});
type Config = z.infer<typeof schema>;

export const aft: Defense<Config> = {
  name: 'aft',
  title: 'adversarial fine-tuning on the clean extra set (PBE\'s model-repair setting)',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('aft', schema, sources),
  async run(model, ctx, config) {
    const compute = new Compute(model, ctx.compute);
    try {
      const { rows, pipeline } = await runPhases(ctx, { phase: 0, rows: [] }, [(run) => fineTune(model, spec(model, ctx, config, compute), run)]);
      return { rows, pipeline, info: {} };
    } finally {
      await compute.destroy();
    }
  },
  describe: (model: tf.LayersModel, ctx, config) => describeFineTune(model, spec(model, ctx, config, new Compute(model, ctx.compute))),
};

function spec(model: tf.LayersModel, ctx: DefenseContext, config: Config, compute: Compute) {
  const { eps, alphaRatio, steps, randomStart } = config.pgd;
  const pgd = { eps, alpha: eps * alphaRatio, steps, randomStart };
  return {
    corpus: requireClean(ctx, 'aft'),
    labels: givenLabels('aft trains on the labels of the clean extra set'),
    config,
    adversarialEpochs: config.adversarialEpochs,
    trainer: (optimizer: tf.Optimizer) =>
      adversarialTrainer(model, optimizer, compute, { pgd, attackSummary: `eps=${formatEps(eps)}, steps=${steps}`, weightDecay: config.optimizer.weightDecay, trainSummary: `train(sgd lr=${config.optimizer.lr})` }),
    shuffleBuffer: ctx.shuffleBuffer,
  };
}
