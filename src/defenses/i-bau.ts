import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import { epochChain, fit, type FitOptions, type Trainer } from '../pipeline/engine.js';
import { hashUniform } from '../pipeline/random.js';
import type { Batch } from '../stages/batch-types.js';
import { pack } from '../stages/batch.js';
import { usageError } from '../errors.js';
import { givenLabels, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext, type PhaseRun } from './defense.js';

/**
 * Implicit Backdoor Adversarial Unlearning (Zeng, Chen, Park, Mao, Jin, Jia, "Adversarial Unlearning of Backdoors
 * via Implicit Hypergradient", ICLR 2022; the authors' I-BAU code, defense.py and hypergrad.py, and BackdoorBench's
 * defense/i-bau.py, which copies it). Setting: clean (the clean extra set, its labels).
 *
 * The minimax min_θ max_δ with one universal perturbation δ shared by all images. Each of `rounds` rounds:
 *  1. inner max: δ = 0, then one SGD step per batch of the clean set (lr `perturbation.lr`) on
 *     −mean CE(f(x + δ), ŷ) + `perturbation.regularization`·‖δ‖², ŷ = argmax f(x) (the model's own predictions,
 *     as the reference), `perturbation.passes` passes over the set;
 *  2. outer min: one pass over the clean set, an Adam step per batch B on the implicit hypergradient of
 *     L_out(δ, θ) = CE(f_θ(x + p·δ), y) over B, p marking ⌊|B|·`portion`⌋ of its samples (by key and round), with
 *     δ seen as the fixed point of δ ↦ δ − α·∇_δ L_in(δ, θ), L_in(δ, θ) = −CE(f_θ(x₀ + δ), y₀) + reg·‖δ‖² on the
 *     clean set's first batch (x₀, y₀) with its labels (the reference's loss_inner and GradientDescent(0.1)).
 *     As hypertorch's fixed_point with K = `hypergradient.iterations`: v ← v − α·H_δδ·v + ∂L_out/∂δ K times from
 *     v = 0, then ∂L_out/∂θ − α·(∂²L_in/∂θ∂δ)·v (see `hypergradient`).
 * TF.js has no second-order gradients through the wasm conv kernels, so both Hessian-vector products are central
 * differences of first-order gradients along v, at an L2 step of `hypergradient.fdStep`: H_δδ·v ≈
 * (∇_δL_in(δ+εv) − ∇_δL_in(δ−εv))/2ε and (∂²L_in/∂θ∂δ)·v ≈ (∇_θL_in(δ+εv) − ∇_θL_in(δ−εv))/2ε (exact up to O(ε²)
 * where the ReLUs keep their pattern; test/defenses/anp-ibau-math.test.ts checks them against PyTorch autograd).
 * x + δ is not clipped to [0, 1], and δ is projected onto an L2 ball only when `perturbation.radius` is set (null
 * by default, as the reference, whose projection is commented out; measured in bench/results/anp-ibau-20k.md).
 * The model runs in inference mode throughout (the reference calls model.eval() before the defense).
 *
 * Options (config/defenses/i-bau.json): rounds 5 (n_rounds), K 5, α 0.1, portion 0.01 (the reference's), Adam
 * betas 0.9/0.999, no weight decay; Adam lr 1e-3 (the authors' defense.py; BackdoorBench has 1e-4 over more
 * batches); batchSize 128; perturbation.lr 10 and regularization 0.001 (the reference's), perturbation.passes 1,
 * perturbation.radius null; fdStep 0.01; seed. Departures: the outer pass visits the batches in a seeded shuffled order per round (the
 * reference's is fixed), and the perturbed samples of a batch are chosen by key (the reference draws them anew).
 *
 * Contract: the model is trained in place (same architecture); the current round's δ and the Adam state are in
 * checkpoints, so a resumed run ends with the same weights.
 */
const schema = z.object({
  seed: z.number({ error: 'an integer' }).int({ error: 'an integer' }),
  batchSize: schemaParts.positiveInt,
  rounds: schemaParts.positiveInt,
  optimizer: z.object({ lr: schemaParts.positive, beta1: schemaParts.fraction, beta2: schemaParts.fraction }),
  perturbation: z.object({ lr: schemaParts.positive, regularization: schemaParts.nonNegative, passes: schemaParts.positiveInt, radius: schemaParts.positive.nullable() }),
  hypergradient: z.object({ iterations: schemaParts.positiveInt, innerLr: schemaParts.positive, fdStep: schemaParts.positive }),
  portion: schemaParts.fraction,
});
export type IBauConfig = z.infer<typeof schema>;

interface IBauState {
  phase: number;
  rows: never[];
  /** The universal perturbation of round `deltaRound` (H·W·C). */
  delta: Float32Array | null;
  deltaRound: number;
}

