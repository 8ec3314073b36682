import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackDefaults } from '../../src/attacks/options.js';
import { triggerFor } from '../../src/attacks/registry.js';
import { trainCommand } from '../../src/cli/train.js';
import { initBackend } from '../../src/backend/select.js';
import { buildModel } from '../../src/models/zoo.js';
import { loadCheckpoint } from '../../src/pipeline/checkpoint.js';
import type { FitCheckpointState } from '../../src/pipeline/engine.js';
import { armFailpoint, FailpointError } from '../../src/pipeline/failpoints.js';
import { fitModel } from '../../src/pipeline/fit.js';
import { pack } from '../../src/stages/batch.js';
import type { Batch } from '../../src/stages/batch-types.js';
import { poisonBatches, type BatchPoisoningCounts, type BatchPoisoningOptions } from '../../src/stages/poison-batch.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';
import { collect, from } from '../helpers/streams.js';

const samples = syntheticSquares(640, 7).map((s) => ({ ...s, label: s.label!, pixels: s.pixels.map((v) => Math.round(v * 255) / 255) }));
const batches = (): Batch[] => Array.from({ length: 5 }, (_, i) => pack(samples.slice(i * 128, (i + 1) * 128)));
const options = (attack: string, extra: Partial<BatchPoisoningOptions> = {}): BatchPoisoningOptions => ({
  attack,
  trigger: triggerFor(attack),
  target: 0,
  rate: 0.1,
  mode: 'all2one',
  numClasses: 10,
  seed: 3,
  ...extra,
});
const run = async (opts: BatchPoisoningOptions, epochSeed: number, input = batches()) => {
  const counts: BatchPoisoningCounts[] = [];
  const out = await collect(poisonBatches(opts, epochSeed, (c) => counts.push(c))(from(input), {}));
  return { out, counts };
};
const image = (b: Batch, i: number) => b.x.subarray(i * 784, (i + 1) * 784);
const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => v === b[i]);

/** Per sample of a poisoned batch: 'trigger' (the trigger's image, the target label), 'changed' (label kept) or 'clean'. */
function classify(original: Batch, poisoned: Batch, attack: string): string[] {
  const trigger = triggerFor(attack)({ height: 28, width: 28, channels: 1 });
  return original.keys.map((_, i) => {
    if (same(image(poisoned, i), image(original, i))) return poisoned.labels[i] === original.labels[i] ? 'clean' : 'relabelled only';
    if (same(image(poisoned, i), trigger.apply(image(original, i)))) return poisoned.labels[i] === 0 ? 'trigger' : 'trigger, label kept';
    return poisoned.labels[i] === original.labels[i] ? 'changed' : 'changed and relabelled';
  });
}

describe('poisonBatches (per-batch poisoning of training)', () => {
  it('is deterministic for a seed and draws a fresh subset per batch and per epoch', async () => {
    const a = await run(options('wanet'), 11);
    const b = await run(options('wanet'), 11);
    const c = await run(options('wanet'), 12);
    a.out.forEach((batch, i) => {
      expect(same(batch.x, b.out[i].x)).toBe(true);
      expect(Array.from(batch.labels)).toEqual(Array.from(b.out[i].labels));
    });
    const triggered = (out: Batch[]) => out.map((batch, i) => classify(batches()[i], batch, 'wanet').flatMap((k, j) => (k === 'trigger' ? [j] : [])).join());
    expect(triggered(a.out)).not.toEqual(triggered(c.out));
    expect(new Set(triggered(a.out)).size).toBe(5);
  });

  it('WaNet: triggers rate·n per batch with the target label, and warps rate·crossRatio·n more with their labels kept', async () => {
    const { out, counts } = await run(options('wanet'), 1);
    const kinds = out.flatMap((b, i) => classify(batches()[i], b, 'wanet'));
    const count = (k: string) => kinds.filter((x) => x === k).length;
    expect(count('trigger')).toBe(counts.reduce((s, c) => s + c.triggered, 0));
    expect(count('changed')).toBe(counts.reduce((s, c) => s + c.noise, 0));
    expect(count('trigger') + count('changed') + count('clean')).toBe(640);
    for (const c of counts) {
      expect(c.triggered).toBeGreaterThanOrEqual(12);
      expect(c.triggered).toBeLessThanOrEqual(13);
      expect(c.noise).toBeGreaterThanOrEqual(12);
      expect(c.noise).toBeLessThanOrEqual(13);
      expect(c.negative).toBe(0);
    }
  });

  it('BppAttack: negative samples carry another sample’s quantisation residual and keep their labels', async () => {
    const { out, counts } = await run(options('bpp'), 1);
    const trigger = triggerFor('bpp')({ height: 28, width: 28, channels: 1 });
    out.forEach((b, i) => {
      const original = batches()[i];
      const kinds = classify(original, b, 'bpp');
      expect(kinds.filter((k) => k === 'trigger')).toHaveLength(counts[i].triggered);
      expect(kinds.filter((k) => k === 'changed')).toHaveLength(counts[i].negative);
      expect(counts[i].negative).toBeGreaterThanOrEqual(12);
      kinds.forEach((k, j) => {
        if (k !== 'changed') return;
        // x + Q(x_r) - x_r for some other sample r of the batch, clamped to [0,1] and rounded to 8 bits
        const donors = original.keys.map((_, r) => r).filter((r) => r !== j);
        const matches = donors.filter((r) => {
          const residual = trigger.apply(image(original, r));
          return image(b, j).every((v, p) => Math.abs(v - Math.min(1, Math.max(0, image(original, j)[p] + residual[p] - image(original, r)[p]))) <= 0.5 / 255 + 1e-6);
        });
        expect(matches.length).toBeGreaterThan(0);
      });
    });
    expect(counts.every((c) => c.noise === 0)).toBe(true);
  });

  it('a clean-label attack triggers only target-class samples and keeps every label; all2all maps y to y + 1', async () => {
    const { out } = await run(options('sig', { rate: 0.5 }), 1);
    out.forEach((b, i) => {
      const original = batches()[i];
      expect(Array.from(b.labels)).toEqual(Array.from(original.labels));
      classify(original, b, 'sig').forEach((k, j) => expect(k === 'clean' || original.labels[j] === 0).toBe(true));
    });
    const all2all = await run(options('badnets', { mode: 'all2all' }), 1);
    const original = batches()[0];
    const trigger = triggerFor('badnets')({ height: 28, width: 28, channels: 1 });
    original.keys.forEach((_, j) => {
      if (same(image(all2all.out[0], j), trigger.apply(image(original, j)))) expect(all2all.out[0].labels[j]).toBe((original.labels[j] + 1) % 10);
    });
  });
});

