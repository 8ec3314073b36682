import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadSampleLog } from '../../src/sources/bad-samples.js';
import { shardSource, writeShards } from '../../src/sources/dataset.js';
import type { Sample } from '../../src/sources/types.js';
import { makeTar, png, testImage, tmpDir } from './fixtures.js';
import { collect, from } from '../helpers/streams.js';

function samples(n: number, channels = 1): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `img-${String(i).padStart(3, '0')}`,
    url: 'memory',
    pixels: Float32Array.from(testImage(6, 5, channels, i), (v, j) => (j % 7 === 0 ? v * 0.9973 : v)), // some values off the 8-bit grid
    height: 6,
    width: 5,
    channels,
    label: i % 4 === 3 ? undefined : i % 10,
  }));
}

describe('writeShards → shardSource', () => {
  it('round-trips keys, labels (absent ones too) and pixels to 1/255', async () => {
    const dir = tmpDir();
    for (const channels of [1, 3]) {
      const input = samples(11, channels);
      const paths = await writeShards(from(input), join(dir, `c${channels}`), { samplesPerShard: 4 });
      expect(paths).toHaveLength(3);
      const source = shardSource(`${dir}/c${channels}-*.tar`);
      expect(source.urls).toEqual(paths);
      const back = await collect(source());
      expect(back.map((s) => s.key)).toEqual(input.map((s) => s.key));
      back.forEach((s, i) => {
        expect(s.label).toBe(input[i].label);
        expect([s.height, s.width, s.channels]).toEqual([6, 5, channels]);
        expect(s.url).toBe(paths[Math.floor(i / 4)]);
        const maxErr = Math.max(...s.pixels.map((v, j) => Math.abs(v - input[i].pixels[j])));
        expect(maxErr).toBeLessThanOrEqual(1 / 255);
      });
    }
  });

  it('is restartable, and shuffles the shard order per call, reproducibly', async () => {
    const dir = tmpDir();
    await writeShards(from(samples(12)), join(dir, 's'), { samplesPerShard: 1 });
    const source = shardSource(dir, { shuffleShards: { seed: 5 } });
    const orders = [];
    for (let call = 0; call < 3; call++) orders.push((await collect(source())).map((s) => s.key).join());
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect(orders.every((o) => o.split(',').sort().join() === samples(12).map((s) => s.key).join())).toBe(true);
    const again = shardSource(dir, { shuffleShards: { seed: 5 } });
    expect((await collect(again())).map((s) => s.key).join()).toBe(orders[0]);
    expect(source.summary()).toBe('tar(12 shards, shuffled) -> decode');
    expect((await collect(shardSource(dir)())).map((s) => s.key)).toEqual(samples(12).map((s) => s.key));
  });

  it('buffer-shuffles samples before decoding, seeded, differently each call, none lost', async () => {
    const dir = tmpDir();
    await writeShards(from(samples(30)), join(dir, 's'), { samplesPerShard: 10 });
    const opts = { shuffle: { bufferSize: 8, seed: 3 }, shuffleShards: { seed: 3 } };
    const source = shardSource(dir, opts);
    expect(source.summary()).toBe('tar(3 shards, shuffled) -> shuffle(8) -> decode');
    const first = (await collect(source())).map((s) => s.key);
    const second = (await collect(source())).map((s) => s.key);
    expect([...first].sort()).toEqual(samples(30).map((s) => s.key));
    expect(first).not.toEqual(second);
    expect(first).not.toEqual([...first].sort());
    expect((await collect(shardSource(dir, opts)())).map((s) => s.key)).toEqual(first);
  });

  it('reads only its partition', async () => {
    const dir = tmpDir();
    await writeShards(from(samples(6)), join(dir, 's'), { samplesPerShard: 2 });
    const keys = await Promise.all([0, 1].map(async (i) => (await collect(shardSource(dir, { shardIndex: i, numShards: 2 })())).map((s) => s.key)));
    expect(keys).toEqual([['img-000', 'img-001', 'img-004', 'img-005'], ['img-002', 'img-003']]);
  });

  it('passes a damaged shard to onBadSample with its url and key, then goes on to the next shard', async () => {
    const dir = tmpDir();
    await makeTar(join(dir, 'a-0.tar'), [['x.png', png(6, 5, 1)], ['x.cls', '1']]);
    writeFileSync(join(dir, 'a-1.tar'), 'this is not a tar file '.repeat(40));
    await makeTar(join(dir, 'a-2.tar'), [['y.png', png(6, 5, 1)], ['y.cls', 'seven'], ['z.png', png(6, 5, 1)]]);
    const log = new BadSampleLog({ policy: 'skip' });
    const got = await collect(shardSource(`${dir}/a-{0..2}.tar`, { onBadSample: log.handler })());
    expect(got.map((s) => s.key)).toEqual(['x', 'z']);
    expect(log.rows().map((r) => [r.url, r.key])).toEqual([
      [join(dir, 'a-1.tar'), ''],
      [join(dir, 'a-2.tar'), 'y'],
    ]);
    // the default handler fails, naming the shard
    await expect(collect(shardSource(`${dir}/a-1.tar`)())).rejects.toThrow(`${join(dir, 'a-1.tar')}: not a valid tar shard`);
  });

  it('fails on a missing shard whatever the handler', async () => {
    const dir = tmpDir();
    const missing = join(dir, 'gone-0.tar');
    await expect(collect(shardSource(missing, { onBadSample: () => undefined })())).rejects.toThrow(`${missing}: no such file`);
  });
});
