import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../sources/types.js';
import { pgdExamples } from '../stages/pgd.js';

/** What PGD at one eps does to a model on a probe set. */
export interface ProbePoint {
  eps: number;
  /** Share of probe samples whose prediction moves away from the label. */
  flipRate: number;
  /** Largest share of one class among the flipped predictions (the adversarial target concentration q). */
  concentration: number;
  concentrationClass: number;
  /** Flipped predictions per class (the adversarial class), the counts q is computed from. */
  flippedTo: number[];
}

/**
 * The probe images, copied as they arrive into one NHWC buffer with room for `capacity`: the samples of a pass
 * are views on the decode pool's batch buffers, and keeping them would keep those whole buffers alive (at
 * 224x224x3 a probe of 512 drawn from ~1,000 samples held 16 buffers of 64 images: 616 MB, twice its own size).
 */
export class ProbeImages {
  readonly keys: string[] = [];
  /** Each image's given label, -1 where it has none. */
  readonly given: number[] = [];
  private buffer = new Float32Array(0);
  private dims: [number, number, number] = [0, 0, 0];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.keys.length;
  }

  add(s: Sample): void {
    const [h, w, c] = this.dims;
    if (this.size === 0) {
      this.dims = [s.height, s.width, s.channels];
      this.buffer = new Float32Array(this.capacity * s.pixels.length);
    } else if (s.height !== h || s.width !== w || s.channels !== c) {
      throw new Error(`probe: sample ${s.key} is ${s.height}x${s.width}x${s.channels}, the probe's images ${h}x${w}x${c}`);
    }
    if (this.size === this.capacity) throw new Error(`probe: room for ${this.capacity} images, got one more (${s.key})`);
    this.buffer.set(s.pixels, this.size * s.pixels.length);
    this.keys.push(s.key);
    this.given.push(s.label ?? -1);
  }

  /** The images as one NHWC batch: a view on the buffer, and its shape. */
  batch(): { x: Float32Array; shape: [number, number, number, number] } {
    const [h, w, c] = this.dims;
    return { x: this.buffer.subarray(0, this.size * h * w * c), shape: [this.size, h, w, c] };
  }
}

/**
 * Probe images attacked at once: at most 32, and at most PROBE_PIXELS pixels in all. PGD keeps a whole backward
 * pass per image: measured 141 MiB per 224x224 image for a mobilenet-v2 of width 0.35, so 32 of them at once
 * (4.4 GiB) exhausted a wasm instance's memory. 32 images up to 55x55, 1 at 224x224.
 */
export const PROBE_CHUNK = 32;
export const PROBE_PIXELS = 100_000;
export const probeChunk = (height: number, width: number) => Math.max(1, Math.min(PROBE_CHUNK, Math.floor(PROBE_PIXELS / (height * width))));

/**
 * Measures the PGD flip rate and target concentration of `model` at each eps, on probe images x (NHWC) with
 * labels (the reference model's pseudo-labels), probeChunk(h, w) images at a time (PGD without a random start attacks
 * each image on its own, so the chunks give what one batch would, in bounded memory).
 */
export function probeEps(
  model: tf.LayersModel,
  x: Float32Array,
  shape: [number, number, number, number],
  labels: Int32Array,
  epsGrid: number[],
  pgd: { alphaRatio: number; steps: number },
): ProbePoint[] {
  const numClasses = model.outputs[0].shape[1] as number;
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const chunk = probeChunk(h, w);
  return epsGrid.map((eps) => {
    const predicted = new Int32Array(n);
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      predicted.set(tf.tidy(() => {
        const adv = pgdExamples(model, tf.tensor4d(x.subarray(start * per, (start + m) * per), [m, h, w, c]), tf.tensor1d(labels.subarray(start, start + m), 'int32'), {
          eps,
          alpha: eps * pgd.alphaRatio,
          steps: pgd.steps,
          randomStart: false,
        });
        return (model.predict(adv) as tf.Tensor).argMax(-1).dataSync() as Int32Array;
      }), start);
    }
    const counts = new Int32Array(numClasses);
    let flipped = 0;
    predicted.forEach((p, i) => {
      if (p !== labels[i]) {
        flipped++;
        counts[p]++;
      }
    });
    const top = counts.indexOf(Math.max(...counts));
    return {
      eps,
      flipRate: flipped / labels.length,
      concentration: flipped === 0 ? 0 : counts[top] / flipped,
      concentrationClass: top,
      flippedTo: Array.from(counts),
    };
  });
}

/**
 * The eps rule used when no preset gives one: the smallest eps of the grid at which PGD flips at least
 * `minFlipRate` of the predictions, the regime the authors' defaults produce on the CIFAR-10 ResNets they were
 * tuned for. When no eps reaches it, the largest of the grid.
 */
export function chooseEps(points: ProbePoint[], minFlipRate: number): { eps: number; reason: string } {
  const sorted = [...points].sort((a, b) => a.eps - b.eps);
  const hit = sorted.find((p) => p.flipRate >= minFlipRate);
  const chosen = hit ?? sorted[sorted.length - 1];
  const table = sorted.map((p) => `${p.eps}: ${(p.flipRate * 100).toFixed(0)}%`).join(', ');
  const reason = hit
    ? `smallest eps flipping >= ${(minFlipRate * 100).toFixed(0)}% of predictions (flip rates ${table})`
    : `no eps flips ${(minFlipRate * 100).toFixed(0)}% of predictions; using the largest (flip rates ${table})`;
  return { eps: chosen.eps, reason };
}
