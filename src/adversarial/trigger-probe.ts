import type * as tf from '@tensorflow/tfjs';
import { anomalyIndices, classesOf, invertTrigger, type InversionOptions, type InvertedTrigger } from './trigger-inversion.js';

/** One class's inverted trigger, without its pixels. */
export interface ClassInversion {
  target: number;
  maskL1: number;
  success: number;
  anomaly: number;
}

export interface TriggerProbe {
  classes: ClassInversion[];
  /** The recovered trigger of the flagged class; null when no class stands out. */
  trigger: InvertedTrigger | null;
  /** The recovered triggers of classes that tie with the flagged one (`tieRatio`), smallest first. */
  tied: InvertedTrigger[];
  reason: string;
  seconds: number;
}

export interface TriggerProbeOptions extends InversionOptions {
  /** A class is flagged when its anomaly index reaches this (Neural Cleanse: 2)... */
  anomalyThreshold: number;
  /** ...or its mask is this many times smaller than every other class's (the gap to the runner-up)... */
  minGap: number;
  /** ...or both its anomaly index and its gap reach these lower bars (moderate evidence on both measures)... */
  jointAnomalyThreshold: number;
  jointMinGap: number;
  /** ...and its trigger sends at least this share of the other images to it. */
  minSuccess: number;
  /** Optimisation steps that refine the flagged class's trigger (the per-class search uses `steps`). */
  refineSteps: number;
  /**
   * A class whose mask is at most this many times the flagged one's, with an anomaly index of its own at or above
   * `anomalyThreshold` and the same success, ties with it: it is refined and unlearned too (1: only an equal mask ties).
   */
  tieRatio: number;
}

/**
 * Inverts a trigger for every class on the probe images and flags the class with the smallest mask when it is an
 * outlier by size: Neural Cleanse's anomaly index (MAD) at or above its threshold, or a mask `minGap` times
 * smaller than the runner-up's, or both measures past lower joint bars. With ten classes the MAD is noisy:
 * measured on Fashion-MNIST cnn-small (50 steps), clean models' smallest masks scored anomaly 1.66 and 1.91 at
 * gaps 1.13 and 1.04, two blended backdoors 2.03 and 2.04, while the gap was 1.85–4.75 for BadNets and the
 * Blends; a Trojan watermark (an irregular 10×10 mask) scored 1.76 and 1.44, caught only by the joint bars
 * (1.5 and 1.3). Then it refines that class's trigger with more steps: a data-driven answer to "is there a backdoor, towards which
 * class, and what does its trigger look like?" that does not depend on the trigger's shape. A class whose mask ties
 * with the flagged one (within `tieRatio`) and is an outlier by the anomaly index on its own is refined too: on a
 * label-consistent model the target (0) and a class with a natural small mask (8, a bag) tied at 60.5 pixels
 * (anomaly 2.84 each), and the smaller by a hair was the wrong one.
 */
export function probeTriggers(model: tf.LayersModel, x: Float32Array, shape: [number, number, number, number], opts: TriggerProbeOptions): TriggerProbe {
  const started = performance.now();
  const numClasses = model.outputs[0].shape[1] as number;
  const triggers: InvertedTrigger[] = [];
  const predicted = classesOf(model, x, shape);
  for (let t = 0; t < numClasses; t++) triggers.push(invertTrigger(model, x, shape, t, opts, predicted));
  const anomaly = anomalyIndices(triggers.map((t) => t.maskL1));
  const classes = triggers.map(({ target, maskL1, success }, i) => ({ target, maskL1, success, anomaly: anomaly[i] }));
  const { flagged, tied, reason } = flagClass(classes, opts);
  const refine = (c: ClassInversion) => invertTrigger(model, x, shape, c.target, { ...opts, steps: opts.refineSteps }, predicted);
  const trigger = flagged ? refine(flagged) : null;
  const tiedTriggers = tied.map(refine);
  const refined = [trigger, ...tiedTriggers]
    .flatMap((t) => (t ? [`class ${t.target} refined over ${opts.refineSteps} steps to ${t.maskL1.toFixed(1)} pixels, success ${(t.success * 100).toFixed(0)}%`] : []))
    .join('; ');
  return { classes, trigger, tied: tiedTriggers, reason: refined ? `${reason}; ${refined}` : reason, seconds: (performance.now() - started) / 1000 };
}

/** How flagClass names the size it compares, in its reason. */
export interface SizeWords {
  /** What is measured ("mask", "perturbation"). */
  thing: string;
  /** The size per class in the table ("mask L1"). */
  size: string;
  /** The flagged class's size with its unit. */
  format: (size: number) => string;
}

const maskWords: SizeWords = { thing: 'mask', size: 'mask L1', format: (v) => `a trigger of ${v.toFixed(1)} pixels` };

/** The decision of probeTriggers on the per-class results, and why, in words (also the universal probe's, on ‖δ‖₂). */
export function flagClass<C extends ClassInversion>(
  classes: C[],
  opts: Pick<TriggerProbeOptions, 'anomalyThreshold' | 'minGap' | 'jointAnomalyThreshold' | 'jointMinGap' | 'minSuccess'> & { tieRatio?: number },
  words: SizeWords = maskWords,
): { flagged: C | undefined; tied: C[]; reason: string } {
  const [smallest, runnerUp] = [...classes].sort((a, b) => a.maskL1 - b.maskL1);
  const gap = runnerUp && smallest.maskL1 > 0 ? runnerUp.maskL1 / smallest.maskL1 : 0;
  const joint = smallest && smallest.anomaly >= opts.jointAnomalyThreshold && gap >= opts.jointMinGap;
  const outlier = smallest && (smallest.anomaly >= opts.anomalyThreshold || gap >= opts.minGap || joint);
  const flagged = outlier && smallest.success >= opts.minSuccess ? smallest : undefined;
  const tieRatio = opts.tieRatio ?? 1;
  const tied = flagged
    ? classes.filter((c) => c !== flagged && c.maskL1 <= flagged.maskL1 * tieRatio && c.anomaly >= opts.anomalyThreshold && c.success >= opts.minSuccess).sort((a, b) => a.maskL1 - b.maskL1)
    : [];
  const digits = words === maskWords ? 1 : 2;
  const table = classes.map((c) => `${c.target}: ${c.maskL1.toFixed(digits)}`).join(', ');
  const evidence = smallest
    ? `class ${smallest.target}'s ${words.thing}: anomaly index ${smallest.anomaly.toFixed(2)} (flag at ${opts.anomalyThreshold}), ${gap.toFixed(2)}x smaller than the next class's (flag at ${opts.minGap}; both at ${opts.jointAnomalyThreshold} and ${opts.jointMinGap}), success ${(smallest.success * 100).toFixed(0)}%`
    : 'no class';
  const ties = tied.length
    ? `; class${tied.length > 1 ? 'es' : ''} ${tied.map((c) => c.target).join(', ')} tie${tied.length > 1 ? '' : 's'} with it (${words.size} within ${tieRatio}x, anomaly index at least ${opts.anomalyThreshold}): unlearned too`
    : '';
  const reason = flagged
    ? `class ${flagged.target} needs ${words.format(flagged.maskL1)} (${evidence})${ties}; ${words.size} per class ${table}`
    : `no class's trigger is an outlier (${evidence}); ${words.size} per class ${table}`;
  return { flagged, tied, reason };
}
