import { decodePool } from '../pipeline/decode-pool.js';
import { stage, type Stage } from '../pipeline/pipe.js';
import { badSampleError, failOnBadSample, isBadSampleError, type BadSampleHandler } from '../sources/bad-samples.js';
import { convertChannels, decodeImageAsync, IMAGE_EXTENSIONS, pixelArray, resizeImage, type DecodedImage } from '../sources/image.js';
import type { ImageShape, RawArray, RawSample, Sample } from '../sources/types.js';

/**
 * Decodes raw samples: the image from the first of `.png/.jpg/.jpeg/.webp` (or a record shard's array), the
 * label from `.cls`, metadata from `.json`.
 *
 *   pipe(raw, decode({ expected: { height: 28, width: 28, channels: 1 }, onBadSample: log.handler }))
 *   pipe(raw, decode({ expected, imageSize: 'resize', workers: 2 }))   // in a worker pool (decode-pool.ts)
 *
 * The label is optional (absent: `label` undefined) unless `requireLabels`; a `.cls` that is not a non-negative
 * integer is a bad sample. With `expected`, 1↔3 channels are converted (gray → RGB replicates, RGB → gray is
 * luma), other channel counts are bad samples, and an image of another size is resized (`imageSize: 'resize'`)
 * or a bad sample (`'reject'`, the default). Every bad sample goes to `onBadSample` (default: throw), which
 * returns to skip it or throws to stop: none is dropped silently.
 */

export type ImageSizePolicy = 'reject' | 'resize';

export interface DecodeSampleOptions {
  expected?: ImageShape;
  /** What an image of another height × width than `expected` does. Default 'reject'. */
  imageSize?: ImageSizePolicy;
  /** Labels must be below this. Default: any non-negative integer. */
  numClasses?: number;
  /** A sample without `.cls` is a bad sample (evaluation, supervised training). Default false. */
  requireLabels?: boolean;
  /** Decompression-bomb guard, passed to the image codec. */
  maxPixels?: number;
}

export interface DecodeOptions extends DecodeSampleOptions {
  onBadSample?: BadSampleHandler;
  /** Decode in this many worker threads (0: on the calling thread). Default 0. */
  workers?: number;
  /** Samples per worker task. Default 64. */
  batchSize?: number;
  /** Worker tasks in flight at once (the bound on read-ahead). Default 2 per worker. */
  maxInFlight?: number;
}

export function decode(opts: DecodeOptions = {}): Stage<RawSample, Sample> {
  if ((opts.workers ?? 0) > 0) return decodePool(opts);
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  return stage(`decode${decodeSummary(opts)}`, async function* (source, ctx) {
    for await (const raw of source) {
      ctx?.signal?.throwIfAborted();
      let sample: Sample;
      try {
        sample = await decodeSample(raw, opts);
      } catch (err) {
        await onBadSample(asBadSample(raw, err));
        continue;
      }
      yield sample;
    }
  });
}

/** ` 28x28x1, resize` and the like: what the decode stage shows in a pipeline summary. */
export function decodeSummary(opts: DecodeSampleOptions): string {
  const e = opts.expected;
  const shape = e ? ` ${e.height}x${e.width}x${e.channels}` : '';
  return shape + (e && opts.imageSize === 'resize' ? ' resize' : '');
}

export function asBadSample(raw: { url: string; key: string }, err: unknown) {
  return isBadSampleError(err) ? err : badSampleError(raw, `cannot decode: ${(err as Error).message}`, err);
}

/**
 * Decodes one sample or throws a {@link BadSampleError} naming its url and key. Pure: fit for a worker. The pixels
 * are written into `into` when the image needs no conversion and has exactly its size (a decode worker's slot).
 */
