import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { KernelScope, stockKernel } from './kernel-scope.js';

/**
 * `BatchMatMul` with a transposed operand. wasm sends only the untransposed single-matrix case to XNNPACK and
 * every other one to a scalar C++ loop, which is the path the dense layers' gradients take
 * (dx = dy . W^T, dW = x^T . dy). Here a transposed operand is materialised first (a cheap copy next to the
 * product) so the product itself runs in XNNPACK. Batched products (more than one matrix) keep the stock kernel.
 */
function batchMatMul(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const stock = stockKernel(tf.BatchMatMul);
  const matricesA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const matricesB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if ((!transposeA && !transposeB) || matricesA !== 1 || matricesB !== 1 || a.dtype !== 'float32') {
    return stock.kernelFunc(args) as tf.TensorInfo;
  }
  const rows = (t: tf.TensorInfo) => t.shape[t.shape.length - 2];
  const cols = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];
  const scope = new KernelScope(args.backend as BackendWasm);
  try {
    const plainA = transposeA ? scope.transpose(scope.reshape(a, [rows(a), cols(a)]), [1, 0]) : a;
    const plainB = transposeB ? scope.transpose(scope.reshape(b, [rows(b), cols(b)]), [1, 0]) : b;
    const product = scope.keep(stock.kernelFunc({
      inputs: { a: plainA, b: plainB },
      attrs: { transposeA: false, transposeB: false },
      backend: args.backend,
    }) as tf.TensorInfo);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return { ...product, shape: [...outer, rows(plainA), cols(plainB)] };
  } finally {
    scope.dispose();
  }
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
