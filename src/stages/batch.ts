import { usageError } from '../errors.js';
import { stage, type Stage } from '../pipeline/pipe.js';
import type { Batch, LabeledSample } from './batch-types.js';

/**
 * Packs samples into NHWC batches of `size` (the last one may be smaller).
 *
 *   pipe(labeled, batch({ size: 128 }))
 */
export function batch({ size }: { size: number }): Stage<LabeledSample, Batch> {
  if (!Number.isInteger(size) || size < 1) throw usageError(`batch(): options.size is expected to be a positive integer, but got ${size}`);
  return stage(`batch(${size})`, async function* (source) {
    let pending: LabeledSample[] = [];
    for await (const sample of source) {
      pending.push(sample);
      if (pending.length === size) {
        yield pack(pending);
        pending = [];
      }
    }
    if (pending.length > 0) yield pack(pending);
  });
}

export function pack(samples: LabeledSample[]): Batch {
  const { height, width, channels } = samples[0];
  const per = height * width * channels;
  const x = new Float32Array(samples.length * per);
  const labels = new Int32Array(samples.length);
  samples.forEach((s, i) => {
    if (s.pixels.length !== per) {
      throw new Error(`batch: sample ${s.key} has ${s.pixels.length} values, the batch expects ${per}`);
    }
    x.set(s.pixels, i * per);
    labels[i] = s.label;
  });
  return {
    keys: samples.map((s) => s.key),
    x,
    labels,
    shape: [samples.length, height, width, channels],
    adversarial: false,
  };
}
