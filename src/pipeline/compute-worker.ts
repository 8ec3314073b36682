/**
 * A compute worker (run by piscina): its own backend instance and a replica of the model, refreshed from the
 * shared weights buffer a task points to when its version changed. Tasks: PGD examples of a batch, logits of a batch, or the
 * training gradients of a part of a batch (after replacing it by its PGD examples when it is adversarial).
 */
import * as tf from '@tensorflow/tfjs';
import { workerData } from 'node:worker_threads';
import { initBackend, type BackendRequest } from '../backend/select.js';
import { registerDilationAwareConv2D } from '../models/dilated-conv2d.js';
import { pgdExamples, type PgdOptions } from '../stages/pgd.js';
import { batchGradients } from '../stages/train.js';

export interface ComputeWorkerData {
  backend: BackendRequest;
  /** model.toJSON(): the architecture, without weights. */
  topology: string;
}

/**
 * One version of the weights, in model.getWeights() order, flattened one after the other into shared memory:
 * every task of that version points to the same buffer (no copy per task), and nothing writes it once published.
 */
export interface WeightsMessage {
  version: number;
  shapes: number[][];
  buffer: SharedArrayBuffer;
}

export type ComputeTask =
  | {
      kind: 'pgd';
      weights: WeightsMessage;
      x: Float32Array;
      labels: Int32Array;
      shape: [number, number, number, number];
      pgd: PgdOptions;
      /** Where the PGD examples go: the whole batch's, this part's from float `outOffset` on. */
      out: SharedArrayBuffer;
      outOffset: number;
    }
  | { kind: 'logits'; weights: WeightsMessage; x: Float32Array; shape: [number, number, number, number] }
  | {
      kind: 'gradients';
      weights: WeightsMessage;
      x: Float32Array;
      labels: Int32Array;
      shape: [number, number, number, number];
      /** Set for an adversarial batch: train on the PGD examples of x. */
      pgd: PgdOptions | null;
      /** The whole batch's size: the part's gradients are of Σ CE / normalizer. */
      normalizer: number;
      /** Where the part's gradients go: every trainable weight's, flattened one after the other. */
      grads: SharedArrayBuffer;
    };

export type ComputeResult =
  /** The PGD examples are in the task's `out`; predicted: on them. */
  | { adversarial: true; predicted: Int32Array }
  | { logits: Float32Array }
  /** The gradients are in the task's `grads`; predicted: on the PGD examples. */
  | { lossSum: number; predicted: Int32Array | null };

let replica: Promise<tf.LayersModel> | undefined;
let loadedVersion = -1;

function model(): Promise<tf.LayersModel> {
  replica ??= (async () => {
    const init = workerData as ComputeWorkerData;
    await initBackend(init.backend, () => {});
    registerDilationAwareConv2D();
    return tf.models.modelFromJSON(JSON.parse(init.topology));
  })();
  return replica;
}

/** Crash tests: `PBE_WORKER_FAILPOINT=<n>` ends this worker thread on its n-th task (each worker counts its own). */
const exitOnTask = Number(process.env.PBE_WORKER_FAILPOINT ?? 0);
let tasks = 0;

export default async function run(task: ComputeTask): Promise<ComputeResult> {
  if (++tasks === exitOnTask) process.exit(1);
  const m = await model();
  if (task.weights.version !== loadedVersion) {
    const all = new Float32Array(task.weights.buffer);
    let offset = 0;
    const tensors = task.weights.shapes.map((shape) => {
      const size = tf.util.sizeFromShape(shape);
      offset += size;
      return tf.tensor(all.subarray(offset - size, offset), shape);
    });
    m.setWeights(tensors);
    tf.dispose(tensors);
    loadedVersion = task.weights.version;
  }
  if (task.kind === 'logits') {
    return { logits: tf.tidy(() => (m.predict(tf.tensor4d(task.x, task.shape)) as tf.Tensor).dataSync() as Float32Array) };
  }
  if (task.kind === 'gradients') return gradients(m, task);
  const { pgd } = task;
  return tf.tidy(() => {
    const adv = pgdExamples(m, tf.tensor4d(task.x, task.shape), tf.tensor1d(task.labels, 'int32'), pgd);
    const predicted = (m.predict(adv) as tf.Tensor).argMax(-1).dataSync() as Int32Array;
    new Float32Array(task.out, 4 * task.outOffset, task.x.length).set(adv.dataSync() as Float32Array);
    return { adversarial: true, predicted };
  });
}

function gradients(m: tf.LayersModel, task: Extract<ComputeTask, { kind: 'gradients' }>): ComputeResult {
  let predicted: Int32Array | null = null;
  let lossSum = 0;
  const out = new Float32Array(task.grads);
  tf.tidy(() => {
    const clean = tf.tensor4d(task.x, task.shape);
    let x = clean;
    if (task.pgd) {
      x = pgdExamples(m, clean, tf.tensor1d(task.labels, 'int32'), task.pgd);
      predicted = (m.predict(x) as tf.Tensor).argMax(-1).dataSync() as Int32Array;
    }
    const part = batchGradients(m, x, task.labels, task.normalizer);
    lossSum = part.lossSum;
    const size = part.grads.reduce((n, g) => n + g.size, 0);
    if (size !== out.length) throw new Error(`compute worker: the model has ${size} trainable parameters, but the task's gradient buffer holds ${out.length}`);
    let offset = 0;
    for (const g of part.grads) {
      out.set(g.dataSync() as Float32Array, offset);
      offset += g.size;
    }
  });
  return { lossSum, predicted };
}
