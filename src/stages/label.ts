import { stage, type Stage } from '../pipeline/pipe.js';
import type { Sample } from '../sources/types.js';
import type { LabeledSample } from './batch-types.js';

export type LabelSource = 'auto' | 'pseudo' | 'given';

/**
 * The pseudo-label filter: gives each sample the label it is trained with: the reference model's prediction
 * (`pseudo`, from `pseudoLabel(key)`), the label in the shard (`given`), or the shard's label where the sample has
 * one and the prediction where not (`auto`). A sample with no usable label is passed to `onMissing` and left out.
 *
 *   pipe(decoded, assignLabels({ source: 'pseudo', pseudoLabel: (k) => store.pseudo(k), onMissing }))
 */
export function assignLabels(opts: {
  source: LabelSource;
  pseudoLabel: (key: string) => number | undefined;
  onMissing: (sample: Sample, reason: string) => void;
}): Stage<Sample, LabeledSample> {
  return stage(`labels(${opts.source})`, async function* (source) {
    for await (const s of source) {
      const label = opts.source === 'pseudo' ? opts.pseudoLabel(s.key) : opts.source === 'given' ? s.label : (s.label ?? opts.pseudoLabel(s.key));
      if (label === undefined) {
        opts.onMissing(s, opts.source === 'given' ? 'no label (.cls) in the shard' : 'no reference prediction for this key');
        continue;
      }
      yield { key: s.key, pixels: s.pixels, height: s.height, width: s.width, channels: s.channels, label };
    }
  });
}
