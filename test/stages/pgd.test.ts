import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/models/zoo.js';
import { attackStats, inProcessAttacker, pgd, pgdExamples } from '../../src/stages/pgd.js';
import type { Batch } from '../../src/stages/batch-types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function randomImages(n: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([n, 12, 12, 1], 0, 1, 'float32', seed) as tf.Tensor4D;
}

describe('pgdExamples', () => {
  const model = buildModel('cnn-small', { inputShape: [12, 12, 1], numClasses: 4, seed: 3 });
  const opts = { eps: 0.05, alpha: 0.01, steps: 5, randomStart: false };

  it('stays in the eps ball and in [0,1], and raises the loss', () => {
    const x = randomImages(16, 1);
    const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 4), 'int32');
    const adv = pgdExamples(model, x, labels, opts);
    const dist = tf.max(tf.abs(adv.sub(x))).dataSync()[0];
    expect(dist).toBeLessThanOrEqual(opts.eps + 1e-6);
    expect(dist).toBeGreaterThan(opts.eps / 2);
    expect(tf.min(adv).dataSync()[0]).toBeGreaterThanOrEqual(0);
    expect(tf.max(adv).dataSync()[0]).toBeLessThanOrEqual(1);
    const loss = (t: tf.Tensor) =>
      tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 4), model.predict(t) as tf.Tensor).dataSync()[0];
    expect(loss(adv)).toBeGreaterThan(loss(x));
    tf.dispose([x, labels, adv]);
  });

  it('maximises the loss against the labels it is given', () => {
    const x = randomImages(16, 2);
    const a = tf.tensor1d(new Array(16).fill(0), 'int32');
    const b = tf.tensor1d(new Array(16).fill(1), 'int32');
    const advA = pgdExamples(model, x, a, opts);
    const advB = pgdExamples(model, x, b, opts);
    const prob = (t: tf.Tensor, c: number) => tf.softmax(model.predict(t) as tf.Tensor).slice([0, c], [-1, 1]).mean().dataSync()[0];
    expect(prob(advA, 0)).toBeLessThan(prob(x, 0));
    expect(prob(advB, 1)).toBeLessThan(prob(x, 1));
    tf.dispose([x, a, b, advA, advB]);
  });

  it('leaves no tensors behind', () => {
    const x = randomImages(8, 3);
    const labels = tf.tensor1d(new Array(8).fill(2), 'int32');
    const before = tf.memory().numTensors;
    pgdExamples(model, x, labels, opts).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, labels]);
  });
});

describe('pgd stage', () => {
  it('replaces only batches marked adversarial and reports where flips went', async () => {
    const model = buildModel('cnn-small', { inputShape: [12, 12, 1], numClasses: 4, seed: 4 });
    const x = randomImages(8, 5);
    const pixels = x.dataSync() as Float32Array;
    x.dispose();
    const make = (adversarial: boolean): Batch => ({ keys: Array.from({ length: 8 }, (_, i) => `k${i}`), x: pixels, labels: new Int32Array(8), shape: [8, 12, 12, 1], adversarial });
    async function* source() {
      yield make(false);
      yield make(true);
    }
    const out: Batch[] = [];
    const opts = { eps: 0.3, alpha: 0.1, steps: 5, randomStart: false };
    for await (const b of pgd(inProcessAttacker(() => model, opts), { pgd: opts, numClasses: 4 })(source(), {})) out.push(b);
    expect(out[0].x).toBe(pixels);
    expect(out[0].attack).toBeUndefined();
    expect(out[1].x).not.toEqual(pixels);
    const stats = out[1].attack!;
    expect(stats.flippedTo.reduce((a, b) => a + b, 0)).toBe(stats.flipped);
    expect(stats.flippedTo[0]).toBe(0);
  });
});

it('attackStats counts flips away from the label by destination class', () => {
  const s = attackStats(Int32Array.from([0, 2, 2, 1]), Int32Array.from([0, 1, 0, 1]), 3);
  expect(s.flipped).toBe(2);
  expect([...s.flippedTo]).toEqual([0, 0, 2]);
});
