import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { generatorNames, generators } from '../../src/adversarial/registry.js';
import { drawnIndex, isStamped } from '../../src/adversarial/trigger-unlearning.js';
import type { GeneratorBatch } from '../../src/adversarial/generator.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';

/** The contract every registered generator keeps, on a small random model and batch. */
describe('adversarial generator registry', () => {
  const shape: [number, number, number, number] = [16, 28, 28, 1];
  const per = 28 * 28;
  let batch: GeneratorBatch;
  const mask = new Float32Array(per);
  for (let r = 25; r < 28; r++) for (let c = 25; c < 28; c++) mask[r * 28 + c] = 1;
  const options: Record<string, unknown> = {
    'linf-pgd': { eps: 0.05, alpha: 0.01, steps: 3, randomStart: false },
    'trigger-unlearning': { triggers: [{ target: 0, mask, pattern: new Float32Array(per).fill(1) }], share: 0.5 },
    'perturbation-unlearning': { perturbations: [{ target: 0, delta: Float32Array.from({ length: per }, (_, k) => 0.2 * Math.sin((2 * Math.PI * (k % 28) * 6) / 28)) }], share: 0.5 },
  };

  beforeAll(async () => {
    await initBackend('wasm');
    const rng = createRng(5);
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    batch = {
      model,
      x: Float32Array.from({ length: shape[0] * per }, () => rng()),
      shape,
      labels: Int32Array.from({ length: shape[0] }, (_, i) => i % 10),
      keys: Array.from({ length: shape[0] }, (_, i) => `k${i}`),
      seed: 3,
    };
  });

  it('has an entry with its paper and options for every name', () => {
    expect(generatorNames).toEqual(['linf-pgd', 'trigger-unlearning', 'perturbation-unlearning']);
    for (const name of generatorNames) {
      expect(generators[name].name).toBe(name);
      expect(generators[name].paper).toMatch(/\d{4}/);
      expect(options[name]).toBeDefined();
    }
  });

  for (const name of generatorNames) {
    it(`${name}: same shape, pixels in [0,1], deterministic, input untouched, no tensors left`, () => {
      const gen = generators[name] as { generate(b: GeneratorBatch, o: unknown): Float32Array; describe(o: unknown): string };
      const input = batch.x.slice();
      const tensors = tf.memory().numTensors;
      const a = gen.generate(batch, options[name]);
      const b = gen.generate(batch, options[name]);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(batch.x).toEqual(input);
      expect(a).toHaveLength(batch.x.length);
      expect(a).toEqual(b);
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      expect(a.some((v, i) => v !== batch.x[i])).toBe(true);
      expect(gen.describe(options[name]).length).toBeGreaterThan(5);
    });
  }

  it('linf-pgd stays in the eps ball', () => {
    const adv = generators['linf-pgd'].generate(batch, options['linf-pgd'] as never);
    const maxDiff = adv.reduce((m, v, i) => Math.max(m, Math.abs(v - batch.x[i])), 0);
    expect(maxDiff).toBeLessThanOrEqual(0.05 + 1e-6);
    expect(maxDiff).toBeGreaterThan(0.02);
  });

  it('trigger-unlearning stamps a seeded share of samples, only inside the mask', () => {
    const out = generators['trigger-unlearning'].generate(batch, options['trigger-unlearning'] as never);
    const stamped: number[] = [];
    for (let n = 0; n < shape[0]; n++) {
      let changed = false;
      for (let i = 0; i < per; i++) {
        const j = n * per + i;
        if (out[j] !== batch.x[j]) {
          changed = true;
          expect(mask[i]).toBe(1);
          expect(out[j]).toBe(1);
        }
      }
      if (changed) stamped.push(n);
    }
    expect(stamped.length).toBeGreaterThan(0);
    expect(stamped).toEqual(batch.keys.flatMap((key, n) => (isStamped(key, batch.seed, 0.5) ? [n] : [])));
    const other = generators['trigger-unlearning'].generate({ ...batch, seed: 4 }, options['trigger-unlearning'] as never);
    expect(other).not.toEqual(out);
  });

  it('trigger-unlearning with tied triggers stamps each stamped sample with the one its key draws', () => {
    const topLeft = new Float32Array(per);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) topLeft[r * 28 + c] = 1;
    const triggers = [
      { target: 0, mask, pattern: new Float32Array(per).fill(1) },
      { target: 8, mask: topLeft, pattern: new Float32Array(per).fill(0) },
    ];
    const out = generators['trigger-unlearning'].generate(batch, { triggers, share: 0.8 });
    const drawn = new Set<number>();
    batch.keys.forEach((key, n) => {
      const changed = [...Array(per).keys()].filter((i) => out[n * per + i] !== batch.x[n * per + i]);
      if (!isStamped(key, batch.seed, 0.8)) return expect(changed).toEqual([]);
      const which = drawnIndex(key, batch.seed, 2);
      drawn.add(which);
      const { mask: m, pattern } = triggers[which];
      expect(changed.every((i) => m[i] === 1 && out[n * per + i] === pattern[i])).toBe(true);
      expect(changed.length).toBeGreaterThan(0);
    });
    expect([...drawn].sort()).toEqual([0, 1]);
  });
});

