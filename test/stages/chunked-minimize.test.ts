import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';
import { minimizeInChunks } from '../../src/stages/chunked-minimize.js';

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

/** Trigger inversion's loss (a mask and pattern stamped on the images, CE to one class + λ‖m‖₁) on a tiny model. */
function invert(chunk: number, steps: number) {
  const [n, h, w, c] = [7, 8, 8, 3];
  const rng = createRng(5);
  const model = buildModel('cnn-small', { inputShape: [h, w, c], numClasses: 4, seed: 2 });
  const { x, y, maskParam, patternParam } = tf.tidy(() => ({
    x: tf.tensor4d(Float32Array.from({ length: n * h * w * c }, () => rng()), [n, h, w, c]),
    y: tf.oneHot(tf.fill([n], 1, 'int32') as tf.Tensor1D, 4).toFloat(),
    maskParam: tf.variable(tf.fill([h, w, 1], -0.8)),
    patternParam: tf.variable(tf.tensor3d(Float32Array.from({ length: h * w * c }, () => rng() * 2 - 1), [h, w, c])),
  }));
  const optimizer = tf.train.adam(0.1);
  for (let step = 0; step < steps; step++) {
    tf.tidy(() =>
      minimizeInChunks(optimizer, [maskParam, patternParam], x, y, chunk, (xc, yc) => {
        const mask = maskParam.tanh().add(1).div(2);
        const pattern = patternParam.tanh().add(1).div(2);
        const stamped = xc.mul(tf.scalar(1).sub(mask)).add(mask.mul(pattern));
        return tf.losses.softmaxCrossEntropy(yc, model.apply(stamped, { training: false }) as tf.Tensor).add(mask.sum().mul(0.01)) as tf.Scalar;
      }),
    );
  }
  const out = { mask: maskParam.dataSync().slice() as Float32Array, pattern: patternParam.dataSync().slice() as Float32Array };
  tf.dispose([x, y, maskParam, patternParam]);
  optimizer.dispose();
  model.dispose();
  return out;
}

describe('minimizeInChunks', () => {
  it('takes the step of the whole batch when the batch is split into chunks (7 images as 3 + 3 + 1, or 1 at a time)', () => {
    const whole = invert(7, 5);
    for (const chunk of [3, 1]) {
      const chunked = invert(chunk, 5);
      let moved = 0;
      whole.mask.forEach((v, i) => {
        expect(chunked.mask[i]).toBeCloseTo(v, 4);
        moved = Math.max(moved, Math.abs(v + 0.8));
      });
      whole.pattern.forEach((v, i) => expect(chunked.pattern[i]).toBeCloseTo(v, 4));
      expect(moved).toBeGreaterThan(0.1); // the steps did move the mask: the comparison is not of two starting points
    }
  });

  it('leaves no tensor behind', () => {
    for (const chunk of [3, 7]) {
      const before = tf.memory().numTensors;
      invert(chunk, 2);
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
