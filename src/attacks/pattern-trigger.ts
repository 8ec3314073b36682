/**
 * The pattern trigger: x' = (1 - w·m)·x + w·m·p, with mask m (per pixel, shared by channels), weight w and
 * pattern p (HWC, [0,1]). BadNets (a patch, w = 1 on the mask) and Blend (w = 0.1 everywhere) are both this
 * formula (BackdoorBox, core/attacks/BadNets.py); see badnets.ts and blend.ts for how each builds it.
 *
 * Contract: input and output pixels are HWC float32 in [0,1] of the shape the trigger was built for; the
 * input is not modified.
 */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export class PatternTrigger {
  constructor(
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
  }

  apply(pixels: Float32Array): Float32Array {
    const { channels } = this.shape;
    if (pixels.length !== this.pattern.length) {
      throw new Error(`PatternTrigger.apply: image has ${pixels.length} values, trigger expects ${this.pattern.length}`);
    }
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

/** Options every trigger builder understands; each uses the ones that concern it. */
export interface TriggerOptions {
  patchSize?: number;
  patchPosition?: string;
  blendRatio?: number;
  patternFile?: string;
  patternSeed?: number;
}

/** Builds the trigger for one image shape. */
export type TriggerBuilder = (shape: ImageShape) => PatternTrigger;
