import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { PbeError } from '../../src/errors.js';
import { initBackend, wasmKernelNames, wasmKernelsRegistered } from '../../src/backend/index.js';

const require = createRequire(import.meta.url);
const installed = (pkg: string) => {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const nativeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

const logged = () => {
  const lines: string[] = [];
  return { lines, log: (msg: string) => lines.push(msg) };
};

afterEach(() => {
  delete process.env.PBE_BACKEND;
});

describe('initBackend', () => {
  it.skipIf(nativeInstalled)('auto skips the native packages (not installed here), takes wasm and registers the project kernels', async () => {
    const { lines, log } = logged();
    const info = await initBackend('auto', log);
    expect(info.name).toBe('wasm');
    expect(info.requested).toBe('auto');
    expect(info.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu', 'tensorflow']);
    expect(info.skipped[0].reason).toMatch(/@tensorflow\/tfjs-node-gpu is not installed/);
    expect(info.skipped[1].reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
    expect(info.kernels).toEqual([...wasmKernelNames]);
    expect(tf.getBackend()).toBe('wasm');
    expect(wasmKernelsRegistered()).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend wasm \(requested auto\); skipped tensorflow-gpu: .*not installed; tensorflow: .*not installed$/);
    // The wasm binaries resolve from the package, not the working directory: a tensor op works.
    expect(Array.from(tf.add(tf.tensor([1, 2]), 1).dataSync())).toEqual([2, 3]);
  });

  it('is idempotent: a repeat call returns the same choice without logging again', async () => {
    const first = logged();
    const a = await initBackend('wasm', first.log);
    const second = logged();
    const b = await initBackend('wasm', second.log);
    expect(b).toEqual(a);
    expect(second.lines).toHaveLength(0);
    expect(tf.getBackend()).toBe('wasm');
  });

  it.skipIf(nativeInstalled)('an explicit tensorflow request that cannot load throws a backend error naming what to install', async () => {
    const before = tf.getBackend();
    const err = await initBackend('tensorflow', () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PbeError);
    expect((err as PbeError).code).toBe('backend');
    expect((err as PbeError).message).toMatch(/backend "tensorflow" cannot be loaded/);
    expect((err as PbeError).message).toMatch(/npm install @tensorflow\/tfjs-node-gpu/);
    expect((err as PbeError).message).toMatch(/npm install @tensorflow\/tfjs-node\b/);
    expect(tf.getBackend()).toBe(before);
  });

  it('cpu works and switching back to wasm restores it', async () => {
    const cpu = await initBackend('cpu', () => {});
    expect(cpu).toEqual({ name: 'cpu', requested: 'cpu', skipped: [], kernels: [] });
    expect(tf.getBackend()).toBe('cpu');
    expect(tf.sum(tf.tensor([1, 2, 3])).dataSync()[0]).toBe(6);
    await initBackend('wasm', () => {});
    expect(tf.getBackend()).toBe('wasm');
  });

  it('follows PBE_BACKEND when no backend is requested', async () => {
    process.env.PBE_BACKEND = 'cpu';
    expect((await initBackend(undefined, () => {})).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await initBackend('wasm', () => {});
  });

  it('rejects an unknown PBE_BACKEND value, naming the variable and the choices', async () => {
    process.env.PBE_BACKEND = 'gpu';
    await expect(initBackend(undefined, () => {})).rejects.toThrow(
      'PBE_BACKEND is expected to be one of auto, tensorflow, wasm, cpu, but got "gpu"');
  });
});
