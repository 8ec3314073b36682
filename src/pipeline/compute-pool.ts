import * as tf from '@tensorflow/tfjs';
import { Piscina } from 'piscina';
import { join } from 'node:path';
import type { BackendRequest } from '../backend/select.js';
import { packageRoot } from '../config/paths.js';
import type { Batch } from '../stages/batch-types.js';
import type { PgdOptions } from '../stages/pgd.js';
import type { ComputeResult, ComputeTask, ComputeWorkerData, WeightsMessage } from './compute-worker.js';

const workerFile = join(packageRoot, 'dist/src/pipeline/compute-worker.js');

/**
 * PGD, training gradients and scoring on a pool of worker threads, each with its own backend and a replica of the
 * model. A batch is split across the workers; the replicas get the weights of the snapshot taken by
 * `refreshWeights()`, published once per version in shared memory that every task of that version points to (a
 * ResNet-18's 45 MB are copied once, not once per task).
 *
 *   const pool = new ComputePool({ workers: 2, backend: 'wasm', model });
 *   pool.refreshWeights(model);                        // after each train step ('steps') or epoch ('epoch')
 *   const { x, predicted } = await pool.pgd(batchX, labels, shape, pgdOptions);
 *   const { grads, lossSum } = await pool.gradients(batch, pgdOptions);   // data-parallel: summed over the parts
 */
export class ComputePool {
  readonly workers: number;
  /** Tasks re-run after a worker failed on them. */
  retried = 0;
  private readonly retries = 2;
  private readonly pool: Piscina;
  private weights: WeightsMessage = { version: -1, shapes: [], buffer: new SharedArrayBuffer(0) };
  /** Trainable parameters of the model: the length of a batch's gradients. */
  private readonly parameters: number;

  constructor(opts: { workers: number; backend: BackendRequest; model: tf.LayersModel }) {
    this.workers = opts.workers;
    this.parameters = opts.model.trainableWeights.reduce((n, w) => n + w.read().size, 0);
    const workerData: ComputeWorkerData = { backend: opts.backend, topology: JSON.stringify(opts.model.toJSON(null, false)) };
    this.pool = new Piscina({ filename: workerFile, minThreads: opts.workers, maxThreads: opts.workers, workerData, idleTimeout: 60_000 });
    this.refreshWeights(opts.model);
  }

  /** Publishes the model's current weights; later tasks point the replicas to them. */
  refreshWeights(model: tf.LayersModel): void {
    const weights = model.getWeights();
    this.publish(weights.map((w) => w.shape), weights.map((w) => w.dataSync() as Float32Array));
  }

  /** Publishes these weights (a snapshot taken earlier, e.g. kept in a checkpoint) for later tasks. */
  useWeights(snapshot: WeightsSnapshot): void {
    this.publish(snapshot.shapes, snapshot.data);
  }

  private publish(shapes: number[][], data: Float32Array[]): void {
    const buffer = new SharedArrayBuffer(4 * data.reduce((n, d) => n + d.length, 0));
    const all = new Float32Array(buffer);
    let offset = 0;
    for (const d of data) {
      all.set(d, offset);
      offset += d.length;
    }
    this.weights = { version: this.weights.version + 1, shapes, buffer };
  }

  async pgd(x: Float32Array, labels: Int32Array, shape: Shape4, pgd: PgdOptions): Promise<{ x: Float32Array; predicted: Int32Array }> {
    // the workers write the PGD examples into one buffer allocated here, each part at its place in the batch
    const out = new SharedArrayBuffer(4 * x.length);
    const per = shape[1] * shape[2] * shape[3];
    const parts = await this.onParts<Extract<ComputeResult, { adversarial: true }>>(x, shape, (part, weights) => ({
      kind: 'pgd', weights, x: part.x, labels: labels.slice(part.start, part.end), shape: part.shape, pgd, out, outOffset: part.start * per,
    }));
    return { x: new Float32Array(out), predicted: concat(parts.map((p) => p.predicted), Int32Array) };
  }

