import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { buildModel } from '../../src/models/zoo.js';
import { ComputePool } from '../../src/pipeline/compute-pool.js';
import { createRng } from '../../src/pipeline/random.js';
import { pgdExamples } from '../../src/stages/pgd.js';
import { predictLogits } from '../../src/stages/score.js';
import { applyFlatGradients, sgdMomentum, trainStep } from '../../src/stages/train.js';

/** The pool runs the compiled worker (dist/), which `npm test` builds first. */
describe('ComputePool', () => {
  const shape: [number, number, number, number] = [24, 28, 28, 1];
  const rng = createRng(9);
  const x = Float32Array.from({ length: 24 * 784 }, rng);
  const labels = Int32Array.from({ length: 24 }, (_, i) => i % 10);
  const opts = { eps: 0.05, alpha: 0.01, steps: 3, randomStart: false };
  let pool: ComputePool | undefined;

  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterEach(async () => {
    await pool?.destroy();
    pool = undefined;
    delete process.env.PBE_WORKER_FAILPOINT;
  });

  it('computes the same PGD examples and logits as the main thread, split over 2 workers', async () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    pool = new ComputePool({ workers: 2, backend: 'wasm', model });
    const expected = tf.tidy(() => pgdExamples(model, tf.tensor4d(x, shape), tf.tensor1d(labels, 'int32'), opts).dataSync() as Float32Array);
    const got = await pool.pgd(x, labels, shape, opts);
    expect(got.x.length).toBe(expected.length);
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got.x[i] - expected[i]));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(got.predicted).toHaveLength(24);

    const logits = await pool.logits(x, shape);
    const reference = predictLogits(model, x, shape);
    for (let i = 0; i < reference.length; i++) expect(logits[i]).toBeCloseTo(reference[i], 4);
  });

  it('data-parallel gradients on 2 workers take the same train step as the main thread, on PGD examples', async () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    const twin = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    pool = new ComputePool({ workers: 2, backend: 'wasm', model });
    const adv = tf.tidy(() => pgdExamples(model, tf.tensor4d(x, shape), tf.tensor1d(labels, 'int32'), opts).dataSync() as Float32Array);
    const expectedPredicted = tf.tidy(() => (model.predict(tf.tensor4d(adv, shape)) as tf.Tensor).argMax(-1).dataSync() as Int32Array);
    const batch = { keys: [...labels].map(String), x, labels, shape, adversarial: true };
    const expectedLoss = trainStep(twin, sgdMomentum(0.05, 0.9), { ...batch, x: adv }, 5e-4);

    const { grads, lossSum, predicted } = await pool.gradients(batch, opts);
    applyFlatGradients(model, sgdMomentum(0.05, 0.9), grads, 5e-4);
    expect(predicted).toEqual(expectedPredicted);
    expect(lossSum / 24).toBeCloseTo(expectedLoss, 4);
    const after = model.getWeights().map((w) => w.dataSync());
    const reference = twin.getWeights().map((w) => w.dataSync());
    let maxDiff = 0;
    after.forEach((w, k) => w.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - reference[k][i])))));
    expect(maxDiff).toBeLessThan(1e-6);

    const clean = await pool.gradients(batch, null);
    expect(clean.predicted).toBeNull();
    expect(clean.lossSum).not.toBeCloseTo(lossSum, 2);
  });

  it('uses the weights of the last refresh', async () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    pool = new ComputePool({ workers: 1, backend: 'wasm', model });
    const before = await pool.logits(x, shape);
    const other = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 6 });
    model.setWeights(other.getWeights());
    expect(await pool.logits(x, shape)).toEqual(before);
    pool.refreshWeights(model);
    const after = await pool.logits(x, shape);
    const reference = predictLogits(other, x, shape);
    for (let i = 0; i < reference.length; i++) expect(after[i]).toBeCloseTo(reference[i], 4);
  });

  it('a worker that dies mid-batch is replaced and its part retried: nothing lost or duplicated', async () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 7 });
    const clean = new ComputePool({ workers: 2, backend: 'wasm', model });
    const expected = [];
    for (let i = 0; i < 4; i++) expected.push(await clean.pgd(x, labels, shape, opts));
    await clean.destroy();

    process.env.PBE_WORKER_FAILPOINT = '2';
    pool = new ComputePool({ workers: 2, backend: 'wasm', model });
    for (let i = 0; i < 4; i++) {
      const got = await pool.pgd(x, labels, shape, opts);
      expect(got.x).toEqual(expected[i].x);
      expect(got.predicted).toEqual(expected[i].predicted);
    }
    expect(pool.retried).toBeGreaterThan(0);
  });

  it('data-parallel gradients survive workers dying mid-batch: the retried parts sum to the same gradients', async () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 7 });
    const batch = { keys: [...labels].map(String), x, labels, shape, adversarial: true };
    const clean = new ComputePool({ workers: 2, backend: 'wasm', model });
    const expected = [];
    for (let i = 0; i < 3; i++) expected.push(await clean.gradients(batch, i === 1 ? null : opts));
    await clean.destroy();

    process.env.PBE_WORKER_FAILPOINT = '2';
    pool = new ComputePool({ workers: 2, backend: 'wasm', model });
    for (let i = 0; i < 3; i++) {
      const got = await pool.gradients(batch, i === 1 ? null : opts);
      expect(got.grads).toEqual(expected[i].grads);
      expect(got.lossSum).toBe(expected[i].lossSum);
      expect(got.predicted).toEqual(expected[i].predicted);
    }
    expect(pool.retried).toBeGreaterThan(0);
  });
});
