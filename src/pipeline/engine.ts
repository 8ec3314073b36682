import * as tf from '@tensorflow/tfjs';
import { inputError } from '../errors.js';
import type { ProgressSink } from '../report/progress.js';
import type { AttackStats, Batch } from '../stages/batch-types.js';
import { batch } from '../stages/batch.js';
import { assignLabels, type LabelSource } from '../stages/label.js';
import { mix } from '../stages/mix.js';
import { prefetch } from '../stages/prefetch.js';
import { skip } from '../stages/skip.js';
import { checkpointFile, restoreTraining, saveCheckpoint, type Checkpoint } from './checkpoint.js';
import type { EpochPlan } from './controller.js';
import type { Corpus } from './corpus.js';
import { failpoint } from './failpoints.js';
import { pipe, type Described, type Stage } from './pipe.js';
import { StoppedError, type StopSignal } from './stop-signal.js';

/**
 * The fine-tuning engine every training job runs on (`pbe train`, PBE, the other defenses): a resumable loop of
 * rounds of epochs over a corpus, driven by a plan (per epoch: which samples, which share of batches is
 * adversarial, the seed) and lifecycle callbacks in the style of tfjs-layers (onEpochBegin, onBatchEnd,
 * onEpochEnd, plus onRoundEnd for work between rounds). Checkpoints (at every epoch and round end, every
 * `everyMinutes`, on a stop request), stop, resume and progress live here once. The algorithm's own state
 * goes into the checkpoint through `algorithmState()`; a resumed run gets it back from `resume.state.algorithm`.
 *
 *   const { rows } = await fit(model, { corpus, plan, trainer: plainTrainer(model, optimizer), optimizer, ... });
 */

export interface EpochRow {
  round: number;
  epoch: number;
  adversarialShare: number;
  adversarialBatches: number;
  /** Samples selected for the epoch (PBE: the trusted set). */
  trusted: number;
  samples: number;
  loss: number;
  /** Share of adversarial samples whose prediction the attack moved away from the label; empty when none. */
  flipRate: number | null;
  /** Adversarial target concentration q and its class (over flipped predictions); empty when none flipped. */
  concentration: number | null;
  concentrationClass: number | null;
  seconds: number;
  acc?: number;
  asr?: number;
}

/** What one epoch trains on. */
export interface EpochSpec {
  /** The samples of the epoch, selected by key before decoding; all samples when absent. */
  keys?: ReadonlySet<string>;
  keysName?: string;
  /** Which batches become adversarial. */
  adversarial: EpochPlan;
  /** Seeds the epoch's shuffle and adversarial draws. */
  seed: number;
}

/** Where a run stands: with the weights, the optimizer slots and the algorithm's state it is a checkpoint. */
export interface FitProgress {
  round: number;
  epoch: number;
  /** Batches of the current epoch already trained on, and their running sums. */
  batchesDone: number;
  partial: EpochStats | null;
  partialSeconds: number;
  /** The trainer's state for the current epoch (e.g. the weights its attacks use), kept across a resume. */
  trainer?: unknown;
  rows: EpochRow[];
}

export interface FitCheckpointState<S> extends FitProgress {
  algorithm: S;
}

export interface FitPlan {
  rounds: number;
  epochs(round: number): number;
  epoch(progress: Readonly<FitProgress>): EpochSpec;
}

export interface StepResult {
  /** The batch's mean training loss. */
  loss: number;
  attack?: AttackStats;
}

/**
 * How a batch becomes a train step: `stages` run on the epoch's batches after mix and skip (e.g. an attack that
 * runs ahead on workers), then `step` trains on each. `beginEpoch` gets the state it returned for this epoch
 * before a resume (undefined at a fresh start) and returns the state to checkpoint.
 */
export interface Trainer {
  stages: Stage<Batch, Batch>[];
  step(b: Batch): Promise<StepResult>;
  summary: string;
  beginEpoch?(saved: unknown): unknown;
}

export interface FitCallbacks {
  onEpochBegin?(progress: Readonly<FitProgress>, spec: EpochSpec): void | Promise<void>;
  /** Stages applied to the epoch's batches after mix, before skip (seeded per epoch, so a resume sees the same batches). */
  epochStages?(progress: Readonly<FitProgress>, spec: EpochSpec): Stage<Batch, Batch>[];
  onBatchEnd?(b: Batch, result: StepResult, progress: Readonly<FitProgress>): void | Promise<void>;
  /** After the row is added to progress.rows, before the epoch's checkpoint. */
  onEpochEnd?(row: EpochRow, progress: Readonly<FitProgress>): void | Promise<void>;
  /** After a round's epochs, before the checkpoint that ends it (PBE's similarity pass). */
  onRoundEnd?(progress: Readonly<FitProgress>): void | Promise<void>;
}

