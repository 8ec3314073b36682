import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { usageError } from '../errors.js';
import { createRng } from '../pipeline/random.js';
import { decodeImage } from '../sources/image.js';
import { PatternTrigger, type ImageShape, type TriggerBuilder, type TriggerOptions } from './pattern-trigger.js';

/**
 * Blend (Chen et al., "Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning", 2017).
 * The whole image is blended with a pattern, w = `blendRatio` (default 0.1) everywhere. The pattern is an
 * image file (`patternFile`, resized bilinearly to the input, channels converted) or, by default, seeded
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

interface Image extends ImageShape {
  pixels: Float32Array;
}

function loadPattern(file: string): Image {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw usageError(`--pattern ${file}: cannot read the file (${(err as Error).message})`);
  }
  return decodeImage(bytes, extname(file).slice(1).toLowerCase(), { url: file });
}

/** Bilinear resize with channel conversion (gray↔RGB), pixel centres aligned. */
function resize(src: Image, to: ImageShape): Float32Array {
  const out = new Float32Array(to.height * to.width * to.channels);
  const at = (r: number, c: number, ch: number) => {
    if (src.channels === to.channels) return src.pixels[(r * src.width + c) * src.channels + ch];
    const base = (r * src.width + c) * src.channels;
    if (src.channels === 1) return src.pixels[base];
    return 0.299 * src.pixels[base] + 0.587 * src.pixels[base + 1] + 0.114 * src.pixels[base + 2];
  };
  for (let y = 0; y < to.height; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * src.height) / to.height - 0.5, 0), src.height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, src.height - 1);
    for (let x = 0; x < to.width; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * src.width) / to.width - 0.5, 0), src.width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, src.width - 1);
      for (let ch = 0; ch < to.channels; ch++) {
        const top = at(y0, x0, ch) * (1 - (sx - x0)) + at(y0, x1, ch) * (sx - x0);
        const bottom = at(y1, x0, ch) * (1 - (sx - x0)) + at(y1, x1, ch) * (sx - x0);
        out[(y * to.width + x) * to.channels + ch] = top * (1 - (sy - y0)) + bottom * (sy - y0);
      }
    }
  }
  return out;
}
