import { z } from 'zod';
import { checkSize, opt, type Attack } from './trigger.js';

/**
 * SIG (Barni et al., "A New Backdoor Attack in CNNs by Training Set Corruption Without Label Poisoning", 2019).
 * Threat model: clean-label; a horizontal sinusoid is added to target-class training images, whose labels stay:
 * x'[i, j, c] = clip(x[i, j, c] + delta/255 · sin(2π·j·f / W), 0, 1) (BackdoorBench, utils/bd_img_transform/sig.py).
 *
 * Options (defaults in config/attacks/sig.json; BackdoorBench: delta 40, frequency 6):
 *  - delta = 60: amplitude in 8-bit levels (0–255), as the papers state it (40 missed 80% ASR on Fashion-MNIST);
 *  - frequency = 6: periods across the image's width.
 *
 * Contract: HWC float32 in [0,1] in and out; every pixel moves by at most delta/255.
 *
 *   const trigger = triggerFor('sig', { delta: 20 })({ height: 28, width: 28, channels: 1 });
 */
export interface SigOptions {
  delta: number;
  frequency: number;
}

export const sig: Attack<SigOptions> = {
  name: 'sig',
  paper: 'Barni et al., A New Backdoor Attack in CNNs by Training Set Corruption Without Label Poisoning, 2019',
  cleanLabel: true,
  options: z.object({ delta: opt.number(0, 255), frequency: opt.number(0, 1e6, 'a non-negative number') }).strict(),
  build(o, shape) {
    const { width, channels } = shape;
    const wave = Float32Array.from({ length: width }, (_, j) => (o.delta / 255) * Math.sin((2 * Math.PI * j * o.frequency) / width));
    return {
      attack: 'sig',
      shape,
      cleanLabel: true,
      noiseRatio: 0,
      negativeRatio: 0,
      maxChange: o.delta / 255,
      apply(pixels) {
        checkSize('sig', shape, pixels);
        return pixels.map((v, k) => Math.min(1, Math.max(0, v + wave[Math.floor(k / channels) % width])));
      },
    };
  },
};
