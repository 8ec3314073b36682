import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { shardSource } from '../../src/sources/dataset.js';
import { convertFashionMnist } from '../../src/sources/fashion-mnist.js';
import { idxBytes, tmpDir } from './fixtures.js';
import { collect } from '../helpers/streams.js';

/** A tiny stand-in for Debian's IDX files: n images of 4x3 whose pixels encode (index, position). */
function fakeSource(train: number, test: number): string {
  const dir = tmpDir();
  for (const [prefix, n] of [['train', train], ['t10k', test]] as const) {
    const images = Uint8Array.from({ length: n * 12 }, (_, i) => (Math.floor(i / 12) * 13 + (i % 12) * 7) % 256);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idxBytes(0x08, [n, 4, 3], images)));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxBytes(0x08, [n], Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10)));
  }
  return dir;
}

describe('convertFashionMnist', () => {
  it('writes the first N images of each split as shards with keys, labels and exact pixels', async () => {
    const source = fakeSource(25, 8);
    const out = join(tmpDir(), 'fm');
    const lines: string[] = [];
    const r = await convertFashionMnist({ source, out, trainLimit: 10, shardSize: 4, log: (m) => lines.push(m) });
    expect(r.train.samples).toBe(10);
    expect(r.test.samples).toBe(8);
    expect(readdirSync(out).sort()).toEqual(['complete', 'test-000000.tar', 'test-000001.tar', 'train-000000.tar', 'train-000001.tar', 'train-000002.tar']);
    expect(lines.filter((l) => l.startsWith('wrote '))).toHaveLength(5);
    expect(JSON.parse(readFileSync(join(out, 'complete'), 'utf8'))).toMatchObject({ train: 10, test: 8, shardSize: 4 });
    const train = await collect(shardSource(`${out}/train-*.tar`)());
    expect(train.map((s) => s.key)).toEqual(Array.from({ length: 10 }, (_, i) => `train-${String(i).padStart(6, '0')}`));
    train.forEach((s, n) => {
      expect(s.label).toBe((n * 3) % 10);
      expect([s.height, s.width, s.channels]).toEqual([4, 3, 1]);
      expect(Array.from(s.pixels, (v) => Math.round(v * 255))).toEqual(Array.from({ length: 12 }, (_, p) => (n * 13 + p * 7) % 256));
    });
    expect((await collect(shardSource(`${out}/test-*.tar`)())).map((s) => s.key)[7]).toBe('test-000007');
  });

  it('says how to install the dataset when the source is missing', async () => {
    const dir = tmpDir();
    await expect(convertFashionMnist({ source: dir, out: join(dir, 'out') })).rejects.toThrow(
      `${dir}: Fashion-MNIST file train-images-idx3-ubyte(.gz) not found; install Debian's copy with "apt-get install dataset-fashion-mnist"`,
    );
  });

  it('names a bad limit', async () => {
    await expect(convertFashionMnist({ out: 'x', trainLimit: -1 })).rejects.toThrow('convertFashionMnist(): trainLimit is expected to be a non-negative integer, but got -1');
    await expect(convertFashionMnist({ out: 'x', shardSize: 0 })).rejects.toThrow('shardSize is expected to be a positive integer, but got 0');
  });
});
