import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataDir } from '../../src/config/paths.js';
import { shardSource } from '../../src/sources/dataset.js';

const subset = join(dataDir, 'fashion-mnist-subset');

async function summarize(spec: string) {
  const source = shardSource(spec, { expected: { height: 28, width: 28, channels: 1 }, numClasses: 10 });
  const perClass = new Array(10).fill(0);
  const keys = new Set<string>();
  let count = 0;
  let shapeOk = true;
  let inRange = true;
  for await (const s of source()) {
    count++;
    keys.add(s.key);
    perClass[s.label as number]++;
    shapeOk &&= s.height === 28 && s.width === 28 && s.channels === 1 && s.pixels.length === 784;
    inRange &&= s.pixels.every((v) => v >= 0 && v <= 1);
  }
  return { count, keys, perClass, shapeOk, inRange, urls: source.urls };
}

describe('the committed Fashion-MNIST subset (data/fashion-mnist-subset)', () => {
  it('has 4000 labelled 28x28x1 train samples in 4 shards, every class present', async () => {
    const r = await summarize(`${subset}/train-{000000..000003}.tar`);
    expect(r.count).toBe(4000);
    expect(r.keys.size).toBe(4000);
    expect(r.keys.has('train-000000') && r.keys.has('train-003999')).toBe(true);
    expect(r.shapeOk && r.inRange).toBe(true);
    expect(r.perClass.every((n) => n > 300)).toBe(true);
    expect(r.perClass.reduce((a, b) => a + b, 0)).toBe(4000);
  });

  it('has 1000 test samples', async () => {
    const r = await summarize(`${subset}/test-*.tar`);
    expect(r.urls).toEqual([join(subset, 'test-000000.tar')]);
    expect(r.count).toBe(1000);
    expect(r.perClass.every((n) => n > 50)).toBe(true);
  });
});
