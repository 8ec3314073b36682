import * as tf from '@tensorflow/tfjs';
import { shareBuffer } from './identity.js';
import { stockKernel } from './kernel-scope.js';

/**
 * `Cast` to the dtype the tensor already has shares its buffer instead of copying it (see identity.ts); the ReLU
 * gradient does exactly that (`cast(step(x), 'float32')`) once per layer. Other casts use the stock kernel.
 */
function cast(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  if (dtype !== x.dtype || dtype === 'string') return stockKernel(tf.Cast).kernelFunc(args) as tf.TensorInfo;
  return shareBuffer(args.backend, x);
}

export const castConfig: tf.KernelConfig = {
  kernelName: tf.Cast,
  backendName: 'wasm',
  kernelFunc: cast as unknown as tf.KernelFunc,
};