/** A labelled batch, NHWC pixels. */
export interface LabelledBatch {
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
}

export const iBau: Defense<IBauConfig> = {
  name: 'i-bau',
  title: 'I-BAU (Zeng et al., ICLR 2022), implicit-hypergradient unlearning',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('i-bau', schema, sources),
  async run(model, ctx, config) {
    const state: IBauState = (ctx.checkpoint?.resume?.state.algorithm as IBauState | undefined) ?? { phase: 0, rows: [], delta: null, deltaRound: -1 };
    const inner = await firstBatch(ctx, config.batchSize);
    const { rows, pipeline } = await runPhases(ctx, state, [(run) => unlearn(model, ctx, config, state, inner, run)]);
    return { rows, pipeline, info: { lastDeltaNorm: state.delta ? l2(state.delta) : null } };
  },
  describe: (model, ctx, config) => {
    const optimizer = adam(config);
    try {
      const inner: LabelledBatch = { x: new Float32Array(0), shape: [0, 0, 0, 0], labels: new Int32Array(0) };
      const options = fitOptions(model, ctx, config, { phase: 0, rows: [], delta: null, deltaRound: -1 }, inner, optimizer);
      return `per round: universal-perturbation(lr=${config.perturbation.lr}) then ${epochChain(options.corpus, options.plan.epoch({ epoch: 0 }), { ...options, skip: 0 }).summary}`;
    } finally {
      optimizer.dispose();
    }
  },
};

const adam = (config: IBauConfig) => new ResumableAdam(config.optimizer.lr, config.optimizer.beta1, config.optimizer.beta2, 1e-8);

/**
 * tfjs's Adam keeps β^t as a running product, but restores it from a checkpoint as pow(β, t + 1), which differs
 * in the last bits: this one computes pow(β, t + 1) before every step, so a resumed run takes the same steps.
 */
class ResumableAdam extends tf.AdamOptimizer {
  override applyGradients(gradients: Parameters<tf.AdamOptimizer["applyGradients"]>[0]): void {
    const self = this as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable; beta1: number; beta2: number; iterations: number };
    tf.tidy(() => {
      // `iterations` (the getter: iterations_ is undefined before the first step)
      self.accBeta1.assign(tf.pow(self.beta1, self.iterations + 1));
      self.accBeta2.assign(tf.pow(self.beta2, self.iterations + 1));
    });
    super.applyGradients(gradients);
  }
}

function fitOptions(model: tf.LayersModel, ctx: DefenseContext, config: IBauConfig, state: IBauState, inner: LabelledBatch, optimizer: tf.Optimizer) {
  return {
    corpus: requireClean(ctx, 'i-bau'),
    plan: {
      rounds: 1,
      epochs: () => config.rounds,
      epoch: ({ epoch }: { epoch: number }) => ({ adversarial: { round: 0, epoch, adversarialShare: 0, maxAdversarialBatches: 0 }, seed: config.seed * 7919 + epoch }),
    },
    trainer: outerTrainer(model, optimizer, config, state, inner),
    optimizer,
    labels: givenLabels('i-bau unlearns with the labels of the clean extra set'),
    batchSize: config.batchSize,
    shuffleBuffer: ctx.shuffleBuffer ?? 10_000,
  } satisfies Partial<FitOptions<unknown>>;
}

/** The clean set's first `size` samples in reading order: the batch of the inner loss (the reference's images_list[0]). */
async function firstBatch(ctx: DefenseContext, size: number): Promise<LabelledBatch> {
  const samples: Parameters<typeof pack>[0] = [];
  for await (const s of requireClean(ctx, 'i-bau').samples().output) {
    if (s.label === undefined) throw usageError(`i-bau needs the labels of the clean extra set, and sample ${s.key} (${s.url}) has none`);
    samples.push({ ...s, label: s.label });
    if (samples.length === size) break;
  }
  const { x, shape, labels } = pack(samples);
  return { x, shape, labels };
}

async function unlearn(model: tf.LayersModel, ctx: DefenseContext, config: IBauConfig, state: IBauState, innerBatch: LabelledBatch, run: PhaseRun) {
  const optimizer = adam(config);
  try {
    const inner = {
      onEpochBegin: async ({ epoch }: { epoch: number }) => {
        if (state.deltaRound === epoch && state.delta) return; // resumed in the middle of this round
        state.delta = await innerMax(model, ctx, config, epoch);
        state.deltaRound = epoch;
        const { top, share } = await perturbedPredictions(model, ctx, state.delta);
        ctx.log(`i-bau round ${epoch}: universal perturbation, L2 norm ${l2(state.delta).toFixed(3)}; the clean set plus it is predicted as class ${top} for ${(share * 100).toFixed(1)}%`, { round: epoch, deltaNorm: l2(state.delta), topClass: top, topShare: share });
      },
    };
    return await fit(model, { ...fitOptions(model, ctx, config, state, innerBatch, optimizer), ...run, callbacks: [inner, ...(run.callbacks ?? [])] });
  } finally {
    optimizer.dispose();
  }
}

