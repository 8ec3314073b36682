import * as tf from '@tensorflow/tfjs';
import { probeChunk } from '../defenses/probe.js';
import { predictClasses } from '../eval/evaluate.js';
import { minimizeInChunks } from '../stages/chunked-minimize.js';

export interface TargetSearchOptions {
  steps: number;
  batchSize: number;
  /** Adam learning rate of the variables. */
  lr: number;
}

/**
 * The optimisation loop that masked trigger inversion and the universal additive probe share: `steps` Adam steps
 * on `variables`, each on `batchSize` images drawn by `rng` from `candidates` (indices into x: the images the
 * model does not already put in `target`), minimising `loss(x, y)` with y the one-hot target. A step runs in
 * chunks of probeChunk images (the batch's step, in bounded memory at 224x224); `afterStep` runs after each
 * step (a projection). Ownership: disposes what it creates; the variables stay the caller's.
 */
export function searchTowardsClass(
  model: tf.LayersModel,
  x: Float32Array,
  [, height, width, channels]: [number, number, number, number],
  target: number,
  candidates: readonly number[],
  variables: tf.Variable[],
  opts: TargetSearchOptions,
  rng: () => number,
  loss: (x: tf.Tensor, y: tf.Tensor) => tf.Scalar,
  afterStep?: () => void,
): void {
  if (candidates.length === 0) return;
  const per = height * width * channels;
  const n = Math.min(opts.batchSize, candidates.length);
  const chunk = probeChunk(height, width);
  const batch = new Float32Array(n * per);
  const numClasses = model.outputs[0].shape[1] as number;
  const optimizer = tf.train.adam(opts.lr);
  const y = tf.tidy(() => tf.oneHot(tf.fill([n], target, 'int32') as tf.Tensor1D, numClasses).toFloat());
  try {
    for (let step = 0; step < opts.steps; step++) {
      for (let i = 0; i < n; i++) batch.set(x.subarray(candidates[Math.floor(rng() * candidates.length)] * per).subarray(0, per), i * per);
      tf.tidy(() => {
        minimizeInChunks(optimizer, variables, tf.tensor4d(batch, [n, height, width, channels]), y, chunk, loss);
        afterStep?.();
      });
    }
  } finally {
    y.dispose();
    optimizer.dispose();
  }
}

/** Indices of the images whose class is not `target`. */
export function imagesOutside(predicted: Int32Array, target: number): number[] {
  return [...predicted.keys()].filter((i) => predicted[i] !== target);
}

/** The share of `images` (HWC each) that the model puts in `target`; 0 for none. */
export function successRate(model: tf.LayersModel, images: Float32Array[], shape: [number, number, number], target: number): number {
  if (images.length === 0) return 0;
  return predictClasses(model, images, shape).filter((c) => c === target).length / images.length;
}

/** A trainable variable holding `initial`, which it disposes (tf.variable keeps its own copy). */
export function variableOf(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial, true);
  initial.dispose();
  return v;
}
