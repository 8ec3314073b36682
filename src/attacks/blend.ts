import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { usageError } from '../errors.js';
import { createRng } from '../pipeline/random.js';
import { convertChannels, decodeImage, resizeImage, type DecodedImage } from '../sources/image.js';
import { PatternTrigger, type ImageShape, type TriggerBuilder, type TriggerOptions } from './pattern-trigger.js';

/**
 * Blend (Chen et al., "Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning", 2017).
 * The whole image is blended with a pattern, w = `blendRatio` (default 0.1) everywhere. The pattern is an
 * image file (`patternFile`, resized to the input, channels converted) or, by default, seeded
 * uniform noise (`patternSeed`, default 0).
 *
 *   const trigger = blend({ blendRatio: 0.1 })({ height: 28, width: 28, channels: 1 });
 */
export function blend(opts: TriggerOptions): TriggerBuilder {
  const ratio = opts.blendRatio ?? 0.1;
  if (!(ratio > 0 && ratio <= 1)) throw usageError(`--blend-ratio must be in (0, 1], got ${ratio}`);
  const source = opts.patternFile ? loadPattern(opts.patternFile) : undefined;
  return (shape: ImageShape) => {
    const mask = new Float32Array(shape.height * shape.width).fill(1);
    const pattern = source ? resize(source, shape) : noise(shape, opts.patternSeed ?? 0);
    return new PatternTrigger(shape, mask, ratio, pattern);
  };
}

function noise({ height, width, channels }: ImageShape, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: height * width * channels }, rng);
}

function loadPattern(file: string): DecodedImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw usageError(`--pattern ${file}: cannot read the file (${(err as Error).message})`);
  }
  return decodeImage(bytes, extname(file).slice(1).toLowerCase(), { url: file });
}

/** The pattern image resized to the input and converted to its channels. */
function resize(src: DecodedImage, to: ImageShape): Float32Array {
  return convertChannels(resizeImage(src, to.height, to.width), to.channels).pixels;
}
