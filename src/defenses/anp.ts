import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import { modelError } from '../errors.js';
import type { Trainer } from '../pipeline/engine.js';
import { createRng } from '../pipeline/random.js';
import type { Batch } from '../stages/batch-types.js';
import { describeFineTune, fineTune, givenLabels, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext, type FineTuneSpec } from './defense.js';

/**
 * Adversarial Neuron Pruning (Wu, Wang, "Adversarial Neuron Pruning Purifies Backdoored Deep Models", NeurIPS
 * 2021; the authors' optimize_mask_cifar.py / prune_neuron_cifar.py and BackdoorBench's defense/anp.py).
 * Setting: clean (the clean extra set, its labels).
 *
 * Every neuron k of the masked layers gets a mask m_k ∈ [0, 1] (start 1) on its scale weight (BatchNormalization's
 * gamma when the model has BN layers, as the paper; otherwise the output channel's kernel column of every Conv2D
 * and hidden Dense layer) and multiplicative perturbations δ_k, ξ_k ∈ [-eps, eps] on its scale and shift (gamma and
 * beta, or kernel column and bias): scale·(m_k + δ_k), shift·(1 + ξ_k). Each batch of the clean set:
 *  1. δ, ξ ~ U(-eps, eps); `steps` times δ ← clip(δ + eps/steps · sign(∂CE/∂δ), ±eps) (likewise ξ): the neuron
 *     perturbation that raises the loss most;
 *  2. m ← clip(m − lr · SGD-momentum(α · ∂CE(m)/∂m + (1 − α) · ∂CE(m + δ, 1 + ξ)/∂m), 0, 1).
 * Gradients in the neuron's multiplier come from the chain rule on the layer's weights (Σ over the kernel column
 * of ∂CE/∂W ⊙ W), so any Conv2D/Dense/BN model works without a masked copy of it. After `iterations` batches,
 * neurons with m ≤ `threshold` (or the `fraction` with the lowest masks) are pruned: their scale weight (gamma,
 * or the kernel column) is set to zero, as the authors' pruning zeroes BN's weight; the rest of the model is the
 * infected model's, unchanged.
 *
 * Options (config/defenses/anp.json): eps 0.4, steps 1, alpha 0.2 (BackdoorBench's anp_eps, anp_steps,
 * anp_alpha), maskLr 0.2 with momentum 0.9 (the authors'; BackdoorBench's yaml has 0.01), iterations 2000 and
 * batchSize 128 (the authors'), pruneBy "threshold" with threshold 0.2 (the authors' suggested value) or
 * "fraction" with fraction 0.05, seed. Where it departs: BackdoorBench picks the pruning threshold by the test
 * set's ASR and accuracy; here it is fixed, so no test data enters the defense. The noise is clipped to the
 * paper's [-eps, eps] (the authors' code leaves it unclipped after the sign step). The forward passes run in
 * inference mode (BN with its moving statistics; the authors train the masks in train mode).
 *
 * Contract: the model keeps its architecture and only pruned neurons' scale weights change; the masks and the
 * pruned neurons are in run.json; masks, their momentum and the noise seed are in checkpoints, so a resumed run
 * prunes the same neurons.
 */
const schema = z.object({
  seed: z.number({ error: 'an integer' }).int({ error: 'an integer' }),
  batchSize: schemaParts.positiveInt,
  iterations: schemaParts.positiveInt,
  eps: schemaParts.nonNegative,
  steps: schemaParts.positiveInt,
  alpha: z.number({ error: 'a number in [0, 1]' }).min(0, { error: 'a number in [0, 1]' }).max(1, { error: 'a number in [0, 1]' }),
  maskLr: schemaParts.positive,
  maskMomentum: z.number({ error: 'a number in [0, 1)' }).min(0, { error: 'a number in [0, 1)' }).lt(1, { error: 'a number in [0, 1)' }),
  pruneBy: z.enum(['threshold', 'fraction'], { error: '"threshold" or "fraction"' }),
  threshold: z.number({ error: 'a number in [0, 1]' }).min(0, { error: 'a number in [0, 1]' }).max(1, { error: 'a number in [0, 1]' }),
  fraction: schemaParts.fraction,
});
export type AnpConfig = z.infer<typeof schema>;

