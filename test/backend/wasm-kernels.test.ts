import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { on, randn, relError, wasmDataIds } from './helpers.js';

const TOLERANCE = 1e-5;

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

interface ConvCase { batch: number; height: number; width: number; inC: number; outC: number; k: number; stride: number; pad: 'same' | 'valid' }

/** Kernel sizes 1/3/5 x stride 1/2 x same/valid, over channel pairs that reach every code path. */
function convGrid(): ConvCase[] {
  const cases: ConvCase[] = [];
  // (1,4), (2,3): matmul paths; (3,5), (9,16): conv paths with x or dy as input; (16,9): x as input.
  const channels: [number, number][] = [[1, 4], [2, 3], [3, 5], [9, 16], [16, 9]];
  let n = 0;
  for (const k of [1, 3, 5]) {
    for (const stride of [1, 2]) {
      for (const pad of ['same', 'valid'] as const) {
        for (const [inC, outC] of channels) {
          const batch = [1, 2, 3][n++ % 3];
          cases.push({ batch, height: 9, width: 8, inC, outC, k, stride, pad });
        }
      }
    }
  }
  // Large batches on small images.
  for (const stride of [1, 2]) {
    cases.push({ batch: 256, height: 5, width: 5, inC: 3, outC: 8, k: 3, stride, pad: 'same' });
    cases.push({ batch: 256, height: 5, width: 5, inC: 12, outC: 16, k: 3, stride, pad: 'valid' });
  }
  return cases;
}

const label = (c: ConvCase) =>
  `[${c.batch},${c.height},${c.width},${c.inC}] k${c.k} s${c.stride} ${c.pad} -> ${c.outC} channels`;

describe('Conv2DBackpropInput and Conv2DBackpropFilter on wasm match cpu', () => {
  it.each(convGrid().map((c) => [label(c), c] as const))('%s', async (_name, c) => {
    const xShape = [c.batch, c.height, c.width, c.inC] as [number, number, number, number];
    const wShape = [c.k, c.k, c.inC, c.outC] as [number, number, number, number];
    const xv = randn(tf.util.sizeFromShape(xShape));
    const wv = randn(tf.util.sizeFromShape(wShape));
    const outShape = (await on('cpu', () => tf.conv2d(tf.tensor4d(xv, xShape), tf.tensor4d(wv, wShape), c.stride, c.pad))).shape;
    const dyv = randn(tf.util.sizeFromShape(outShape));
    const dy = () => tf.tensor4d(dyv, outShape as [number, number, number, number]);
    const backpropInput = () => tf.conv2dTranspose(dy(), tf.tensor4d(wv, wShape), xShape, c.stride, c.pad);
    const backpropFilter = () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(xv, xShape), dy: dy() },
      { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: wShape }) as tf.Tensor;

    for (const [name, op] of [['input', backpropInput], ['filter', backpropFilter]] as const) {
      const reference = await on('cpu', op);
      const before = wasmDataIds();
      const ours = await on('wasm', op);
      expect(wasmDataIds(), `${name}: wasm buffers left behind`).toBe(before);
      expect(ours.shape).toEqual(reference.shape);
      expect(relError(ours.values, reference.values), `${name} gradient`).toBeLessThan(TOLERANCE);
    }
  });
});

describe('DepthwiseConv2dNativeBackpropInput and ...BackpropFilter on wasm match cpu', () => {
  const cases: { shape: [number, number, number, number]; k: number; multiplier: number; stride: number; pad: 'same' | 'valid' }[] = [];
  let n = 0;
  for (const k of [1, 3, 5]) {
    for (const stride of [1, 2]) {
      for (const pad of ['same', 'valid'] as const) {
        for (const multiplier of [1, 2]) {
          const channels = [1, 3, 8][n++ % 3];
          cases.push({ shape: [1 + (n % 3), 9, 8, channels], k, multiplier, stride, pad });
        }
      }
    }
  }
  cases.push({ shape: [64, 5, 5, 16], k: 3, multiplier: 1, stride: 1, pad: 'same' });
  it.each(cases.map((c) => [`[${c.shape}] k${c.k} x${c.multiplier} s${c.stride} ${c.pad}`, c] as const))('%s', async (_n, c) => {
    const wShape = [c.k, c.k, c.shape[3], c.multiplier] as [number, number, number, number];
    const xv = randn(tf.util.sizeFromShape(c.shape));
    const wv = randn(tf.util.sizeFromShape(wShape));
    const forward = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.depthwiseConv2d(x, w, c.stride, c.pad);
    const outShape = (await on('cpu', () => forward(tf.tensor4d(xv, c.shape), tf.tensor4d(wv, wShape)))).shape;
    const dyv = randn(tf.util.sizeFromShape(outShape));
    const grads = (which: 0 | 1) => () => tf.grads((x: tf.Tensor, w: tf.Tensor) =>
      forward(x as tf.Tensor4D, w as tf.Tensor4D).mul(tf.tensor(dyv, outShape)).sum())(
      [tf.tensor4d(xv, c.shape), tf.tensor4d(wv, wShape)])[which];
    for (const [name, op] of [['input', grads(0)], ['filter', grads(1)]] as const) {
      const reference = await on('cpu', op);
      const before = wasmDataIds();
      const ours = await on('wasm', op);
      expect(wasmDataIds(), `${name}: wasm buffers left behind`).toBe(before);
      expect(ours.shape).toEqual(reference.shape);
      expect(relError(ours.values, reference.values), `${name} gradient`).toBeLessThan(TOLERANCE);
    }
  });
});

