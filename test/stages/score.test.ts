import { describe, expect, it } from 'vitest';
import { argmax, cosine, softmaxCosine, topIndices, topIndicesPerClass } from '../../src/stages/score.js';

describe('cosine', () => {
  it('is 1 for parallel, -1 for opposite, 0 for orthogonal vectors, at offsets', () => {
    const a = Float32Array.from([9, 1, 2, 3]);
    const b = Float32Array.from([2, 4, 6, -1, -2, -3, 0, 0]);
    expect(cosine(a, 1, b, 0, 3)).toBeCloseTo(1, 6);
    expect(cosine(a, 1, b, 3, 3)).toBeCloseTo(-1, 6);
    expect(cosine(Float32Array.from([1, 0]), 0, Float32Array.from([0, 1]), 0, 2)).toBe(0);
    expect(cosine(a, 1, new Float32Array(3), 0, 3)).toBe(0);
  });
});

describe('softmaxCosine', () => {
  it('is the cosine of the two softmax vectors, at offsets, and ignores a shift of all logits', () => {
    const a = Float32Array.from([7, 2, 0, -1]);
    const b = Float32Array.from([0, 1, 3, 0.5]);
    const softmax = (v: number[]) => {
      const e = v.map(Math.exp);
      const sum = e.reduce((s, x) => s + x, 0);
      return e.map((x) => x / sum);
    };
    const pa = softmax([2, 0, -1]);
    const pb = softmax([1, 3, 0.5]);
    const expected = pa.reduce((s, x, i) => s + x * pb[i], 0) / Math.hypot(...pa) / Math.hypot(...pb);
    expect(softmaxCosine(a, 1, b, 1, 3)).toBeCloseTo(expected, 6);
    expect(softmaxCosine(a, 1, Float32Array.from([101, 103, 100.5]), 0, 3)).toBeCloseTo(expected, 5);
    expect(cosine(a, 1, Float32Array.from([101, 103, 100.5]), 0, 3)).not.toBeCloseTo(cosine(a, 1, b, 1, 3), 2);
  });
  it('at temperature T is the softmax cosine of the logits divided by T', () => {
    const a = Float32Array.from([7, 2, 0, -1]);
    const b = Float32Array.from([0, 1, 3, 0.5]);
    const scaled = (v: Float32Array) => v.map((x) => x / 4);
    expect(softmaxCosine(a, 0, b, 0, 4, 4)).toBeCloseTo(softmaxCosine(scaled(a), 0, scaled(b), 0, 4), 6);
    expect(softmaxCosine(a, 0, b, 0, 4, 4)).toBeGreaterThan(softmaxCosine(a, 0, b, 0, 4));
  });
  it('an infected model sure of the target against a purified one sure of the true class is near 0, unlike logits', () => {
    const infected = Float32Array.from([9, 1, 2, 1, 0]);
    const purified = Float32Array.from([2, 1, 9, 1, 0]);
    expect(softmaxCosine(infected, 0, purified, 0, 5)).toBeLessThan(0.01);
    expect(cosine(infected, 0, purified, 0, 5)).toBeGreaterThan(0.4);
  });
});

describe('topIndices', () => {
  it('takes the top share, highest first, ties by index', () => {
    expect(topIndices([0.1, 0.9, 0.5, 0.9, 0.2], 0.6)).toEqual([1, 3, 2]);
  });

  it('keeps at least one and rounds the count', () => {
    expect(topIndices([0.3, 0.2], 0.01)).toEqual([0]);
    expect(topIndices(new Float32Array(10).map((_, i) => i), 0.25)).toHaveLength(3);
    expect(topIndices([], 0.5)).toEqual([]);
  });
});

describe('topIndicesPerClass', () => {
  it('keeps the top share of each class, so a class of low scores is not crowded out', () => {
    const scores = [0.9, 0.8, 0.95, 0.1, 0.2, 0.3, 0.15, 0.85];
    const classes = Int32Array.from([0, 0, 0, 1, 1, 1, 1, 0]);
    expect(topIndices(scores, 0.5)).toEqual([2, 0, 7, 1]);
    expect(topIndicesPerClass(scores, classes, 0.5)).toEqual([2, 0, 5, 4]);
  });
  it('keeps at least one of a non-empty class', () => {
    expect(topIndicesPerClass([0.5, 0.1, 0.9], Int32Array.from([0, 1, 0]), 0.1)).toEqual([2, 1]);
  });
});

it('argmax finds the largest value in a window', () => {
  expect(argmax(Float32Array.from([5, 1, 3, 2]), 1, 3)).toBe(1);
});
