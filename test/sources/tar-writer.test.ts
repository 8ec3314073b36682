import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTarShard } from '../../src/sources/tar-reader.js';
import { ShardWriter, shardPath } from '../../src/sources/tar-writer.js';
import type { RawSample } from '../../src/sources/types.js';
import { tmpDir } from './fixtures.js';

const sample = (i: number) => ({
  key: `s-${String(i).padStart(4, '0')}`,
  files: new Map<string, Uint8Array>([
    ['png', Uint8Array.from({ length: 10 + i }, (_, j) => (i + j) % 256)],
    ['cls', Buffer.from(String(i % 3))],
  ]),
});

async function readAll(url: string): Promise<RawSample[]> {
  const out: RawSample[] = [];
  for await (const s of readTarShard(url)) out.push(s);
  return out;
}

describe('shardPath', () => {
  it('numbers a prefix or a %d pattern', () => {
    expect(shardPath('out/train', 3)).toBe('out/train-000003.tar');
    expect(shardPath('out/shard-%06d.tar', 12)).toBe('out/shard-000012.tar');
    expect(shardPath('out/shard-%d.tar', 12)).toBe('out/shard-12.tar');
    expect(shardPath('out/shard-%03d.tar', 1234)).toBe('out/shard-1234.tar');
  });

  it('explains a pattern it cannot number', () => {
    expect(() => shardPath('out/train.tar', 0)).toThrow('shard pattern "out/train.tar" names one file');
    expect(() => shardPath('out/', 0)).toThrow('needs a file name prefix');
    expect(() => shardPath('%d-%d.tar', 0)).toThrow('more than one %d');
  });
});

describe('ShardWriter', () => {
  it('splits samples into shards, returns their paths, and they read back whole', async () => {
    const dir = tmpDir();
    const progress: number[] = [];
    const writer = new ShardWriter(join(dir, 'train'), { samplesPerShard: 4, onShard: (s) => progress.push(s.samples) });
    for (let i = 0; i < 10; i++) await writer.write(sample(i));
    const paths = await writer.close();
    expect(paths).toEqual([0, 1, 2].map((i) => join(dir, `train-00000${i}.tar`)));
    expect(progress).toEqual([4, 4, 2]);
    expect(readdirSync(dir).sort()).toEqual(['train-000000.tar', 'train-000001.tar', 'train-000002.tar']);
    const back = (await Promise.all(paths.map(readAll))).flat();
    expect(back.map((s) => s.key)).toEqual(Array.from({ length: 10 }, (_, i) => sample(i).key));
    back.forEach((s, i) => {
      expect(s.url).toBe(paths[Math.floor(i / 4)]);
      expect([...s.files.keys()]).toEqual(['png', 'cls']);
      expect(s.files.get('png')).toEqual(sample(i).files.get('png'));
      expect(Buffer.from(s.files.get('cls') as Uint8Array).toString()).toBe(String(i % 3));
    });
  });

  it('keeps a shard under a temporary name until it is complete', async () => {
    const dir = tmpDir();
    const writer = new ShardWriter(join(dir, 'x-%02d.tar'), { samplesPerShard: 3 });
    await writer.write(sample(0));
    expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(true);
    expect(existsSync(join(dir, 'x-00.tar'))).toBe(false);
    await writer.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('starts a new shard at maxShardBytes, and writes byte-identical shards for the same samples', async () => {
    const a = tmpDir();
    const b = tmpDir();
    for (const dir of [a, b]) {
      const writer = new ShardWriter(join(dir, 's'), { maxShardBytes: 20 });
      for (let i = 0; i < 5; i++) await writer.write(sample(i));
      expect(await writer.close()).toHaveLength(3);
    }
    expect(readFileSync(join(a, 's-000000.tar')).equals(readFileSync(join(b, 's-000000.tar')))).toBe(true);
  });

  it('writes nothing for no samples, and refuses keys that would not read back', async () => {
    const dir = tmpDir();
    expect(await new ShardWriter(join(dir, 'empty')).close()).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    const writer = new ShardWriter(join(dir, 'k'));
    await expect(writer.write({ key: 'a.b', files: new Map([['png', new Uint8Array(1)]]) })).rejects.toThrow(
      `${join(dir, 'k')} (sample a.b): sample key cannot be written`,
    );
    await expect(writer.write({ key: '../up', files: new Map([['png', new Uint8Array(1)]]) })).rejects.toThrow('(sample ../up)');
    await expect(writer.write({ key: 'none', files: new Map() })).rejects.toThrow('sample has no files');
    await writer.abort();
  });

  it('validates its options by name', () => {
    expect(() => new ShardWriter('x', { samplesPerShard: 0 })).toThrow('ShardWriter: options.samplesPerShard is expected to be a positive integer, but got 0');
    expect(() => new ShardWriter('x', { maxShardBytes: 0 })).toThrow('options.maxShardBytes is expected to be a positive number, but got 0');
    expect(() => new ShardWriter('x', { startIndex: -1 })).toThrow('options.startIndex is expected to be a non-negative integer, but got -1');
  });
});
