import * as tf from '@tensorflow/tfjs';

/**
 * Gradients of dilated (atrous) convolutions, which TF.js 4.22 refuses on every backend ("dilation rates greater
 * than 1 are not yet supported in gradients"). A convolution with dilation d equals one with the filter spread
 * out by d (d - 1 zeros between taps) and dilation 1, so:
 *
 *   dx = backpropInput(dy, spread(W))            dW = every d-th tap of backpropFilter(x, dy, shape of spread(W))
 *
 * which runs on the existing gradient kernels of any backend (the wasm ones in wasm-kernels/). TF and TF.js allow
 * dilation > 1 only with stride 1. Undilated convolutions keep TF.js's own gradient. Covers `Conv2D` and
 * `DepthwiseConv2dNative` (hence separable convs); the Conv2D *layer* runs a fused op whose gradient cannot be
 * replaced, so models/dilated-conv2d.ts routes dilated Conv2D layers through the plain op.
 */
type GradientMap = Record<string, () => tf.Tensor>;

const stock = new Map<string, tf.GradConfig>();

type ConvAttrs = { strides: [number, number] | number; pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dilations: [number, number] | number; dimRoundingMode?: 'floor' | 'round' | 'ceil'; dataFormat?: string };

const pair = (v: [number, number] | number | null | undefined): [number, number] => (v == null ? [1, 1] : typeof v === 'number' ? [v, v] : v);

/** [kh, kw, a, b] -> [(kh-1)*dh+1, (kw-1)*dw+1, a, b] with zeros between the taps. */
function spread(filter: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  const padded = tf.pad(filter.reshape([kh, 1, kw, 1, a, b]), [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
  return padded.reshape<tf.Tensor4D>([kh * dh, kw * dw, a, b]).slice([0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, a, b]);
}

/** The taps of a spread filter's gradient that belong to real filter taps. */
function gather(grad: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  return tf.stridedSlice(grad, [0, 0, 0, 0], grad.shape, [dh, dw, 1, 1]) as tf.Tensor4D;
}

function dilatedGrad(kernelName: string, backpropInput: string, backpropFilter: string): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs): GradientMap => {
      const dilations = pair((attrs as unknown as ConvAttrs).dilations);
      if (dilations[0] === 1 && dilations[1] === 1) return stock.get(kernelName)!.gradFunc(dy, saved, attrs) as GradientMap;
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const { strides, pad, dimRoundingMode, dataFormat } = attrs as unknown as ConvAttrs;
      const common = { strides, pad, dimRoundingMode, dataFormat: dataFormat ?? 'NHWC', dilations: [1, 1] };
      return {
        x: () => {
          const wide = spread(filter, dilations);
          return tf.engine().runKernel(backpropInput, { dy: dy as tf.Tensor, filter: wide },
            { ...common, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
        },
        filter: () => {
          const wideShape = [(filter.shape[0] - 1) * dilations[0] + 1, (filter.shape[1] - 1) * dilations[1] + 1,
            filter.shape[2], filter.shape[3]];
          const wide = tf.engine().runKernel(backpropFilter, { x, dy: dy as tf.Tensor },
            { ...common, filterShape: wideShape } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
          return gather(wide, dilations);
        },
      };
    },
  };
}

const configs = [
  dilatedGrad(tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter),
  dilatedGrad(tf.DepthwiseConv2dNative, tf.DepthwiseConv2dNativeBackpropInput, tf.DepthwiseConv2dNativeBackpropFilter),
];

/** Installs the dilated-convolution gradients (for every backend). Idempotent. */
export function registerDilatedConvGradients(): void {
  for (const config of configs) {
    const current = tf.getGradient(config.kernelName);
    if (current === config) continue;
    if (!stock.has(config.kernelName) && current !== undefined) stock.set(config.kernelName, current);
    tf.registerGradient(config);
  }
}
