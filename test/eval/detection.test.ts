import { expect, it } from 'vitest';
import { detectionMetrics } from '../../src/eval/detection.js';

it('precision and recall of flagged samples against the manifest', () => {
  const flagged = new Map([['a', true], ['b', true], ['c', false], ['d', false], ['x', true]]);
  const truth = new Map([['a', true], ['b', false], ['c', true], ['d', false]]);
  expect(detectionMetrics(flagged, truth)).toEqual({ precision: 0.5, recall: 0.5, flagged: 2, poisoned: 2, truePositives: 1, unmatched: 1 });
});
