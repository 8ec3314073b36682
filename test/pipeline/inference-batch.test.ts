import { describe, expect, it } from 'vitest';
import { forEachInferenceBatch, inferenceBatchSize } from '../../src/pipeline/compute.js';
import { ProbeImages } from '../../src/defenses/probe.js';
import type { Sample } from '../../src/sources/types.js';

const image = (i: number, h: number, w: number, c: number): Sample => ({
  key: `k${i}`, url: 'memory', pixels: new Float32Array(h * w * c).fill(i), height: h, width: w, channels: c,
});

async function* stream(samples: Sample[]) {
  yield* samples;
}

describe('inference batches sized by pixels', () => {
  it('takes batchSize samples of small images and as many large ones as batchMiB holds, at least one', () => {
    const defaults = { batchSize: 256, batchMiB: 32 };
    expect(inferenceBatchSize(28 * 28, defaults)).toBe(256);
    expect(inferenceBatchSize(32 * 32 * 3, defaults)).toBe(256);
    expect(inferenceBatchSize(224 * 224 * 3, defaults)).toBe(55); // 32 MiB / 588 KiB
    expect(inferenceBatchSize(4096 * 4096 * 3, defaults)).toBe(1);
  });

  it('passes every sample once, in order, in batches within the budget', async () => {
    // 10x10x3 images: 1,200 B each; 0.01 MiB holds 8 of them
    const samples = Array.from({ length: 21 }, (_, i) => image(i, 10, 10, 3));
    const sizes: number[] = [];
    const seen: number[] = [];
    await forEachInferenceBatch(stream(samples), { batchSize: 256, batchMiB: 0.01 }, async (batch, x, shape) => {
      sizes.push(batch.length);
      expect(shape).toEqual([batch.length, 10, 10, 3]);
      batch.forEach((s, i) => {
        expect(x[i * 300]).toBe(Number(s.key.slice(1)));
        seen.push(Number(s.key.slice(1)));
      });
    });
    expect(sizes).toEqual([8, 8, 5]);
    expect(seen).toEqual([...Array(21).keys()]);
    const counted: number[] = [];
    await forEachInferenceBatch(stream(samples), { batchSize: 4, batchMiB: 32 }, async (batch) => void counted.push(batch.length));
    expect(counted).toEqual([4, 4, 4, 4, 4, 1]);
  });
});

describe('ProbeImages', () => {
  it('copies each image into one NHWC buffer (not a view on the sample\'s buffer) and keeps given labels', () => {
    const probe = new ProbeImages(3);
    const a = { ...image(1, 2, 2, 1), label: 4 };
    const b = image(2, 2, 2, 1);
    probe.add(a);
    probe.add(b);
    a.pixels.fill(9); // the decode pool's buffer, reused or freed: the probe keeps its copy
    const { x, shape } = probe.batch();
    expect(shape).toEqual([2, 2, 2, 1]);
    expect([...x]).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
    expect(x.buffer).not.toBe(a.pixels.buffer);
    expect(probe.keys).toEqual(['k1', 'k2']);
    expect(probe.given).toEqual([4, -1]);
  });

  it('refuses an image of another shape, and one past its room, naming the sample', () => {
    const probe = new ProbeImages(1);
    expect(probe.batch().shape[0]).toBe(0);
    probe.add(image(1, 2, 2, 1));
    expect(() => probe.add(image(2, 3, 2, 1))).toThrow(/sample k2 is 3x2x1, the probe's images 2x2x1/);
    expect(() => probe.add(image(3, 2, 2, 1))).toThrow(/room for 1 images, got one more \(k3\)/);
  });
});
