import { describe, expect, it } from 'vitest';
import { loadPurifyConfig } from '../../src/config/load.js';
import { AdaptiveController, ScheduleController } from '../../src/pipeline/controller.js';
import { ScoreStore } from '../../src/pipeline/score-store.js';

describe('ScheduleController with the default schedule (config/defaults.json)', async () => {
  const config = await loadPurifyConfig({});
  const c = new ScheduleController(config);

  it('has 4 rounds of 10 epochs and keep ratios 0.2, 0.5, 0.7', () => {
    expect(c.rounds).toBe(4);
    expect([0, 1, 2, 3].map((r) => c.epochs(r))).toEqual([10, 10, 10, 10]);
    expect([0, 1, 2, 3].map((r) => c.keepRatio(r))).toEqual([0.2, 0.5, 0.7, 0.7]);
  });

  it('round 0 is fully adversarial; later rounds only the first 30 batches of their first epoch', () => {
    expect(c.plan(0, 9)).toMatchObject({ adversarialShare: 1, maxAdversarialBatches: null });
    expect(c.plan(1, 0)).toMatchObject({ adversarialShare: 1, maxAdversarialBatches: 30 });
    expect(c.plan(1, 1)).toMatchObject({ adversarialShare: 0 });
    expect(c.plan(3, 0)).toMatchObject({ adversarialShare: 1, maxAdversarialBatches: 30 });
  });
});

describe('AdaptiveController', async () => {
  const config = await loadPurifyConfig({ overrides: { controller: { mode: 'adaptive', cleanConcentration: 0.3, minShare: 0.1 } } });
  const c = new AdaptiveController(config, 0.7);

  it('follows the schedule until a concentration is observed', () => {
    expect(c.plan(0, 0, []).adversarialShare).toBe(1);
    expect(c.plan(0, 1, [{ concentration: null }]).adversarialShare).toBe(1);
  });

  it('scales the share with the signal left between the infected and the clean level', () => {
    expect(c.plan(0, 1, [{ concentration: 0.7 }]).adversarialShare).toBeCloseTo(1, 6);
    expect(c.plan(0, 1, [{ concentration: 0.5 }]).adversarialShare).toBeCloseTo(0.5, 6);
    expect(c.plan(0, 2, [{ concentration: 0.5 }, { concentration: null }]).adversarialShare).toBeCloseTo(0.5, 6);
  });

  it('never goes below minShare, and never adds adversarial epochs the schedule does not have', () => {
    expect(c.plan(0, 3, [{ concentration: 0.1 }]).adversarialShare).toBeCloseTo(0.1, 6);
    expect(c.plan(1, 1, [{ concentration: 0.9 }]).adversarialShare).toBe(0);
    expect(c.plan(1, 0, [{ concentration: 0.5 }])).toMatchObject({ maxAdversarialBatches: 30 });
  });
});

describe('ScoreStore', () => {
  it('keeps reference logits, pseudo-labels and given labels per key, growing as needed', () => {
    const store = new ScoreStore(3, 2);
    for (let i = 0; i < 5; i++) {
      const logits = Float32Array.from([0, 0, 0, i % 3 === 0 ? 5 : 0, i % 3 === 1 ? 5 : 0, i % 3 === 2 ? 5 : 0]);
      expect(store.add(`k${i}`, 'u', logits, 3, i === 4 ? undefined : i)).toBe(true);
    }
    expect(store.add('k0', 'u', new Float32Array(3), 0, 0)).toBe(false);
    expect(store.size).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => store.pseudoLabel(`k${i}`))).toEqual([0, 1, 2, 0, 1]);
    expect(store.givenLabel(2)).toBe(2);
    expect(store.givenLabel(4)).toBeUndefined();
    const [ref, offset] = store.reference(4);
    expect([...ref.subarray(offset, offset + 3)]).toEqual([0, 5, 0]);
    store.setSimilarity(3, 0.25);
    expect(store.similarities()[3]).toBe(0.25);
  });
});
