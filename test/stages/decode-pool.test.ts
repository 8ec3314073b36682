import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { Piscina } from 'piscina';
import { decodePool, workerFile } from '../../src/pipeline/decode-pool.js';
import { packTask, TRANSFER_BYTES, unpackResults, type DecodeTaskResult } from '../../src/stages/decode-batch.js';
import type { BadSampleError } from '../../src/sources/bad-samples.js';
import type { RawSample, Sample } from '../../src/sources/types.js';
import { decode } from '../../src/stages/decode.js';
import { png, testImage } from '../sources/fixtures.js';
import { from } from '../helpers/streams.js';

/** The decode stage in worker threads (the compiled dist/src/stages/decode-worker.js: npm test builds first). */

const raw = (key: string, files: Record<string, Uint8Array | string>): RawSample => ({
  key,
  url: 'shards/a.tar',
  files: new Map(Object.entries(files).map(([e, d]) => [e, typeof d === 'string' ? Buffer.from(d) : d])),
});

function rawSamples(n: number, bad: (i: number) => boolean = () => false): RawSample[] {
  return Array.from({ length: n }, (_, i) => raw(`k${i}`, bad(i) ? { png: 'not a png', cls: '1' } : { png: png(8, 8, 1, i), cls: String(i % 10) }));
}

async function run(samples: RawSample[], opts: Parameters<typeof decode>[0]) {
  const errors: BadSampleError[] = [];
  const out: Sample[] = [];
  const stage = decode({ onBadSample: (e) => void errors.push(e), ...opts });
  for await (const s of stage(from(samples), {})) out.push(s);
  return { out, errors, stage };
}

