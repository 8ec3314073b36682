import * as tf from '@tensorflow/tfjs';
import { inputError, usageError } from '../errors.js';
import type { ProgressSink } from '../report/progress.js';
import type { Corpus } from './corpus.js';
import { fit } from './engine.js';
import { plainTrainer } from './trainers.js';

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

/** Plain supervised training with Adam on the labels in the shards (how `pbe train` makes a model), on the engine. */
export async function fitModel(model: tf.LayersModel, corpus: Corpus, opts: FitOptions): Promise<void> {
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw usageError(`fitModel: options.epochs is expected to be a positive integer, but got ${opts.epochs}`);
  const optimizer = tf.train.adam(opts.lr);
  try {
    await fit(model, {
      corpus,
      plan: {
        rounds: 1,
        epochs: () => opts.epochs,
        epoch: ({ epoch }) => ({ adversarial: { round: 0, epoch, adversarialShare: 0, maxAdversarialBatches: 0 }, seed: opts.seed * 7919 + epoch }),
      },
      trainer: plainTrainer(model, optimizer, { weightDecay: 0, summary: `train(adam lr=${opts.lr})` }),
      optimizer,
      labels: { source: 'given', requiredBy: 'training needs labelled shards' },
      batchSize: opts.batchSize,
      shuffleBuffer: opts.shuffleBuffer ?? 20_000,
      log: opts.log,
      describeEpoch: (row) => `epoch ${row.epoch + 1}/${opts.epochs}: loss ${row.loss.toFixed(4)} on ${row.samples} samples in ${row.seconds.toFixed(1)} s`,
      callbacks: [
        {
          onEpochEnd: (row) => {
            if (row.samples === 0) throw inputError({ url: 'training data' }, 'no usable labelled samples (every one was skipped as bad: see bad-samples.csv)');
            return opts.onEpoch?.(row.epoch, row.loss, model);
          },
        },
      ],
      progress: opts.progress,
    });
  } finally {
    optimizer.dispose();
    opts.progress?.({ kind: 'end' });
  }
}