/** Step 1: the round's universal perturbation over the clean set (shuffled by the round's seed). */
async function innerMax(model: tf.LayersModel, ctx: DefenseContext, config: IBauConfig, round: number): Promise<Float32Array> {
  let delta: Float32Array | null = null;
  for (let pass = 0; pass < config.perturbation.passes; pass++) {
    const samples = requireClean(ctx, 'i-bau').samples(undefined, undefined, { bufferSize: ctx.shuffleBuffer ?? 10_000, seed: config.seed * 104_729 + round * 31 + pass });
    let pending: Parameters<typeof pack>[0] = [];
    const step = () => {
      const b = pack(pending);
      delta ??= new Float32Array(b.x.length / b.shape[0]);
      delta = universalStep(model, delta, b.x, b.shape, config.perturbation);
      pending = [];
    };
    for await (const s of samples.output) {
      pending.push({ ...s, label: -1 });
      if (pending.length === config.batchSize) step();
    }
    if (pending.length > 0) step();
  }
  return projectL2(delta ?? new Float32Array(0), config.perturbation.radius ?? Infinity);
}

/** δ · min(1, radius / ‖δ‖₂): the projection onto the L2 ball (commented out in the reference's defense.py). */
export function projectL2(delta: Float32Array, radius: number): Float32Array {
  const norm = l2(delta);
  return norm > radius ? delta.map((v) => (v * radius) / norm) : delta;
}

/** The class the clean set plus δ is predicted as most, and its share (for a backdoored model: the target, often). */
async function perturbedPredictions(model: tf.LayersModel, ctx: DefenseContext, delta: Float32Array): Promise<{ top: number; share: number }> {
  const counts = new Array<number>(model.outputs[0].shape[1] as number).fill(0);
  let pending: Parameters<typeof pack>[0] = [];
  const predict = () => {
    const b = pack(pending);
    const classes = tf.tidy(() => (model.predict(tf.tensor4d(b.x, b.shape).add(tf.tensor3d(delta, b.shape.slice(1) as [number, number, number]))) as tf.Tensor).argMax(-1).dataSync());
    for (const c of classes) counts[c]++;
    pending = [];
  };
  for await (const s of requireClean(ctx, 'i-bau').samples().output) {
    pending.push({ ...s, label: -1 });
    if (pending.length === 256) predict();
  }
  if (pending.length > 0) predict();
  const total = counts.reduce((a, b) => a + b, 0);
  const top = counts.indexOf(Math.max(...counts));
  return { top, share: total ? counts[top] / total : 0 };
}

/**
 * One SGD step of the universal perturbation on −mean CE(f(x + δ), argmax f(x)) + reg·‖δ‖² (x: N×H×W×C,
 * δ: H×W×C). Returns the new δ.
 */
export function universalStep(model: tf.LayersModel, delta: Float32Array, x: Float32Array, shape: [number, number, number, number], opts: { lr: number; regularization: number }): Float32Array {
  return tf.tidy(() => {
    const images = tf.tensor4d(x, shape);
    const numClasses = model.outputs[0].shape[1] as number;
    const own = tf.oneHot((model.predict(images) as tf.Tensor).argMax(-1) as tf.Tensor1D, numClasses).toFloat();
    const d = tf.tensor3d(delta, shape.slice(1) as [number, number, number]);
    const grad = tf.grad((p: tf.Tensor) => tf.losses.softmaxCrossEntropy(own, model.apply(images.add(p), { training: false }) as tf.Tensor).neg().add(p.square().sum().mul(opts.regularization)))(d);
    return d.sub(grad.mul(opts.lr)).dataSync() as Float32Array;
  });
}

