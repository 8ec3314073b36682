import type { Corpus } from '../pipeline/corpus.js';
import { forEachInferenceBatch, type InferenceBatching } from '../pipeline/compute.js';
import type { ScoreStore } from '../pipeline/score-store.js';
import type { StopSignal } from '../pipeline/stop-signal.js';
import { argmax } from '../stages/score.js';
import { coverMask, neutralise, type InvertedTrigger } from './trigger-inversion.js';

/**
 * Finds the samples that carry a recovered trigger: the infected model puts them in the trigger's class, but
 * no longer once the trigger's area (grown by a pixel) is covered with the image's median colour (Neural Cleanse's detection, run on
 * the user's data). Returns each such key with the class the model predicts once the trigger is covered: the
 * label unlearning trains them with.
 */
export async function repairLabels(
  logitsOf: (x: Float32Array, shape: [number, number, number, number]) => Promise<Float32Array>,
  corpus: Corpus,
  trigger: Pick<InvertedTrigger, 'mask' | 'target'>,
  store: ScoreStore,
  batching: InferenceBatching,
  stop?: StopSignal,
): Promise<[string, number][]> {
  const k = store.numClasses;
  const suspects: [string, number][] = [];
  let cover: Float32Array | undefined;
  await forEachInferenceBatch(corpus.samples().output, batching, async (samples, x, shape) => {
    const per = shape[1] * shape[2] * shape[3];
    cover ??= coverMask(trigger.mask, shape[1], shape[2]);
    const covered = new Float32Array(x.length);
    samples.forEach((_, i) => neutralise(cover!, x.subarray(i * per, (i + 1) * per), shape[3], covered, i * per));
    const logits = await logitsOf(covered, shape);
    samples.forEach((s, i) => {
      if (store.pseudoLabel(s.key) !== trigger.target) return;
      const now = argmax(logits, i * k, k);
      if (now !== trigger.target) suspects.push([s.key, now]);
    });
  }, stop);
  return suspects;
}
