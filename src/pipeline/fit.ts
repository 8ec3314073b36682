import * as tf from '@tensorflow/tfjs';
import type { Corpus } from '../defenses/pbe.js';
import { inputError } from '../errors.js';
import { batch } from '../stages/batch.js';
import { assignLabels } from '../stages/label.js';
import { ownPixels, shuffle } from '../stages/shuffle.js';
import { trainStep } from '../stages/train.js';
import { pipe } from './pipe.js';
import type { ProgressSink } from '../report/progress.js';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  log: (message: string, fields?: Record<string, unknown>) => void;
  shuffleBuffer?: number;
  onEpoch?: (epoch: number, loss: number, model: tf.LayersModel) => Promise<void> | void;
  progress?: ProgressSink;
}

/** Plain supervised training with Adam on the labels in the shards (how `pbe train` makes a model). */
export async function fitModel(model: tf.LayersModel, corpus: Corpus, opts: FitOptions): Promise<void> {
  const optimizer = tf.train.adam(opts.lr);
  let lastEpochSamples: number | undefined; // unknown until the first pass is done
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const started = performance.now();
      const chain = pipe(
        corpus.samples(),
        assignLabels({
          source: 'given',
          pseudoLabel: () => undefined,
          onMissing: (s, reason) => {
            throw inputError(s, `${reason}; training needs labelled shards`);
          },
        }),
        shuffle({ bufferSize: opts.shuffleBuffer ?? 20_000, seed: opts.seed * 7919 + epoch, hold: ownPixels }),
        batch({ size: opts.batchSize }),
      );
      let lossSum = 0;
      let samples = 0;
      opts.progress?.({ kind: 'epoch', round: 0, rounds: 1, epoch, epochs: opts.epochs, samples: lastEpochSamples });
      for await (const b of chain.output) {
        lossSum += trainStep(model, optimizer, b, 0) * b.keys.length;
        samples += b.keys.length;
        opts.progress?.({ kind: 'step', done: samples });
      }
      lastEpochSamples = samples;
      const loss = samples ? lossSum / samples : 0;
      opts.log(`epoch ${epoch + 1}/${opts.epochs}: loss ${loss.toFixed(4)} on ${samples} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`, {
        epoch,
        loss,
        samples,
      });
      await opts.onEpoch?.(epoch, loss, model);
    }
  } finally {
    optimizer.dispose();
    opts.progress?.({ kind: 'end' });
  }
}