describe('perturbation-unlearning', () => {
  it('adds δ, clipped, to a seeded share of samples (the draw of trigger-unlearning) and leaves the rest', () => {
    const shape: [number, number, number, number] = [12, 28, 28, 1];
    const per = 784;
    const rng = createRng(8);
    const x = Float32Array.from({ length: 12 * per }, () => rng());
    const delta = Float32Array.from({ length: per }, (_, k) => 0.3 * Math.sin((2 * Math.PI * (k % 28) * 6) / 28));
    const keys = Array.from({ length: 12 }, (_, i) => `p${i}`);
    const out = generators['perturbation-unlearning'].generate({ x, shape, labels: new Int32Array(12), keys, seed: 2 }, { perturbations: [{ target: 0, delta }], share: 0.5 });
    let changed = 0;
    keys.forEach((key, n) => {
      const on = isStamped(key, 2, 0.5);
      if (on) changed++;
      for (let i = 0; i < per; i++) {
        const j = n * per + i;
        expect(out[j]).toBeCloseTo(on ? Math.min(1, Math.max(0, x[j] + delta[i])) : x[j], 6);
      }
    });
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(12);
  });

  it('with several perturbations, each changed sample gets one of them, by its key', () => {
    const shape: [number, number, number, number] = [40, 28, 28, 1];
    const per = 784;
    const x = new Float32Array(40 * per).fill(0.5);
    const perturbations = [0.1, -0.2, 0.3].map((v, target) => ({ target, delta: new Float32Array(per).fill(v) }));
    const keys = Array.from({ length: 40 }, (_, i) => `q${i}`);
    const batch = { x, shape, labels: new Int32Array(40), keys, seed: 5 };
    const out = generators['perturbation-unlearning'].generate(batch, { perturbations, share: 1 });
    const used = new Set<number>();
    for (let n = 0; n < 40; n++) {
      const k = [0.6, 0.3, 0.8].findIndex((v) => Math.abs(out[n * per] - v) < 1e-6);
      expect(k).toBeGreaterThanOrEqual(0);
      for (let i = 0; i < per; i++) expect(out[n * per + i]).toBeCloseTo(out[n * per], 6);
      used.add(k);
    }
    expect(used.size).toBe(3);
    expect(generators['perturbation-unlearning'].generate(batch, { perturbations, share: 1 })).toEqual(out);
  });
});

describe('trigger inversion', () => {
  it('leaves no tensor behind and keeps the model unchanged', async () => {
    await initBackend('wasm');
    const { invertTrigger } = await import('../../src/adversarial/trigger-inversion.js');
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    const rng = createRng(9);
    const x = Float32Array.from({ length: 20 * 784 }, () => rng());
    const weights = model.getWeights().map((w) => w.dataSync().slice());
    const tensors = tf.memory().numTensors;
    const t = invertTrigger(model, x, [20, 28, 28, 1], 3, { steps: 4, batchSize: 8, lr: 0.1, lambda: 0.01, seed: 1 });
    expect(tf.memory().numTensors).toBe(tensors);
    model.getWeights().forEach((w, i) => expect(w.dataSync()).toEqual(weights[i]));
    expect(t.mask).toHaveLength(784);
    expect(t.maskL1).toBeGreaterThan(0);
    expect(Math.min(...t.mask)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...t.pattern)).toBeLessThanOrEqual(1);
  });
});