describe('MaxPoolGrad on wasm matches cpu', () => {
  const pools: { shape: [number, number, number, number]; size: number; stride: number; pad: 'same' | 'valid' }[] = [
    { shape: [3, 8, 6, 5], size: 2, stride: 2, pad: 'valid' }, // exact 2x2 tiling
    { shape: [2, 7, 9, 4], size: 2, stride: 2, pad: 'valid' }, // odd sizes: last row/column unused
    { shape: [2, 7, 7, 3], size: 3, stride: 2, pad: 'same' }, // padded, overlapping
    { shape: [2, 6, 6, 3], size: 3, stride: 1, pad: 'same' },
  ];
  const data = {
    normal: (n: number) => randn(n),
    // Few distinct values, so windows hold ties; all-negative windows are where stock wasm drops the gradient.
    ties: (n: number) => randn(n).map((v) => Math.round(v * 1.5) - 1),
  };
  for (const p of pools) {
    for (const [kind, make] of Object.entries(data)) {
      it(`[${p.shape}] pool ${p.size} stride ${p.stride} ${p.pad}, ${kind} inputs`, async () => {
        const xv = make(tf.util.sizeFromShape(p.shape));
        const outShape = (await on('cpu', () => tf.maxPool(tf.tensor4d(xv, p.shape), p.size, p.stride, p.pad))).shape;
        // Distinct integer weights per output: sums of them are exact, so any routing difference shows.
        const weights = () => tf.range(1, 1 + tf.util.sizeFromShape(outShape)).reshape(outShape);
        const grad = () => tf.grad((x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, p.size, p.stride, p.pad).mul(weights()).sum())(
          tf.tensor4d(xv, p.shape));
        const reference = await on('cpu', grad);
        const before = wasmDataIds();
        const ours = await on('wasm', grad);
        expect(wasmDataIds()).toBe(before);
        expect(relError(ours.values, reference.values)).toBe(0);
      });
    }
  }
});

describe('BatchMatMul with transposed operands on wasm matches cpu', () => {
  const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
    { a: [7, 5], b: [7, 3], ta: true, tb: false },
    { a: [5, 7], b: [3, 7], ta: false, tb: true },
    { a: [7, 5], b: [3, 7], ta: true, tb: true },
    { a: [1, 64, 33], b: [1, 17, 33], ta: false, tb: true },
    { a: [2, 7, 5], b: [2, 7, 3], ta: true, tb: false }, // batched: stock kernel
  ];
  it.each(cases.map((c) => [`${c.a} x ${c.b} transposeA=${c.ta} transposeB=${c.tb}`, c] as const))('%s', async (_n, c) => {
    const av = randn(tf.util.sizeFromShape(c.a));
    const bv = randn(tf.util.sizeFromShape(c.b));
    const op = () => tf.matMul(tf.tensor(av, c.a), tf.tensor(bv, c.b), c.ta, c.tb);
    const reference = await on('cpu', op);
    const before = wasmDataIds();
    const ours = await on('wasm', op);
    expect(wasmDataIds()).toBe(before);
    expect(ours.shape).toEqual(reference.shape);
    expect(relError(ours.values, reference.values)).toBeLessThan(TOLERANCE);
  });
});

describe('Sum on wasm matches cpu', () => {
  const cases: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
    { shape: [6, 5, 4, 7], axis: [0, 1, 2], keepDims: false }, // a conv bias gradient
    { shape: [6, 5, 4, 7], axis: [0, 1, 2], keepDims: true },
    { shape: [33, 10], axis: [0], keepDims: false }, // a dense bias gradient
    { shape: [4, 5, 6], axis: [1, 0], keepDims: false },
    { shape: [4, 5, 6], axis: [-1], keepDims: true }, // trailing axis: stock kernel
    { shape: [4, 5, 6], axis: [0, 2], keepDims: false }, // not a leading block: stock kernel
  ];
  it.each(cases.map((c) => [`[${c.shape}] axis ${c.axis} keepDims ${c.keepDims}`, c] as const))('%s', async (_n, c) => {
    const xv = randn(tf.util.sizeFromShape(c.shape));
    const op = () => tf.sum(tf.tensor(xv, c.shape), c.axis, c.keepDims);
    const reference = await on('cpu', op);
    const ours = await on('wasm', op);
    expect(ours.shape).toEqual(reference.shape);
    expect(relError(ours.values, reference.values)).toBeLessThan(TOLERANCE);
  });
});

describe('Identity and same-dtype Cast share buffers safely', () => {
  it('a clone and a cast outlive the tensor they came from and free the buffer with the last of them', async () => {
    await tf.setBackend('wasm');
    const before = wasmDataIds();
    const a = tf.tensor([1, 2, 3]);
    const b = tf.clone(a);
    const c = tf.cast(a, 'float32');
    const d = tf.cast(a, 'int32');
    expect(wasmDataIds()).toBe(before + 2); // a (shared by b and c) and d
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    expect(d.dtype).toBe('int32');
    tf.dispose([c, d]);
    expect(wasmDataIds()).toBe(before);
  });
});