  /**
   * The gradients of a batch's mean cross-entropy (on its PGD examples when `pgd` is given), computed part by part
   * on the workers and summed in part order; flattened in model.trainableWeights order. `predicted`: the attacked
   * model's predictions on the PGD examples.
   */
  async gradients(b: Batch, pgd: PgdOptions | null): Promise<{ grads: Float32Array; lossSum: number; predicted: Int32Array | null }> {
    // each part's gradients come back in a buffer allocated here, by part in part order (a retried part gets a
    // fresh one): results cloned in from the workers brought on more full GCs of this thread's heap
    const outputs = new Map<number, Float32Array>();
    const parts = await this.onParts<Extract<ComputeResult, { lossSum: number }>>(b.x, b.shape, (part, weights) => {
      const grads = new SharedArrayBuffer(4 * this.parameters);
      outputs.set(part.start, new Float32Array(grads));
      return { kind: 'gradients', weights, x: part.x, labels: b.labels.slice(part.start, part.end), shape: part.shape, pgd, normalizer: b.shape[0], grads };
    });
    const [grads, ...rest] = outputs.values();
    for (const part of rest) for (let i = 0; i < grads.length; i++) grads[i] += part[i];
    return {
      grads,
      lossSum: parts.reduce((sum, p) => sum + p.lossSum, 0),
      predicted: pgd ? concat(parts.map((p) => p.predicted as Int32Array), Int32Array) : null,
    };
  }

  async logits(x: Float32Array, shape: Shape4): Promise<Float32Array> {
    const parts = await this.onParts<Extract<ComputeResult, { logits: Float32Array }>>(x, shape, (part, weights) => ({ kind: 'logits', weights, x: part.x, shape: part.shape }));
    return concat(parts.map((p) => p.logits), Float32Array);
  }

  /**
   * One task per worker over consecutive parts of a batch, all with the weights of the current snapshot; a part's
   * pixels (and labels) are copies moved to the worker. Results come in part order.
   */
  private onParts<R>(x: Float32Array, shape: Shape4, task: (part: BatchPart, weights: WeightsMessage) => ComputeTask): Promise<R[]> {
    const per = shape[1] * shape[2] * shape[3];
    const weights = this.weights;
    return Promise.all(
      this.split(shape[0]).map(([start, n]) =>
        this.run<R>(() => {
          const t = task({ start, end: start + n, x: x.slice(start * per, (start + n) * per), shape: [n, shape[1], shape[2], shape[3]] }, weights);
          return { task: t, transfer: [t.x.buffer as ArrayBuffer, ...('labels' in t ? [t.labels.buffer as ArrayBuffer] : [])] };
        }),
      ),
    );
  }

  /**
   * Runs one task, retrying it (rebuilt from the caller's data, since its buffers were transferred) when the
   * worker throws or dies; piscina replaces a dead worker. The same task gives the same result on any worker.
   */
  private async run<R>(make: () => { task: ComputeTask; transfer: ArrayBuffer[] }): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const { task, transfer } = make();
      try {
        return (await this.pool.run(task, { transferList: transfer })) as R;
      } catch (err) {
        if (attempt > this.retries) throw new Error(`compute worker failed on a ${task.kind} task ${attempt} times: ${(err as Error).message}`, { cause: err });
        this.retried++;
      }
    }
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }

  /** [start, count] chunks, one per worker, as even as possible. */
  private split(n: number): [number, number][] {
    const parts = Math.min(this.workers, n);
    const chunks: [number, number][] = [];
    let start = 0;
    for (let i = 0; i < parts; i++) {
      const count = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
      chunks.push([start, count]);
      start += count;
    }
    return chunks;
  }
}

type Shape4 = [number, number, number, number];

/** Samples [start, end) of a batch: their pixels (a copy of their own) and shape. */
interface BatchPart {
  start: number;
  end: number;
  x: Float32Array;
  shape: Shape4;
}

/** The model's weights in model.getWeights() order (kept in checkpoints). */
export interface WeightsSnapshot {
  shapes: number[][];
  data: Float32Array[];
}

/** A copy of the model's weights, in model.getWeights() order. */
export function weightsSnapshot(model: tf.LayersModel): WeightsSnapshot {
  const weights = model.getWeights();
  return { shapes: weights.map((w) => w.shape), data: weights.map((w) => Float32Array.from(w.dataSync() as Float32Array)) };
}

function concat<T extends Float32Array | Int32Array>(parts: T[], Type: new (n: number) => T): T {
  const out = new Type(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
