import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * The wasm backend's own kernels, captured before the project overrides any of them, so a project kernel can
 * delegate to the stock one it replaced (and `unregisterWasmKernels` can put it back).
 */
const stock = new Map<string, tf.KernelConfig>();

/** Remembers the currently registered wasm kernel `name` as the stock one (first call wins). */
export function rememberStockKernel(name: string): tf.KernelConfig | undefined {
  if (!stock.has(name)) {
    const config = tf.getKernel(name, 'wasm');
    if (config !== undefined) stock.set(name, config);
  }
  return stock.get(name);
}

/** The stock wasm kernel `name`: the remembered one if the project overrode it, else whatever is registered. */
export function stockKernel(name: string): tf.KernelConfig {
  const config = stock.get(name) ?? tf.getKernel(name, 'wasm');
  if (config === undefined) throw new Error(`wasm backend has no ${name} kernel`);
  return config;
}

/**
 * Runs stock wasm kernels directly on the backend (no engine, no tape) and frees every intermediate on `dispose`,
 * except the ones handed out with `keep`. A composite kernel opens one scope and disposes it in `finally`, so it
 * leaks neither tensor data nor the XNNPACK operators cached on temporary filters.
 *
 *   const scope = new KernelScope(backend);
 *   try { return scope.keep(scope.run('Transpose', { x }, { perm: [1, 0] })); } finally { scope.dispose(); }
 */
export class KernelScope {
  private readonly temps: tf.TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  run(name: string, inputs: Record<string, tf.TensorInfo>, attrs: object = {}): tf.TensorInfo {
    const out = stockKernel(name).kernelFunc({
      inputs,
      attrs: attrs as tf.NamedAttrMap,
      backend: this.backend,
    }) as tf.TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** Puts a tensor the caller allocated itself (backend.makeOutput) on the dispose list. */
  adopt(t: tf.TensorInfo): tf.TensorInfo {
    this.temps.push(t);
    return t;
  }

  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /**
   * [n, h, w, c] -> [c, h, w, n]. wasm's transpose is slow when the first and last axes swap (~35 ms for 4M
   * floats); for large tensors three transposes that each move contiguous rows or cache-sized blocks are 2-3x faster.
   */
  swapOuterInner(x: tf.TensorInfo): tf.TensorInfo {
    const [n, h, w, c] = x.shape;
    if (n * h * w * c < 1 << 20 || n < 8 || c < 8) return this.transpose(x, [3, 1, 2, 0]);
    const pixelsFirst = this.transpose(this.reshape(x, [n, h * w, c]), [1, 0, 2]);
    const perPixel = this.transpose(pixelsFirst, [0, 2, 1]);
    return this.reshape(this.transpose(perPixel, [1, 0, 2]), [c, h, w, n]);
  }

  /** Crops (negative amounts) or zero-pads (positive amounts) the two spatial axes of an NHWC tensor. */
  padSpatial(x: tf.TensorInfo, top: number, bottom: number, left: number, right: number): tf.TensorInfo {
    let out = x;
    if (top < 0 || bottom < 0 || left < 0 || right < 0) {
      const [n, h, w, c] = out.shape;
      const t = Math.max(0, -top), l = Math.max(0, -left);
      const size = [n, h - t - Math.max(0, -bottom), w - l - Math.max(0, -right), c];
      out = this.run('Slice', { x: out }, { begin: [0, t, l, 0], size });
    }
    if (top > 0 || bottom > 0 || left > 0 || right > 0) {
      const paddings = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
      out = this.run('PadV2', { x: out }, { paddings, constantValue: 0 });
    }
    return out;
  }

  /** Takes `out` off the dispose list: the caller now owns it (typically the kernel's result). */
  keep(out: tf.TensorInfo): tf.TensorInfo {
    const at = this.temps.lastIndexOf(out);
    if (at >= 0) this.temps.splice(at, 1);
    return out;
  }

  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}
