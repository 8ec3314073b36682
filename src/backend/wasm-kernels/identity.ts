import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { stockKernel } from './kernel-scope.js';

/**
 * `Identity` that shares the input's buffer (one more reference) instead of copying it, as the cpu backend does.
 * tfjs tensors are immutable and wasm kernels always write fresh outputs, so sharing is safe; it matters because
 * the engine clones every tensor saved for the backward pass through this kernel, several per layer per step.
 */
function identity(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  if (x.dtype === 'string') return stockKernel(tf.Identity).kernelFunc(args) as tf.TensorInfo;
  return shareBuffer(args.backend, x);
}

/** A new tensor on x's buffer: one more reference to it, no copy. */
export function shareBuffer(backend: tf.KernelBackend, x: tf.TensorInfo): tf.TensorInfo {
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
