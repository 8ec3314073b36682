import * as tf from '@tensorflow/tfjs';
import type { PurifyConfig } from '../config/schema.js';
import { inputError } from '../errors.js';
import { AdaptiveController, ScheduleController } from '../pipeline/controller.js';
import { pipe, type Described, type Stage } from '../pipeline/pipe.js';
import { hashUniform } from '../pipeline/random.js';
import { ScoreStore } from '../pipeline/score-store.js';
import type { Sample } from '../sources/types.js';
import { batch, pack } from '../stages/batch.js';
import type { AttackStats, Batch } from '../stages/batch-types.js';
import { assignLabels } from '../stages/label.js';
import { mix } from '../stages/mix.js';
import { attackStats, inProcessAttacker, pgd, formatEps, type Attacker, type PgdOptions } from '../stages/pgd.js';
import { cosine, predictLogits, topIndices } from '../stages/score.js';
import { ownPixels, shuffle } from '../stages/shuffle.js';
import { prefetch } from '../stages/prefetch.js';
import { skip } from '../stages/skip.js';
import { applyFlatGradients, sgdMomentum, trainStep } from '../stages/train.js';
import { checkpointFile, restoreTraining, saveCheckpoint, type Checkpoint } from '../pipeline/checkpoint.js';
import { failpoint } from '../pipeline/failpoints.js';
import { StoppedError, type StopSignal } from '../pipeline/stop-signal.js';
import type { ProgressSink } from '../report/progress.js';
import type { BackendRequest } from '../backend/select.js';
import { ComputePool, weightsSnapshot, type WeightsSnapshot } from '../pipeline/compute-pool.js';
import { chooseEps, probeEps, type ProbePoint } from './probe.js';

/**
 * Progressive Backdoor Erasing (Mu, Niu, Wang, Zhou, Wang, Liu, Guo, "Progressive Backdoor Erasing via
 * connecting Backdoor and Adversarial Attacks", CVPR 2023, arXiv 2202.06312), without clean extra data.
 * DESIGN §2: reference pass r = f0(x); a seeded random initial trusted set; per round, fine-tuning on the
 * trusted set with a share of batches replaced by PGD examples against the current model; at the end of each
 * round s = cos(r, f_t(x)) over all data and the next trusted set is the top keepRatio by s.
 *
 * The model is fine-tuned in place.
 */

/** The corpus a defense reads: restartable, optionally keeping only some keys (selected before decoding). */
export interface Corpus {
  samples(keys?: ReadonlySet<string>, keysName?: string): Described<Sample>;
}

export interface EpochRow {
  round: number;
  epoch: number;
  adversarialShare: number;
  adversarialBatches: number;
  trusted: number;
  samples: number;
  loss: number;
  /** Share of adversarial samples whose prediction PGD moved away from the label; empty when none. */
  flipRate: number | null;
  /** Adversarial target concentration q and its class (over flipped predictions); empty when none flipped. */
  concentration: number | null;
  concentrationClass: number | null;
  seconds: number;
  acc?: number;
  asr?: number;
}

export interface PurifyOptions {
  config: PurifyConfig;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Called after each epoch with the model as it stands (e.g. to evaluate it); its fields join the row. */
  evaluate?: (model: tf.LayersModel) => { acc?: number; asr?: number };
  onEpoch?: (row: EpochRow, rows: EpochRow[]) => Promise<void> | void;
  shuffleBuffer?: number;
  /** Checkpoints in `dir` at every epoch end, every `everyMinutes` and on a stop request; `resume` continues one. */
  checkpoint?: { dir: string; everyMinutes?: number; resume?: Checkpoint<PbeState> };
  stop?: StopSignal;
  progress?: ProgressSink;
  /** PGD and scoring on a worker pool (workers > 0) or on this thread (0). */
  compute?: ComputeOptions;
}

export interface ComputeOptions {
  workers: number;
  backend: BackendRequest;
  /** 'steps': replicas get the weights after every train step (exact); 'epoch': once per epoch, with look-ahead. */
  weightsRefresh: 'steps' | 'epoch';
}

