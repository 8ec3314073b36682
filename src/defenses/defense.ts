import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { readJson, mergeConfig } from '../config/load.js';
import { configDir } from '../config/paths.js';
import { schemaParts, validateWith } from '../config/schema.js';
import type { Checkpoint } from '../pipeline/checkpoint.js';
import type { ComputeOptions } from '../pipeline/compute.js';
import type { Corpus } from '../pipeline/corpus.js';
import { epochChain, fit, type EpochRow, type FitCheckpointState, type FitOptions, type FitResult, type LabelOptions, type Trainer } from '../pipeline/engine.js';
import type { StopSignal } from '../pipeline/stop-signal.js';
import { plainTrainer } from '../pipeline/trainers.js';
import type { ProgressSink } from '../report/progress.js';
import { sgdMomentum } from '../stages/train.js';
import { join } from 'node:path';
import { inputError, usageError } from '../errors.js';
import type { Sample } from '../sources/types.js';

/**
 * What every defense is: a name, the data it needs, its config (defaults in config/defenses/<name>.json, validated
 * once), a run on the fine-tuning engine that repairs the model in place, and a description of what it runs.
 */
export type DataNeed = 'none' | 'clean';

export interface DefenseContext {
  /** The given data: possibly poisoned, possibly unlabelled. */
  data: Corpus;
  /** The clean extra set (defenses with data: 'clean'). */
  clean?: Corpus;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** ACC/ASR of the model as it stands, added to each epoch's row. */
  evaluate?: (model: tf.LayersModel) => { acc?: number; asr?: number };
  onEpoch?: (row: EpochRow, rows: EpochRow[]) => Promise<void> | void;
  checkpoint?: { dir: string; everyMinutes?: number; resume?: Checkpoint<FitCheckpointState<unknown>> };
  stop?: StopSignal;
  progress?: ProgressSink;
  compute: ComputeOptions;
  shuffleBuffer?: number;
}

/** Per-sample suspicion of a defense that scores the given data (higher: more likely poisoned). */
export interface SampleScores {
  keys: string[];
  urls: string[];
  suspicion: Float32Array;
  flagged: Set<string>;
}

export interface DefenseResult {
  rows: EpochRow[];
  pipeline: string;
  /** Joins run.json (e.g. what was pruned or isolated). */
  info: Record<string, unknown>;
  scores?: SampleScores;
  /** Writes the defense's own files into the run directory (scores.csv where it scores samples; PBE's report). */
  writeFiles?: (dir: string, run: { infectedModel: string; model: tf.LayersModel; log: DefenseContext['log'] }) => Promise<void>;
  /** The defense's own result, for callers that know the defense (PBE: its PurifyResult). */
  detail?: unknown;
}

export interface ConfigSources {
  preset?: string;
  file?: string;
  /** From CLI flags; a flag the defense's config has no field for is a usage error. */
  overrides: Record<string, unknown>;
}

export interface Defense<C = unknown> {
  name: string;
  /** What it does, and its paper. */
  title: string;
  data: DataNeed;
  loadConfig(sources: ConfigSources): Promise<C>;
  run(model: tf.LayersModel, ctx: DefenseContext, config: C): Promise<DefenseResult>;
  /** The chain its training runs, as --dry-run prints it. */
  describe(model: tf.LayersModel, ctx: DefenseContext, config: C): string;
}

const { positiveInt, nonNegative, positive } = schemaParts;

/** The config every fine-tuning defense shares. */
export const fineTuneSchema = z.object({
  seed: z.number({ error: 'an integer' }).int({ error: 'an integer' }),
  batchSize: positiveInt,
  epochs: positiveInt,
  optimizer: z.object({
    lr: positive,
    momentum: z.number({ error: 'a number in [0, 1)' }).min(0, { error: 'a number in [0, 1)' }).lt(1, { error: 'a number in [0, 1)' }),
    weightDecay: nonNegative,
  }),
});
export type FineTuneConfig = z.infer<typeof fineTuneSchema>;

/** config/defenses/<name>.json, then a user file, then the flags; validated once with the defense's schema. */
export async function loadDefenseConfig<T>(name: string, schema: z.ZodType<T>, sources: ConfigSources): Promise<T> {
  let merged = await readJson(join(configDir, 'defenses', `${name}.json`));
  if (sources.preset) throw usageError(`--preset applies to the pbe defense only; ${name} reads config/defenses/${name}.json and --config`);
  if (sources.file) merged = mergeConfig(merged, await readJson(sources.file));
  for (const [flag, value] of Object.entries(sources.overrides)) {
    if (value === undefined) continue;
    const path = flag.split('.');
    let at: Record<string, unknown> = merged;
    for (const key of path.slice(0, -1)) {
      if (typeof at[key] !== 'object' || at[key] === null) throw usageError(`the ${name} defense has no ${flag} setting (config/defenses/${name}.json)`);
      at = at[key] as Record<string, unknown>;
    }
    if (!(path[path.length - 1] in at)) throw usageError(`the ${name} defense has no ${flag} setting (config/defenses/${name}.json)`);
    merged = mergeConfig(merged, path.reduceRight<unknown>((v, key) => ({ [key]: v }), value) as Record<string, unknown>);
  }
  return validateWith(schema, merged);
}

