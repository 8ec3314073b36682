import * as tf from '@tensorflow/tfjs';
import { backendError } from '../../errors.js';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { castConfig } from './cast.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { depthwiseBackpropFilterConfig } from './depthwise-backprop-filter.js';
import { depthwiseBackpropInputConfig } from './depthwise-backprop-input.js';
import { identityConfig } from './identity.js';
import { rememberStockKernel } from './kernel-scope.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { sumConfig } from './sum.js';

/**
 * The project's wasm kernels. Each one replaces (or, for the conv and depthwise gradients wasm lacks, adds) the wasm
 * kernel of that name; the stock one is remembered so `unregisterWasmKernels` can put it back (the bench compares both).
 */
const kernels: tf.KernelConfig[] = [
  conv2dBackpropInputConfig, conv2dBackpropFilterConfig, batchMatMulConfig, maxPoolGradConfig, sumConfig, identityConfig,
  castConfig, depthwiseBackpropInputConfig, depthwiseBackpropFilterConfig,
];

/** Names of the kernels `registerWasmKernels` installs. */
export const wasmKernelNames: readonly string[] = kernels.map((k) => k.kernelName);

/**
 * Installs the project kernels on the wasm backend. Idempotent. Call it after `@tensorflow/tfjs-backend-wasm` is
 * imported (its import registers the stock kernels); `initBackend` does this when it picks wasm.
 */
export function registerWasmKernels(): void {
  if (tf.getKernel(tf.Conv2D, 'wasm') === undefined) {
    throw backendError('registerWasmKernels: the wasm backend is not loaded; import @tensorflow/tfjs-backend-wasm first');
  }
  for (const config of kernels) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current?.kernelFunc === config.kernelFunc) continue;
    rememberStockKernel(config.kernelName);
    if (current !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}

/** Restores the stock wasm kernels (and removes the ones wasm does not have). Idempotent. */
export function unregisterWasmKernels(): void {
  for (const config of kernels) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current?.kernelFunc !== config.kernelFunc) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    const stock = rememberStockKernel(config.kernelName);
    if (stock !== undefined) tf.registerKernel(stock);
  }
}

/** Whether the project kernels are the ones registered now. */
export function wasmKernelsRegistered(): boolean {
  return kernels.every((config) => tf.getKernel(config.kernelName, 'wasm')?.kernelFunc === config.kernelFunc);
}
