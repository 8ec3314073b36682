import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandBraces, expandShardSpec, partitionShards } from '../../src/sources/shard-spec.js';
import { tmpDir } from './fixtures.js';

describe('expandBraces', () => {
  it('keeps the zero padding of a numeric range', () => {
    expect(expandBraces('dir/train-{0000..0003}.tar')).toEqual(['dir/train-0000.tar', 'dir/train-0001.tar', 'dir/train-0002.tar', 'dir/train-0003.tar']);
    expect(expandBraces('s3://b/x-{098..101}.tar')).toEqual(['s3://b/x-098.tar', 's3://b/x-099.tar', 's3://b/x-100.tar', 's3://b/x-101.tar']);
  });

  it('expands unpadded and descending ranges', () => {
    expect(expandBraces('{8..11}')).toEqual(['8', '9', '10', '11']);
    expect(expandBraces('{2..0}')).toEqual(['2', '1', '0']);
  });

  it('expands lists, several groups and nesting, left to right', () => {
    expect(expandBraces('{a,b}-{0..1}.tar')).toEqual(['a-0.tar', 'a-1.tar', 'b-0.tar', 'b-1.tar']);
    expect(expandBraces('x-{a,b{1..2}}')).toEqual(['x-a', 'x-b1', 'x-b2']);
    expect(expandBraces('{,pre}fix')).toEqual(['fix', 'prefix']);
  });

  it('leaves a word without braces, or a brace with no comma or range, as is', () => {
    expect(expandBraces('plain.tar')).toEqual(['plain.tar']);
    expect(expandBraces('a{b}c')).toEqual(['a{b}c']);
  });

  it('names the spec when braces do not match', () => {
    expect(() => expandBraces('x-{0..3.tar')).toThrow('shard spec "x-{0..3.tar": "{" at position 2 is never closed');
    expect(() => expandBraces('x-0..3}.tar')).toThrow('"}" without a matching "{"');
  });

  it('refuses a range that is surely a typo', () => {
    expect(() => expandBraces('x-{0..99999999}')).toThrow('more than 1000000');
  });
});

describe('expandShardSpec', () => {
  it('joins several whitespace-separated specs in order', () => {
    expect(expandShardSpec('a-{0..1}.tar  http://h/b-{x,y}.tar\n c.tar')).toEqual(['a-0.tar', 'a-1.tar', 'http://h/b-x.tar', 'http://h/b-y.tar', 'c.tar']);
    expect(expandShardSpec(['a-{0..1}.tar', 'b.tar'])).toEqual(['a-0.tar', 'a-1.tar', 'b.tar']);
  });

  it('expands a local directory to its sorted .tar files, and file: URLs keep their prefix', () => {
    const dir = tmpDir();
    for (const f of ['b-000001.tar', 'a-000002.tar', 'b-000000.tar', 'notes.txt']) writeFileSync(join(dir, f), '');
    mkdirSync(join(dir, 'sub.tar'));
    expect(expandShardSpec(dir)).toEqual(['a-000002.tar', 'b-000000.tar', 'b-000001.tar'].map((f) => join(dir, f)));
    expect(expandShardSpec(`file://${dir}`)).toEqual(['a-000002.tar', 'b-000000.tar', 'b-000001.tar'].map((f) => `file://${join(dir, f)}`));
  });

  it('expands * and ? in a local file name, sorted', () => {
    const dir = tmpDir();
    for (const f of ['train-000001.tar', 'train-000000.tar', 'test-000000.tar']) writeFileSync(join(dir, f), '');
    expect(expandShardSpec(`${dir}/train-*.tar`)).toEqual([join(dir, 'train-000000.tar'), join(dir, 'train-000001.tar')]);
    expect(expandShardSpec(`${dir}/te?t-*.tar`)).toEqual([join(dir, 'test-000000.tar')]);
    expect(() => expandShardSpec(`${dir}/val-*.tar`)).toThrow(`shard spec "${dir}/val-*.tar" matches no file in ${dir}`);
  });

  it('explains what it cannot expand', () => {
    const dir = tmpDir();
    expect(expandShardSpec(dir)).toEqual([dir]); // no shards: an image folder, read as such
    expect(() => expandShardSpec('s3://bucket/train-*.tar')).toThrow('only supported for local paths');
    expect(() => expandShardSpec('  ')).toThrow('the shard spec is empty');
  });
});

describe('partitionShards', () => {
  const urls = Array.from({ length: 10 }, (_, i) => `s-${i}.tar`);

  it('puts every shard in exactly one partition', () => {
    for (const n of [1, 2, 3, 4, 7, 10]) {
      const parts = Array.from({ length: n }, (_, i) => partitionShards(urls, i, n));
      expect(parts.flat().sort()).toEqual([...urls].sort());
      expect(new Set(parts.flat()).size).toBe(urls.length);
      const sizes = parts.map((p) => p.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
    expect(partitionShards(urls, 1, 4)).toEqual(['s-1.tar', 's-5.tar', 's-9.tar']);
  });

  it('names the argument and value that are wrong', () => {
    expect(() => partitionShards(urls, 0, 0)).toThrow('partitionShards(): numShards is expected to be a positive integer, but got 0');
    expect(() => partitionShards(urls, 4, 4)).toThrow('partitionShards(): shardIndex is expected to be an integer in [0, 3], but got 4');
    expect(() => partitionShards(urls, -1, 4)).toThrow('but got -1');
    expect(() => partitionShards(urls, 1.5, 4)).toThrow('but got 1.5');
    expect(() => partitionShards(urls, 11, 12)).toThrow('partition 11 of 12 is empty: there are only 10 shards');
  });
});
