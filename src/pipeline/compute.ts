import { StoppedError, type StopSignal } from './stop-signal.js';
import type * as tf from '@tensorflow/tfjs';
import type { BackendRequest } from '../backend/select.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';
import { predictLogits } from '../stages/score.js';
import { ComputePool } from './compute-pool.js';

export interface ComputeOptions {
  workers: number;
  backend: BackendRequest;
  /** 'steps': replicas get the weights after every train step (exact); 'epoch': once per epoch, with look-ahead. */
  weightsRefresh: 'steps' | 'epoch';
}

export type Shape4 = [number, number, number, number];

/**
 * Where a job's inference and attacks run: on a worker pool (workers > 0), started on first use so that a job
 * that only describes itself (--dry-run) starts no threads, or on this thread. `destroy()` ends the pool.
 */
export class Compute {
  private started: ComputePool | undefined;

  constructor(private readonly model: tf.LayersModel, readonly options: ComputeOptions) {}

  get workers(): number {
    return this.options.workers;
  }

  pool(): ComputePool {
    if (this.options.workers === 0) throw new Error('Compute.pool(): this job computes on the main thread (workers: 0)');
    this.started ??= new ComputePool({ workers: this.options.workers, backend: this.options.backend, model: this.model });
    return this.started;
  }

  /** The model's logits for a batch, as it stands (the pool's replicas: as of the last weights refresh). */
  async logits(x: Float32Array, shape: Shape4): Promise<Float32Array> {
    return this.workers > 0 ? this.pool().logits(x, shape) : predictLogits(this.model, x, shape);
  }

  async destroy(): Promise<void> {
    await this.started?.destroy();
    this.started = undefined;
  }
}

export const mainThread: ComputeOptions = { workers: 0, backend: 'auto', weightsRefresh: 'steps' };

/** How inference passes batch decoded samples: at most `batchSize` samples and `batchMiB` MiB of float32 pixels. */
export interface InferenceBatching {
  batchSize: number;
  batchMiB: number;
}

/**
 * Samples per inference batch for samples of `values` pixel values each (height x width x channels): a pass holds
 * a few copies of a batch at once (the samples, the packed batch, the workers' parts and their tensors), so at
 * 224x224x3 a count fit for 28x28 would hold GiBs. At least 1.
 */
export function inferenceBatchSize(values: number, { batchSize, batchMiB }: InferenceBatching): number {
  return Math.max(1, Math.min(batchSize, Math.floor((batchMiB * 2 ** 20) / (4 * values))));
}

/**
 * Runs `fn` on inference batches of decoded samples (labels unused), each sized by inferenceBatchSize for the
 * shape of its first sample.
 */
export async function forEachInferenceBatch(
  samples: AsyncIterable<Sample>,
  batching: InferenceBatching,
  fn: (batch: Sample[], x: Float32Array, shape: Shape4) => Promise<void>,
  stop?: StopSignal,
): Promise<void> {
  let pending: Sample[] = [];
  let size = 0;
  const flush = async () => {
    const b = pack(pending.map((s) => ({ ...s, label: -1 })));
    const batch = pending;
    pending = [];
    await fn(batch, b.x, b.shape);
  };
  for await (const s of samples) {
    // a pass over all data takes long: a stop request ends it (the run resumes from its last checkpoint)
    if (stop?.stopRequested) throw new StoppedError(stop.stopRequested);
    if (pending.length === 0) size = inferenceBatchSize(s.height * s.width * s.channels, batching);
    pending.push(s);
    if (pending.length === size) await flush();
  }
  if (pending.length > 0) await flush();
}
