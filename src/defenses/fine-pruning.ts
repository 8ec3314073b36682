import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import { predictClasses } from '../eval/evaluate.js';
import { lastConv, tapModel, zeroChannels } from '../models/layers.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, labelledSamples, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext } from './defense.js';

/**
 * Fine-Pruning (Liu, Dolan-Gavitt, Garg, "Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural
 * Networks", RAID 2018). Setting: clean (the clean extra set, its labels).
 *
 * 1. Mean activation of each channel of the last convolutional layer over the clean set.
 * 2. Prune channels in increasing order of activation, `pruneStep` (a share of the channels) at a time, while the
 *    clean-set accuracy stays within `accRatio` (relative) of the unpruned model's; the last pruning that did is
 *    kept. A pruned channel has its kernel and bias zeroed and stays zero (re-zeroed after every step).
 * 3. Fine-tune on the clean set (SGD, as `ft`).
 *
 * Options (config/defenses/fine-pruning.json): accRatio 0.1 and pruneStep 0.01 (BackdoorBench's acc_ratio and
 * once_prune_ratio), then ft's options. BackdoorBench measures the accuracy on the test set; here the clean extra
 * set is used, so no test data leaks into the defense.
 *
 * Contract: the model is pruned and fine-tuned in place (same architecture, pruned channels zero); the pruned
 * channels are in run.json; a resumed run ends with the same weights.
 */
const schema = fineTuneSchema.extend({ accRatio: schemaParts.fraction, pruneStep: schemaParts.fraction });
type Config = z.infer<typeof schema>;

export const finePruning: Defense<Config> = {
  name: 'fine-pruning',
  title: 'Fine-Pruning (Liu et al., RAID 2018): prune dormant last-conv channels, then fine-tune',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('fine-pruning', schema, sources),
  async run(model, ctx, config) {
    const layer = lastConv(model, 'fine-pruning');
    const state = { phase: 0, rows: [], pruned: null as number[] | null };
    const { rows, pipeline } = await runPhases(ctx, state, [
      async (run) => {
        if (!state.pruned) {
          state.pruned = chooseChannels(model, layer, await labelledSamples(requireClean(ctx, 'fine-pruning'), 'fine-pruning'), config, ctx.log);
          zeroChannels(layer, state.pruned);
        }
        const pruned = state.pruned;
        return fineTune(model, spec(ctx, config), { ...run, callbacks: [...(run.callbacks ?? []), { onBatchEnd: () => zeroChannels(layer, pruned) }] });
      },
    ]);
    return { rows, pipeline, info: { layer: layer.name, pruned: state.pruned, channels: layer.getWeights()[0].shape[3] } };
  },
  describe: (model, ctx, config) => `prune(${lastConv(model, 'fine-pruning').name}, accRatio=${config.accRatio}) then ${describeFineTune(model, spec(ctx, config))}`,
};

function spec(ctx: DefenseContext, config: Config) {
  return { corpus: requireClean(ctx, 'fine-pruning'), labels: givenLabels('fine-pruning trains on the labels of the clean extra set'), config, shuffleBuffer: ctx.shuffleBuffer };
}

/** The channels to prune: least active first, as many as keep the clean accuracy within accRatio. */
function chooseChannels(model: tf.LayersModel, layer: tf.layers.Layer, clean: Sample[], config: Config, log: DefenseContext['log']): number[] {
  const { height, width, channels } = clean[0];
  const shape: [number, number, number] = [height, width, channels];
  const tap = tapModel(model, [layer]);
  const sums = tf.tidy(() => {
    let total = tf.zeros([layer.getWeights()[0].shape[3] as number]);
    for (let start = 0; start < clean.length; start += 256) {
      const part = clean.slice(start, start + 256);
      const x = tf.tensor4d(pack(part.map((s) => ({ ...s, label: -1 }))).x, [part.length, ...shape]);
      total = total.add((tap.predict(x) as tf.Tensor4D).mean([1, 2]).sum(0));
    }
    return total.dataSync() as Float32Array;
  });
  const order = Array.from(sums.keys()).sort((a, b) => sums[a] - sums[b] || a - b);
  const labels = clean.map((s) => s.label!);
  const accuracy = () => {
    const predicted = predictClasses(model, clean.map((s) => s.pixels), shape);
    return labels.reduce((n, l, i) => n + (predicted[i] === l ? 1 : 0), 0) / labels.length;
  };
  const original = model.getWeights().map((w) => w.clone());
  const base = accuracy();
  const step = Math.max(1, Math.ceil(order.length * config.pruneStep));
  let kept = 0;
  for (let k = step; k < order.length; k += step) {
    zeroChannels(layer, order.slice(0, k));
    const acc = accuracy();
    if ((base - acc) / base >= config.accRatio) break;
    kept = k;
  }
  model.setWeights(original);
  tf.dispose(original);
  log(`fine-pruning: pruning ${kept} of ${order.length} channels of ${layer.name} (clean accuracy ${base.toFixed(3)} unpruned, within ${config.accRatio} relative)`);
  return order.slice(0, kept);
}
