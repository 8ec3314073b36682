import { describe, expect, it } from 'vitest';
import { argmax, cosine, topIndices } from '../../src/stages/score.js';

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

it('argmax finds the largest value in a window', () => {
  expect(argmax(Float32Array.from([5, 1, 3, 2]), 1, 3)).toBe(1);
});
