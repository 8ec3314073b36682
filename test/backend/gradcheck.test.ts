import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { randn } from './helpers.js';

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

/**
 * Central finite differences against tf.grads for a small conv net run entirely on wasm: conv 3x3 stride 1 'same'
 * -> tanh -> conv 3x3 stride 2 'valid' -> tanh -> conv 1x1 -> dense. Smooth activations keep the difference
 * quotient free of kinks (max-pooling's gradient is checked exactly against cpu elsewhere). The forward runs in
 * float32; the differences are taken in float64 on the JS side.
 */
it('conv net gradients on wasm agree with finite differences', () => {
  const shapes = {
    x: [2, 7, 7, 2], w1: [3, 3, 2, 4], w2: [3, 3, 4, 5], w3: [1, 1, 5, 3], wd: [27, 4],
  } as const;
  const names = Object.keys(shapes) as (keyof typeof shapes)[];
  const values = Object.fromEntries(names.map((n) => [n, randn(tf.util.sizeFromShape([...shapes[n]])).map((v) => v * 0.5)]));
  const target = randn(2 * 4);

  const loss = (x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor, wd: tf.Tensor): tf.Scalar => {
    let h = tf.tanh(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'));
    h = tf.tanh(tf.conv2d(h, w2 as tf.Tensor4D, 2, 'valid'));
    h = tf.conv2d(h, w3 as tf.Tensor4D, 1, 'same');
    const out = tf.matMul(h.reshape([2, 27]), wd);
    return tf.sum(tf.square(tf.sub(out, tf.tensor(target, [2, 4]))));
  };
  const tensors = () => names.map((n) => tf.tensor(values[n], [...shapes[n]]));
  const evaluate = (): number => tf.tidy(() => loss(...(tensors() as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()[0]);

  const analytic = tf.tidy(() => tf.grads(loss)(tensors()).map((g) => g.dataSync() as Float32Array));

  const eps = 1e-2;
  let checked = 0;
  for (const [i, name] of names.entries()) {
    const v = values[name];
    // Float32 rounding in the forward makes the difference quotient noisy in absolute terms, so errors are measured
    // against the tensor's largest gradient entry: seen up to 3e-4 of it over 40 random nets; a wrong kernel is O(1).
    const scale = Math.max(...Array.from(analytic[i], Math.abs));
    // Every coordinate of the small tensors, an even spread of the others.
    const step = Math.max(1, Math.floor(v.length / 24));
    for (let j = 0; j < v.length; j += step) {
      const original = v[j];
      v[j] = original + eps;
      const up = evaluate();
      v[j] = original - eps;
      const down = evaluate();
      v[j] = original;
      const numeric = (up - down) / (2 * eps);
      expect(Math.abs(analytic[i][j] - numeric), `${name}[${j}]: analytic ${analytic[i][j]} vs numeric ${numeric}`)
        .toBeLessThan(2e-3 * scale);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(100);
});