export interface PurifyResult {
  store: ScoreStore;
  /** Final trusted set: the top keepRatio (last) of the data by the final similarity. */
  trusted: Set<string>;
  eps: number;
  lr: number;
  epsReason: string;
  probe: ProbePoint[];
  rows: EpochRow[];
  pipeline: string;
}

/** Where a run stands; with the store, the weights and the optimizer slots it is a checkpoint. */
export interface PbeState {
  round: number;
  epoch: number;
  /** Batches of the current epoch already trained on, and their running sums. */
  batchesDone: number;
  partial: EpochStats | null;
  partialSeconds: number;
  /** With weights refreshed per epoch: the weights the current epoch's attacks use. */
  epochWeights?: WeightsSnapshot;
  trusted: string[];
  eps: number;
  lr: number;
  epsReason: string;
  probe: ProbePoint[];
  rows: EpochRow[];
}

export async function purifyPbe(model: tf.LayersModel, corpus: Corpus, opts: PurifyOptions): Promise<PurifyResult> {
  const progress = opts.progress ?? (() => {});
  const numClasses = model.outputs[0].shape[1] as number;
  const resume = opts.checkpoint?.resume;
  const compute = opts.compute ?? { workers: 0, backend: 'auto', weightsRefresh: 'steps' };
  const pool = compute.workers > 0 ? new ComputePool({ workers: compute.workers, backend: compute.backend, model }) : undefined;
  const logitsOf = async (x: Float32Array, shape: [number, number, number, number]) => (pool ? pool.logits(x, shape) : predictLogits(model, x, shape));
  try {
    return await runPbe(model, corpus, opts, { pool, logitsOf, compute, numClasses, resume, progress });
  } finally {
    await pool?.destroy();
    progress({ kind: 'end' });
  }
}

interface RunContext {
  pool: ComputePool | undefined;
  logitsOf: LogitsOf;
  compute: ComputeOptions;
  numClasses: number;
  resume: Checkpoint<PbeState> | undefined;
  progress: ProgressSink;
}

type LogitsOf = (x: Float32Array, shape: [number, number, number, number]) => Promise<Float32Array> | Float32Array;

