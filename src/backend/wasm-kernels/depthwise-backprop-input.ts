import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { backendError } from '../../errors.js';
import { KernelScope } from './kernel-scope.js';

/**
 * `DepthwiseConv2dNativeBackpropInput` (the input gradient of a depthwise convolution), which tfjs-backend-wasm
 * 4.22 lacks, as one forward depthwise convolution that XNNPACK runs:
 *
 *   dx = sumOverMultiplier(depthwise(dilate(dy, stride), flip(filter) as [k, k, C*m, 1], pad: k - 1 - padBefore))
 *
 * Each of the C*m output channels of the forward op is convolved back with its own flipped filter tap set; with a
 * channel multiplier m > 1 the m channels that came from one input channel are then summed. `dilate` inserts
 * `stride - 1` zeros between output pixels, and the padding makes the result the input's size (negative amounts
 * crop). NHWC only; dilation rates > 1 are handled above the kernel (see models/trainable-layers.ts).
 */
function depthwiseBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, dilations ?? 1, pad, dimRoundingMode, true);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw backendError('DepthwiseConv2dNativeBackpropInput on wasm supports dilation rate 1 only');
  }
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const multiplier = outChannels / inChannels;

  const scope = new KernelScope(args.backend as BackendWasm);
  try {
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
    grad = scope.padSpatial(grad, Math.min(top, 0), Math.min(bottom, 0), Math.min(left, 0), Math.min(right, 0));
    const explicit = [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]];

    const flipped = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
    const perChannel = scope.reshape(flipped, [filterHeight, filterWidth, outChannels, 1]);
    const dx = scope.run('DepthwiseConv2dNative', { x: grad, filter: perChannel }, {
      strides: [1, 1], pad: explicit, dilations: [1, 1], dataFormat: 'NHWC',
    });
    if (multiplier === 1) return scope.keep(dx);
    const grouped = scope.reshape(dx, [batchSize, inHeight, inWidth, inChannels, multiplier]);
    return scope.keep(scope.run('Sum', { x: grouped }, { axis: [4], keepDims: false }));
  } finally {
    scope.dispose();
  }
}

export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};
