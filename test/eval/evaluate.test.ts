import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import type { Trigger } from '../../src/attacks/trigger.js';
import { evaluate } from '../../src/eval/evaluate.js';

const K = 4;
const shape = { height: 1, width: K, channels: 1 };

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A model whose logits are its K input pixels, so that a one-hot image is predicted as its hot pixel. */
function identityModel(): tf.LayersModel {
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [1, K, 1] }), tf.layers.dense({ units: K, useBias: false, kernelInitializer: 'identity' })] });
  return model;
}

const oneHot = (c: number) => Float32Array.from({ length: K }, (_, i) => (i === c ? 1 : 0));
/** Moves the hot pixel one class up: the model then predicts (y + 1) mod K. */
const shiftUp: Trigger = { attack: 'test', shape, cleanLabel: false, noiseRatio: 0, negativeRatio: 0, maxChange: 1, apply: (x) => Float32Array.from(x, (_, i) => x[(i + K - 1) % K]) };

const set = { samples: Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, url: 'mem', pixels: oneHot(i % K), ...shape, label: i % K })) };

it('all2one ASR counts triggered samples of other classes predicted as the target', () => {
  const r = evaluate(identityModel(), set, { trigger: shiftUp, target: 0 });
  expect(r.acc).toBe(1);
  expect(r.asrSamples).toBe(9);
  expect(r.asr).toBeCloseTo(3 / 9, 6); // only class 3 lands on 0
});

it('all2all ASR counts every triggered sample predicted as (y + 1) mod K', () => {
  const r = evaluate(identityModel(), set, { trigger: shiftUp, target: 0, mode: 'all2all' });
  expect(r.asrSamples).toBe(12);
  expect(r.asr).toBe(1);
});
