import type * as tf from '@tensorflow/tfjs';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext, type FineTuneConfig } from './defense.js';

/**
 * Fine-tuning (FT): the plain baseline of every backdoor-defense benchmark (e.g. BackdoorBench, Wu et al.,
 * NeurIPS 2022 Datasets and Benchmarks): SGD on cross-entropy over a small clean extra set, starting from the
 * infected model. Setting: clean (the clean extra set, its labels).
 *
 * Options (config/defenses/ft.json): seed, batchSize (128), epochs (20), optimizer.lr (0.01), optimizer.momentum
 * (0.9), optimizer.weightDecay (5e-4). BackdoorBench runs 100 epochs with a cosine schedule on 5% of the
 * training set; the learning rate here is constant.
 *
 * Contract: the model is fine-tuned in place; every epoch is checkpointed and a resumed run ends with the same
 * weights.
 */
export const ft: Defense<FineTuneConfig> = {
  name: 'ft',
  title: 'fine-tuning on the clean extra set',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('ft', fineTuneSchema, sources),
  async run(model, ctx, config) {
    const state = { phase: 0, rows: [] };
    const { rows, pipeline } = await runPhases(ctx, state, [(run) => fineTune(model, spec(ctx, config), run)]);
    return { rows, pipeline, info: {} };
  },
  describe: (model: tf.LayersModel, ctx, config) => describeFineTune(model, spec(ctx, config)),
};

function spec(ctx: DefenseContext, config: FineTuneConfig) {
  return { corpus: requireClean(ctx, 'ft'), labels: givenLabels('ft trains on the labels of the clean extra set'), config, shuffleBuffer: ctx.shuffleBuffer };
}
