import { z } from 'zod';
import { attackOptionError } from '../errors.js';
import { loadPatternImage } from './pattern-image.js';
import { PatternTrigger } from './pattern-trigger.js';
import { opt, type Attack, type ImageShape } from './trigger.js';

/**
 * BadNets (Gu et al., "BadNets: Identifying Vulnerabilities in the Machine Learning Model Supply Chain", 2017).
 * Threat model: dirty-label; the attacker stamps a small patch on a share of the training images and relabels
 * them. x' = (1 - m)·x + m·p with m the patch's square (pattern-trigger.ts).
 *
 * Options (defaults in config/attacks/badnets.json):
 *  - size = 3: the patch's side in pixels;
 *  - position = "bottom-right": top-left | top-right | bottom-left | bottom-right, or "row,col" of its top-left pixel;
 *  - pattern = "white": white | checkerboard | an image file (resized to the patch). checkerboard is the PBE
 *    authors' 3x3 patch (Syyabb/BPE, utils/dataloader.py, _patchTrigger; also Turner et al.'s label-consistent
 *    pattern): pixel (i, j) of the patch is white where i + j is even, except its top-left pixel, black.
 *
 * Contract: HWC float32 in [0,1] in and out; only the patch's pixels change.
 *
 *   const trigger = triggerFor('badnets', { size: 3, position: 'top-left' })({ height: 28, width: 28, channels: 1 });
 */
export interface BadnetsOptions {
  size: number;
  position: string;
  pattern: string;
}

export const badnets: Attack<BadnetsOptions> = {
  name: 'badnets',
  paper: 'Gu et al., BadNets, 2017',
  cleanLabel: false,
  options: z.object({ size: opt.int(1, 'a positive integer'), position: z.string({ error: 'a string' }), pattern: z.string({ error: 'a string' }) }).strict(),
  build(o, shape) {
    const [row, col] = patchOrigin('badnets', o.position, o.size, shape);
    const { height, width, channels } = shape;
    const mask = new Float32Array(height * width);
    const pattern = new Float32Array(height * width * channels);
    const patch = patchPattern(o.pattern, o.size, channels);
    for (let i = 0; i < o.size; i++) {
      for (let j = 0; j < o.size; j++) {
        const p = (row + i) * width + col + j;
        mask[p] = 1;
        for (let c = 0; c < channels; c++) pattern[p * channels + c] = patch[(i * o.size + j) * channels + c];
      }
    }
    return new PatternTrigger('badnets', shape, mask, 1, pattern);
  },
};

/** The patch's pixels, size x size x channels. */
function patchPattern(pattern: string, size: number, channels: number): Float32Array {
  if (pattern === 'white') return new Float32Array(size * size * channels).fill(1);
  if (pattern === 'checkerboard') {
    const out = new Float32Array(size * size * channels);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const white = (i + j) % 2 === 0 && i + j > 0;
        out.fill(white ? 1 : 0, (i * size + j) * channels, (i * size + j + 1) * channels);
      }
    }
    return out;
  }
  return loadPatternImage(pattern, size, size, channels, 'badnets.pattern');
}

/** Top-left pixel of a size x size patch at a named position or "row,col"; `attack` names the option in errors. */
export function patchOrigin(attack: string, position: string, size: number, { height, width }: ImageShape): [number, number] {
  if (size > height || size > width) throw attackOptionError(`${attack}.size`, `at most the image side (${height}x${width})`, size);
  const named: Record<string, [number, number]> = {
    'top-left': [0, 0],
    'top-right': [0, width - size],
    'bottom-left': [height - size, 0],
    'bottom-right': [height - size, width - size],
  };
  if (named[position]) return named[position];
  const m = /^(\d+),(\d+)$/.exec(position);
  if (m) {
    const origin: [number, number] = [Number(m[1]), Number(m[2])];
    if (origin[0] + size <= height && origin[1] + size <= width) return origin;
  }
  throw attackOptionError(`${attack}.position`, `top-left, top-right, bottom-left, bottom-right or "row,col" with the patch inside the ${height}x${width} image`, position);
}
