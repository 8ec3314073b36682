import type * as tf from '@tensorflow/tfjs';
import { anomalyIndices, invertTrigger, type InversionOptions, type InvertedTrigger } from './trigger-inversion.js';

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
  reason: string;
  seconds: number;
}

export interface TriggerProbeOptions extends InversionOptions {
  /** A class is flagged when its anomaly index reaches this (Neural Cleanse: 2)... */
  anomalyThreshold: number;
  /** ...and its trigger sends at least this share of the other images to it. */
  minSuccess: number;
  /** Optimisation steps that refine the flagged class's trigger (the per-class search uses `steps`). */
  refineSteps: number;
}

/**
 * Inverts a trigger for every class on the probe images and flags the class whose mask is an outlier by size
 * (the most anomalous one above the threshold), then refines that class's trigger with more steps: a data-driven answer to "is there a backdoor, towards which
 * class, and what does its trigger look like?" that does not depend on the trigger's shape.
 */
export function probeTriggers(model: tf.LayersModel, x: Float32Array, shape: [number, number, number, number], opts: TriggerProbeOptions): TriggerProbe {
  const started = performance.now();
  const numClasses = model.outputs[0].shape[1] as number;
  const triggers: InvertedTrigger[] = [];
  for (let t = 0; t < numClasses; t++) triggers.push(invertTrigger(model, x, shape, t, opts));
  const anomaly = anomalyIndices(triggers.map((t) => t.maskL1));
  const classes = triggers.map(({ target, maskL1, success }, i) => ({ target, maskL1, success, anomaly: anomaly[i] }));
  const candidates = classes.filter((c) => c.anomaly >= opts.anomalyThreshold && c.success >= opts.minSuccess).sort((a, b) => b.anomaly - a.anomaly);
  const flagged = candidates[0];
  const table = classes.map((c) => `${c.target}: ${c.maskL1.toFixed(1)}`).join(', ');
  const reason = flagged
    ? `class ${flagged.target} needs a trigger of ${flagged.maskL1.toFixed(1)} pixels (anomaly index ${flagged.anomaly.toFixed(2)} >= ${opts.anomalyThreshold}, success ${(flagged.success * 100).toFixed(0)}%); mask L1 per class ${table}`
    : `no class's trigger is an outlier (largest anomaly index ${Math.max(...anomaly).toFixed(2)} < ${opts.anomalyThreshold} or too weak); mask L1 per class ${table}`;
  const trigger = flagged ? invertTrigger(model, x, shape, flagged.target, { ...opts, steps: opts.refineSteps }) : null;
  return { classes, trigger, reason, seconds: (performance.now() - started) / 1000 };
}
