import { randomUUID, createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { z } from 'zod';
import type { PurifyConfig } from '../config/schema.js';
import { inputError } from '../errors.js';
import { localPath } from '../sources/open.js';

/**
 * What a run is, so that a resume continues that run and nothing else (DESIGN §4: a run directory belongs to one
 * run). Stored in run.json when the run starts:
 *
 *   const identity = await runIdentity(config, corpus.urls, modelFiles);
 *   const changes = identityChanges(stored, await runIdentity(stored.config, corpus.urls, modelFiles));
 *   if (changes.length) throw ...   // unless the user asked to restart
 *
 * - `config`: the merged, validated config the run started with; a resume uses it, never the config file again;
 * - `data` and `model`: a fingerprint of every input file: for a local file its size and a hash of its first and
 *   last 64 KiB (cheap, and it catches a shard cut short or replaced by another); for a remote URL the URL alone
 *   (its sample count is checked by the run itself: every end-of-round pass must meet exactly the samples of the
 *   reference pass).
 */

export interface FilePrint {
  url: string;
  size?: number;
  sample?: string;
}

export interface RunIdentity {
  runId: string;
  /** The defense's merged config (PBE: a PurifyConfig). */
  config: unknown;
  data: FilePrint[];
  model: FilePrint[];
}

const EDGE = 64 * 1024;

export async function fingerprint(url: string): Promise<FilePrint> {
  const path = localPath(url);
  if (path === undefined) return { url };
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return { url }; // missing: opening it will say so, naming it
  }
  const file = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const head = Buffer.alloc(Math.min(EDGE, size));
    await file.read(head, 0, head.length, 0);
    hash.update(head);
    if (size > EDGE) {
      const tail = Buffer.alloc(Math.min(EDGE, size - EDGE));
      await file.read(tail, 0, tail.length, size - tail.length);
      hash.update(tail);
    }
    return { url, size, sample: hash.digest('hex').slice(0, 32) };
  } finally {
    await file.close();
  }
}

export async function runIdentity(config: unknown, dataUrls: readonly string[], modelFiles: readonly string[], runId: string = randomUUID()): Promise<RunIdentity> {
  return { runId, config, data: await Promise.all(dataUrls.map(fingerprint)), model: await Promise.all(modelFiles.map(fingerprint)) };
}

/** What differs between the identity a run was started with and the inputs now, one line each (empty: the same). */
export function identityChanges(stored: Pick<RunIdentity, 'data' | 'model'>, current: Pick<RunIdentity, 'data' | 'model'>): string[] {
  return [...fileChanges('data', stored.data, current.data), ...fileChanges('model', stored.model, current.model)];
}

function fileChanges(what: string, before: FilePrint[], now: FilePrint[]): string[] {
  const changes: string[] = [];
  const old = new Map(before.map((f) => [f.url, f]));
  const cur = new Map(now.map((f) => [f.url, f]));
  for (const f of before) if (!cur.has(f.url)) changes.push(`${what} file ${f.url} is no longer part of the input`);
  for (const f of now) {
    const o = old.get(f.url);
    if (!o) changes.push(`${what} file ${f.url} was not part of the input`);
    else if (o.size !== f.size) changes.push(`${what} file ${f.url} has ${f.size ?? 'no'} bytes, ${o.size ?? 'none'} when the run started`);
    else if (o.sample !== f.sample) changes.push(`${what} file ${f.url} has other contents than when the run started`);
  }
  return changes;
}

const filePrint = z.object({ url: z.string(), size: z.number().optional(), sample: z.string().optional() });
export const storedIdentitySchema = z.object({ runId: z.string(), config: z.unknown(), data: z.array(filePrint), model: z.array(filePrint) });

const finite = z.number().refine(Number.isFinite);
const count = z.number().int().nonnegative();
const recoveredTrigger = z.object({ target: count, mask: z.array(finite), pattern: z.array(finite) }).loose();
const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'a Float32Array' });
const int32 = z.custom<Int32Array>((v) => v instanceof Int32Array, { error: 'an Int32Array' });
const epochStats = z.object({
  samples: count,
  lossSum: finite,
  adversarialBatches: count,
  adversarialSamples: count,
  flipped: count,
  flippedTo: z.array(count),
});
const scoreStore = z
  .object({
    numClasses: z.number().int().min(2),
    keys: z.array(z.string()),
    urls: z.array(z.string()),
    refLogits: float32,
    pseudoLabels: int32,
    givenLabels: int32,
    similarity: float32,
    spill: z.object({ file: z.string(), sha256: z.string() }).optional(),
  })
  .refine(
    (s) => {
      const n = s.keys.length;
      // a spilled store's logits are in its file (checked against its size and checksum when it is reopened)
      return s.urls.length === n && s.refLogits.length === (s.spill ? 0 : n * s.numClasses) && s.pseudoLabels.length === n && s.givenLabels.length === n && s.similarity.length === n && new Set(s.keys).size === n;
    },
    { error: 'a score store whose arrays all hold one entry per (distinct) key' },
  );
/** The engine's progress (pipeline/engine.ts FitProgress) with PBE's state (defenses/pbe.ts PbeState) as its algorithm. */
const pbeCheckpointState = z.object({
  round: count,
  epoch: count,
  batchesDone: count,
  partial: epochStats.nullable(),
  partialSeconds: z.number().nonnegative(),
  trainer: z.unknown().optional(),
  rows: z.array(z.record(z.string(), z.unknown())),
  // what the resume relies on; the rest of PBE's state is its own business
  algorithm: z
    .object({
      store: scoreStore,
      trusted: z.array(z.string()),
      eps: z.number().positive(),
      lr: z.number().positive(),
      probe: z.array(z.unknown()),
      trigger: recoveredTrigger.nullable(),
      tied: z.array(recoveredTrigger).optional(),
      suspects: z.array(z.tuple([z.string(), count])),
    })
    .loose(),
});

/**
 * Checks a PBE checkpoint's state against the run's own config: a round and epoch inside the schedule (a state
 * past it would never end), a score store of one entry per key, a trusted set of its keys. Returns it typed.
 */
export function validatePbeState<State>(state: unknown, config: PurifyConfig): State {
  const parsed = pbeCheckpointState.safeParse(state);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`state.${issue.path.map(String).join('.')}: expected ${issue.message}`);
  }
  const s = parsed.data;
  const rounds = config.rounds.length;
  if (s.round > rounds) throw new Error(`state.round ${s.round} is past the run's ${rounds} rounds`);
  if (s.round < rounds && s.epoch > config.rounds[s.round].epochs) {
    throw new Error(`state.epoch ${s.epoch} is past round ${s.round}'s ${config.rounds[s.round].epochs} epochs`);
  }
  const keys = new Set(s.algorithm.store.keys);
  const unknown = [...s.algorithm.trusted, ...s.algorithm.suspects.map(([k]) => k)].find((k) => !keys.has(k));
  if (unknown !== undefined) throw new Error(`state names sample "${unknown}", which the run's score store does not hold`);
  if (s.algorithm.store.numClasses !== (s.partial?.flippedTo.length ?? s.algorithm.store.numClasses)) throw new Error('state.partial counts another number of classes than the store');
  return state as State;
}

/** The refusal of a resume whose inputs changed: exit 1, naming each change. */
export function changedInputsError(runDir: string, changes: string[]) {
  return inputError(
    { url: runDir },
    `cannot resume: the inputs changed since this run started (${changes.join('; ')}). Put the original inputs back, or pass --restart to start this run again from the beginning with the current ones`,
  );
}