export async function decodeSample(raw: RawSample, opts: DecodeSampleOptions = {}, into?: Float32Array): Promise<Sample> {
  const where = { url: raw.url, key: raw.key };
  if (raw.error !== undefined) throw badSampleError(where, raw.error);
  let img: DecodedImage;
  if (raw.array) {
    img = arrayImage(raw.array, where, into);
  } else {
    const ext = IMAGE_EXTENSIONS.find((e) => raw.files.has(e));
    if (ext === undefined) {
      throw badSampleError(where, `no image file (.${IMAGE_EXTENSIONS.join('/.')}); the sample has: ${[...raw.files.keys()].map((e) => '.' + e).join(', ') || 'no files'}`);
    }
    img = await decodeImageAsync(raw.files.get(ext) as Uint8Array, ext, where, { maxPixels: opts.maxPixels, into });
  }
  const expected = opts.expected;
  if (expected) {
    if (img.height !== expected.height || img.width !== expected.width) {
      if (opts.imageSize !== 'resize') {
        throw badSampleError(where, `image is ${img.height}x${img.width}x${img.channels}, expected ${expected.height}x${expected.width}x${expected.channels} (--image-size-policy resize to resize)`);
      }
    }
    if (img.channels !== expected.channels) {
      if (![1, 3].includes(img.channels) || ![1, 3].includes(expected.channels)) {
        throw badSampleError(where, `image has ${img.channels} channels, expected ${expected.channels}`);
      }
      img = convertChannels(img, expected.channels);
    }
    img = resizeImage(img, expected.height, expected.width);
  }
  const label = parseLabel(raw.files.get('cls'), where, opts);
  const sample: Sample = { key: raw.key, url: raw.url, pixels: img.pixels, height: img.height, width: img.width, channels: img.channels, label };
  const json = raw.files.get('json');
  if (json !== undefined) sample.meta = parseMeta(json, where);
  return sample;
}

function arrayImage(a: RawArray, where: { url: string; key: string }, into?: Float32Array): DecodedImage {
  const shape = a.shape.length === 2 ? [...a.shape, 1] : a.shape;
  if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw badSampleError(where, `record shape ${JSON.stringify(a.shape)} is not [height, width] or [height, width, channels]`);
  }
  const [height, width, channels] = shape;
  const n = height * width * channels;
  const size = a.dtype === 'float32' ? 4 : 1;
  if (a.data.byteLength !== n * size) {
    throw badSampleError(where, `record data has ${a.data.byteLength} bytes, shape ${JSON.stringify(a.shape)} of ${a.dtype} needs ${n * size}`);
  }
  let pixels: Float32Array;
  if (a.dtype === 'uint8') {
    pixels = pixelArray(n, into);
    const scale = 1 / 255;
    for (let i = 0; i < n; i++) pixels[i] = a.data[i] * scale;
  } else {
    // a view when aligned: the bytes become the pixels without a copy
    pixels = a.data.byteOffset % 4 === 0 ? new Float32Array(a.data.buffer, a.data.byteOffset, n) : new Float32Array(a.data.slice().buffer);
    for (let i = 0; i < n; i++) {
      const v = pixels[i];
      if (!(v >= 0 && v <= 1)) throw badSampleError(where, `record pixel ${i} is ${v}, outside [0, 1]`);
    }
  }
  return { pixels, height, width, channels };
}

function parseLabel(bytes: Uint8Array | undefined, where: { url: string; key: string }, opts: DecodeSampleOptions): number | undefined {
  if (bytes === undefined) {
    if (opts.requireLabels) throw badSampleError(where, 'missing label (no .cls file), and this command needs labels');
    return undefined;
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').trim();
  if (!/^\d{1,9}$/.test(text)) {
    throw badSampleError(where, `.cls label ${JSON.stringify(text.slice(0, 40))} is not a non-negative integer`);
  }
  const label = Number(text);
  if (opts.numClasses !== undefined && label >= opts.numClasses) {
    throw badSampleError(where, `.cls label ${label} is out of range for ${opts.numClasses} classes`);
  }
  return label;
}

function parseMeta(bytes: Uint8Array, where: { url: string; key: string }): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw badSampleError(where, `.json metadata is not valid JSON: ${(err as Error).message}`, err);
  }
}
