import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { backendError } from '../../errors.js';
import { KernelScope } from './kernel-scope.js';

/**
 * `Conv2DBackpropFilter` (the filter gradient of a convolution), which tfjs-backend-wasm 4.22 lacks, built on
 * XNNPACK through wasm's own Conv2D / BatchMatMul / Transpose kernels:
 *
 *   dW[u, v, ci, co] = sum over b, oy, ox of x[b, oy*s + u - padTop, ox*s + v - padLeft, ci] * dy[b, oy, ox, co]
 *
 * Three ways, chosen by shape (timings: batch 128, 3x3, see the comments on each):
 * - `viaMatMul` (<= 8 input channels): im2col built in JS, one XNNPACK matmul;
 * - `xAsInput`: a forward conv of x with channels as the batch and the batch as the reduction channel, dy as the
 *   filter (dilated by the stride);
 * - `dyAsInput` (stride 1, x smaller than dy): the same with the roles of x and dy swapped.
 * Padding amounts are chosen so the result is exactly the filter's size (negative amounts crop). NHWC only;
 * dilation is always 1 here (tfjs refuses conv gradients with dilation before reaching a kernel).
 */
function conv2dBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat === 'NCHW') {
    throw backendError('Conv2DBackpropFilter on wasm supports NHWC only; transpose NCHW input to NHWC first');
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;

  const scope = new KernelScope(args.backend as BackendWasm);
  try {
    if (info.inChannels <= MATMUL_MAX_CHANNELS) return scope.keep(viaMatMul(scope, x, dy, info));
    // The filter operand is repacked by XNNPACK on every call: make the smaller of x and dy the filter.
    const swap = strideHeight === 1 && strideWidth === 1 &&
      inHeight * inWidth * info.inChannels < outHeight * outWidth * info.outChannels;
    return scope.keep(swap ? dyAsInput(scope, x, dy, info) : xAsInput(scope, x, dy, info));
  } finally {
    scope.dispose();
  }
}

/** x (channels as batch) convolved with dy as the filter. */
function xAsInput(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = filterHeight + (outHeight - 1) * strideHeight - inHeight - top;
  const right = filterWidth + (outWidth - 1) * strideWidth - inWidth - left;
  let xT = scope.swapOuterInner(x);
  xT = scope.padSpatial(xT, Math.min(top, 0), Math.min(bottom, 0), Math.min(left, 0), Math.min(right, 0));
  const explicit = [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]];
  const dyT = scope.transpose(dy, [1, 2, 0, 3]);
  const grad = scope.run('Conv2D', { x: xT, filter: dyT }, {
    strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [strideHeight, strideWidth],
  });
  return scope.transpose(grad, [1, 2, 0, 3]);
}

/**
 * Stride 1 only: dy (channels as batch) convolved with x as the filter, which gives the filter gradient flipped:
 *   dW = transpose(reverse(conv2d(dyT, xF, pad: k - 1 - padBefore), [1, 2]), [1, 2, 3, 0])
 * with dyT = transpose(dy, [3, 1, 2, 0]) and xF = transpose(x, [1, 2, 0, 3]). XNNPACK repacks the filter operand
 * on every call at a cost that grows with its size, so the smaller of x and dy should be the filter.
 */
function dyAsInput(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth } = info;
  const top = filterHeight - 1 - info.padInfo.top;
  const left = filterWidth - 1 - info.padInfo.left;
  const bottom = filterHeight - 1 + inHeight - outHeight - top;
  const right = filterWidth - 1 + inWidth - outWidth - left;
  let dyT = scope.swapOuterInner(dy);
  dyT = scope.padSpatial(dyT, Math.min(top, 0), Math.min(bottom, 0), Math.min(left, 0), Math.min(right, 0));
  const explicit = [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]];
  const xF = scope.transpose(x, [1, 2, 0, 3]);
  const flipped = scope.run('Conv2D', { x: dyT, filter: xF }, {
    strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [1, 1],
  });
  return scope.transpose(scope.run('Reverse', { x: flipped }, { dims: [1, 2] }), [1, 2, 3, 0]);
}

/** Up to this many input channels `viaMatMul` wins (measured: 3.5x at 1, 2.2x at 3, even at 8, slower at 16). */
const MATMUL_MAX_CHANNELS = 8;

/**
 * For few input channels (a net's first layer) both convolutions above run at a few GFLOP/s: XNNPACK's repacking
 * of the large filter operand dominates. Instead: the im2col matrix, built transposed in JS straight from x
 * ([kh*kw*Ci, pixels], zeros where a tap falls in the padding), times dy as [pixels, Co] in XNNPACK.
 */
function viaMatMul(scope: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const pixels = batchSize * outHeight * outWidth;
  const taps = filterHeight * filterWidth * inChannels;
  const colsT = scope.adopt(scope.backend.makeOutput([taps, pixels], 'float32'));
  const src = scope.backend.typedArrayFromHeap(x) as Float32Array;
  const dst = scope.backend.typedArrayFromHeap(colsT) as Float32Array;
  const padTop = info.padInfo.top, padLeft = info.padInfo.left;
  const rowStride = inWidth * inChannels, imageStride = inHeight * rowStride;
  let at = 0;
  for (let u = 0; u < filterHeight; u++) {
    for (let v = 0; v < filterWidth; v++) {
      for (let c = 0; c < inChannels; c++) {
        for (let b = 0; b < batchSize; b++) {
          for (let oy = 0; oy < outHeight; oy++) {
            const i = oy * strideHeight + u - padTop;
            if (i < 0 || i >= inHeight) {
              dst.fill(0, at, at + outWidth);
              at += outWidth;
              continue;
            }
            const row = b * imageStride + i * rowStride + c;
            for (let ox = 0; ox < outWidth; ox++, at++) {
              const j = ox * strideWidth + v - padLeft;
              dst[at] = j >= 0 && j < inWidth ? src[row + j * inChannels] : 0;
            }
          }
        }
      }
    }
  }
  // XNNPACK packs (and caches on dy's id until dy is freed) dy as the matmul's weights.
  const rows = scope.reshape(dy, [pixels, outChannels]);
  const grad = scope.run('BatchMatMul', { a: colsT, b: rows }, { transposeA: false, transposeB: false });
  return scope.reshape(grad, [filterHeight, filterWidth, inChannels, outChannels]);
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};
