import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { KernelScope, stockKernel } from './kernel-scope.js';

/**
 * `Conv2DBackpropInput` (the input gradient of a convolution, also `conv2dTranspose`) as one forward convolution,
 * which wasm runs through XNNPACK about 8-10x faster than its own direct kernel:
 *
 *   dx = conv2d(dilate(dy, stride), transpose(flip(filter), [0, 1, 3, 2]), pad: (k - 1 - padBefore, ...), stride 1)
 *
 * `dilate` inserts `stride - 1` zeros between output pixels (so a strided conv costs stride^2 the FLOPs here, still
 * faster than stock); the padding is chosen so the result has the input's spatial size (negative amounts crop).
 * Few input channels take `viaMatMul` instead. NHWC only: NCHW goes to the stock kernel. Dilation rates are always
 * 1 here (tfjs refuses conv gradients with dilation before reaching a kernel).
 */
function conv2dBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (dataFormat === 'NCHW') return stockKernel(tf.Conv2DBackpropInput).kernelFunc(args) as tf.TensorInfo;

  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;

  const scope = new KernelScope(args.backend as BackendWasm);
  try {
    if (info.inChannels <= MATMUL_MAX_CHANNELS) return scope.keep(viaMatMul(scope, dy, filter, info));
    let grad = dy;
    if (strideHeight > 1 || strideWidth > 1) {
      const spread = scope.reshape(dy, [batchSize, outHeight, 1, outWidth, 1, outChannels]);
      const zeros = [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]];
      const dilated = scope.run('PadV2', { x: spread }, { paddings: zeros, constantValue: 0 });
      grad = scope.reshape(dilated, [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels]);
    }
    const top = filterHeight - 1 - info.padInfo.top;
    const left = filterWidth - 1 - info.padInfo.left;
    const bottom = inHeight - grad.shape[1] + filterHeight - 1 - top;
    const right = inWidth - grad.shape[2] + filterWidth - 1 - left;
    // Crop whatever must go (negative amounts); XNNPACK pads the rest itself.
    grad = scope.padSpatial(grad, Math.min(top, 0), Math.min(bottom, 0), Math.min(left, 0), Math.min(right, 0));
    const explicit = [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]];

    const flipped = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
    const kernel = scope.transpose(flipped, [0, 1, 3, 2]);
    const dx = scope.run('Conv2D', { x: grad, filter: kernel }, {
      strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode,
    });
    return scope.keep(dx);
  } finally {
    scope.dispose();
  }
}

/** Up to this many input channels `viaMatMul` beats the convolution (measured at batch 128: 1.3-1.8x at 1, even at 3). */
const MATMUL_MAX_CHANNELS = 2;

/**
 * For few input channels (the first layer of a net: 1-3) the convolution above has 1-3 output channels, which
 * leaves XNNPACK's GEMM tiles mostly empty. Instead: one matmul `cols = dy . W^T` ([pixels, Co] x [Co, kh*kw*Ci])
 * in XNNPACK, then col2im in JS, each input pixel summing the column entries that came from it.
 */
function viaMatMul(scope: KernelScope, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const taps = filterHeight * filterWidth * inChannels;
  const weights = scope.transpose(scope.reshape(filter, [taps, outChannels]), [1, 0]);
  const rows = scope.reshape(dy, [batchSize * outHeight * outWidth, outChannels]);
  const cols = scope.run('BatchMatMul', { a: rows, b: weights }, { transposeA: false, transposeB: false });
  const out = scope.adopt(scope.backend.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32'));
  const y = scope.backend.typedArrayFromHeap(cols) as Float32Array;
  const dx = scope.backend.typedArrayFromHeap(out) as Float32Array;
  const padTop = info.padInfo.top, padLeft = info.padInfo.left;
  const tapRow = filterWidth * inChannels;
  // Gather: each input pixel sums the column entries that came from it (3x faster than scattering into dx).
  let dst = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < inHeight; i++) {
      for (let j = 0; j < inWidth; j++, dst += inChannels) {
        for (let c = 0; c < inChannels; c++) {
          let sum = 0;
          for (let u = 0; u < filterHeight; u++) {
            const ty = i + padTop - u;
            const oy = ty / strideHeight;
            if (ty < 0 || oy >= outHeight || ty % strideHeight !== 0) continue;
            const row = (b * outHeight + oy) * outWidth * taps + u * tapRow + c;
            for (let v = 0; v < filterWidth; v++) {
              const tx = j + padLeft - v;
              const ox = tx / strideWidth;
              if (tx < 0 || ox >= outWidth || tx % strideWidth !== 0) continue;
              sum += y[row + ox * taps + v * inChannels];
            }
          }
          dx[dst + c] = sum;
        }
      }
    }
  }
  return out;
}

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};
