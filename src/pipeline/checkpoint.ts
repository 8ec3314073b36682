import * as tf from '@tensorflow/tfjs';
import { Packr } from 'msgpackr';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { asOutputError, PbeError } from '../errors.js';
import { tempPath } from './atomic-write.js';
import { failpoint } from './failpoints.js';

/**
 * A training checkpoint: everything needed to continue a run as if it had not stopped. Written as one
 * msgpack file under a temporary name and renamed, so the previous checkpoint stays until the new one is
 * complete and a crash at any moment leaves one whole checkpoint.
 *
 * On disk it is an envelope `{format: 'pbe-checkpoint', version: 3, sha256, body}` whose body is the packed
 * checkpoint: a flipped byte fails the checksum, and a body that unpacks is then checked against a schema (and
 * the caller's check of its state) before anything of it is used.
 */
export interface Checkpoint<State> {
  version: 3;
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
  const checkpoint: Checkpoint<State> = { version: 3, state, weights, optimizer: optimizerWeights, savedAt: new Date().toISOString() };
  const body = packr.pack(checkpoint);
  const bytes = packr.pack({ format: FORMAT, version: 3, sha256: sha256(body), body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) });
  const path = checkpointFile(runDir);
  const tmp = tempPath(path);
  try {
    await mkdir(dirname(path), { recursive: true });
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
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw asOutputError(path, err);
  }
  return (performance.now() - started) / 1000;
}

const FORMAT = 'pbe-checkpoint';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'a Float32Array' });
const shape = z.array(z.number().int().nonnegative());
const tensorData = z.object({ shape, data: float32 }).refine((t) => t.data.length === t.shape.reduce((a, b) => a * b, 1), { error: 'data length matching its shape' });
const checkpointSchema = z.object({
  version: z.literal(3),
  state: z.unknown(),
  weights: z.array(tensorData),
  optimizer: z.array(z.object({ name: z.string() }).and(tensorData)),
  savedAt: z.string(),
});

export interface LoadCheckpointOptions<State> {
  /** Checks the run's own state (bounds against the run's config...); throws a message of what is wrong. */
  validateState?: (state: unknown) => State;
}

/** Reads and verifies a checkpoint: its checksum, then its schema, then (`validateState`) its state. */
export async function loadCheckpoint<State>(runDir: string, opts: LoadCheckpointOptions<State> = {}): Promise<Checkpoint<State>> {
  const path = checkpointFile(runDir);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new PbeError('usage', `${path}: no checkpoint to resume from (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  const bad = (what: string, cause?: unknown) => new PbeError('input', `${path}: ${what}; the checkpoint cannot be used (--restart starts the run again from the beginning)`, { cause });
  let envelope: { format?: unknown; version?: unknown; sha256?: unknown; body?: unknown };
  try {
    envelope = packr.unpack(bytes);
  } catch (err) {
    throw bad(`unreadable (${(err as Error).message})`, err);
  }
  if (envelope?.format !== FORMAT || envelope.version !== 3 || typeof envelope.sha256 !== 'string' || !(envelope.body instanceof Uint8Array)) {
    throw bad(`not a checkpoint of this pbe version (3) (format ${JSON.stringify(envelope?.format)}, version ${JSON.stringify(envelope?.version)})`);
  }
  if (sha256(envelope.body) !== envelope.sha256) throw bad('checksum mismatch: the file was changed or damaged after it was written');
  let parsed;
  try {
    parsed = checkpointSchema.safeParse(packr.unpack(envelope.body));
  } catch (err) {
    throw bad(`unreadable body (${(err as Error).message})`, err);
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`invalid at ${issue.path.map(String).join('.') || 'top level'}: expected ${issue.message}`);
  }
  let state: State;
  try {
    state = opts.validateState ? opts.validateState(parsed.data.state) : (parsed.data.state as State);
  } catch (err) {
    throw bad(`invalid state: ${(err as Error).message}`, err);
  }
  return { ...parsed.data, state } as Checkpoint<State>;
}

/** Puts checkpointed weights and optimizer slots back into a model of the same architecture. */
export async function restoreTraining(checkpoint: Checkpoint<unknown>, model: tf.LayersModel, optimizer: tf.Optimizer): Promise<void> {
  const current = model.getWeights();
  const same = current.length === checkpoint.weights.length && current.every((w, i) => w.shape.join() === checkpoint.weights[i].shape.join());
  if (!same) {
    throw new PbeError('model', `checkpoint weights (${checkpoint.weights.length} tensors) do not fit the model (${current.length}): not the same architecture`);
  }
  const weights = checkpoint.weights.map((w) => tf.tensor(w.data, w.shape));
  model.setWeights(weights);
  tf.dispose(weights);
  const slots = checkpoint.optimizer.map((w) => ({ name: w.name, tensor: tf.tensor(w.data, w.shape) }));
  await optimizer.setWeights(slots);
  tf.dispose(slots.map((s) => s.tensor));
}