async function runPbe(model: tf.LayersModel, corpus: Corpus, opts: PurifyOptions, ctx: RunContext): Promise<PurifyResult> {
  const { config, log } = opts;
  const { pool, logitsOf, compute, numClasses, resume, progress } = ctx;
  let store: ScoreStore;
  let state: PbeState;
  if (resume) {
    store = ScoreStore.fromSnapshot(resume.store);
    state = resume.state;
    log(`resuming at round ${state.round} epoch ${state.epoch} batch ${state.batchesDone} (checkpoint of ${resume.savedAt})`);
  } else {
    const reference = await referencePass(logitsOf, corpus, config, numClasses, log, progress);
    store = reference.store;
    if (store.size === 0) throw new Error('purify: the data has no samples');
    const { eps, epsReason, probe } = pickEps(model, reference.probe, store, config, log);
    const atEps = probe.find((p) => p.eps === eps);
    if (atEps && atEps.concentration < 0.5) {
      log(
        `warning: at eps ${formatEps(eps)} only ${(atEps.concentration * 100).toFixed(0)}% of PGD flips go to one class (${atEps.concentrationClass}); ` +
          'PBE relies on adversarial examples piling up on the backdoor target, so this backdoor (if any; a patch trigger, for example) may survive purification',
        { concentration: atEps.concentration, concentrationClass: atEps.concentrationClass },
      );
    }
    const lr = config.optimizer.lr === 'auto' ? config.probe.lr : config.optimizer.lr;
    if (config.optimizer.lr === 'auto') log(`learning rate ${lr} (optimizer.lr is "auto": the probe's learning rate)`);
    const trusted = [...initialTrustedSet(store, config.initialFraction, config.seed)];
    state = { round: 0, epoch: 0, batchesDone: 0, partial: null, partialSeconds: 0, trusted, eps, lr, epsReason, probe, rows: [] };
  }
  const pgdOptions = { eps: state.eps, alpha: state.eps * config.pgd.alphaRatio, steps: config.pgd.steps, randomStart: config.pgd.randomStart };
  const optimizer = sgdMomentum(state.lr, config.optimizer.momentum);
  if (resume) await restoreTraining(resume, model, optimizer);
  const { attackStage, step, summary: stepSummary } = trainer(model, optimizer, ctx, pgdOptions, state.lr, config.optimizer.weightDecay);
  const initialConcentration = state.probe.find((p) => p.eps === state.eps)?.concentration ?? 1;
  const controller = config.controller.mode === 'adaptive' ? new AdaptiveController(config, initialConcentration) : new ScheduleController(config);
  if (config.controller.mode === 'adaptive') log(`adaptive controller: adversarial share follows q from ${initialConcentration.toFixed(2)} (infected) down to ${config.controller.cleanConcentration} (clean)`);

  let lastCheckpoint = performance.now();
  const save = async () => {
    if (!opts.checkpoint) return;
    const seconds = await saveCheckpoint(opts.checkpoint.dir, state, store.snapshot(), model, optimizer);
    lastCheckpoint = performance.now();
    log('checkpoint written', { round: state.round, epoch: state.epoch, batch: state.batchesDone, seconds });
  };
  const checkpointDue = () =>
    opts.checkpoint?.everyMinutes !== undefined && performance.now() - lastCheckpoint > opts.checkpoint.everyMinutes * 60_000;

  let pipeline = '';
  try {
    while (state.round < controller.rounds) {
      const { round, epoch } = state;
      if (epoch === controller.epochs(round)) {
        pool?.refreshWeights(model);
        await similarityPass(logitsOf, corpus, store, config.batchSize, log, round, progress);
        const keep = controller.keepRatio(round);
        state.trusted = topIndices(store.similarities(), keep).map((i) => store.keys[i]);
        if (round < controller.rounds - 1) log(`round ${round}: next trusted set is the top ${keep} by similarity (${state.trusted.length} samples)`);
        state.round++;
        state.epoch = 0;
        await save();
        continue;
      }
      const started = performance.now() - state.partialSeconds * 1000;
      if (pool && compute.weightsRefresh === 'epoch') {
        // the epoch's attacks all use the weights it started with, also after a resume in the middle of it
        state.epochWeights ??= weightsSnapshot(model);
        pool.useWeights(state.epochWeights);
      }
      const plan = controller.plan(round, epoch, state.rows);
      const epochSeed = config.seed * 7919 + round * 101 + epoch;
      const trusted = new Set(state.trusted);
      const batches = pipe(
        corpus.samples(trusted, `S_${round}`),
        assignLabels({
          source: config.labels,
          pseudoLabel: (key) => store.pseudoLabel(key),
          onMissing: (s, reason) => {
            throw inputError(s, `${reason}; --labels ${config.labels} needs it`);
          },
        }),
        shuffle({ bufferSize: opts.shuffleBuffer ?? 10_000, seed: epochSeed, hold: ownPixels }),
        batch({ size: config.batchSize }),
        mix(plan, epochSeed),
        skip<Batch>(state.batchesDone),
        prefetch<Batch>(2),
      );
      const chain = attackStage ? pipe(batches, attackStage()) : batches;
      if (epoch === 0 || pipeline === '') log(`round ${round}: ${chain.summary} -> ${stepSummary}`);
      pipeline = `${chain.summary} -> ${stepSummary}`;
      const stats = state.partial ?? emptyStats(numClasses);
      progress({ kind: 'epoch', round, rounds: controller.rounds, epoch, epochs: controller.epochs(round), samples: trusted.size });
      for await (const b of chain.output) {
        addBatch(stats, b, await step(b));
        progress({ kind: 'step', done: stats.samples });
        failpoint('train-step');
        state.batchesDone++;
        if (opts.stop?.stopRequested || checkpointDue()) {
          state.partial = stats;
          state.partialSeconds = (performance.now() - started) / 1000;
          await save();
          if (opts.stop?.stopRequested) throw new StoppedError(opts.stop.stopRequested, checkpointFile(opts.checkpoint?.dir ?? '.'));
        }
      }
      const row: EpochRow = {
        round,
        epoch,
        adversarialShare: plan.adversarialShare,
        adversarialBatches: stats.adversarialBatches,
        trusted: trusted.size,
        samples: stats.samples,
        loss: stats.samples ? stats.lossSum / stats.samples : 0,
        flipRate: stats.adversarialSamples ? stats.flipped / stats.adversarialSamples : null,
        concentration: stats.flipped ? Math.max(...stats.flippedTo) / stats.flipped : null,
        concentrationClass: stats.flipped ? stats.flippedTo.indexOf(Math.max(...stats.flippedTo)) : null,
        seconds: (performance.now() - started) / 1000,
        ...opts.evaluate?.(model),
      };
      state.rows.push(row);
      state.epoch++;
      state.batchesDone = 0;
      state.epochWeights = undefined;
      state.partial = null;
      state.partialSeconds = 0;
      log(`round ${round} epoch ${epoch}`, { ...row });
      await opts.onEpoch?.(row, state.rows);
      await save();
    }
  } finally {
    optimizer.dispose();
  }
  const { eps, lr, epsReason, probe, rows } = state;
  return { store, trusted: new Set(state.trusted), eps, lr, epsReason, probe, rows, pipeline };
}

