import * as tf from '@tensorflow/tfjs';
import { createRng } from '../pipeline/random.js';
import { imagesOutside, searchTowardsClass, successRate, variableOf } from './target-search.js';
import { classesOf } from './trigger-inversion.js';

/**
 * Universal additive trigger inversion: for a class t, the smallest single perturbation δ (H×W×C, shared by every
 * image) that sends images to t when added, x' = clip(x + δ, 0, 1) (a universal adversarial perturbation,
 * Moosavi-Dezfooli et al., "Universal adversarial perturbations", CVPR 2017, searched per class with Neural
 * Cleanse's objective and outlier test, Wang et al., S&P 2019):
 *
 *   minimise  mean CE(f(clip(x + δ)), t) + λ·‖δ‖₂   (Adam on δ, from δ = 0)
 *
 * over minibatches of the given images (images the model already puts in t are left out). Masked inversion looks
 * for a small *area*; a trigger spread over the whole image at low amplitude (SIG's sinusoid, Barni et al. 2019;
 * a low-ratio blend) needs a large mask but a small δ, so its target needs an anomalously small ‖δ‖₂.
 *
 * Contract: x is NHWC float32 in [0,1]; the returned delta is H·W·C values in [−1, 1]; the model is not changed.
 * Ownership: creates and disposes all its tensors.
 *
 *   const p = invertPerturbation(model, x, shape, 0, { steps: 100, batchSize: 32, lr: 0.01, lambda: 0.1, seed: 1 });
 */
export interface PerturbationOptions {
  steps: number;
  batchSize: number;
  /** Adam learning rate of δ. */
  lr: number;
  /** Weight of ‖δ‖₂ against the mean cross-entropy to the class. */
  lambda: number;
  seed: number;
  /** When set, δ is kept in the L∞ ball of this radius after every step (λ is then usually 0). */
  linf?: number;
}

export interface InvertedPerturbation {
  target: number;
  /** δ, H·W·C values (HWC order). */
  delta: Float32Array;
  /** ‖δ‖₂. */
  norm: number;
  /** Share of the probe images outside `target` that x + δ sends to `target`. */
  success: number;
}

export function invertPerturbation(
  model: tf.LayersModel,
  x: Float32Array,
  shape: [number, number, number, number],
  target: number,
  opts: PerturbationOptions,
  predicted: Int32Array = classesOf(model, x, shape),
): InvertedPerturbation {
  const [, height, width, channels] = shape;
  const per = height * width * channels;
  const others = imagesOutside(predicted, target);
  const rng = createRng(opts.seed * 137 + target);
  const deltaVar = variableOf(tf.zeros([height, width, channels]));
  try {
    const linf = opts.linf;
    const project = linf === undefined ? undefined : () => deltaVar.assign(deltaVar.clipByValue(-linf, linf));
    searchTowardsClass(model, x, shape, target, others, [deltaVar], opts, rng, (xc, yc) => {
      const ce = tf.losses.softmaxCrossEntropy(yc, model.apply(xc.add(deltaVar).clipByValue(0, 1), { training: false }) as tf.Tensor);
      // ‖δ‖₂ with a floor inside the root: its gradient at δ = 0 is otherwise NaN
      return ce.add(deltaVar.square().sum().add(1e-8).sqrt().mul(opts.lambda)) as tf.Scalar;
    }, project);
    const delta = tf.tidy(() => deltaVar.clipByValue(-1, 1).dataSync() as Float32Array);
    const norm = Math.sqrt(delta.reduce((a, v) => a + v * v, 0));
    const added = others.map((i) => addPerturbation(delta, x.subarray(i * per, (i + 1) * per)));
    return { target, delta, norm, success: successRate(model, added, [height, width, channels], target) };
  } finally {
    deltaVar.dispose();
  }
}

/** x' = clip(x + δ, 0, 1) for one image, written into `out` at `offset`. */
export function addPerturbation(delta: Float32Array, image: Float32Array, out: Float32Array = new Float32Array(image.length), offset = 0): Float32Array {
  for (let j = 0; j < image.length; j++) out[offset + j] = Math.min(1, Math.max(0, image[j] + delta[j]));
  return out;
}