/** A layer whose neurons are masked: its scale weight (kernel or gamma) and shift weight (bias or beta), if any. */
export interface NeuronLayer {
  layer: tf.layers.Layer;
  scale: tf.LayerVariable;
  shift: tf.LayerVariable | null;
  size: number;
}

/** Masks and their momentum per neuron layer; `iteration` seeds each batch's noise. */
export interface MaskState {
  masks: Float32Array[];
  momentum: Float32Array[] | null;
  iteration: number;
}

interface AnpState extends MaskState {
  phase: number;
  rows: never[];
  batchesPerEpoch: number;
}

export const anp: Defense<AnpConfig> = {
  name: 'anp',
  title: 'Adversarial Neuron Pruning (Wu & Wang, NeurIPS 2021)',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('anp', schema, sources),
  async run(model, ctx, config) {
    const layers = neuronLayers(model);
    const resumed = ctx.checkpoint?.resume?.state.algorithm as AnpState | undefined;
    const state: AnpState = resumed ?? {
      phase: 0, rows: [], iteration: 0, momentum: null,
      masks: layers.map((l) => new Float32Array(l.size).fill(1)),
      batchesPerEpoch: Math.ceil((await count(ctx)) / config.batchSize),
    };
    const epochs = Math.ceil(config.iterations / state.batchesPerEpoch);
    const { rows, pipeline } = await runPhases(ctx, state, [
      // the model's weights do not change while the masks learn: no per-epoch ACC/ASR
      (run) => fineTune(model, spec(ctx, config, epochs, model, layers, state), { ...run, evaluate: undefined }),
    ]);
    const pruned = choosePruned(layers, state.masks, config);
    prune(layers, pruned);
    const total = layers.reduce((n, l) => n + l.size, 0);
    ctx.log(`anp: pruned ${pruned.length} of ${total} neurons (${config.pruneBy} ${config.pruneBy === 'threshold' ? config.threshold : config.fraction}) after ${epochs * state.batchesPerEpoch} mask batches`);
    return {
      rows, pipeline,
      info: {
        layers: layers.map((l) => l.layer.name),
        masks: Object.fromEntries(layers.map((l, i) => [l.layer.name, Array.from(state.masks[i], (v) => Math.round(v * 1e4) / 1e4)])),
        pruned: pruned.map(({ layer, neuron }) => ({ layer: layers[layer].layer.name, neuron, mask: state.masks[layer][neuron] })),
        neurons: total,
      },
    };
  },
  describe: (model, ctx, config) => {
    const layers = neuronLayers(model);
    return `${describeFineTune(model, spec(ctx, config, 1, model, layers, { masks: [], momentum: null, iteration: 0 }))} then prune(${config.pruneBy})`;
  },
};

function spec(ctx: DefenseContext, config: AnpConfig, epochs: number, model: tf.LayersModel, layers: NeuronLayer[], state: MaskState): FineTuneSpec {
  return {
    corpus: requireClean(ctx, 'anp'),
    labels: givenLabels('anp learns its masks on the labels of the clean extra set'),
    config: { seed: config.seed, batchSize: config.batchSize, epochs, optimizer: { lr: config.maskLr, momentum: 0, weightDecay: 0 } },
    trainer: () => maskTrainer(model, layers, state, config),
    shuffleBuffer: ctx.shuffleBuffer,
  };
}

async function count(ctx: DefenseContext): Promise<number> {
  let n = 0;
  for await (const _ of requireClean(ctx, 'anp').samples().output) n++;
  return n;
}