describe('decodePool', () => {
  it('gives what the inline stage gives, in order, with bad samples reported in place', async () => {
    const bad = (i: number) => i % 17 === 5;
    const samples = () => {
      const all = rawSamples(300, bad);
      all.forEach((s, i) => {
        if (i % 7 === 0) s.files.set('json', Buffer.from(JSON.stringify({ i, tag: `t${i}` })));
        if (i % 11 === 0) s.files.delete('cls');
      });
      return all;
    };
    const inline = await run(samples(), { expected: { height: 8, width: 8, channels: 3 } });
    const pooled = await run(samples(), { expected: { height: 8, width: 8, channels: 3 }, workers: 2, batchSize: 16 });
    expect(pooled.stage.summary()).toBe('decode(2 workers) 8x8x3');
    expect(pooled.out.map((s) => s.key)).toEqual(inline.out.map((s) => s.key));
    expect(pooled.out.map((s) => s.label)).toEqual(inline.out.map((s) => s.label));
    expect(pooled.out.map((s) => s.meta)).toEqual(inline.out.map((s) => s.meta));
    expect(pooled.out.filter((s) => s.meta !== undefined).length).toBeGreaterThan(30);
    expect(pooled.out.filter((s) => s.label === undefined).length).toBeGreaterThan(20);
    pooled.out.forEach((s, i) => expect(Array.from(s.pixels)).toEqual(Array.from(inline.out[i].pixels)));
    expect(pooled.errors.map((e) => e.message)).toEqual(inline.errors.map((e) => e.message));
    expect(pooled.errors.map((e) => [e.where.url, e.where.key])).toEqual(inline.errors.map((e) => [e.where.url, e.where.key]));
    expect(pooled.errors[0].message).toMatch(/^shards\/a.tar \(sample k5\): not a PNG image/);
  });

  it('moves a batch to the worker in one transferred buffer and gets its pixels back in one shared output of its size, not copied', async () => {
    const samples = rawSamples(10);
    samples[4] = { key: 'arr', url: 'r.msgpack', files: new Map(), array: { shape: [8, 8, 1], dtype: 'float32', data: new Uint8Array(Float32Array.from({ length: 64 }, (_, i) => i / 64).buffer) } };
    samples[6] = { ...samples[6], error: 'duplicate key k6' };
    const task = packTask(samples, { requireLabels: false });
    expect(task.input.byteLength).toBeGreaterThan(0);
    const pool = new Piscina({ filename: workerFile(), maxThreads: 1 });
    try {
      const result = (await pool.run(task, { transferList: [task.input.buffer as ArrayBuffer] })) as DecodeTaskResult;
      expect(task.input.byteLength).toBe(0); // detached here: it moved
      expect(result.output).toBeInstanceOf(SharedArrayBuffer);
      expect(result.output.byteLength).toBe(4 * (10 * 6 + 9 * 64)); // a shape row per sample, the good ones' pixels
      const decoded = unpackResults(result, samples);
      expect(decoded[6]).toBe('duplicate key k6');
      const [s3, s4] = decoded.slice(3, 5) as Sample[];
      expect([s3.key, s3.url, s3.height, s3.width, s3.channels, s3.label]).toEqual(['k3', 'shards/a.tar', 8, 8, 1, 3]);
      expect(Array.from(s3.pixels)).toEqual(Array.from(testImage(8, 8, 1, 3)));
      expect(Array.from(s4.pixels)).toEqual(Array.from(Float32Array.from({ length: 64 }, (_, i) => i / 64)));
      expect(s4.label).toBeUndefined();
      // views on the one output the worker filled
      expect(s3.pixels.buffer).toBe(result.output);
      expect(s4.pixels.buffer).toBe(result.output);
    } finally {
      await pool.destroy();
    }
  });

  it('moves a large output (an ArrayBuffer, freed by the calling thread\'s GC) instead of sharing it', async () => {
    const n = 45; // 128x128x3 float32: 196,608 B an image, 8.4 MiB in all
    const samples = Array.from({ length: n }, (_, i) => raw(`big${i}`, { png: png(128, 128, 3, i), cls: '2' }));
    const task = packTask(samples, { expected: { height: 128, width: 128, channels: 3 } });
    const pool = new Piscina({ filename: workerFile(), maxThreads: 1 });
    try {
      const result = (await pool.run(task, { transferList: [task.input.buffer as ArrayBuffer] })) as DecodeTaskResult;
      expect(result.output.byteLength).toBeGreaterThanOrEqual(TRANSFER_BYTES);
      expect(result.output).toBeInstanceOf(ArrayBuffer);
      expect(result.output).not.toBeInstanceOf(SharedArrayBuffer);
      const decoded = unpackResults(result, samples) as Sample[];
      decoded.forEach((s, i) => {
        expect([s.key, s.height, s.width, s.channels, s.label]).toEqual([`big${i}`, 128, 128, 3, 2]);
        expect(s.pixels.buffer).toBe(result.output);
      });
      expect(Array.from(decoded[44].pixels)).toEqual(Array.from(testImage(128, 128, 3, 44)));
    } finally {
      await pool.destroy();
    }
  });

  it('sizes each output to its batch, whatever the images\' sizes', async () => {
    const image = (i: number) => raw(`b${i}`, i % 3 === 2 ? { png: 'not a png' } : { png: png(8 + 8 * (i % 4), 8 + 4 * (i % 5), 3, i), cls: '1' });
    const pooled = await run(Array.from({ length: 12 }, (_, i) => image(i)), { workers: 1, batchSize: 4 });
    const good = Array.from({ length: 12 }, (_, i) => i).filter((i) => i % 3 !== 2);
    expect(pooled.out.map((s) => s.key)).toEqual(good.map((i) => `b${i}`));
    pooled.out.forEach((s, k) => {
      const i = good[k];
      expect([s.height, s.width]).toEqual([8 + 8 * (i % 4), 8 + 4 * (i % 5)]);
      expect(Array.from(s.pixels)).toEqual(Array.from(testImage(s.height, s.width, 3, i)));
    });
    expect(pooled.errors.map((e) => e.where.key)).toEqual(['b2', 'b5', 'b8', 'b11']);
    // one buffer per batch, exactly the batch's shape rows and pixels
    const batches = [0, 1, 2].map((b) => pooled.out.filter((s) => Number(s.key.slice(1)) >= 4 * b && Number(s.key.slice(1)) < 4 * b + 4));
    for (const batch of batches) {
      expect(new Set(batch.map((s) => s.pixels.buffer)).size).toBe(1);
      expect(batch[0].pixels.buffer.byteLength).toBe(4 * (4 * 6 + batch.reduce((n, s) => n + s.pixels.length, 0)));
    }
    expect(batches[1][0].pixels.buffer).not.toBe(batches[0][0].pixels.buffer);
  });

  it('with an expected shape, decodes into slots of that size: in place where the image fits, copied after conversion', async () => {
    // gray 8x8 fits a 8x8x1 slot as decoded; RGB needs conversion, 16x4 gray has the slot's size but not its shape
    const files = (i: number) => (i % 3 === 0 ? { png: png(8, 8, 1, i), cls: '1' } : i % 3 === 1 ? { png: png(8, 8, 3, i), cls: '2' } : { png: png(16, 4, 1, i), cls: '3' });
    const samples = () => Array.from({ length: 24 }, (_, i) => raw(`s${i}`, files(i)));
    const opts = { expected: { height: 8, width: 8, channels: 1 }, imageSize: 'resize' as const };
    const inline = await run(samples(), opts);
    const pooled = await run(samples(), { ...opts, workers: 1, batchSize: 8 });
    expect(pooled.errors).toEqual([]);
    expect(pooled.out.map((s) => [s.key, s.height, s.width, s.channels, s.label])).toEqual(inline.out.map((s) => [s.key, 8, 8, 1, s.label]));
    pooled.out.forEach((s, i) => expect(Array.from(s.pixels)).toEqual(Array.from(inline.out[i].pixels)));
    // sample i of a batch sits in slot i, after the batch's 8 shape rows of 6 int32
    pooled.out.forEach((s, i) => expect(s.pixels.byteOffset).toBe(4 * (8 * 6 + (i % 8) * 64)));
    expect(pooled.out[0].pixels.buffer.byteLength).toBe(4 * 8 * (6 + 64));
  });

  it('decodes JPEG and WebP (sharp) in the workers and resizes per policy', async () => {
    const rgb = Buffer.from(Array.from({ length: 12 * 10 * 3 }, (_, i) => (i * 7) % 256));
    const jpg = await sharp(rgb, { raw: { width: 10, height: 12, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const webp = await sharp(rgb, { raw: { width: 10, height: 12, channels: 3 } }).webp({ lossless: true }).toBuffer();
    const samples = [raw('j', { jpg, cls: '1' }), raw('w', { webp, cls: '2' }), raw('bad', { jpeg: Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2]) })];
    const rejected = await run(samples.map((s) => ({ ...s, files: new Map(s.files) })), { workers: 1, expected: { height: 6, width: 5, channels: 3 } });
    expect(rejected.out).toEqual([]);
    expect(rejected.errors.map((e) => e.reason)).toEqual([
      'image is 12x10x3, expected 6x5x3 (--image-size-policy resize to resize)',
      'image is 12x10x3, expected 6x5x3 (--image-size-policy resize to resize)',
      expect.stringMatching(/^corrupt JPEG image: /),
    ]);
    const resized = await run(samples, { workers: 1, expected: { height: 6, width: 5, channels: 1 }, imageSize: 'resize' });
    expect(resized.out.map((s) => [s.key, s.height, s.width, s.channels, s.label])).toEqual([
      ['j', 6, 5, 1, 1],
      ['w', 6, 5, 1, 2],
    ]);
    // lossless WebP: the corner pixel is the triangle filter at scale 2 (taps 3/7, 3/7, 1/7 at the edge) over the luma
    const luma = (y: number, x: number) => (0.299 * rgb[(y * 10 + x) * 3] + 0.587 * rgb[(y * 10 + x) * 3 + 1] + 0.114 * rgb[(y * 10 + x) * 3 + 2]) / 255;
    const taps = [3 / 7, 3 / 7, 1 / 7];
    let corner = 0;
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) corner += taps[y] * taps[x] * luma(y, x);
    expect(resized.out[1].pixels[0]).toBeCloseTo(corner, 5);
  });

  it('decodes a batch that mixes slow (sharp) and fast (PNG) images a few at a time, keeping its order', async () => {
    const rgb = (i: number) => Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, k) => (k * 7 + i * 13) % 256));
    const files = await Promise.all(
      Array.from({ length: 23 }, async (_, i): Promise<Record<string, Uint8Array | string>> => {
        const image = sharp(rgb(i), { raw: { width: 8, height: 8, channels: 3 } });
        if (i % 5 === 4) return { jpg: Buffer.from([0xff, 0xd8, 0xff, 0, i]), cls: '1' };
        if (i % 3 === 0) return { jpg: await image.jpeg({ quality: 90 }).toBuffer(), cls: String(i % 10) };
        if (i % 3 === 1) return { webp: await image.webp({ lossless: true }).toBuffer(), cls: String(i % 10) };
        return { png: png(8, 8, 3, i), cls: String(i % 10) };
      }),
    );
    const samples = () => files.map((f, i) => raw(`m${i}`, f));
    const opts = { expected: { height: 8, width: 8, channels: 3 } };
    const inline = await run(samples(), opts);
    const pooled = await run(samples(), { ...opts, workers: 1, batchSize: 23 });
    expect(pooled.out.map((s) => [s.key, s.label])).toEqual(inline.out.map((s) => [s.key, s.label]));
    expect(pooled.out.length).toBe(23 - 4);
    pooled.out.forEach((s, i) => expect(Array.from(s.pixels)).toEqual(Array.from(inline.out[i].pixels)));
    expect(pooled.errors.map((e) => e.where.key)).toEqual(['m4', 'm9', 'm14', 'm19']);
  });

  it('reads ahead a bounded amount: a slow consumer slows the reading (backpressure)', async () => {
    let pulled = 0;
    const source = (async function* () {
      for (const s of rawSamples(400)) {
        pulled++;
        yield s;
      }
    })();
    const stage = decodePool({ workers: 2, batchSize: 8, maxInFlight: 3 });
    let consumed = 0;
    let maxAhead = 0;
    for await (const _ of stage(source, {})) {
      void _;
      consumed++;
      maxAhead = Math.max(maxAhead, pulled - consumed);
      if (consumed % 50 === 0) await new Promise((r) => setTimeout(r, 20)); // a slow trainer
    }
    expect(consumed).toBe(400);
    // in flight: 3 batches of 8, plus the batch being filled, plus the one being handed out
    expect(maxAhead).toBeLessThanOrEqual(3 * 8 + 8 + 8);
    expect(maxAhead).toBeGreaterThan(8);
  });

  it('lets the consumer stop early, serves the next pass from the same threads, and validates its options', async () => {
    const stage = decodePool({ workers: 1, batchSize: 4 });
    const keys: string[] = [];
    for await (const s of stage(from(rawSamples(100)), {})) {
      keys.push(s.key);
      if (keys.length === 6) break;
    }
    expect(keys).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    // the next pass starts while the first one's abandoned batches may still be decoding: its pixels are its own
    const again: Sample[] = [];
    for await (const s of stage(from(rawSamples(20)), {})) again.push(s);
    expect(again.map((s) => s.key)).toEqual(rawSamples(20).map((s) => s.key));
    again.forEach((s, i) => expect(Array.from(s.pixels)).toEqual(Array.from(testImage(8, 8, 1, i))));
    expect(() => decodePool({ workers: 0 })).toThrow('decodePool(): workers is expected to be a positive integer, but got 0');
    expect(() => decodePool({ workers: 1, batchSize: 1.5 })).toThrow('decodePool(): batchSize is expected to be a positive integer, but got 1.5');
  });
});