function l2(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/**
 * The implicit hypergradient of hypertorch's fixed_point (the reference's hypergrad.py) in the model's trainable
 * weights θ, for the outer loss CE(f_θ(x + p·δ), y) on `outer` (p: `perturbed`, 1 for a sample carrying δ, else 0)
 * and the fixed-point map δ ↦ δ − α·∇_δ L_in(δ, θ), L_in = −CE(f_θ(x₀ + δ), y₀) + reg·‖δ‖² on `inner`:
 *   v₀ = 0, v_{k+1} = v_k − α·H_δδ·v_k + ∂L_out/∂δ (k < iterations), result ∂L_out/∂θ − α·(∂²L_in/∂θ∂δ)·v,
 * with both second-order products as central differences of first-order gradients at δ ± εv, ε = fdStep/‖v‖.
 * Returns the gradients by variable name (the caller disposes them) and the outer loss.
 */
export function hypergradient(model: tf.LayersModel, delta: Float32Array, outer: LabelledBatch & { perturbed: Float32Array }, inner: LabelledBatch, opts: { iterations: number; innerLr: number; regularization: number; fdStep: number }): { grads: tf.NamedTensorMap; loss: number } {
  const numClasses = model.outputs[0].shape[1] as number;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const d = tf.tidy(() => tf.variable(tf.tensor3d(delta, outer.shape.slice(1) as [number, number, number]), true));
  try {
    return tf.tidy(() => {
      const batch = (b: LabelledBatch) => ({ x: tf.tensor4d(b.x, b.shape), y: tf.oneHot(tf.tensor1d(b.labels, 'int32'), numClasses).toFloat() });
      const ce = (b: { x: tf.Tensor; y: tf.Tensor }, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(b.y, model.apply(b.x.add(p), { training: false }) as tf.Tensor) as tf.Scalar;
      const out = batch(outer);
      const inn = batch(inner);
      const mask = tf.tensor4d(outer.perturbed, [outer.shape[0], 1, 1, 1]);
      const { value, grads } = tf.variableGrads(() => ce(out, mask.mul(d)), [...vars, d]);
      const gDelta = grads[d.name];
      const norm = (v: tf.Tensor) => tf.norm(v).dataSync()[0];
      // no sample carries δ: v stays 0, the hypergradient is the direct gradient
      if (norm(gDelta) === 0) return { grads: Object.fromEntries(vars.map((w) => [w.name, grads[w.name]])), loss: value.dataSync()[0] };
      const innerGradDelta = tf.grad((p: tf.Tensor) => ce(inn, p).neg().add(p.square().sum().mul(opts.regularization)));
      // (F(δ + εv) − F(δ − εv)) / 2ε with ε = fdStep/‖v‖
      const central = <T>(v: tf.Tensor, f: (p: tf.Tensor) => T, diff: (plus: T, minus: T, scale: number) => T): T => {
        const n = norm(v);
        const e = v.mul(opts.fdStep / n);
        return diff(f(d.add(e)), f(d.sub(e)), n / (2 * opts.fdStep));
      };
      let v = gDelta;
      for (let k = 1; k < opts.iterations; k++) {
        const hv = central(v, innerGradDelta, (plus, minus, scale) => plus.sub(minus).mul(scale));
        v = v.sub(hv.mul(opts.innerLr)).add(gDelta);
      }
      const innerGradTheta = (p: tf.Tensor) => tf.variableGrads(() => ce(inn, p).neg(), vars).grads;
      const cross = central(v, innerGradTheta, (plus, minus, scale) => Object.fromEntries(vars.map((w) => [w.name, plus[w.name].sub(minus[w.name]).mul(scale)])));
      const hyper = Object.fromEntries(vars.map((w) => [w.name, grads[w.name].sub(cross[w.name].mul(opts.innerLr))]));
      return { grads: hyper, loss: value.dataSync()[0] };
    });
  } finally {
    d.dispose();
  }
}

/** The ⌊n·portion⌋ samples of a batch that carry δ in the outer loss: the lowest hashes of their keys for the round. */
export function perturbedMask(keys: string[], portion: number, seed: number): Float32Array {
  const count = Math.floor(keys.length * portion);
  const order = keys.map((key, i) => ({ i, h: hashUniform(key, seed) })).sort((a, b) => a.h - b.h || a.i - b.i);
  const mask = new Float32Array(keys.length);
  for (const { i } of order.slice(0, count)) mask[i] = 1;
  return mask;
}

/** Step 2: an Adam step on the implicit hypergradient of the outer loss. */
function outerTrainer(model: tf.LayersModel, optimizer: tf.Optimizer, config: IBauConfig, state: IBauState, inner: LabelledBatch): Trainer {
  return {
    stages: [],
    summary: `unlearn(adam lr=${config.optimizer.lr}, implicit hypergradient K=${config.hypergradient.iterations}, x+δ on ${config.portion} of each batch)`,
    step: async (b: Batch) => {
      const perturbed = perturbedMask(b.keys, config.portion, config.seed * 31 + state.deltaRound);
      const delta = state.delta ?? new Float32Array(b.x.length / b.shape[0]);
      const { grads, loss } = hypergradient(model, delta, { x: b.x, shape: b.shape, labels: b.labels, perturbed }, inner, { ...config.hypergradient, regularization: config.perturbation.regularization });
      try {
        optimizer.applyGradients(grads);
      } finally {
        tf.dispose(grads);
      }
      return { loss };
    },
  };
}
