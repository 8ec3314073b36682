import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import type { Trainer } from '../pipeline/engine.js';
import { writeSampleScores } from '../report/run-dir.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';
import { applyGradients, batchGradients } from '../stages/train.js';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, labelledSamples, loadDefenseConfig, runPhases, type Defense, type DefenseContext } from './defense.js';

/**
 * Anti-Backdoor Learning (Li, Lyu, Koren, Lyu, Li, Ma, "Anti-Backdoor Learning: Training Clean Models on
 * Poisoned Data", NeurIPS 2021), in the model-repair setting: the infected model is given, so its own
 * per-sample loss isolates the suspects (a backdoor is learnt faster than the task, so poisoned samples have the
 * lowest loss). Setting: none (the given data and its labels; no clean extra set).
 *
 * 1. Isolation: cross-entropy of each sample of the given data under the infected model; the lowest
 *    `isolationRatio` are isolated.
 * 2. Fine-tuning on the rest (`epochs`, `optimizer`).
 * 3. Unlearning: gradient ascent on the isolated samples (minimise -CE; weight decay as usual) for
 *    `unlearnEpochs` at `unlearnLr`.
 *
 * Options (config/defenses/abl.json): isolationRatio 0.01, unlearnEpochs 20, unlearnLr 5e-4 (BackdoorBench's
 * isolation_ratio, unlearning_epochs, lr_unlearning_init), fine-tuning 5 epochs at lr 0.01 (BackdoorBench: 60,
 * after 20 epochs of LGA training from scratch, which this setting replaces by the given model).
 *
 * Contract: the model is repaired in place; suspicion = -loss (scores.csv, flagged = isolated); a resumed run
 * ends with the same weights.
 */
const schema = fineTuneSchema.extend({
  isolationRatio: schemaParts.fraction,
  unlearnEpochs: schemaParts.positiveInt,
  unlearnLr: schemaParts.positive,
});
type Config = z.infer<typeof schema>;

interface AblState {
  phase: number;
  rows: never[];
  keys: string[];
  urls: string[];
  losses: Float32Array;
  isolated: string[];
}

export const abl: Defense<Config> = {
  name: 'abl',
  title: 'Anti-Backdoor Learning unlearning (Li et al., NeurIPS 2021), without clean data',
  data: 'none',
  loadConfig: (sources) => loadDefenseConfig('abl', schema, sources),
  async run(model, ctx, config) {
    const resumed = ctx.checkpoint?.resume?.state.algorithm as AblState | undefined;
    const state: AblState = resumed ?? isolate(model, await labelledSamples(ctx.data, 'abl'), config, ctx.log);
    const rest = () => { const isolated = new Set(state.isolated); return new Set(state.keys.filter((k) => !isolated.has(k))); };
    const { rows, pipeline } = await runPhases(ctx, state, [
      (run) => fineTune(model, { ...spec(ctx, config), keys: rest(), keysName: 'rest' }, run),
      (run) => fineTune(model, unlearnSpec(model, ctx, config, new Set(state.isolated)), run),
    ]);
    const scores = { keys: state.keys, urls: state.urls, suspicion: state.losses.map((l) => -l), flagged: new Set(state.isolated) };
    return { rows, pipeline, info: { isolated: state.isolated.length }, scores, writeFiles: (dir) => writeSampleScores(dir, scores) };
  },
  describe: (model, ctx, config) =>
    `isolate(lowest loss ${config.isolationRatio}) then ${describeFineTune(model, { ...spec(ctx, config), keys: new Set(), keysName: 'rest' })}; then ${describeFineTune(model, unlearnSpec(model, ctx, config, new Set()))}`,
};

function spec(ctx: DefenseContext, config: Config) {
  return { corpus: ctx.data, labels: givenLabels('abl needs the given data\'s labels'), config, shuffleBuffer: ctx.shuffleBuffer };
}

function unlearnSpec(model: tf.LayersModel, ctx: DefenseContext, config: Config, isolated: Set<string>) {
  const unlearn = { ...config, epochs: config.unlearnEpochs, optimizer: { ...config.optimizer, lr: config.unlearnLr } };
  return { ...spec(ctx, unlearn), keys: isolated, keysName: 'isolated', trainer: (optimizer: tf.Optimizer) => ascentTrainer(model, optimizer, unlearn) };
}

/** One step of gradient ascent on the batch's cross-entropy (the gradient of -CE, plus weight decay). */
function ascentTrainer(model: tf.LayersModel, optimizer: tf.Optimizer, config: Config): Trainer {
  return {
    stages: [],
    summary: `unlearn(gradient ascent, sgd lr=${config.optimizer.lr})`,
    step: async (b) =>
      tf.tidy(() => {
        const { grads, lossSum } = batchGradients(model, tf.tensor4d(b.x, b.shape), b.labels, b.shape[0]);
        applyGradients(model, optimizer, grads.map((g) => g.neg()), config.optimizer.weightDecay);
        return { loss: lossSum / b.shape[0] };
      }),
  };
}

function isolate(model: tf.LayersModel, samples: Sample[], config: Config, log: DefenseContext['log']): AblState {
  const losses = new Float32Array(samples.length);
  const numClasses = model.outputs[0].shape[1] as number;
  for (let start = 0; start < samples.length; start += 256) {
    const b = pack(samples.slice(start, start + 256).map((s) => ({ ...s, label: s.label! })));
    const values = tf.tidy(() => {
      const logits = model.predict(tf.tensor4d(b.x, b.shape)) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(b.labels, 'int32'), numClasses), logits, undefined, undefined, tf.Reduction.NONE).dataSync() as Float32Array;
    });
    losses.set(values, start);
  }
  const count = Math.max(1, Math.round(samples.length * config.isolationRatio));
  const order = Array.from(losses.keys()).sort((a, b) => losses[a] - losses[b] || a - b);
  const isolated = order.slice(0, count).map((i) => samples[i].key);
  log(`abl: isolated the ${count} lowest-loss samples of ${samples.length} (loss up to ${losses[order[count - 1]].toExponential(2)})`);
  return { phase: 0, rows: [], keys: samples.map((s) => s.key), urls: samples.map((s) => s.url), losses, isolated };
}
