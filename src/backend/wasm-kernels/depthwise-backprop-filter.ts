import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { backendError } from '../../errors.js';

/**
 * `DepthwiseConv2dNativeBackpropFilter` (the filter gradient of a depthwise convolution), which
 * tfjs-backend-wasm 4.22 lacks, in JS directly on the wasm heap:
 *
 *   dW[u, v, c, j] = sum over b, oy, ox of x[b, oy*s + u - padTop, ox*s + v - padLeft, c] * dy[b, oy, ox, c*m + j]
 *
 * The innermost loop runs over channels, which are contiguous in x, dy and dW (NHWC), and accumulates in float64
 * like the cpu backend. A depthwise layer holds few FLOPs (k*k per channel per pixel), so this direct loop costs a
 * small share of a MobileNet step (see bench/models.ts). NHWC only; dilation rates > 1 are handled above the kernel
 * (see models/trainable-layers.ts).
 */
function depthwiseBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, filterShape } = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, dilations ?? 1, pad, dimRoundingMode, true);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw backendError('DepthwiseConv2dNativeBackpropFilter on wasm supports dilation rate 1 only');
  }
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top, padLeft = info.padInfo.left;
  const multiplier = outChannels / inChannels;

  const backend = args.backend as BackendWasm;
  const out = backend.makeOutput(filterShape, 'float32');
  // Views are taken after the allocation above: growing the heap detaches earlier ones.
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const gs = backend.typedArrayFromHeap(dy) as Float32Array;
  const acc = new Float64Array(filterHeight * filterWidth * outChannels);
  const xRow = inWidth * inChannels, xImage = inHeight * xRow;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let u = 0; u < filterHeight; u++) {
        const i = oy * strideHeight + u - padTop;
        if (i < 0 || i >= inHeight) continue;
        const xLine = b * xImage + i * xRow;
        for (let ox = 0; ox < outWidth; ox++) {
          const g = ((b * outHeight + oy) * outWidth + ox) * outChannels;
          for (let v = 0; v < filterWidth; v++) {
            const j = ox * strideWidth + v - padLeft;
            if (j < 0 || j >= inWidth) continue;
            const p = xLine + j * inChannels;
            const a = (u * filterWidth + v) * outChannels;
            if (multiplier === 1) {
              for (let c = 0; c < inChannels; c++) acc[a + c] += xs[p + c] * gs[g + c];
            } else {
              for (let c = 0, k = 0; c < inChannels; c++) {
                const xv = xs[p + c];
                for (let m = 0; m < multiplier; m++, k++) acc[a + k] += xv * gs[g + k];
              }
            }
          }
        }
      }
    }
  }
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
