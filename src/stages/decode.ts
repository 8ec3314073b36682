import { stage, type Stage } from '../pipeline/pipe.js';
import { badSampleError, failOnBadSample, isBadSampleError, type BadSampleHandler } from '../sources/bad-samples.js';
import { convertChannels, decodeImage, IMAGE_EXTENSIONS, type DecodedImage } from '../sources/image.js';
import type { ImageShape, RawSample, Sample } from '../sources/types.js';

/**
 * Decodes raw WebDataset samples: the image from the first of `.png/.jpg/.jpeg/.webp`, the label from `.cls`.
 *
 *   pipe(raw, decode({ expected: { height: 28, width: 28, channels: 1 }, onBadSample: log.handler }))
 *
 * The label is optional (absent: `label` undefined); a `.cls` that is not a non-negative integer is a bad
 * sample. With `expected`, 1↔3 channels are converted (gray → RGB replicates, RGB → gray is luma) and any other
 * mismatch is a bad sample. Every bad sample goes to `onBadSample` (default: throw), which returns to skip it or
 * throws to stop: none is dropped silently.
 */

export interface DecodeOptions {
  expected?: ImageShape;
  onBadSample?: BadSampleHandler;
  /** Labels must be below this. Default: any non-negative integer. */
  numClasses?: number;
  /** Decompression-bomb guard, passed to the image codec. */
  maxPixels?: number;
}

export function decode(opts: DecodeOptions = {}): Stage<RawSample, Sample> {
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  const shape = opts.expected ? ` ${opts.expected.height}x${opts.expected.width}x${opts.expected.channels}` : '';
  return stage(`decode${shape}`, async function* (source, ctx) {
    for await (const raw of source) {
      ctx?.signal?.throwIfAborted();
      let sample: Sample;
      try {
        sample = decodeSample(raw, opts);
      } catch (err) {
        await onBadSample(isBadSampleError(err) ? err : badSampleError(raw, `cannot decode: ${(err as Error).message}`, err));
        continue;
      }
      yield sample;
    }
  });
}

/** Decodes one sample or throws a {@link BadSampleError} naming its url and key. Pure: fit for a worker. */
export function decodeSample(raw: RawSample, opts: Omit<DecodeOptions, 'onBadSample'> = {}): Sample {
  const where = { url: raw.url, key: raw.key };
  const ext = IMAGE_EXTENSIONS.find((e) => raw.files.has(e));
  if (ext === undefined) {
    throw badSampleError(where, `no image file (.${IMAGE_EXTENSIONS.join('/.')}); the sample has: ${[...raw.files.keys()].map((e) => '.' + e).join(', ') || 'no files'}`);
  }
  let img: DecodedImage = decodeImage(raw.files.get(ext) as Uint8Array, ext, where, { maxPixels: opts.maxPixels });
  const expected = opts.expected;
  if (expected) {
    if (img.height !== expected.height || img.width !== expected.width) {
      throw badSampleError(where, `image is ${img.height}x${img.width}x${img.channels}, expected ${expected.height}x${expected.width}x${expected.channels}`);
    }
    if (img.channels !== expected.channels) {
      if (![1, 3].includes(img.channels) || ![1, 3].includes(expected.channels)) {
        throw badSampleError(where, `image has ${img.channels} channels, expected ${expected.channels}`);
      }
      img = convertChannels(img, expected.channels);
    }
  }
  const label = parseLabel(raw.files.get('cls'), where, opts.numClasses);
  return { key: raw.key, url: raw.url, pixels: img.pixels, height: img.height, width: img.width, channels: img.channels, label };
}

function parseLabel(bytes: Uint8Array | undefined, where: { url: string; key: string }, numClasses?: number): number | undefined {
  if (bytes === undefined) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').trim();
  if (!/^\d{1,9}$/.test(text)) {
    throw badSampleError(where, `.cls label ${JSON.stringify(text.slice(0, 40))} is not a non-negative integer`);
  }
  const label = Number(text);
  if (numClasses !== undefined && label >= numClasses) {
    throw badSampleError(where, `.cls label ${label} is out of range for ${numClasses} classes`);
  }
  return label;
}
