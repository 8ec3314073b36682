import * as tf from '@tensorflow/tfjs';
import { poisonedLabel, type PoisonMode } from '../attacks/poison.js';
import type { Trigger } from '../attacks/trigger.js';
import type { Sample } from '../sources/types.js';
import { argmax, predictLogits } from '../stages/score.js';
import { inputError } from '../errors.js';
import { inferenceBatchSize, type InferenceBatching } from '../pipeline/compute.js';
import { defaultInferenceBatching } from '../config/load.js';

/** A labelled evaluation set held in memory (a test split: thousands of samples, not the training corpus). */
export interface EvalSet {
  samples: Sample[];
}

export async function loadEvalSet(samples: AsyncIterable<Sample>, limit = Infinity): Promise<EvalSet> {
  const kept: Sample[] = [];
  for await (const s of samples) {
    if (s.label === undefined) continue;
    kept.push(s);
    if (kept.length >= limit) break;
  }
  return { samples: kept };
}

/** Predicted classes for pixel arrays of one shape, in batches (by default config/defaults.json's `inference`). */
export function predictClasses(model: tf.LayersModel, images: Float32Array[], shape: [number, number, number], batching: InferenceBatching = defaultInferenceBatching): Int32Array {
  const out = new Int32Array(images.length);
  const per = shape[0] * shape[1] * shape[2];
  const batchSize = inferenceBatchSize(per, batching);
  for (let start = 0; start < images.length; start += batchSize) {
    const n = Math.min(batchSize, images.length - start);
    const x = new Float32Array(n * per);
    for (let i = 0; i < n; i++) x.set(images[start + i], i * per);
    const logits = predictLogits(model, x, [n, ...shape]);
    const k = logits.length / n;
    for (let i = 0; i < n; i++) out[start + i] = argmax(logits, i * k, k);
  }
  return out;
}

export interface AttackEval {
  trigger: Trigger;
  target: number;
  /** all2one (default): ASR over samples not of the target class; all2all: over all, each aimed at (y + 1) mod K. */
  mode?: PoisonMode;
}

export interface EvalResult {
  /** Clean accuracy on the set. */
  acc: number;
  samples: number;
  /**
   * Attack success rate: share of triggered samples of a class other than the target that the model puts in the
   * target (all2all: share of all triggered samples the model puts in (y + 1) mod K).
   */
  asr?: number;
  asrSamples?: number;
}

export function evaluate(model: tf.LayersModel, set: EvalSet, attack?: AttackEval): EvalResult {
  if (set.samples.length === 0) throw inputError({ url: 'evaluation data' }, 'no usable labelled samples (every one was skipped as bad, or none has a label: see bad-samples.csv)');
  const { height, width, channels } = set.samples[0];
  const shape: [number, number, number] = [height, width, channels];
  const predicted = predictClasses(model, set.samples.map((s) => s.pixels), shape);
  const correct = set.samples.reduce((n, s, i) => n + (predicted[i] === s.label ? 1 : 0), 0);
  const result: EvalResult = { acc: correct / set.samples.length, samples: set.samples.length };
  if (attack) {
    const numClasses = model.outputs[0].shape[1] as number;
    const aim = (y: number) => poisonedLabel(y, { target: attack.target, mode: attack.mode, numClasses });
    const victims = attack.mode === 'all2all' ? set.samples : set.samples.filter((s) => s.label !== attack.target);
    const triggered = predictClasses(model, victims.map((s) => attack.trigger.apply(s.pixels)), shape);
    const hits = triggered.reduce((n, p, i) => n + (p === aim(victims[i].label!) ? 1 : 0), 0);
    result.asr = victims.length === 0 ? 0 : hits / victims.length;
    result.asrSamples = victims.length;
  }
  return result;
}
