import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { PROBE_CHUNK, probeChunk, probeEps } from '../../src/defenses/probe.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';
import { pgdExamples } from '../../src/stages/pgd.js';

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

/** The probe attacks PROBE_CHUNK images at a time (bounded memory at 224x224); it must measure what one batch would. */
describe('probeEps in chunks', () => {
  it('gives the flip counts of PGD on the whole probe set at once', () => {
    const n = PROBE_CHUNK + 9;
    const shape: [number, number, number, number] = [n, 12, 12, 3];
    const rng = createRng(8);
    const x = Float32Array.from({ length: n * 12 * 12 * 3 }, () => rng());
    const model = buildModel('cnn-small', { inputShape: [12, 12, 3], numClasses: 4, seed: 3 });
    const labels = tf.tidy(() => (model.predict(tf.tensor4d(x, shape)) as tf.Tensor).argMax(-1).dataSync() as Int32Array);
    const pgd = { alphaRatio: 0.25, steps: 3 };
    const [point] = probeEps(model, x, shape, labels, [0.1], pgd);
    const whole = tf.tidy(() => {
      const adv = pgdExamples(model, tf.tensor4d(x, shape), tf.tensor1d(labels, 'int32'), { eps: 0.1, alpha: 0.025, steps: 3, randomStart: false });
      return (model.predict(adv) as tf.Tensor).argMax(-1).dataSync() as Int32Array;
    });
    const flippedTo = new Array(4).fill(0);
    whole.forEach((p, i) => { if (p !== labels[i]) flippedTo[p]++; });
    expect(point.flippedTo).toEqual(flippedTo);
    expect(point.flipRate).toBeCloseTo(flippedTo.reduce((a, b) => a + b, 0) / n, 10);
    model.dispose();
  });

  it('attacks fewer images at once as they grow', () => {
    expect(probeChunk(28, 28)).toBe(PROBE_CHUNK);
    expect(probeChunk(224, 224)).toBe(1);
    expect(probeChunk(64, 64)).toBe(24);
    expect(probeChunk(2000, 2000)).toBe(1);
  });
});
