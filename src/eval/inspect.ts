import * as tf from '@tensorflow/tfjs';
import { chooseEps, probeEps, type ProbePoint } from '../defenses/probe.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';
import { probeTriggers, type TriggerProbe, type TriggerProbeOptions } from '../adversarial/trigger-probe.js';
import { probePerturbations, type UniversalProbe, type UniversalProbeOptions } from '../adversarial/universal-probe.js';

/**
 * A data-free check for a backdoor (DESIGN §2), by two probes: untargeted PGD examples of a backdoored model pile
 * up on its target class (the adversarial target concentration q: the largest share of one class among the
 * predictions PGD flipped, at the eps the purify probe would choose), which catches blended triggers; and masked
 * trigger inversion (adversarial/trigger-probe.ts), whose backdoor class needs an anomalously small mask, which
 * catches patch triggers that hide from PGD.
 */
export interface InspectResult {
  samples: number;
  points: ProbePoint[];
  eps: number;
  concentration: number;
  likelyTarget: number;
  /** Flipped predictions at that eps: q means little over a handful of them. */
  flips: number;
  /** Whether the PGD concentration signals a backdoor. */
  pgdSignal: boolean;
  /** Trigger inversion's per-class masks, its flagged class and recovered trigger (null when it was not run). */
  inversion: TriggerProbe | null;
  /** The universal additive probe's per-class ‖δ‖₂ and flagged perturbation (null when it was not run). */
  universal?: UniversalProbe | null;
  suspected: boolean;
  /** The likely target: inversion's flagged class, else the universal probe's, else PGD's concentration class. */
  target: number | null;
  threshold: number;
}

/** Fewer flips than this at the chosen eps and the concentration is not read as a signal. */
export const minFlipsForSignal = 20;

export function inspectModel(
  model: tf.LayersModel,
  samples: Sample[],
  opts: { epsGrid: number[]; minFlipRate: number; alphaRatio: number; steps: number; threshold: number; inversion: (TriggerProbeOptions & { enabled: boolean }) | null; universal?: (UniversalProbeOptions & { enabled: boolean }) | null },
): InspectResult {
  if (samples.length === 0) throw new Error('inspect: no samples to probe with');
  const b = pack(samples.map((s) => ({ ...s, label: 0 })));
  const pseudo = tf.tidy(() => (model.predict(tf.tensor4d(b.x, b.shape)) as tf.Tensor).argMax(-1).dataSync() as Int32Array);
  const points = probeEps(model, b.x, b.shape, pseudo, opts.epsGrid, opts);
  const { eps } = chooseEps(points, opts.minFlipRate);
  const at = points.find((p) => p.eps === eps)!;
  const flips = Math.round(at.flipRate * samples.length);
  const pgdSignal = flips >= minFlipsForSignal && at.concentration >= opts.threshold;
  const inversion = opts.inversion?.enabled ? probeTriggers(model, b.x, b.shape, opts.inversion) : null;
  const universal = opts.universal?.enabled ? probePerturbations(model, b.x, b.shape, opts.universal) : null;
  const recovered = inversion?.trigger?.target ?? universal?.perturbation?.target;
  return {
    samples: samples.length,
    points,
    eps,
    concentration: at.concentration,
    likelyTarget: at.concentrationClass,
    flips,
    pgdSignal,
    inversion,
    universal,
    suspected: pgdSignal || recovered !== undefined,
    target: recovered ?? (pgdSignal ? at.concentrationClass : null),
    threshold: opts.threshold,
  };
}
