import { expect, it } from 'vitest';
import { auroc, detectionMetrics } from '../../src/eval/detection.js';

it('precision and recall of flagged samples against the manifest', () => {
  const flagged = new Map([['a', true], ['b', true], ['c', false], ['d', false], ['x', true]]);
  const truth = new Map([['a', true], ['b', false], ['c', true], ['d', false]]);
  expect(detectionMetrics(flagged, truth)).toEqual({ precision: 0.5, recall: 0.5, flagged: 2, poisoned: 2, truePositives: 1, unmatched: 1 });
});

it('AUROC: share of (poisoned, clean) pairs ranked right, ties half; keys outside the manifest ignored', () => {
  const truth = new Map([['a', true], ['b', true], ['c', false], ['d', false], ['e', false]]);
  expect(auroc(new Map([['a', 0.9], ['b', 0.8], ['c', 0.1], ['d', 0.2], ['e', 0.3], ['z', 5]]), truth)).toBe(1);
  // a beats c, d, e; b beats c and ties d: (3 + 1 + 0.5) / 6
  expect(auroc(new Map([['a', 0.9], ['b', 0.2], ['c', 0.1], ['d', 0.2], ['e', 0.3]]), truth)).toBeCloseTo(4.5 / 6, 10);
  expect(auroc(new Map([['c', 0.1]]), truth)).toBeNaN();
});