export interface LabelOptions {
  source: LabelSource;
  pseudoLabel?: (key: string) => number | undefined;
  /** Why a label is needed, for the error on a sample without one. */
  requiredBy: string;
}

export interface FitOptions<S> {
  corpus: Corpus;
  plan: FitPlan;
  trainer: Trainer;
  /** Restored from `resume`; the caller creates and disposes it. */
  optimizer: tf.Optimizer;
  labels: LabelOptions;
  batchSize: number;
  shuffleBuffer: number;
  log: (message: string, fields?: Record<string, unknown>) => void;
  callbacks?: FitCallbacks[];
  /** Fields added to each epoch's row from the model as it stands (e.g. ACC and ASR on a test set). */
  evaluate?: (model: tf.LayersModel) => { acc?: number; asr?: number };
  /** The log line of an epoch; its row goes with it as fields. */
  describeEpoch?: (row: EpochRow) => string;
  /** Checkpoints in `dir` at every epoch and round end, every `everyMinutes` and on a stop request. */
  checkpoint?: { dir: string; everyMinutes?: number };
  algorithmState?: () => S;
  resume?: Checkpoint<FitCheckpointState<S>>;
  stop?: StopSignal;
  progress?: ProgressSink;
}

export interface FitResult {
  rows: EpochRow[];
  /** The chain of the last epoch, as it ran. */
  pipeline: string;
}

/** The chain of one epoch, from the corpus to the train step: what runs, and what --dry-run prints. */
export function epochChain(
  corpus: Corpus,
  spec: EpochSpec,
  opts: { labels: LabelOptions; shuffleBuffer: number; batchSize: number; skip: number; trainer: Trainer; stages?: Stage<Batch, Batch>[] },
): { batches: Described<Batch>; summary: string } {
  const { labels } = opts;
  let batches = pipe(
    // shuffled before decoding: the buffer holds encoded bytes, not pixels
    corpus.samples(spec.keys, spec.keysName, { bufferSize: opts.shuffleBuffer, seed: spec.seed }),
    assignLabels({
      source: labels.source,
      pseudoLabel: labels.pseudoLabel ?? (() => undefined),
      onMissing: (s, reason) => {
        throw inputError(s, `${reason}; ${labels.requiredBy}`);
      },
    }),
    batch({ size: opts.batchSize }),
    mix(spec.adversarial, spec.seed),
  );
  for (const s of [...(opts.stages ?? []), skip<Batch>(opts.skip), prefetch<Batch>(2), ...opts.trainer.stages]) batches = pipe(batches, s);
  return { batches, summary: `${batches.summary} -> ${opts.trainer.summary}` };
}

