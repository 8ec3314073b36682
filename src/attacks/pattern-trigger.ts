import { checkSize, type ImageShape, type Trigger } from './trigger.js';

/**
 * The pattern trigger: x' = (1 - w·m)·x + w·m·p, with mask m (per pixel, shared by channels), weight w and
 * pattern p (HWC, [0,1]). BadNets (a patch, w = 1 on the mask) and Blend (w = 0.1 everywhere) are both this
 * formula (BackdoorBox, core/attacks/BadNets.py); see badnets.ts and blend.ts for how each builds it.
 *
 * Contract: input and output pixels are HWC float32 in [0,1] of the shape the trigger was built for; the
 * input is not modified.
 */
export class PatternTrigger implements Trigger {
  readonly cleanLabel = false;
  readonly noiseRatio = 0;
  readonly negativeRatio = 0;
  readonly maxChange: number;
  readonly region: Uint8Array;

  constructor(
    readonly attack: string,
    readonly shape: ImageShape,
    /** height*width values in [0,1]. */
    readonly mask: Float32Array,
    readonly weight: number,
    /** height*width*channels values in [0,1]. */
    readonly pattern: Float32Array,
  ) {
    const pixels = shape.height * shape.width;
    if (mask.length !== pixels) throw new Error(`PatternTrigger: mask has ${mask.length} values, expected ${pixels}`);
    if (pattern.length !== pixels * shape.channels) {
      throw new Error(`PatternTrigger: pattern has ${pattern.length} values, expected ${pixels * shape.channels}`);
    }
    if (!(weight >= 0 && weight <= 1)) throw new Error(`PatternTrigger: weight must be in [0,1], got ${weight}`);
    this.maxChange = weight;
    this.region = Uint8Array.from(mask, (m) => (m > 0 ? 1 : 0));
  }

  apply(pixels: Float32Array): Float32Array {
    checkSize(this.attack, this.shape, pixels);
    const { channels } = this.shape;
    const out = new Float32Array(pixels.length);
    for (let i = 0; i < this.mask.length; i++) {
      const w = this.weight * this.mask[i];
      for (let c = 0; c < channels; c++) {
        const j = i * channels + c;
        out[j] = (1 - w) * pixels[j] + w * this.pattern[j];
      }
    }
    return out;
  }
}
