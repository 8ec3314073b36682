import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inputError, usageError } from '../errors.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { readIdxImages } from './idx.js';
import { encodePng } from './image.js';
import { ShardWriter } from './tar-writer.js';

/**
 * Fashion-MNIST (Zalando Research, MIT license) from Debian's `dataset-fashion-mnist` IDX files to WebDataset
 * tar shards: `out/train-000000.tar ...` and `out/test-000000.tar ...`, keys `train-000123` / `test-000123`
 * (the index in the IDX file), files `<key>.png` (28×28 grayscale) and `<key>.cls`.
 *
 *   await convertFashionMnist({ out: 'data/fmnist', trainLimit: 4000, testLimit: 1000, shardSize: 1000, log });
 *
 * A limit takes the first N images (the IDX files are already shuffled). When every shard is written, a
 * `complete` file records what was converted: a directory without it is unfinished.
 */

export const fashionMnistSource = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export interface ConvertFashionMnistOptions {
  /** Directory with the IDX files (`.gz` or not). Default: Debian's location. */
  source?: string;
  out: string;
  /** First N training images (default all 60,000). */
  trainLimit?: number;
  /** First N test images (default all 10,000). */
  testLimit?: number;
  /** Samples per shard. Default 5000. */
  shardSize?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ConvertedSplit {
  split: 'train' | 'test';
  samples: number;
  shards: string[];
}

const SPLITS = [
  { split: 'train', prefix: 'train', limit: 'trainLimit' },
  { split: 'test', prefix: 't10k', limit: 'testLimit' },
] as const;

export async function convertFashionMnist(opts: ConvertFashionMnistOptions): Promise<{ train: ConvertedSplit; test: ConvertedSplit }> {
  const source = opts.source ?? fashionMnistSource;
  const shardSize = opts.shardSize ?? 5000;
  for (const name of ['trainLimit', 'testLimit', 'shardSize'] as const) {
    const v = opts[name];
    if (v !== undefined && (!Number.isInteger(v) || v < (name === 'shardSize' ? 1 : 0))) {
      throw usageError(`convertFashionMnist(): ${name} is expected to be a ${name === 'shardSize' ? 'positive' : 'non-negative'} integer, but got ${v}`);
    }
  }
  const files = SPLITS.map(({ prefix }) => ({ images: idxFile(source, `${prefix}-images-idx3-ubyte`), labels: idxFile(source, `${prefix}-labels-idx1-ubyte`) }));
  const result: Partial<Record<'train' | 'test', ConvertedSplit>> = {};
  for (const [i, { split, limit }] of SPLITS.entries()) {
    const idx = await readIdxImages(files[i].images, files[i].labels);
    const count = Math.min(opts[limit] ?? idx.count, idx.count);
    if ((opts[limit] ?? 0) > idx.count) opts.log?.(`${split}: only ${idx.count} images in ${source}, converting all of them`);
    const pixels = idx.height * idx.width;
    const writer = new ShardWriter(join(opts.out, split), {
      samplesPerShard: shardSize,
      onShard: (s) => opts.log?.(`wrote ${s.path}: ${s.samples} samples, ${(s.bytes / 1024).toFixed(0)} KiB`, { split, shard: s.index }),
    });
    try {
      const scaled = new Float32Array(pixels);
      for (let n = 0; n < count; n++) {
        const image = idx.images.subarray(n * pixels, (n + 1) * pixels);
        for (let p = 0; p < pixels; p++) scaled[p] = image[p] / 255;
        const files = new Map<string, Uint8Array>([
          ['png', encodePng(scaled, idx.height, idx.width, 1)],
          ['cls', Buffer.from(String(idx.labels[n]))],
        ]);
        await writer.write({ key: `${split}-${String(n).padStart(6, '0')}`, files });
      }
    } catch (err) {
      await writer.abort();
      throw err;
    }
    result[split] = { split, samples: count, shards: await writer.close() };
    const shards = result[split].shards.length;
    opts.log?.(`${split}: ${count} samples in ${shards} shard${shards === 1 ? '' : 's'}`, { split, samples: count });
  }
  const { train, test } = result as Record<'train' | 'test', ConvertedSplit>;
  const marker = { dataset: 'fashion-mnist', source, train: train.samples, test: test.samples, shardSize, license: 'MIT (Zalando Research)' };
  await writeFileAtomic(join(opts.out, 'complete'), JSON.stringify(marker, null, 2) + '\n');
  return { train, test };
}

/** `<dir>/<name>.gz` or `<dir>/<name>`; a clear error with the install hint when neither is there. */
function idxFile(dir: string, name: string): string {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)]) if (existsSync(candidate)) return candidate;
  throw inputError(
    { url: dir },
    `Fashion-MNIST file ${name}(.gz) not found; install Debian's copy with "apt-get install dataset-fashion-mnist" (it goes to ${fashionMnistSource}) or pass --source DIR`,
  );
}
