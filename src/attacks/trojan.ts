import { z } from 'zod';
import { createRng } from '../pipeline/random.js';
import { patchOrigin } from './badnets.js';
import { loadPatternImage } from './pattern-image.js';
import { checkSize, opt, type Attack, type ImageShape, type Trigger } from './trigger.js';

/**
 * Trojan (Liu et al., "Trojaning Attack on Neural Networks", NDSS 2018), as BackdoorBench's TrojanNN evaluates
 * it: a watermark-style trigger, an irregular mask (BackdoorBench: an apple, resource/trojannn/apple4.png) filled
 * with a fixed pattern and added to the image, x' = clip(x + m·p, 0, 1) (attack/trojannn.py, TrojanTrigger).
 * Threat model: dirty-label. TrojanNN optimizes p inside the mask to excite chosen neurons of a given model; here
 * p is fixed (seeded, 1 - variation·u with u uniform in [0,1), the spread a PGD of radius 0.3 from a white mask
 * leaves in BackdoorBench), so the trigger does not depend on a model.
 *
 * Options (defaults in config/attacks/trojan.json):
 *  - mask = "apple": "apple" (an apple outline drawn here: a round body, a notch and a stem) or an image file whose
 *    non-black pixels form the mask (resized to size x size);
 *  - size = 10: side of the mask's square in pixels; position = "bottom-right" (as badnets.position);
 *  - variation = 0.3: spread of the pattern below white; seed = 0: the pattern's seed.
 *
 * Contract: HWC float32 in [0,1] in and out; only pixels under the mask change, and never downwards.
 *
 *   const trigger = triggerFor('trojan', { size: 12 })({ height: 28, width: 28, channels: 1 });
 */
export interface TrojanOptions {
  mask: string;
  size: number;
  position: string;
  variation: number;
  seed: number;
}

export const trojan: Attack<TrojanOptions> = {
  name: 'trojan',
  paper: 'Liu et al., Trojaning Attack on Neural Networks, NDSS 2018',
  cleanLabel: false,
  options: z
    .object({
      mask: z.string({ error: '"apple" or an image file' }),
      size: opt.int(1, 'a positive integer'),
      position: z.string({ error: 'a string' }),
      variation: opt.number(0, 1),
      seed: opt.seed(),
    })
    .strict(),
  build(o, shape) {
    const [row, col] = patchOrigin('trojan', o.position, o.size, shape);
    const local = o.mask === 'apple' ? appleMask(o.size) : fileMask(o.mask, o.size);
    const { width, channels } = shape;
    const addend = new Float32Array(shape.height * width * channels);
    const rng = createRng(o.seed);
    for (let i = 0; i < o.size; i++) {
      for (let j = 0; j < o.size; j++) {
        if (!local[i * o.size + j]) continue;
        const p = ((row + i) * width + col + j) * channels;
        for (let c = 0; c < channels; c++) addend[p + c] = 1 - o.variation * rng();
      }
    }
    return additiveTrigger('trojan', shape, addend);
  },
};

/** x' = clip(x + addend, 0, 1). */
function additiveTrigger(attack: string, shape: ImageShape, addend: Float32Array): Trigger {
  return {
    attack,
    shape,
    cleanLabel: false,
    noiseRatio: 0,
    negativeRatio: 0,
    maxChange: 1,
    region: Uint8Array.from({ length: shape.height * shape.width }, (_, p) => (addend[p * shape.channels] > 0 ? 1 : 0)),
    apply(pixels) {
      checkSize(attack, shape, pixels);
      return pixels.map((v, i) => Math.min(1, v + addend[i]));
    },
  };
}

/** An apple in a size x size square: a round body with a notch at the top and a stem. */
function appleMask(size: number): Uint8Array {
  const mask = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const [u, v] = [(j + 0.5) / size, (i + 0.5) / size];
      const body = ((u - 0.5) / 0.45) ** 2 + ((v - 0.6) / 0.4) ** 2 <= 1;
      const notch = (u - 0.5) ** 2 + (v - 0.2) ** 2 < 0.12 ** 2;
      const stem = Math.abs(u - 0.55) < 0.07 && v < 0.3;
      mask[i * size + j] = (body && !notch) || stem ? 1 : 0;
    }
  }
  return mask;
}

function fileMask(file: string, size: number): Uint8Array {
  return Uint8Array.from(loadPatternImage(file, size, size, 1, 'trojan.mask'), (v) => (v > 0.5 / 255 ? 1 : 0));
}
