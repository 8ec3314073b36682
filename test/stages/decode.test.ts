import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadSampleLog, type BadSampleError } from '../../src/sources/bad-samples.js';
import { shardSource } from '../../src/sources/dataset.js';
import { readTarShard } from '../../src/sources/tar-reader.js';
import type { RawSample, Sample } from '../../src/sources/types.js';
import { decode } from '../../src/stages/decode.js';
import { makeTar, png, testImage, tmpDir } from '../sources/fixtures.js';

const raw = (key: string, files: Record<string, Uint8Array | string>): RawSample => ({
  key,
  url: 'shards/a.tar',
  files: new Map(Object.entries(files).map(([e, d]) => [e, typeof d === 'string' ? Buffer.from(d) : d])),
});

async function run(samples: RawSample[] | AsyncIterable<RawSample>, opts: Parameters<typeof decode>[0] = {}) {
  const errors: BadSampleError[] = [];
  const out: Sample[] = [];
  const stage = decode({ onBadSample: (e) => void errors.push(e), ...opts });
  const source = Symbol.asyncIterator in samples ? samples : (async function* () { yield* samples; })();
  for await (const s of stage(source, {})) out.push(s);
  return { out, errors, stage };
}

describe('decode', () => {
  it('decodes the image and the optional label', async () => {
    const { out, errors, stage } = await run([raw('a', { png: png(4, 3, 1), cls: ' 7\n' }), raw('b', { png: png(4, 3, 3) })]);
    expect(errors).toEqual([]);
    expect(out.map((s) => [s.key, s.url, s.label, s.height, s.width, s.channels])).toEqual([
      ['a', 'shards/a.tar', 7, 4, 3, 1],
      ['b', 'shards/a.tar', undefined, 4, 3, 3],
    ]);
    expect(Array.from(out[0].pixels)).toEqual(Array.from(testImage(4, 3, 1)));
    expect(stage.summary()).toBe('decode');
  });

  it('converts 1↔3 channels to the expected shape', async () => {
    const expected = (channels: number) => ({ expected: { height: 4, width: 3, channels } });
    const { out: rgb, stage } = await run([raw('g', { png: png(4, 3, 1) })], expected(3));
    expect(rgb[0].channels).toBe(3);
    const g = testImage(4, 3, 1);
    expect(Array.from(rgb[0].pixels.subarray(0, 6))).toEqual([g[0], g[0], g[0], g[1], g[1], g[1]]);
    expect(stage.summary()).toBe('decode 4x3x3');
    const { out: gray } = await run([raw('c', { png: png(4, 3, 3) })], expected(1));
    const c = testImage(4, 3, 3);
    expect(gray[0].channels).toBe(1);
    expect(gray[0].pixels[0]).toBeCloseTo(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2], 5);
  });

  it('hands every bad sample to onBadSample with a message naming url and key, and goes on', async () => {
    const { out, errors } = await run(
      [
        raw('ok1', { png: png(4, 3, 1), cls: '1' }),
        raw('zero', { png: new Uint8Array(0), cls: '1' }),
        raw('label', { png: png(4, 3, 1), cls: 'seven' }),
        raw('size', { png: png(5, 3, 1), cls: '1' }),
        raw('noimg', { cls: '1', json: '{}' }),
        raw('range', { png: png(4, 3, 1), cls: '12' }),
        raw('ok2', { png: png(4, 3, 1) }),
      ],
      { expected: { height: 4, width: 3, channels: 1 }, numClasses: 10 },
    );
    expect(out.map((s) => s.key)).toEqual(['ok1', 'ok2']);
    expect(errors.map((e) => e.message)).toEqual([
      'shards/a.tar (sample zero): empty .png file (0 bytes)',
      'shards/a.tar (sample label): .cls label "seven" is not a non-negative integer',
      'shards/a.tar (sample size): image is 5x3x1, expected 4x3x1 (--image-size-policy resize to resize)',
      'shards/a.tar (sample noimg): no image file (.png/.jpg/.jpeg/.webp); the sample has: .cls, .json',
      'shards/a.tar (sample range): .cls label 12 is out of range for 10 classes',
    ]);
    expect(errors.map((e) => e.where.key)).toEqual(['zero', 'label', 'size', 'noimg', 'range']);
  });

  it('stops at the first bad sample by default, naming url and key', async () => {
    await expect(run([raw('x', { png: Buffer.from('nope'), cls: '1' })], { onBadSample: undefined })).rejects.toThrow(
      'shards/a.tar (sample x): not a PNG image',
    );
  });

  it('stops when the handler throws (policy fail / over the limit)', async () => {
    const log = new BadSampleLog({ policy: 'skip', maxBadSamples: 1 });
    const bad = [1, 2, 3].map((i) => raw(`b${i}`, { png: png(4, 3, 1), cls: 'x' }));
    await expect(run(bad, { onBadSample: log.handler })).rejects.toThrow('shards/a.tar (sample b2): too many bad samples: 2, more than maxBadSamples=1');
    expect(log.count).toBe(2);
  });

  it('with the tar reader: not-a-tar, truncated and zero-byte files name their url and key', async () => {
    const dir = tmpDir();
    const notTar = join(dir, 'not.tar');
    writeFileSync(notTar, Buffer.alloc(2048, 'x'));
    const whole = await makeTar(join(dir, 'whole.tar'), [['s0.png', png(28, 28, 1)], ['s0.cls', '3'], ['s1.png', png(28, 28, 3, 1)], ['s1.cls', '4']]);
    const cut = join(dir, 'cut.tar');
    const bytes = readFileSync(whole);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 1024 - 700)); // cut inside s1
    const zero = await makeTar(join(dir, 'zero.tar'), [['z.png', ''], ['z.cls', '1'], ['w.png', png(28, 28, 1)], ['w.cls', '2']]);

    const log = new BadSampleLog({ policy: 'skip' });
    const got: Sample[] = [];
    for await (const s of shardSource([notTar, cut, zero], { onBadSample: log.handler, expected: { height: 28, width: 28, channels: 1 } })()) got.push(s);
    expect(got.map((s) => [s.url, s.key, s.label])).toEqual([
      [cut, 's0', 3],
      [zero, 'w', 2],
    ]);
    expect(log.rows().map((r) => [r.url, r.key])).toEqual([
      [notTar, ''],
      [cut, 's1'],
      [zero, 'z'],
    ]);
    const reasons = log.rows().map((r) => r.reason);
    expect(reasons[0]).toMatch(/^not a valid tar shard: Invalid tar header/);
    expect(reasons[1]).toMatch(/^not a valid tar shard: Unexpected end of data \((in|after) entry "s1\.(png|cls)"; last complete sample "s0"\)$/);
    expect(reasons[2]).toBe('empty .png file (0 bytes)');

    // and the same through the stage directly, failing by default
    await expect(run(readTarShard(cut), { onBadSample: undefined })).rejects.toThrow(`${cut} (sample s1): not a valid tar shard`);
  });
});
