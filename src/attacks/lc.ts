import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { attackOptionError } from '../errors.js';
import { loadModel } from '../models/io.js';
import { pgdExamples } from '../stages/pgd.js';
import { checkSize, opt, type Attack, type ImageShape } from './trigger.js';

/**
 * Label-consistent backdoor (Turner et al., "Label-Consistent Backdoor Attacks", 2019). Threat model: clean-label;
 * target-class training images are first made hard to classify, an untargeted L∞ PGD against their true label
 * on a model trained on clean data (`pbe train`), then get a 3x3 checkerboard at corners; labels stay. At test
 * time the trigger alone is added. The corner patterns are MadryLab's (BackdoorBench's
 * utils/bd_img_transform/lc.py): x' = clip(x + amplitude·v, 0, 1) with v = ±1 on the patterns' pixels.
 *
 * Options (defaults in config/attacks/lc.json):
 *  - model = null: the clean model's directory; needed only to poison (eval and purify use the trigger alone);
 *  - eps = 16: PGD radius in 8-bit levels; steps = 10, each of 2.5·eps/steps (Madry et al.'s rule);
 *  - corners = "all": "all" four corners or "bottom-right" only; amplitude = 1 (1: black/white stamps; smaller
 *    values give Turner et al.'s reduced-amplitude trigger).
 *
 * Contract: HWC float32 in [0,1] in and out; `apply` changes at most the 3x3 corner patches, `poison` also moves
 * every pixel by at most eps/255 before that.
 *
 *   const trigger = triggerFor('lc', { model: 'runs/clean-model' })({ height: 28, width: 28, channels: 1 });
 */
export interface LcOptions {
  model: string | null;
  eps: number;
  steps: number;
  corners: 'all' | 'bottom-right';
  amplitude: number;
}

// v at distance (dr, dc) from a corner: rows counted away from the top or the bottom edge.
const TOP = [[1, -1, -1], [-1, 1, -1], [1, -1, 1]];
const BOTTOM = [[1, -1, 1], [-1, 1, -1], [1, -1, -1]];

export const lc: Attack<LcOptions> = {
  name: 'lc',
  paper: 'Turner et al., Label-Consistent Backdoor Attacks, 2019',
  cleanLabel: true,
  options: z
    .object({
      model: z.string({ error: 'a model directory or null' }).nullable(),
      eps: opt.number(0, 255),
      steps: opt.int(1, 'a positive integer'),
      corners: z.enum(['all', 'bottom-right'], { error: '"all" or "bottom-right"' }),
      amplitude: opt.number(0, 1),
    })
    .strict(),
  build(o, shape) {
    const addend = cornerPattern(shape, o.corners, o.amplitude);
    const stamp = (pixels: Float32Array) => pixels.map((v, i) => Math.min(1, Math.max(0, v + addend[i])));
    let model: Promise<tf.LayersModel> | undefined;
    return {
      attack: 'lc',
      shape,
      cleanLabel: true,
      noiseRatio: 0,
      negativeRatio: 0,
      maxChange: o.amplitude,
      region: Uint8Array.from({ length: shape.height * shape.width }, (_, p) => (addend[p * shape.channels] !== 0 ? 1 : 0)),
      apply(pixels) {
        checkSize('lc', shape, pixels);
        return stamp(pixels);
      },
      async poison(pixels, label) {
        checkSize('lc', shape, pixels);
        if (o.model === null) throw attackOptionError('lc.model', 'the directory of a model trained on clean data (pbe train) to poison with', null);
        model ??= loadModel(o.model);
        const m = await model;
        const eps = o.eps / 255;
        const adversarial = tf.tidy(() => {
          const x = tf.tensor4d(pixels, [1, shape.height, shape.width, shape.channels]);
          const adv = pgdExamples(m, x, tf.tensor1d([label], 'int32'), { eps, alpha: (2.5 * eps) / o.steps, steps: o.steps, randomStart: false });
          return adv.dataSync() as Float32Array;
        });
        return stamp(adversarial);
      },
    };
  },
};

function cornerPattern({ height, width, channels }: ImageShape, corners: LcOptions['corners'], amplitude: number): Float32Array {
  const addend = new Float32Array(height * width * channels);
  const all = corners === 'all';
  const place = (pattern: number[][], fromBottom: boolean, fromRight: boolean) => {
    for (let dr = 0; dr < 3; dr++) {
      for (let dc = 0; dc < 3; dc++) {
        const [r, c] = [fromBottom ? height - 1 - dr : dr, fromRight ? width - 1 - dc : dc];
        if (r < 0 || c < 0 || r >= height || c >= width) continue;
        addend.fill(amplitude * pattern[dr][dc], (r * width + c) * channels, (r * width + c + 1) * channels);
      }
    }
  };
  if (all) {
    place(TOP, false, false);
    place(TOP, false, true);
    place(BOTTOM, true, false);
  }
  place(BOTTOM, true, true);
  return addend;
}
