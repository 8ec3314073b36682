import * as tf from '@tensorflow/tfjs';
import { chooseEps, probeEps, type ProbePoint } from '../defenses/probe.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';

/**
 * A data-free check for a backdoor (DESIGN §2): untargeted PGD examples of a backdoored model pile up on its
 * target class, those of a clean model spread over the classes. The adversarial target concentration q is the
 * largest share of one class among the predictions PGD flipped, at the eps the purify probe would choose.
 */
export interface InspectResult {
  samples: number;
  points: ProbePoint[];
  eps: number;
  concentration: number;
  likelyTarget: number;
  /** Flipped predictions at that eps: q means little over a handful of them. */
  flips: number;
  suspected: boolean;
  threshold: number;
}

/** Fewer flips than this at the chosen eps and the concentration is not read as a signal. */
export const minFlipsForSignal = 20;

export function inspectModel(
  model: tf.LayersModel,
  samples: Sample[],
  opts: { epsGrid: number[]; minFlipRate: number; alphaRatio: number; steps: number; threshold: number },
): InspectResult {
  if (samples.length === 0) throw new Error('inspect: no samples to probe with');
  const b = pack(samples.map((s) => ({ ...s, label: 0 })));
  const pseudo = tf.tidy(() => (model.predict(tf.tensor4d(b.x, b.shape)) as tf.Tensor).argMax(-1).dataSync() as Int32Array);
  const points = probeEps(model, b.x, b.shape, pseudo, opts.epsGrid, opts);
  const { eps } = chooseEps(points, opts.minFlipRate);
  const at = points.find((p) => p.eps === eps)!;
  const flips = Math.round(at.flipRate * samples.length);
  return {
    samples: samples.length,
    points,
    eps,
    concentration: at.concentration,
    likelyTarget: at.concentrationClass,
    flips,
    suspected: flips >= minFlipsForSignal && at.concentration >= opts.threshold,
    threshold: opts.threshold,
  };
}
