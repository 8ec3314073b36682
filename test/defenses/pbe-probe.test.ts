import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { triggerFor } from '../../src/attacks/registry.js';
import { poisonSamples } from '../../src/attacks/poison.js';
import { loadPurifyConfig } from '../../src/config/load.js';
import { purifyPbe } from '../../src/defenses/pbe.js';
import { chooseEps } from '../../src/defenses/probe.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { buildModel } from '../../src/models/zoo.js';
import { fitModel } from '../../src/pipeline/fit.js';
import type { Sample } from '../../src/sources/types.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';

describe('chooseEps', () => {
  const points = [
    { eps: 0.1, flipRate: 0.9, concentration: 0.5, concentrationClass: 0, flippedTo: [] },
    { eps: 0.02, flipRate: 0.2, concentration: 0.5, concentrationClass: 0, flippedTo: [] },
    { eps: 0.05, flipRate: 0.6, concentration: 0.5, concentrationClass: 0, flippedTo: [] },
  ];
  it('takes the smallest eps that flips enough predictions', () => {
    expect(chooseEps(points, 0.5).eps).toBe(0.05);
    expect(chooseEps(points, 0.5).reason).toMatch(/smallest eps flipping >= 50%/);
  });
  it('falls back to the largest eps, and says so', () => {
    const r = chooseEps(points, 0.95);
    expect(r.eps).toBe(0.1);
    expect(r.reason).toMatch(/no eps flips 95%/);
  });
});

/**
 * Without a preset, purify must not fall back to the CIFAR eps: it probes the model and data. Shown on a 28x28
 * dataset that is not Fashion-MNIST (synthetic squares), Blend-poisoned.
 */
describe('purify without a preset on a non-Fashion-MNIST 28x28 dataset', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('picks eps by probe, logs why, and lowers ASR', async () => {
    const clean = syntheticSquares(3000, 11);
    const trigger = triggerFor('blend', { blendRatio: 0.15, patternSeed: 4 });
    const poisoned: Sample[] = [];
    async function* source() {
      yield* clean;
    }
    for await (const { sample } of poisonSamples(source(), { trigger, target: 0, rate: 0.1, seed: 2 })) poisoned.push(sample);
    const corpus = memoryCorpus(poisoned);
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    await fitModel(model, corpus, { epochs: 4, batchSize: 64, lr: 0.002, seed: 2, log: () => {} });

    const test = { samples: syntheticSquares(600, 99, 'test') };
    const attack = { trigger: trigger({ height: 28, width: 28, channels: 1 }), target: 0 };
    const before = evaluate(model, test, attack);
    expect(before.acc).toBeGreaterThan(0.9);
    expect(before.asr).toBeGreaterThan(0.9);

    const logs: string[] = [];
    const config = await loadPurifyConfig({
      overrides: {
        initialFraction: 0.2,
        // half of the default grid (the probe is PGD on 512 samples at each eps): the smallest eps, the one chosen on
        // the default grid (0.0314: 0.0157 and 0.0235 flip under 50%) and one above it, so the same eps is chosen
        probe: { epsGrid: [0.0157, 0.0314, 0.05] },
        // PGD alone: with the recovered trigger stamped beside it this synthetic Blend kept ASR at 67% (adversarial/choose.ts)
        inversion: { enabled: false },
        // and without the universal additive probe: this test is about the PGD probe's eps and PBE's own generator
        universal: { enabled: false },
        keepRatio: [0.6],
        rounds: [
          { epochs: 5, adversarial: { epochs: 5, share: 1, maxBatches: null } },
          { epochs: 4, adversarial: { epochs: 1, share: 1, maxBatches: 10 } },
        ],
      },
    });
    expect(config.pgd.eps).toBe('auto');
    const result = await purifyPbe(model, corpus, { config, log: (m) => logs.push(m) });

    expect(config.probe.epsGrid).toContain(result.eps);
    const chosen = result.probe.find((p) => p.eps === result.eps)!;
    const smaller = result.probe.filter((p) => p.eps < result.eps);
    expect(chosen.flipRate >= config.probe.minFlipRate || result.eps === Math.max(...config.probe.epsGrid)).toBe(true);
    for (const p of smaller) expect(p.flipRate).toBeLessThan(config.probe.minFlipRate);
    expect(logs.some((l) => l.startsWith('PGD eps') && l.includes('chosen by probe'))).toBe(true);
    expect(result.findings.generators).toEqual(['linf-pgd']);
    expect(result.lr).toBe(config.probe.lr);

    const after = evaluate(model, test, attack);
    expect(after.asr!).toBeLessThan(0.1);
    expect(after.acc).toBeGreaterThan(before.acc - 0.05);
  }, 300_000);
});
