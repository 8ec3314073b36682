import type * as tf from '@tensorflow/tfjs';
import { anomalyIndices, classesOf } from './trigger-inversion.js';
import { flagClass, type ClassInversion, type TriggerProbeOptions } from './trigger-probe.js';
import { invertPerturbation, type InvertedPerturbation, type PerturbationOptions } from './universal-inversion.js';

/** One class's universal perturbation, without its pixels (`maskL1` holds ‖δ‖₂, so flagClass reads it as the size). */
export interface ClassPerturbation extends ClassInversion {
  norm: number;
}

export interface UniversalProbe {
  classes: ClassPerturbation[];
  /** The refined perturbation of the flagged class; null when no class stands out. */
  perturbation: InvertedPerturbation | null;
  /** Every class's perturbation from the search (for `universal.unlearn: "all"`). */
  perturbations: InvertedPerturbation[];
  reason: string;
  seconds: number;
}

export type UniversalProbeOptions = PerturbationOptions & Pick<TriggerProbeOptions, 'anomalyThreshold' | 'minGap' | 'jointAnomalyThreshold' | 'jointMinGap' | 'minSuccess' | 'refineSteps'>;

/**
 * Finds, for every class, the smallest universal additive perturbation δ that sends the probe images to it
 * (adversarial/universal-inversion.ts), and flags the class whose ‖δ‖₂ is an outlier by the same rule as masked
 * inversion (flagClass: anomaly index or gap to the runner-up, and success). A trigger added over the whole image
 * (SIG's sinusoid, a blend) needs a large mask but a small δ. Measured on 20k Fashion-MNIST cnn-small, 512 images,
 * 100 steps, λ 0.5 (bench/results/sig-probe.md): BadNets anomaly 4.11, gap 1.69; Blend 2.59, 3.93; a clean model's
 * smallest 1.85, 1.06; SIG Δ=40 (ASR 65%) 1.41, 1.06 and SIG Δ=60 (ASR 87%) 0.80, 1.03 (class 8 smallest): SIG is
 * no outlier there, since universal perturbations to T-shirt, shirt and bag are about as cheap on a clean model.
 * It flags a dirty-label additive sinusoid on synthetic squares (test/adversarial/universal-probe.test.ts). Then it
 * refines the flagged class's δ with `refineSteps`. Cost: ~20 s alone, ~60 s beside a benchmark on 2 cores.
 */
export function probePerturbations(model: tf.LayersModel, x: Float32Array, shape: [number, number, number, number], opts: UniversalProbeOptions): UniversalProbe {
  const started = performance.now();
  const numClasses = model.outputs[0].shape[1] as number;
  const predicted = classesOf(model, x, shape);
  const found: InvertedPerturbation[] = [];
  for (let t = 0; t < numClasses; t++) found.push(invertPerturbation(model, x, shape, t, opts, predicted));
  const anomaly = anomalyIndices(found.map((p) => p.norm));
  const classes = found.map(({ target, norm, success }, i) => ({ target, norm, maskL1: norm, success, anomaly: anomaly[i] }));
  const { flagged, reason } = flagClass(classes, opts, { thing: 'perturbation', size: '‖δ‖₂', format: (v) => `a universal perturbation of L2 norm ${v.toFixed(2)}` });
  const perturbation = flagged ? invertPerturbation(model, x, shape, flagged.target, { ...opts, steps: opts.refineSteps }, predicted) : null;
  const refined = perturbation ? `; refined over ${opts.refineSteps} steps to ‖δ‖₂ ${perturbation.norm.toFixed(2)}, success ${(perturbation.success * 100).toFixed(0)}%` : '';
  return { classes, perturbation, perturbations: found, reason: reason + refined, seconds: (performance.now() - started) / 1000 };
}
