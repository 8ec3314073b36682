import { z } from 'zod';
import type { ImageShape } from '../sources/types.js';

export type { ImageShape };

/**
 * A backdoor trigger for one image shape. Every image in and out is HWC float32 in [0,1], of `shape`; an input
 * is never modified. Outputs are rounded to 8-bit levels, as the PNG shards `pbe poison` writes hold them, so
 * that an image triggered for evaluation equals the one a poisoned shard holds.
 */
export interface Trigger {
  readonly attack: string;
  readonly shape: ImageShape;
  /** Clean-label attacks poison only target-class samples and keep every label. */
  readonly cleanLabel: boolean;
  /** The triggered image: what a poisoned training sample holds and what eval measures ASR with. */
  apply(pixels: Float32Array): Float32Array;
  /** Train-time poisoning where it differs from `apply` (label-consistent: adversarially perturbed first). */
  poison?(pixels: Float32Array, label: number): Promise<Float32Array>;
  /**
   * The attack's noise mode (WaNet): a share of samples gets a nearby but different change and keeps its label,
   * so that the model learns the exact trigger only. `rng` is seeded by the sample.
   */
  noise?(pixels: Float32Array, rng: () => number): Float32Array;
  /** A share of all samples (relative to the poisoning rate) that get `noise`; 0 without a noise mode. */
  readonly noiseRatio: number;
  /**
   * The attack's negative samples (BppAttack), made in per-batch training only (stages/poison-batch.ts): `pixels`
   * changed by the trigger's change of another image, `donor`, and trained with its own label, so that the model
   * learns the trigger's change of the image itself, not any change of its kind.
   */
  negative?(pixels: Float32Array, donor: Float32Array): Float32Array;
  /** A share of each batch made negative samples; 0 without them. */
  readonly negativeRatio: number;
  /** The stated bound of `apply`: no value moves by more than this (before 8-bit rounding). */
  readonly maxChange: number;
  /** height*width flags of the pixels `apply` may change; absent: any pixel. */
  readonly region?: Uint8Array;
}

/**
 * One attack of the registry: its paper, whether it is clean-label, its options' schema (defaults live in
 * config/attacks/<name>.json) and how it builds a trigger for an image shape.
 */
export interface Attack<O = Record<string, unknown>> {
  readonly name: string;
  readonly paper: string;
  readonly cleanLabel: boolean;
  /** Every option, each with a message that says what it expects (see attacks/options.ts). */
  readonly options: z.ZodType<O>;
  build(options: O, shape: ImageShape): Trigger;
}

/** Rounds to the 8-bit levels a PNG holds and clamps to [0,1], in place. */
export function quantize(pixels: Float32Array): Float32Array {
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    pixels[i] = v > 0 ? (v < 1 ? Math.round(v * 255) / 255 : 1) : 0;
  }
  return pixels;
}

/** Checks that an image has the trigger's size; names the attack and both sizes. */
export function checkSize(attack: string, shape: ImageShape, pixels: Float32Array): void {
  const expected = shape.height * shape.width * shape.channels;
  if (pixels.length !== expected) {
    throw new Error(`${attack} trigger: the image has ${pixels.length} values, the trigger expects ${expected} (${shape.height}x${shape.width}x${shape.channels})`);
  }
}

/** Schema helpers whose messages read "is expected to be <what>". */
export const opt = {
  int: (min: number, what = `an integer >= ${min}`) => z.number({ error: what }).int({ error: what }).min(min, { error: what }),
  number: (min: number, max: number, what = `a number in [${min}, ${max}]`) => z.number({ error: what }).min(min, { error: what }).max(max, { error: what }),
  seed: () => z.number({ error: 'an integer' }).int({ error: 'an integer' }),
  bool: () => z.boolean({ error: 'true or false' }),
};