/** BN layers when the model has any (the paper's choice), else every Conv2D and Dense layer but the logits. */
export function neuronLayers(model: tf.LayersModel): NeuronLayer[] {
  const bn = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
  if (bn.length > 0) {
    return bn.map((layer) => {
      const gamma = layer.weights.find((w) => /gamma/.test(w.originalName));
      if (!gamma) throw modelError(model.name, `anp masks BatchNormalization scales, and ${layer.name} has none (scale: false)`);
      return { layer, scale: gamma, shift: layer.weights.find((w) => /beta/.test(w.originalName)) ?? null, size: gamma.shape[0] as number };
    });
  }
  const dense = model.layers.filter((l) => l.getClassName() === 'Dense');
  const layers = model.layers.filter((l) => l.getClassName() === 'Conv2D' || (l.getClassName() === 'Dense' && l !== dense[dense.length - 1]));
  if (layers.length === 0) throw modelError(model.name, 'anp needs BatchNormalization, Conv2D or hidden Dense layers, and the model has none');
  return layers.map((layer) => {
    const [kernel, bias] = layer.weights;
    return { layer, scale: kernel, shift: bias ?? null, size: kernel.shape[kernel.shape.length - 1] as number };
  });
}

/**
 * ∂CE/∂(scale multiplier) and ∂CE/∂(shift multiplier) of every neuron, with the layers' weights set to
 * scale·a and shift·b (a, b per neuron); the weights are put back to `originals` afterwards.
 */
function multiplierGrads(model: tf.LayersModel, layers: NeuronLayer[], originals: tf.Tensor[][], a: Float32Array[], b: Float32Array[] | null, x: tf.Tensor4D, y: tf.Tensor2D): { ga: Float32Array[]; gb: Float32Array[] } {
  const ga: Float32Array[] = [];
  const gb: Float32Array[] = [];
  tf.tidy(() => {
    layers.forEach((l, i) => {
      l.scale.write(originals[i][0].mul(tf.tensor1d(a[i])));
      if (l.shift) l.shift.write(b ? originals[i][1].mul(tf.tensor1d(b[i])) : originals[i][1]);
    });
    const vars = layers.flatMap((l) => (l.shift ? [l.scale, l.shift] : [l.scale])).map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: false }) as tf.Tensor) as tf.Scalar, vars);
    let v = 0;
    layers.forEach((l, i) => {
      const reduce = (g: tf.Tensor, w: tf.Tensor) => (g.mul(w).reshape([-1, l.size]).sum(0).dataSync() as Float32Array);
      ga.push(reduce(grads[vars[v++].name], originals[i][0]));
      gb.push(l.shift ? reduce(grads[vars[v++].name], originals[i][1]) : new Float32Array(l.size));
    });
    layers.forEach((l, i) => {
      l.scale.write(originals[i][0]);
      if (l.shift) l.shift.write(originals[i][1]);
    });
  });
  return { ga, gb };
}

/**
 * One ANP batch (steps 1 and 2 above) on x, y: updates `state.masks` and `state.momentum` in place. `noise` gives
 * the initial δ and ξ (uniform in ±eps in a run; fixed in tests). Returns the natural (unperturbed) loss.
 */
export function anpMaskStep(model: tf.LayersModel, layers: NeuronLayer[], state: MaskState, x: tf.Tensor4D, labels: Int32Array, config: Pick<AnpConfig, 'eps' | 'steps' | 'alpha' | 'maskLr' | 'maskMomentum'>, noise: { delta: Float32Array[]; xi: Float32Array[] }): void {
  const numClasses = model.outputs[0].shape[1] as number;
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses).toFloat() as tf.Tensor2D);
  const originals = layers.map((l) => (l.shift ? [l.scale.read().clone(), l.shift.read().clone()] : [l.scale.read().clone()]));
  try {
    const { eps, steps, alpha } = config;
    const { delta, xi } = noise;
    const plus = (m: Float32Array[], d: Float32Array[]) => m.map((mi, i) => mi.map((v, k) => v + d[i][k]));
    const ones = layers.map((l) => new Float32Array(l.size).fill(1));
    const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
    let rob: Float32Array[] | null = null;
    if (eps > 0) {
      for (let s = 0; s < steps; s++) {
        const { ga, gb } = multiplierGrads(model, layers, originals, plus(state.masks, delta), plus(ones, xi), x, y);
        delta.forEach((d, i) => d.forEach((v, k) => (d[k] = clip(v + (eps / steps) * Math.sign(ga[i][k]), -eps, eps))));
        xi.forEach((d, i) => d.forEach((v, k) => (d[k] = clip(v + (eps / steps) * Math.sign(gb[i][k]), -eps, eps))));
      }
      rob = multiplierGrads(model, layers, originals, plus(state.masks, delta), plus(ones, xi), x, y).ga;
    }
    const nat = multiplierGrads(model, layers, originals, state.masks, null, x, y).ga;
    const grad = nat.map((g, i) => g.map((v, k) => (rob ? alpha * v + (1 - alpha) * rob[i][k] : v)));
    // SGD with momentum as PyTorch's (the first step's buffer is the gradient), then the masks clipped to [0, 1]
    state.momentum = state.momentum ? state.momentum.map((buf, i) => buf.map((v, k) => config.maskMomentum * v + grad[i][k])) : grad;
    state.masks = state.masks.map((m, i) => m.map((v, k) => clip(v - config.maskLr * state.momentum![i][k], 0, 1)));
  } finally {
    y.dispose();
    tf.dispose(originals.flat());
  }
}