/** A defense's state in checkpoints: the phase it is in, the rows of finished phases, and its own fields. */
export interface PhasedState {
  phase: number;
  rows: EpochRow[];
}

/** What a phase passes to the engine besides its plan, trainer and optimizer. */
export type PhaseRun = Pick<FitOptions<unknown>, 'log' | 'evaluate' | 'callbacks' | 'checkpoint' | 'algorithmState' | 'resume' | 'stop' | 'progress'>;

/**
 * Runs a defense's phases in order (e.g. fine-tune a teacher, then distil), each on the engine with an optimizer
 * of its own, checkpointed with the defense's state. A resumed run continues in the phase it stopped in; each
 * phase's rows are numbered by phase (the row's `round`).
 */
export async function runPhases<S extends PhasedState>(ctx: DefenseContext, state: S, phases: ((run: PhaseRun) => Promise<FitResult>)[]): Promise<FitResult> {
  let resume = ctx.checkpoint?.resume as Checkpoint<FitCheckpointState<S>> | undefined;
  let pipeline = '';
  while (state.phase < phases.length) {
    const phase = state.phase;
    const numbered = (row: EpochRow) => ({ ...row, round: phase });
    const result = await phases[phase]({
      log: ctx.log,
      evaluate: ctx.evaluate,
      callbacks: [{ onEpochEnd: (row, p) => ctx.onEpoch?.(numbered(row), [...state.rows, ...p.rows.map(numbered)]) }],
      checkpoint: ctx.checkpoint && { dir: ctx.checkpoint.dir, everyMinutes: ctx.checkpoint.everyMinutes },
      algorithmState: () => state,
      resume,
      stop: ctx.stop,
      progress: ctx.progress,
    });
    resume = undefined;
    pipeline = result.pipeline;
    state.rows.push(...result.rows.map(numbered));
    state.phase++;
  }
  ctx.progress?.({ kind: 'end' });
  return { rows: state.rows, pipeline };
}

export interface FineTuneSpec {
  corpus: Corpus;
  /** Only these samples (selected before decoding). */
  keys?: ReadonlySet<string>;
  keysName?: string;
  labels: LabelOptions;
  config: FineTuneConfig;
  /** The train step (default: plain cross-entropy); built on the phase's optimizer. */
  trainer?: (optimizer: tf.Optimizer) => Trainer;
  /** The first this many epochs are adversarial (every batch marked for the trainer's attack); default none. */
  adversarialEpochs?: number;
  shuffleBuffer?: number;
}

/** The engine's options for one round of fine-tuning with SGD (momentum, weight decay) over a corpus. */
function fineTuneOptions(model: tf.LayersModel, spec: FineTuneSpec, optimizer: tf.Optimizer) {
  const { config } = spec;
  const trainer = spec.trainer?.(optimizer) ?? plainTrainer(model, optimizer, { weightDecay: config.optimizer.weightDecay, summary: `train(sgd lr=${config.optimizer.lr})` });
  return {
    corpus: spec.corpus,
    plan: {
      rounds: 1,
      epochs: () => config.epochs,
      epoch: ({ epoch }: { epoch: number }) => ({
        keys: spec.keys,
        keysName: spec.keysName,
        adversarial: epoch < (spec.adversarialEpochs ?? 0)
          ? { round: 0, epoch, adversarialShare: 1, maxAdversarialBatches: null }
          : { round: 0, epoch, adversarialShare: 0, maxAdversarialBatches: 0 },
        seed: config.seed * 7919 + epoch,
      }),
    },
    trainer,
    optimizer,
    labels: spec.labels,
    batchSize: config.batchSize,
    shuffleBuffer: spec.shuffleBuffer ?? 10_000,
  };
}

/** One phase of fine-tuning on the engine. */
export async function fineTune(model: tf.LayersModel, spec: FineTuneSpec, run: PhaseRun): Promise<FitResult> {
  const optimizer = sgdMomentum(spec.config.optimizer.lr, spec.config.optimizer.momentum);
  try {
    return await fit(model, { ...fineTuneOptions(model, spec, optimizer), ...run });
  } finally {
    optimizer.dispose();
  }
}

/** The first epoch's chain of a fine-tuning phase (--dry-run). */
export function describeFineTune(model: tf.LayersModel, spec: FineTuneSpec): string {
  const optimizer = sgdMomentum(spec.config.optimizer.lr, spec.config.optimizer.momentum);
  try {
    const options = fineTuneOptions(model, spec, optimizer);
    return epochChain(spec.corpus, options.plan.epoch({ epoch: 0 }), { ...options, skip: 0 }).summary;
  } finally {
    optimizer.dispose();
  }
}

export function requireClean(ctx: DefenseContext, name: string): Corpus {
  if (!ctx.clean) throw usageError(`the ${name} defense needs a clean extra set (--clean-data SPEC)`);
  return ctx.clean;
}

/** The given data's samples with their labels (defenses that score the given data need its labels). */
export async function labelledSamples(corpus: Corpus, who: string): Promise<Sample[]> {
  const samples: Sample[] = [];
  for await (const s of corpus.samples().output) {
    if (s.label === undefined) throw inputError(s, `no label (.cls) in the shard; ${who} needs the given data's labels`);
    samples.push(s);
  }
  return samples;
}

export const givenLabels = (why: string): LabelOptions => ({ source: 'given', requiredBy: why });
