import * as tf from '@tensorflow/tfjs';
import { stage, type Stage } from '../pipeline/pipe.js';
import type { AttackStats, Batch } from './batch-types.js';

/**
 * Untargeted L∞ PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", 2018),
 * as PBE uses it (Mu et al., CVPR 2023): maximise cross-entropy against `labels` with signed-gradient steps of
 * `alpha`, projected after each step to the `eps` ball around x and to [0,1]. The model runs in inference mode.
 *
 * Contract: x is NHWC float32 in [0,1]; the result has x's shape, |x' - x|∞ <= eps, x' in [0,1].
 * Ownership: the caller keeps x and labels; the returned tensor is the caller's to dispose.
 *
 *   const adv = pgdExamples(model, x, labels, { eps: 0.05, alpha: 0.01, steps: 7, randomStart: false });
 */
export interface PgdOptions {
  eps: number;
  alpha: number;
  steps: number;
  randomStart: boolean;
  seed?: number;
}

export function pgdExamples(model: tf.LayersModel, x: tf.Tensor4D, labels: tf.Tensor1D, opts: PgdOptions): tf.Tensor4D {
  const numClasses = model.outputs[0].shape[1] as number;
  const oneHot = tf.tidy(() => tf.oneHot(labels.toInt(), numClasses).toFloat());
  // Summed, not averaged: a sample's gradient (and so its sign) must not depend on how a batch is split.
  const lossOf = (xa: tf.Tensor) =>
    tf.losses.softmaxCrossEntropy(oneHot, model.apply(xa, { training: false }) as tf.Tensor, undefined, undefined, tf.Reduction.SUM) as tf.Scalar;
  const inputGrad = tf.grad(lossOf);
  let adv: tf.Tensor4D = opts.randomStart
    ? tf.tidy(() => tf.clipByValue(x.add(tf.randomUniform(x.shape, -opts.eps, opts.eps, 'float32', opts.seed)), 0, 1) as tf.Tensor4D)
    : x.clone();
  for (let i = 0; i < opts.steps; i++) {
    const next = tf.tidy(() => {
      const stepped = adv.add(inputGrad(adv).sign().mul(opts.alpha)) as tf.Tensor4D;
      const projected = tf.minimum(tf.maximum(stepped, x.sub(opts.eps)), x.add(opts.eps));
      return tf.clipByValue(projected, 0, 1) as tf.Tensor4D;
    });
    adv.dispose();
    adv = next;
  }
  oneHot.dispose();
  return adv;
}

/** Which flipped predictions went where: the data the concentration q is computed from. */
export function attackStats(predicted: Int32Array, labels: Int32Array, numClasses: number): AttackStats {
  const flippedTo = new Int32Array(numClasses);
  let flipped = 0;
  for (let i = 0; i < labels.length; i++) {
    if (predicted[i] !== labels[i]) {
      flipped++;
      flippedTo[predicted[i]]++;
    }
  }
  return { flipped, flippedTo };
}

/** Computes the PGD examples of a batch and the attacked model's predictions on them. */
export type Attacker = (b: Batch) => Promise<{ x: Float32Array; predicted: Int32Array }>;

/** PGD on the calling thread, against the model as it is when the batch comes. */
export function inProcessAttacker(model: () => tf.LayersModel, opts: PgdOptions): Attacker {
  return async (b) => {
    const m = model();
    return tf.tidy(() => {
      const adv = pgdExamples(m, tf.tensor4d(b.x, b.shape), tf.tensor1d(b.labels, 'int32'), opts);
      const predicted = (m.predict(adv) as tf.Tensor).argMax(-1).dataSync() as Int32Array;
      return { x: adv.dataSync() as Float32Array, predicted };
    });
  };
}

/**
 * Replaces each batch marked adversarial by its PGD examples, with attack stats. With `lookahead` n > 0 the
 * attacks of the next n batches start before the current one is consumed (for attackers that run elsewhere
 * and do not need the newest weights); batches still come out in order.
 *
 *   pipe(batches, mix(plan), pgd(inProcessAttacker(() => model, opts), { pgd: opts, numClasses: 10 }), ...)
 */
export function pgd(
  attack: Attacker,
  opts: { pgd: PgdOptions; numClasses: number; lookahead?: number; where?: string; summary?: string },
): Stage<Batch, Batch> {
  const where = opts.where ? `, ${opts.where}` : '';
  const lookahead = opts.lookahead ?? 0;
  const what = opts.summary ?? `eps=${formatEps(opts.pgd.eps)}, steps=${opts.pgd.steps}`;
  return stage(`pgd(${what}${where})`, async function* (source) {
    const attacked = async (b: Batch): Promise<Batch> => {
      if (!b.adversarial) return b;
      const { x, predicted } = await attack(b);
      return { ...b, x, attack: attackStats(predicted, b.labels, opts.numClasses) };
    };
    const pending: Promise<Batch>[] = [];
    for await (const b of source) {
      pending.push(attacked(b));
      if (pending.length > lookahead) yield await pending.shift()!;
    }
    while (pending.length > 0) yield await pending.shift()!;
  });
}

export function formatEps(eps: number): string {
  const in255 = eps * 255;
  return Math.abs(in255 - Math.round(in255)) < 1e-6 ? `${Math.round(in255)}/255` : String(eps);
}