function maskTrainer(model: tf.LayersModel, layers: NeuronLayer[], state: MaskState, config: AnpConfig): Trainer {
  return {
    stages: [],
    summary: `anp-masks(${layers.length} layers, eps=${config.eps}, steps=${config.steps}, alpha=${config.alpha}, lr=${config.maskLr})`,
    step: async (b: Batch) => {
      const rng = createRng(config.seed * 1_000_003 + state.iteration);
      const uniform = () => layers.map((l) => Float32Array.from({ length: l.size }, () => (2 * rng() - 1) * config.eps));
      const noise = { delta: uniform(), xi: uniform() };
      const x = tf.tensor4d(b.x, b.shape);
      try {
        const loss = tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(b.labels, 'int32'), model.outputs[0].shape[1] as number).toFloat(), maskedLogits(model, layers, state.masks, x)).dataSync()[0]);
        anpMaskStep(model, layers, state, x, b.labels, config, noise);
        state.iteration++;
        return { loss };
      } finally {
        x.dispose();
      }
    },
  };
}

/** The logits of the masked model (scale weights times the masks), weights restored afterwards. */
function maskedLogits(model: tf.LayersModel, layers: NeuronLayer[], masks: Float32Array[], x: tf.Tensor4D): tf.Tensor {
  return tf.tidy(() => {
    const originals = layers.map((l) => l.scale.read().clone());
    layers.forEach((l, i) => l.scale.write(originals[i].mul(tf.tensor1d(masks[i]))));
    const logits = model.predict(x) as tf.Tensor;
    layers.forEach((l, i) => l.scale.write(originals[i]));
    return logits;
  });
}

/** The neurons to prune: mask ≤ threshold, or the `fraction` of all neurons with the lowest masks. */
export function choosePruned(layers: NeuronLayer[], masks: Float32Array[], config: Pick<AnpConfig, 'pruneBy' | 'threshold' | 'fraction'>): { layer: number; neuron: number }[] {
  const all = masks.flatMap((m, layer) => Array.from(m, (value, neuron) => ({ layer, neuron, value })));
  // masks are float32: 0.2 as a mask is 0.2000000030, and is pruned at threshold 0.2 (BackdoorBench compares 4-decimal text)
  if (config.pruneBy === 'threshold') return all.filter((n) => n.value <= Math.fround(config.threshold)).map(({ layer, neuron }) => ({ layer, neuron }));
  all.sort((a, b) => a.value - b.value || a.layer - b.layer || a.neuron - b.neuron);
  return all.slice(0, Math.floor(all.length * config.fraction)).map(({ layer, neuron }) => ({ layer, neuron }));
}

/** Zeroes the scale weight (gamma, or the kernel column) of each pruned neuron. */
function prune(layers: NeuronLayer[], pruned: { layer: number; neuron: number }[]): void {
  layers.forEach((l, i) => {
    const keep = new Float32Array(l.size).fill(1);
    for (const p of pruned) if (p.layer === i) keep[p.neuron] = 0;
    tf.tidy(() => {
      l.scale.write(l.scale.read().mul(tf.tensor1d(keep)));
    });
  });
}
