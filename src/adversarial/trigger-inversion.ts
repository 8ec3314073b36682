import * as tf from '@tensorflow/tfjs';
import { predictClasses } from '../eval/evaluate.js';
import { createRng } from '../pipeline/random.js';
import { imagesOutside, searchTowardsClass, successRate, variableOf } from './target-search.js';

/**
 * Masked trigger inversion (Neural Cleanse: Wang et al., "Neural Cleanse: Identifying and Mitigating Backdoor
 * Attacks in Neural Networks", S&P 2019). For a class t, find the smallest mask m (H×W, shared by channels) and
 * a pattern p (H×W×C) such that stamping them, x' = (1 − m)·x + m·p, sends images to t:
 *
 *   minimise  mean CE(f(x'), t) + λ·‖m‖₁,   m = (tanh(a) + 1)/2,  p = (tanh(b) + 1)/2   (Adam on a, b)
 *
 * over minibatches of the given images (the user's own, possibly poisoned, unlabelled data; images the model
 * already puts in t are left out). A backdoor target needs an anomalously small mask: `anomalyIndices` scores
 * each class's mask L1 against the others' by the median absolute deviation.
 *
 * Contract: x is NHWC float32 in [0,1]; the returned mask is H·W values in [0,1], the pattern H·W·C values in
 * [0,1]; the model is not changed. Ownership: creates and disposes all its tensors.
 *
 *   const t = invertTrigger(model, x, shape, 0, { steps: 150, batchSize: 64, lr: 0.1, lambda: 0.01, seed: 1 });
 */
export interface InversionOptions {
  steps: number;
  batchSize: number;
  /** Adam learning rate of the mask and pattern parameters. */
  lr: number;
  /** Weight of the mask's L1 norm. */
  lambda: number;
  seed: number;
}

export interface InvertedTrigger {
  target: number;
  mask: Float32Array;
  pattern: Float32Array;
  /** ‖m‖₁: the number of pixels the trigger needs (soft). */
  maskL1: number;
  /** Share of the probe images outside `target` that the stamped trigger sends to `target`. */
  success: number;
}

export function invertTrigger(
  model: tf.LayersModel,
  x: Float32Array,
  shape: [number, number, number, number],
  target: number,
  opts: InversionOptions,
  /** The model's classes of x (computed when not given; a caller inverting every class passes them once). */
  predicted: Int32Array = classesOf(model, x, shape),
): InvertedTrigger {
  const [, height, width, channels] = shape;
  const per = height * width * channels;
  const others = imagesOutside(predicted, target);
  const rng = createRng(opts.seed * 131 + target);
  const maskParam = variableOf(tf.fill([height, width, 1], Math.atanh(2 * 0.1 - 1)));
  const patternParam = variableOf(tf.tensor3d(Float32Array.from({ length: per }, () => rng() * 2 - 1), [height, width, channels]));
  try {
    searchTowardsClass(model, x, shape, target, others, [maskParam, patternParam], opts, rng, (xc, yc) => {
      const { mask, pattern } = squash(maskParam, patternParam);
      const stamped = xc.mul(tf.scalar(1).sub(mask)).add(mask.mul(pattern));
      const ce = tf.losses.softmaxCrossEntropy(yc, model.apply(stamped, { training: false }) as tf.Tensor);
      return ce.add(mask.sum().mul(opts.lambda)) as tf.Scalar;
    });
    const { mask, pattern } = tf.tidy(() => {
      const s = squash(maskParam, patternParam);
      return { mask: s.mask.dataSync() as Float32Array, pattern: s.pattern.dataSync() as Float32Array };
    });
    const maskL1 = mask.reduce((a, v) => a + v, 0);
    const stamped = others.map((i) => stamp({ mask, pattern }, x.subarray(i * per, (i + 1) * per), channels));
    return { target, mask, pattern, maskL1, success: successRate(model, stamped, [height, width, channels], target) };
  } finally {
    maskParam.dispose();
    patternParam.dispose();
  }
}

function squash(maskParam: tf.Variable, patternParam: tf.Variable): { mask: tf.Tensor; pattern: tf.Tensor } {
  return { mask: maskParam.tanh().add(1).div(2), pattern: patternParam.tanh().add(1).div(2) };
}

/** x' = (1 − m)·x + m·p for one HWC image, written into `out` at `offset`. */
export function stamp(
  trigger: Pick<InvertedTrigger, 'mask' | 'pattern'>,
  image: Float32Array,
  channels: number,
  out: Float32Array = new Float32Array(image.length),
  offset = 0,
): Float32Array {
  const { mask, pattern } = trigger;
  for (let i = 0; i < mask.length; i++) {
    const m = mask[i];
    for (let c = 0; c < channels; c++) {
      const j = i * channels + c;
      out[offset + j] = (1 - m) * image[j] + m * pattern[j];
    }
  }
  return out;
}

/** The model's class for each image of x (NHWC). */
export function classesOf(model: tf.LayersModel, x: Float32Array, [n, h, w, c]: [number, number, number, number]): Int32Array {
  const per = h * w * c;
  return predictClasses(model, Array.from({ length: n }, (_, i) => x.subarray(i * per, (i + 1) * per)), [h, w, c]);
}

/**
 * Neural Cleanse's outlier test: for each class, (median − L1) / (1.4826 · MAD) of the mask norms, where MAD is
 * the median absolute deviation from the median (1.4826 makes it a consistent estimator of a normal's σ). Only
 * masks smaller than the median count (a larger mask is no trigger); those get 0.
 */
export function anomalyIndices(maskL1: number[]): number[] {
  const median = medianOf(maskL1);
  const mad = medianOf(maskL1.map((v) => Math.abs(v - median))) * 1.4826;
  return maskL1.map((v) => (v >= median || mad === 0 ? 0 : (median - v) / mad));
}

function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The area a recovered trigger covers, as a 0/1 mask: its pixels of at least `level` of the mask's peak, grown by
 * one pixel on each side (a backdoored model may still fire on the few trigger pixels an inverted mask leaves
 * out: on a BadNets model, covering the 8 pixels inversion found of a 3×3 patch left the target class for 57% of
 * the poisoned images, covering those grown by one pixel for 70%).
 */
export function coverMask(mask: Float32Array, height: number, width: number, level = 0.3): Float32Array {
  const peak = mask.reduce((a, v) => Math.max(a, v), 0);
  const cover = new Float32Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (peak === 0 || mask[y * width + x] < level * peak) continue;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < height && xx >= 0 && xx < width) cover[yy * width + xx] = 1;
        }
      }
    }
  }
  return cover;
}

/**
 * The image with an area (`cover`, e.g. from coverMask) filled by the image's own median colour (its background on
 * most photos), x' = (1 − m)·x + m·median(x): what the model sees once a trigger there is covered. Samples the
 * model moves out of the target class this way are the likely poisoned ones.
 */
export function neutralise(cover: Float32Array, image: Float32Array, channels: number, out: Float32Array = new Float32Array(image.length), offset = 0): Float32Array {
  const values = new Float32Array(cover.length);
  const medianColour = new Float32Array(image.length);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < cover.length; i++) values[i] = image[i * channels + c];
    values.sort();
    for (let i = 0; i < cover.length; i++) medianColour[i * channels + c] = values[values.length >> 1];
  }
  return stamp({ mask: cover, pattern: medianColour }, image, channels, out, offset);
}
