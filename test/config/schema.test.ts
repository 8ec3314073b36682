import { describe, expect, it } from 'vitest';
import { loadPurifyConfig } from '../../src/config/load.js';

describe('purify config validation: one message per field, naming path, expectation and value', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['batchSize', { batchSize: 0 }, 'config.batchSize is expected to be a positive integer, but got 0'],
    ['batchSize type', { batchSize: '128' }, 'config.batchSize is expected to be a positive integer, but got "128"'],
    ['labels', { labels: 'noisy' }, 'config.labels is expected to be "auto", "pseudo" or "given", but got "noisy"'],
    ['initialFraction', { initialFraction: 1.5 }, 'config.initialFraction is expected to be a number in (0, 1], but got 1.5'],
    ['pgd.eps', { pgd: { eps: -1 } }, 'config.pgd.eps is expected to be a positive number or "auto", but got -1'],
    ['pgd.steps', { pgd: { steps: 2.5 } }, 'config.pgd.steps is expected to be a positive integer, but got 2.5'],
    ['optimizer.momentum', { optimizer: { momentum: 1 } }, 'config.optimizer.momentum is expected to be a number in [0, 1), but got 1'],
    ['rounds.1.epochs', { rounds: [{ epochs: 1, adversarial: { epochs: 1, share: 1, maxBatches: null } }, { epochs: 0, adversarial: { epochs: 1, share: 1, maxBatches: null } }], keepRatio: [0.5] }, 'config.rounds.1.epochs is expected to be a positive integer, but got 0'],
    ['rounds.0.adversarial.share', { rounds: [{ epochs: 1, adversarial: { epochs: 1, share: 2, maxBatches: null } }], keepRatio: [] }, 'config.rounds.0.adversarial.share is expected to be a number in [0, 1], but got 2'],
    ['keepRatio length', { keepRatio: [0.5] }, 'config.keepRatio is expected to be one entry per round after the first (3), but got [0.5]'],
    ['universal.unlearn all without the probe', { universal: { unlearn: 'all' } }, 'config.universal.unlearn is expected to be "flagged" while universal.enabled is false ("all" unlearns the perturbations that probe finds), but got "all"'],
    ['inference.batchSize', { inference: { batchSize: 0 } }, 'config.inference.batchSize is expected to be a positive integer, but got 0'],
    ['inference.batchMiB', { inference: { batchMiB: -1 } }, 'config.inference.batchMiB is expected to be a positive number, but got -1'],
    ['unknown field', { epochz: 3 }, 'config.epochz is expected to be a known field (see config/README.md), but got "an unknown field"'],
  ];
  for (const [name, overrides, message] of cases) {
    it(name, async () => {
      await expect(loadPurifyConfig({ overrides })).rejects.toThrow(message);
    });
  }

  it('accepts the defaults and applies a preset', async () => {
    const defaults = await loadPurifyConfig({});
    expect(defaults.pgd.eps).toBe('auto');
    const authors = await loadPurifyConfig({ preset: 'authors' });
    expect(authors.pgd.eps).toBeCloseTo(6 / 255, 9);
    expect(authors.optimizer.lr).toBe(0.001);
    expect(authors.pgd.steps).toBe(7);
  });

  it('an unknown preset names the known ones', async () => {
    await expect(loadPurifyConfig({ preset: 'cifar' })).rejects.toThrow(/unknown preset "cifar"; known presets: .*authors/);
  });
});