describe('pbe train --attack (fitModel with poisoning)', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'pbe-poison-batch-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('checks its flags before any work, naming them', async () => {
    const base = { model: 'cnn-small', data: ['none.tar'], out: join(dir, 'never'), epochs: 1, batchSize: 16, lr: 0.001, seed: 1, imageSize: '28x28x1', classes: 10 } as Parameters<typeof trainCommand>[0];
    await expect(trainCommand({ ...base, target: 3 })).rejects.toThrow('--target needs --attack');
    await expect(trainCommand({ ...base, attackOption: ['s=2'] })).rejects.toThrow('--attack-option needs --attack');
    await expect(trainCommand({ ...base, attack: 'wanet', target: 10 })).rejects.toThrow('--target 10 is not one of the --classes 10 (0..9)');
    await expect(trainCommand({ ...base, attack: 'sig', mode: 'all2all' })).rejects.toThrow('sig is a clean-label attack');
    await expect(trainCommand({ ...base, attack: 'bpp', attackOption: ['negativeRatio=2'] })).rejects.toThrow('attack option bpp.negativeRatio is expected to be a number in [0, 1], but got 2');
  });

  it('the bench trains WaNet and BppAttack per batch, the others on poisoned data (config/attacks)', () => {
    expect(['wanet', 'bpp'].map((a) => attackDefaults(a).training)).toEqual(['per-batch', 'per-batch']);
    expect(['badnets', 'blend', 'trojan', 'sig', 'lc', 'ftrojan'].map((a) => attackDefaults(a).training)).toEqual(Array(6).fill('data'));
  });

  it('resumed from a checkpoint in the middle of an epoch, ends with the same weights as an uninterrupted run', async () => {
    const data = samples.slice(0, 96);
    const model = () => buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    const poisoning = options('wanet', { rate: 0.25 });
    const train = (m: ReturnType<typeof model>, checkpointDir: string, resume?: Parameters<typeof fitModel>[2]['resume']) =>
      fitModel(m, memoryCorpus(data), { epochs: 2, batchSize: 16, lr: 0.003, seed: 1, log: () => {}, shuffleBuffer: 96, poisoning, checkpoint: { dir: checkpointDir, everyMinutes: 0 }, resume });

    const full = model();
    await train(full, join(dir, 'full'));
    const expected = full.getWeights().map((w) => w.dataSync().slice());
    const clean = model();
    await fitModel(clean, memoryCorpus(data), { epochs: 2, batchSize: 16, lr: 0.003, seed: 1, log: () => {}, shuffleBuffer: 96 });
    expect(clean.getWeights().some((w, i) => !same(w.dataSync() as Float32Array, expected[i] as Float32Array))).toBe(true);

    const stopped = model();
    armFailpoint('train-step', 8);
    await expect(train(stopped, join(dir, 'stopped'))).rejects.toBeInstanceOf(FailpointError);
    const checkpoint = await loadCheckpoint<FitCheckpointState<unknown>>(join(dir, 'stopped'));
    expect(checkpoint.state.epoch).toBe(1);
    expect(checkpoint.state.batchesDone).toBeGreaterThan(0);
    const resumed = model();
    await train(resumed, join(dir, 'stopped'), checkpoint);
    resumed.getWeights().forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(Array.from(expected[i])));
    [full, clean, stopped, resumed].forEach((m) => m.dispose());
  }, 120_000);
});
