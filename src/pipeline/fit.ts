import * as tf from '@tensorflow/tfjs';
import { inputError, usageError } from '../errors.js';
import type { ProgressSink } from '../report/progress.js';
import { poisonBatches, type BatchPoisoningCounts, type BatchPoisoningOptions } from '../stages/poison-batch.js';
import type { Checkpoint } from './checkpoint.js';
import type { Corpus } from './corpus.js';
import { fit, type FitCheckpointState } from './engine.js';
import type { StopSignal } from './stop-signal.js';
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
  /** Poisons every batch as it is trained on (`pbe train --attack`); `onPoisoned` gets each batch's counts. */
  poisoning?: BatchPoisoningOptions;
  onPoisoned?: (counts: BatchPoisoningCounts) => void;
  /** Checkpoints in `dir` (see the engine), and the one to resume from. */
  checkpoint?: { dir: string; everyMinutes?: number };
  resume?: Checkpoint<FitCheckpointState<unknown>>;
  stop?: StopSignal;
}

/**
 * Plain supervised training with Adam on the labels in the shards (how `pbe train` makes a model), on the engine;
 * with `poisoning`, each batch is poisoned on the way (seeded by the epoch and the batch, so a resume is exact).
 */
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
      checkpoint: opts.checkpoint,
      resume: opts.resume,
      stop: opts.stop,
      callbacks: [
        { epochStages: (_, spec) => (opts.poisoning ? [poisonBatches(opts.poisoning, spec.seed, opts.onPoisoned)] : []) },
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
