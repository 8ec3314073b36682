import { z } from 'zod';
import { createRng } from '../pipeline/random.js';
import { loadPatternImage } from './pattern-image.js';
import { PatternTrigger } from './pattern-trigger.js';
import { opt, type Attack } from './trigger.js';

/**
 * Blend (Chen et al., "Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning", 2017).
 * Threat model: dirty-label; the whole image is blended with a pattern: x' = (1 - r)·x + r·p (pattern-trigger.ts).
 *
 * Options (defaults in config/attacks/blend.json):
 *  - ratio = 0.1: the blend ratio r, in (0, 1] (BackdoorBench uses 0.2 with a Hello Kitty image, PBE's code 0.1);
 *  - pattern = "noise": "noise" (seeded uniform noise) or an image file, resized to the input (bilinear) and
 *    converted to its channels;
 *  - seed = 0: seed of the noise pattern.
 *
 * Contract: HWC float32 in [0,1] in and out.
 *
 *   const trigger = triggerFor('blend', { ratio: 0.2, pattern: 'kitty.png' })({ height: 28, width: 28, channels: 1 });
 */
export interface BlendOptions {
  ratio: number;
  pattern: string;
  seed: number;
}

export const blend: Attack<BlendOptions> = {
  name: 'blend',
  paper: 'Chen et al., Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning, 2017',
  cleanLabel: false,
  options: z
    .object({
      ratio: z.number({ error: 'a number in (0, 1]' }).gt(0, { error: 'a number in (0, 1]' }).lte(1, { error: 'a number in (0, 1]' }),
      pattern: z.string({ error: '"noise" or an image file' }),
      seed: opt.seed(),
    })
    .strict(),
  build(o, shape) {
    const { height, width, channels } = shape;
    const mask = new Float32Array(height * width).fill(1);
    const pattern =
      o.pattern === 'noise'
        ? Float32Array.from({ length: height * width * channels }, createRng(o.seed))
        : loadPatternImage(o.pattern, height, width, channels, 'blend.pattern');
    return new PatternTrigger('blend', shape, mask, o.ratio, pattern);
  },
};
