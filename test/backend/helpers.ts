import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Standard-normal samples (fresh on every call). */
export function randn(size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random()));
    const t = 2 * Math.PI * Math.random();
    out[i] = r * Math.cos(t);
    if (i + 1 < size) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** Runs `fn` with `backend` active and returns its result as plain numbers; tensors made inside are freed. */
export async function on<T extends tf.Tensor>(backend: string, fn: () => T): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  const out = tf.tidy(fn);
  const values = out.dataSync() as Float32Array;
  const shape = out.shape;
  out.dispose();
  return { shape, values };
}

/** max|a - b| / max|b| over the whole tensor (0 when both are all zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return scale === 0 ? diff : diff / scale;
}

/** Live data buffers on the wasm backend (tensor data and kernel intermediates alike). */
export function wasmDataIds(): number {
  return (tf.findBackend('wasm') as BackendWasm).numDataIds();
}