export async function fit<S>(model: tf.LayersModel, opts: FitOptions<S>): Promise<FitResult> {
  const { plan, trainer, log, resume } = opts;
  const callbacks = opts.callbacks ?? [];
  const progress = opts.progress ?? (() => {});
  const numClasses = model.outputs[0].shape[1] as number;
  let state: FitProgress;
  if (resume) {
    const { algorithm: _algorithm, ...saved } = resume.state;
    state = saved;
    await restoreTraining(resume, model, opts.optimizer);
    log(`resuming at round ${state.round} epoch ${state.epoch} batch ${state.batchesDone} (checkpoint of ${resume.savedAt})`);
  } else {
    state = { round: 0, epoch: 0, batchesDone: 0, partial: null, partialSeconds: 0, rows: [] };
  }

  let lastCheckpoint = performance.now();
  const save = async () => {
    if (!opts.checkpoint) return;
    const checkpointState: FitCheckpointState<S | undefined> = { ...state, algorithm: opts.algorithmState?.() };
    const seconds = await saveCheckpoint(opts.checkpoint.dir, checkpointState, model, opts.optimizer);
    lastCheckpoint = performance.now();
    log('checkpoint written', { round: state.round, epoch: state.epoch, batch: state.batchesDone, seconds });
  };
  const checkpointDue = () =>
    opts.checkpoint?.everyMinutes !== undefined && performance.now() - lastCheckpoint > opts.checkpoint.everyMinutes * 60_000;

  let pipeline = '';
  let lastEpochSamples: number | undefined;
  while (state.round < plan.rounds) {
    const { round, epoch } = state;
    if (opts.stop?.stopRequested) {
      // also between epochs and rounds (an epoch of no batches never reaches the check after a step)
      await save();
      throw new StoppedError(opts.stop.stopRequested, checkpointFile(opts.checkpoint?.dir ?? '.'));
    }
    if (epoch >= plan.epochs(round)) {
      for (const c of callbacks) await c.onRoundEnd?.(state);
      state.round++;
      state.epoch = 0;
      await save();
      continue;
    }
    const started = performance.now() - state.partialSeconds * 1000;
    state.trainer = trainer.beginEpoch?.(state.trainer);
    const spec = plan.epoch(state);
    for (const c of callbacks) await c.onEpochBegin?.(state, spec);
    const chain = epochChain(opts.corpus, spec, {
      labels: opts.labels,
      shuffleBuffer: opts.shuffleBuffer,
      batchSize: opts.batchSize,
      skip: state.batchesDone,
      trainer,
      stages: callbacks.flatMap((c) => c.epochStages?.(state, spec) ?? []),
    });
    if (epoch === 0 || pipeline === '') log(`round ${round}: ${chain.summary}`);
    pipeline = chain.summary;
    const stats = state.partial ?? emptyStats(numClasses);
    progress({ kind: 'epoch', round, rounds: plan.rounds, epoch, epochs: plan.epochs(round), samples: spec.keys?.size ?? lastEpochSamples });
    for await (const b of chain.batches.output) {
      const result = await trainer.step(b);
      addBatch(stats, b, result);
      progress({ kind: 'step', done: stats.samples });
      failpoint('train-step');
      state.batchesDone++;
      for (const c of callbacks) await c.onBatchEnd?.(b, result, state);
      if (opts.stop?.stopRequested || checkpointDue()) {
        state.partial = stats;
        state.partialSeconds = (performance.now() - started) / 1000;
        await save();
        if (opts.stop?.stopRequested) throw new StoppedError(opts.stop.stopRequested, checkpointFile(opts.checkpoint?.dir ?? '.'));
      }
    }
    const row: EpochRow = {
      ...rowOf(stats, spec, round, epoch),
      seconds: (performance.now() - started) / 1000,
      ...opts.evaluate?.(model),
    };
    lastEpochSamples = stats.samples;
    state.rows.push(row);
    state.epoch++;
    state.batchesDone = 0;
    state.trainer = undefined;
    state.partial = null;
    state.partialSeconds = 0;
    log(opts.describeEpoch?.(row) ?? `round ${round} epoch ${epoch}`, { ...row });
    for (const c of callbacks) await c.onEpochEnd?.(row, state);
    await save();
  }
  return { rows: state.rows, pipeline };
}

/** Running sums of an epoch (kept in checkpoints taken in the middle of one). */
export interface EpochStats {
  samples: number;
  lossSum: number;
  adversarialBatches: number;
  adversarialSamples: number;
  flipped: number;
  flippedTo: number[];
}

function emptyStats(numClasses: number): EpochStats {
  return { samples: 0, lossSum: 0, adversarialBatches: 0, adversarialSamples: 0, flipped: 0, flippedTo: new Array(numClasses).fill(0) };
}

function addBatch(stats: EpochStats, b: Batch, { loss, attack }: StepResult): void {
  stats.lossSum += loss * b.keys.length;
  stats.samples += b.keys.length;
  if (attack) {
    stats.adversarialBatches++;
    stats.adversarialSamples += b.keys.length;
    stats.flipped += attack.flipped;
    attack.flippedTo.forEach((n, c) => (stats.flippedTo[c] += n));
  }
}

function rowOf(stats: EpochStats, spec: EpochSpec, round: number, epoch: number): Omit<EpochRow, 'seconds'> {
  const top = Math.max(...stats.flippedTo);
  return {
    round,
    epoch,
    adversarialShare: spec.adversarial.adversarialShare,
    adversarialBatches: stats.adversarialBatches,
    trusted: spec.keys?.size ?? stats.samples,
    samples: stats.samples,
    loss: stats.samples ? stats.lossSum / stats.samples : 0,
    flipRate: stats.adversarialSamples ? stats.flipped / stats.adversarialSamples : null,
    concentration: stats.flipped ? top / stats.flipped : null,
    concentrationClass: stats.flipped ? stats.flippedTo.indexOf(top) : null,
  };
}
