import * as tf from '@tensorflow/tfjs';
import { Packr } from 'msgpackr';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PbeError } from '../errors.js';
import { failpoint } from './failpoints.js';

/**
 * A training checkpoint: everything needed to continue a run as if it had not stopped. Written as one
 * msgpack file under a temporary name and renamed, so the previous checkpoint stays until the new one is
 * complete and a crash at any moment leaves one whole checkpoint.
 */
export interface Checkpoint<State> {
  version: 2;
  /** Where the run stands: the engine's state (round, epoch, batch cursor, rows...) and the algorithm's. */
  state: State;
  /** Model weights in model.getWeights() order. */
  weights: { shape: number[]; data: Float32Array }[];
  /** Optimizer slots (iterations, momentum accumulators) in optimizer.getWeights() order. */
  optimizer: { name: string; shape: number[]; data: Float32Array }[];
  savedAt: string;
}

const packr = new Packr({ moreTypes: true, structuredClone: false });

export const checkpointFile = (runDir: string) => join(runDir, 'checkpoint', 'checkpoint.msgpack');

export async function saveCheckpoint<State>(
  runDir: string,
  state: State,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
): Promise<number> {
  const started = performance.now();
  const weights = model.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync() as Float32Array }));
  const slots = await optimizer.getWeights();
  const optimizerWeights = slots.map((w) => ({ name: w.name, shape: w.tensor.shape, data: Float32Array.from(w.tensor.dataSync()) }));
  tf.dispose(slots.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor)); // the iteration count is a new scalar; the rest are the optimizer's variables
  const checkpoint: Checkpoint<State> = { version: 2, state, weights, optimizer: optimizerWeights, savedAt: new Date().toISOString() };
  const path = checkpointFile(runDir);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const bytes = packr.pack(checkpoint);
  const file = await open(tmp, 'w');
  try {
    await file.write(bytes, 0, bytes.length >> 1);
    failpoint('checkpoint-write');
    await file.write(bytes, bytes.length >> 1);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  return (performance.now() - started) / 1000;
}

export async function loadCheckpoint<State>(runDir: string): Promise<Checkpoint<State>> {
  const path = checkpointFile(runDir);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new PbeError('usage', `${path}: no checkpoint to resume from (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  let checkpoint: Checkpoint<State>;
  try {
    checkpoint = packr.unpack(bytes);
  } catch (err) {
    throw new PbeError('input', `${path}: the checkpoint is unreadable: ${(err as Error).message}`, { cause: err });
  }
  if (checkpoint?.version !== 2) {
    throw new PbeError('input', `${path}: not a checkpoint of this pbe version (version ${String(checkpoint?.version)}, expected 2)`);
  }
  return checkpoint;
}

/** Puts checkpointed weights and optimizer slots back into a model of the same architecture. */
export async function restoreTraining(checkpoint: Checkpoint<unknown>, model: tf.LayersModel, optimizer: tf.Optimizer): Promise<void> {
  const current = model.getWeights();
  if (current.length !== checkpoint.weights.length) {
    throw new PbeError('model', `checkpoint has ${checkpoint.weights.length} weight tensors, the model ${current.length}: not the same architecture`);
  }
  const weights = checkpoint.weights.map((w) => tf.tensor(w.data, w.shape));
  model.setWeights(weights);
  tf.dispose(weights);
  const slots = checkpoint.optimizer.map((w) => ({ name: w.name, tensor: tf.tensor(w.data, w.shape) }));
  await optimizer.setWeights(slots);
  tf.dispose(slots.map((s) => s.tensor));
}