interface EpochStats {
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

/** The summaries of the stages after mix, as purifyPbe runs them for this pool size and weights refresh. */
export function attackAndTrainStages(attack: string, workers: number, weightsRefresh: 'steps' | 'epoch', lr: number | 'auto'): string[] {
  const train = `train(sgd lr=${lr})`;
  if (workers === 0) return [`pgd(${attack}, main thread)`, train];
  if (weightsRefresh === 'epoch') return [`pgd(${attack}, ${workers} workers, weights every epoch)`, train];
  return [`pgd+gradients(${attack}, data-parallel on ${workers} worker${workers === 1 ? '' : 's'})`, train];
}

interface StepResult {
  /** The batch's mean cross-entropy. */
  loss: number;
  attack?: AttackStats;
}

/**
 * How batches become train steps, by where the compute runs:
 *  - main thread: a pgd stage attacks adversarial batches, then one SGD step here;
 *  - pool, weights every epoch: the pgd stage attacks the next batches on the workers (look-ahead, stale weights)
 *    while the main thread takes the SGD steps;
 *  - pool, weights every step (exact): data-parallel; each worker attacks its part of the batch and computes that
 *    part's gradients with the current weights, and the main thread sums them and applies the step.
 */
function trainer(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  ctx: RunContext,
  pgdOptions: PgdOptions,
  lr: number,
  weightDecay: number,
): { attackStage?: () => Stage<Batch, Batch>; step: (b: Batch) => Promise<StepResult>; summary: string } {
  const { pool, compute, numClasses } = ctx;
  const attackSummary = `eps=${formatEps(pgdOptions.eps)}, steps=${pgdOptions.steps}`;
  if (pool && compute.weightsRefresh === 'steps') {
    return {
      step: async (b) => {
        pool.refreshWeights(model); // the model as it stands: after the last step, or as restored from a checkpoint
        const { grads, lossSum, predicted } = await pool.gradients(b, b.adversarial ? pgdOptions : null);
        applyFlatGradients(model, optimizer, grads, weightDecay);
        return { loss: lossSum / b.keys.length, attack: predicted ? attackStats(predicted, b.labels, numClasses) : undefined };
      },
      summary: attackAndTrainStages(attackSummary, pool.workers, 'steps', lr).join(' -> '),
    };
  }
  const lookahead = pool ? compute.workers : 0;
  const attacker: Attacker = pool ? (b) => pool.pgd(b.x, b.labels, b.shape, pgdOptions) : inProcessAttacker(() => model, pgdOptions);
  return {
    attackStage: () => pgd(attacker, { pgd: pgdOptions, numClasses, lookahead, where: pool ? `${pool.workers} workers, weights every epoch` : 'main thread' }),
    step: async (b) => ({ loss: trainStep(model, optimizer, b, weightDecay), attack: b.attack }),
    summary: `train(sgd lr=${lr})`, // the pgd stage describes itself
  };
}

/** Runs `fn` on inference batches of decoded samples (labels unused). */
async function forEachInferenceBatch(
  samples: AsyncIterable<Sample>,
  size: number,
  fn: (batch: Sample[], x: Float32Array, shape: [number, number, number, number]) => Promise<void>,
): Promise<void> {
  let pending: Sample[] = [];
  const flush = async () => {
    const b = pack(pending.map((s) => ({ ...s, label: -1 })));
    const batch = pending;
    pending = [];
    await fn(batch, b.x, b.shape);
  };
  for await (const s of samples) {
    pending.push(s);
    if (pending.length === size) await flush();
  }
  if (pending.length > 0) await flush();
}

interface ReferenceResult {
  store: ScoreStore;
  probe: Sample[];
}

async function referencePass(
  logitsOf: LogitsOf,
  corpus: Corpus,
  config: PurifyConfig,
  numClasses: number,
  log: PurifyOptions['log'],
  progress: ProgressSink,
): Promise<ReferenceResult> {
  const store = new ScoreStore(numClasses);
  const probe: Sample[] = [];
  let duplicates = 0;
  const started = performance.now();
  await forEachInferenceBatch(corpus.samples().output, 256, async (samples, x, shape) => {
    const logits = await logitsOf(x, shape);
    failpoint('reference-batch');
    samples.forEach((s, i) => {
      if (!store.add(s.key, s.url, logits, i * numClasses, s.label)) duplicates++;
      else if (probe.length < config.probe.samples && hashUniform(s.key, config.seed + 1) < 0.5) probe.push(s);
    });
    progress({ kind: 'pass', name: 'reference', done: store.size + duplicates });
  });
  if (duplicates > 0) log(`reference pass: ${duplicates} duplicate keys ignored (first occurrence kept)`);
  log(`reference pass: ${store.size} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { store, probe };
}

/** Measures PGD on the probe samples against the labels training will use (pseudo-labels from the reference pass, or the given ones). */
function pickEps(model: tf.LayersModel, probeSamples: Sample[], store: ScoreStore, config: PurifyConfig, log: PurifyOptions['log']) {
  const labelOf = (s: Sample) => (config.labels === 'given' && s.label !== undefined ? s.label : store.pseudoLabel(s.key)!);
  const packed = probeSamples.length ? pack(probeSamples.map((s) => ({ ...s, label: labelOf(s) }))) : undefined;
  const measure = (grid: number[]) => (packed ? probeEps(model, packed.x, packed.shape, packed.labels, grid, config.pgd) : []);
  if (config.pgd.eps !== 'auto') {
    const probe = measure([config.pgd.eps]);
    return { eps: config.pgd.eps, epsReason: 'set by config', probe };
  }
  const probe = measure(config.probe.epsGrid);
  const { eps, reason } = chooseEps(probe, config.probe.minFlipRate);
  log(`PGD eps ${formatEps(eps)} chosen by probe on ${probeSamples.length} samples: ${reason}`);
  return { eps, epsReason: reason, probe };
}

function initialTrustedSet(store: ScoreStore, fraction: number, seed: number): Set<string> {
  const draws = Float32Array.from(store.keys, (k) => hashUniform(k, seed));
  return new Set(topIndices(draws, fraction).map((i) => store.keys[i]));
}

async function similarityPass(
  logitsOf: LogitsOf,
  corpus: Corpus,
  store: ScoreStore,
  size: number,
  log: PurifyOptions['log'],
  round: number,
  progress: ProgressSink,
): Promise<void> {
  const started = performance.now();
  const k = store.numClasses;
  let done = 0;
  progress({ kind: 'pass', name: 'scoring', done, total: store.size });
  await forEachInferenceBatch(corpus.samples().output, Math.max(size, 256), async (samples, x, shape) => {
    const logits = await logitsOf(x, shape);
    failpoint('similarity-batch');
    samples.forEach((s, i) => {
      const index = store.indexOf(s.key);
      if (index === undefined) return;
      const [ref, offset] = store.reference(index);
      store.setSimilarity(index, cosine(ref, offset, logits, i * k, k));
    });
    done += samples.length;
    progress({ kind: 'pass', name: 'scoring', done, total: store.size });
  });
  log(`round ${round}: similarity pass over ${store.size} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
