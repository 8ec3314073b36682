import { expect, it } from 'vitest';
import { detectionMetrics } from '../../src/eval/detection.js';
import { rocCurve } from '../../src/eval/roc.js';

it('precision and recall of flagged samples against the manifest', () => {
  const flagged = new Map([['a', true], ['b', true], ['c', false], ['d', false], ['x', true]]);
  const truth = new Map([['a', true], ['b', false], ['c', true], ['d', false]]);
  expect(detectionMetrics(flagged, truth)).toEqual({ precision: 0.5, recall: 0.5, flagged: 2, poisoned: 2, truePositives: 1, unmatched: 1 });
});

it('AUROC (eval/roc.ts, as the demo uses it): share of (poisoned, clean) pairs ranked right, ties half', () => {
  const truth = [true, true, false, false, false];
  expect(rocCurve([0.9, 0.8, 0.1, 0.2, 0.3], truth).auroc).toBe(1);
  // a beats c, d, e; b beats c and ties d: (3 + 1 + 0.5) / 6
  expect(rocCurve([0.9, 0.2, 0.1, 0.2, 0.3], truth).auroc).toBeCloseTo(4.5 / 6, 10);
  expect(rocCurve([0.1], [false]).auroc).toBeNaN();
});
