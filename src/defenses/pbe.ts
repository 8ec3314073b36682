import * as tf from '@tensorflow/tfjs';
import type { PurifyConfig } from '../config/schema.js';
import { inputError } from '../errors.js';
import { AdaptiveController, ScheduleController } from '../pipeline/controller.js';
import { Compute, forEachInferenceBatch, mainThread, type ComputeOptions } from '../pipeline/compute.js';
import type { Corpus } from '../pipeline/corpus.js';
import { epochChain, fit, type EpochRow, type FitCheckpointState, type FitPlan } from '../pipeline/engine.js';
import { hashUniform } from '../pipeline/random.js';
import { ScoreStore, type ScoreStoreSnapshot, type SpillOptions } from '../pipeline/score-store.js';
import { adversarialTrainer } from '../pipeline/trainers.js';
import type { Checkpoint } from '../pipeline/checkpoint.js';
import { failpoint } from '../pipeline/failpoints.js';
import type { StopSignal } from '../pipeline/stop-signal.js';
import type { ProgressSink } from '../report/progress.js';
import type { Sample } from '../sources/types.js';
import { formatEps, type PgdOptions } from '../stages/pgd.js';
import { argmax, cosine, softmaxCosine, topIndices, topIndicesPerClass } from '../stages/score.js';
import { sgdMomentum } from '../stages/train.js';
import { chooseEps, probeEps, ProbeImages, type ProbePoint } from './probe.js';
import { flagSuspicious, noFlag, type Flag } from '../eval/flag.js';
import { chooseGenerators } from '../adversarial/choose.js';
import type { GeneratorName } from '../adversarial/registry.js';
import { repairLabels } from '../adversarial/repair.js';
import { probeTriggers, type ClassInversion } from '../adversarial/trigger-probe.js';
import type { InvertedTrigger } from '../adversarial/trigger-inversion.js';
import { unlearnPerturbation, unlearnTrigger } from '../adversarial/trigger-stamp.js';
import { probePerturbations, type ClassPerturbation } from '../adversarial/universal-probe.js';
import { loadPurifyConfig, mergeConfig } from '../config/load.js';
import { writeScores } from '../report/run-dir.js';
import { writePurifyReport } from '../report/write-report.js';
import type { Defense } from './defense.js';

/**
 * Progressive Backdoor Erasing (Mu, Niu, Wang, Zhou, Wang, Liu, Guo, "Progressive Backdoor Erasing via
 * connecting Backdoor and Adversarial Attacks", CVPR 2023, arXiv 2202.06312), without clean extra data.
 * DESIGN §2: reference pass r = f0(x); a seeded random initial trusted set; per round, fine-tuning on the
 * trusted set with a share of batches replaced by PGD examples against the current model; at the end of each
 * round s = cos(r, f_t(x)) over all data and the next trusted set is the top keepRatio by s (config `similarity`:
 * softmax probabilities or the authors' logits; `keepWithin`: within each class f_t predicts, or over all data).
 *
 * The model is fine-tuned in place, on the fine-tuning engine (pipeline/engine.ts).
 */

export interface PurifyOptions {
  config: PurifyConfig;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Called after each epoch with the model as it stands (e.g. to evaluate it); its fields join the row. */
  evaluate?: (model: tf.LayersModel) => { acc?: number; asr?: number };
  onEpoch?: (row: EpochRow, rows: EpochRow[]) => Promise<void> | void;
  shuffleBuffer?: number;
  /** Checkpoints in `dir` at every epoch end, every `everyMinutes` and on a stop request; `resume` continues one. */
  checkpoint?: { dir: string; everyMinutes?: number; resume?: PbeCheckpoint };
  stop?: StopSignal;
  progress?: ProgressSink;
  /** PGD and scoring on a worker pool (workers > 0) or on this thread (0). */
  compute?: ComputeOptions;
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
  /** The samples flagged as poisoned by the run's own threshold on the final suspicion. */
  flag: Flag;
  /** The data purification the run used (config `similarity` and `keepWithin`, "auto" resolved). */
  purification: PurificationRule;
  /** What trigger inversion found, and which generators the run used. */
  findings: Pick<PbeState, 'trigger' | 'inversion' | 'inversionReason' | 'suspects' | 'generators' | 'backdoorSignal'> & {
    tied: RecoveredTrigger[];
    /** What the universal additive probe found (adversarial/universal-probe.ts). */
    perturbation: RecoveredPerturbation | null;
    universal: ClassPerturbation[];
    universalReason: string;
  };
}

/** PBE's state in a checkpoint, beside the engine's. */
export interface PbeState {
  store: ScoreStoreSnapshot;
  trusted: string[];
  eps: number;
  lr: number;
  epsReason: string;
  probe: ProbePoint[];
  /** The trigger recovered by inversion (mask and pattern as plain arrays), or null. */
  trigger: RecoveredTrigger | null;
  /** Triggers of classes that tie with the flagged one (adversarial/trigger-probe.ts), unlearned beside it; absent in older checkpoints. */
  tied?: RecoveredTrigger[];
  inversion: ClassInversion[];
  inversionReason: string;
  /** Likely poisoned samples (key, the class the infected model predicts once the trigger is covered). */
  suspects: [string, number][];
  /** The generators the probes chose (adversarial/choose.ts). */
  generators: GeneratorName[];
  /** Whether either probe saw a backdoor; without one no sample is flagged. */
  backdoorSignal: boolean;
  /** The universal additive probe's flagged perturbation (δ as a plain array), or null; absent in older checkpoints. */
  perturbation?: RecoveredPerturbation | null;
  /** The perturbations perturbation unlearning adds: the flagged one, or every class's (`universal.unlearn: "all"`). */
  unlearned?: RecoveredPerturbation[];
  universal?: ClassPerturbation[];
  universalReason?: string;
}

export interface RecoveredPerturbation {
  target: number;
  delta: number[];
  norm: number;
  success: number;
}

export interface RecoveredTrigger {
  target: number;
  mask: number[];
  pattern: number[];
  maskL1: number;
  success: number;
}

export type PbeCheckpoint = Checkpoint<FitCheckpointState<PbeState>>;

export async function purifyPbe(model: tf.LayersModel, corpus: Corpus, opts: PurifyOptions): Promise<PurifyResult> {
  const compute = new Compute(model, opts.compute ?? mainThread);
  try {
    return await runPbe(model, corpus, opts, compute);
  } finally {
    await compute.destroy();
    opts.progress?.({ kind: 'end' });
  }
}

async function runPbe(model: tf.LayersModel, corpus: Corpus, opts: PurifyOptions, compute: Compute): Promise<PurifyResult> {
  const { config, log } = opts;
  const progress = opts.progress ?? (() => {});
  const resume = opts.checkpoint?.resume;
  let store: ScoreStore;
  let state: PbeState;
  if (resume) {
    state = resume.state.algorithm;
    store = ScoreStore.fromSnapshot(state.store, opts.checkpoint?.dir);
  } else {
    const numClasses = model.outputs[0].shape[1] as number;
    const spill = opts.checkpoint && { dir: opts.checkpoint.dir, above: config.scoreStore.spillAbove };
    const reference = await referencePass(compute, corpus, config, numClasses, log, progress, opts.stop, spill);
    store = reference.store;
    if (store.size === 0) throw inputError({ url: 'purify' }, 'the data has no usable samples (every one was skipped as bad: see bad-samples.csv)');
    const { eps, epsReason, probe } = pickEps(model, reference.probe, store, config, log);
    const atEps = probe.find((p) => p.eps === eps);
    const lr = config.optimizer.lr === 'auto' ? config.probe.lr : config.optimizer.lr;
    if (config.optimizer.lr === 'auto') log(`learning rate ${lr} (optimizer.lr is "auto": the probe's learning rate)`);
    const trusted = [...initialTrustedSet(store, config.initialFraction, config.seed)];
    const inversion = invertOnProbe(model, reference.probe, config, log);
    const recovered = (t: InvertedTrigger): RecoveredTrigger => ({ ...t, mask: [...t.mask], pattern: [...t.pattern] });
    const trigger = inversion.trigger && recovered(inversion.trigger);
    const tied = inversion.tied.map(recovered);
    const universal = universalOnProbe(model, reference.probe, config, log);
    const perturbation = universal.perturbation && { ...universal.perturbation, delta: [...universal.perturbation.delta] };
    const choice = chooseGenerators(atEps, inversion, 0.5, universal, config.universal.unlearn === 'all');
    const toUnlearn = universal.perturbation ? [universal.perturbation] : config.universal.unlearn === 'all' ? universal.perturbations : [];
    const unlearned = toUnlearn.map(({ target, delta, norm, success }) => ({ target, delta: [...delta], norm, success }));
    log(`generators: ${choice.names.join(' + ')} (${choice.reason})`);
    let suspects: [string, number][] = [];
    if (inversion.trigger && choice.names.includes('trigger-unlearning')) {
      for (const t of [inversion.trigger, ...inversion.tied]) {
        const started = performance.now();
        const found = await repairLabels((x, shape) => compute.logits(x, shape), corpus, t, store, config.inference, opts.stop);
        suspects.push(...found);
        log(`repair pass: ${found.length} samples leave class ${t.target} once the recovered trigger's area is covered (${((performance.now() - started) / 1000).toFixed(1)} s)`);
      }
    }
    if (!choice.backdoorSignal) {
      log('warning: no probe sees a backdoor (no trigger is an outlier by mask size or universal perturbation norm, PGD flips do not pile up on one class); the model may be clean; fine-tuning with ' + choice.names.join(' + '), {
        concentration: atEps?.concentration,
        concentrationClass: atEps?.concentrationClass,
      });
    }
    state = { store: store.snapshot(), trusted, eps, lr, epsReason, probe, trigger, tied, inversion: inversion.classes, inversionReason: inversion.reason, suspects, generators: choice.names, backdoorSignal: choice.backdoorSignal, perturbation, unlearned, universal: universal.classes, universalReason: universal.reason };
  }
  const initialConcentration = state.probe.find((p) => p.eps === state.eps)?.concentration ?? 1;
  const controller = config.controller.mode === 'adaptive' ? new AdaptiveController(config, initialConcentration) : new ScheduleController(config);
  if (config.controller.mode === 'adaptive') log(`adaptive controller: adversarial share follows q from ${initialConcentration.toFixed(2)} (infected) down to ${config.controller.cleanConcentration} (clean)`);

  const rule = purificationRule(config, state.backdoorSignal);
  log(`data purification: ${rule.similarity} similarity, trusted share taken ${rule.keepWithin === 'predicted-class' ? 'within each class the model predicts' : 'over all data'}${config.similarity === 'auto' || config.keepWithin === 'auto' ? ` (auto: ${state.backdoorSignal ? 'a probe saw a backdoor' : 'no probe saw a backdoor, so as published'})` : ''}`);
  const optimizer = sgdMomentum(state.lr, config.optimizer.momentum);
  const unlearning = state.trigger && state.generators.includes('trigger-unlearning') && {
    triggers: [state.trigger, ...(state.tied ?? [])].map((t) => ({ target: t.target, mask: Float32Array.from(t.mask), pattern: Float32Array.from(t.pattern) })),
    share: config.inversion.unlearnShare,
    relabel: new Map(state.suspects),
  };
  const perturbationUnlearning = state.unlearned?.length && state.generators.includes('perturbation-unlearning') && {
    perturbations: state.unlearned.map((p) => ({ target: p.target, delta: Float32Array.from(p.delta) })),
    share: config.universal.unlearnShare,
  };
  try {
    const { rows, pipeline } = await fit(model, {
      ...pbeFitOptions(model, corpus, config, compute, optimizer, state, controller, store, opts.shuffleBuffer),
      log,
      evaluate: opts.evaluate,
      callbacks: [
        { onEpochEnd: (row, p) => opts.onEpoch?.(row, p.rows) },
        { epochStages: (p) => (unlearning ? [unlearnTrigger({ ...unlearning, seed: config.seed * 7919 + p.round * 101 + p.epoch })] : []) },
        { epochStages: (p) => (perturbationUnlearning ? [unlearnPerturbation({ ...perturbationUnlearning, seed: config.seed * 7919 + p.round * 101 + p.epoch })] : []) },
        {
          onRoundEnd: async ({ round }) => {
            if (compute.workers > 0) compute.pool().refreshWeights(model);
            const predicted = await similarityPass(compute, corpus, store, { ...config, ...rule }, log, round, progress, opts.stop);
            const keep = controller.keepRatio(round);
            const kept = rule.keepWithin === 'predicted-class' ? topIndicesPerClass(store.similarities(), predicted, keep) : topIndices(store.similarities(), keep);
            state.trusted = kept.map((i) => store.keys[i]);
            state.store = store.snapshot();
            const within = rule.keepWithin === 'predicted-class' ? ' within each class the model now predicts' : '';
            if (round < controller.rounds - 1) log(`round ${round}: next trusted set is the top ${keep} by similarity${within} (${state.trusted.length} samples)`);
          },
        },
      ],
      checkpoint: opts.checkpoint && { dir: opts.checkpoint.dir, everyMinutes: opts.checkpoint.everyMinutes },
      algorithmState: () => state,
      resume,
      stop: opts.stop,
      progress,
    });
    const { eps, lr, epsReason, probe } = state;
    const flag = state.backdoorSignal ? flagSuspicious(store.similarities().map((sim) => 1 - sim)) : noFlag(store.size);
    log(
      state.backdoorSignal
        ? `flagged ${flag.count} of ${store.size} samples as poisoned (suspicion >= ${flag.threshold.toFixed(4)}, Otsu's threshold on the chord distance)`
        : `flagged no sample as poisoned: no probe saw a backdoor`,
    );
    const { trigger, tied = [], inversion, inversionReason, suspects, generators, backdoorSignal } = state;
    const perturbation = state.perturbation ?? null;
    const universal = state.universal ?? [];
    const universalReason = state.universalReason ?? 'universal probe not run';
    return { store, trusted: new Set(state.trusted), eps, lr, epsReason, probe, rows, pipeline, flag, purification: rule, findings: { trigger, tied, inversion, inversionReason, suspects, generators, backdoorSignal, perturbation, universal, universalReason } };
  } finally {
    optimizer.dispose();
    store.close(); // what the run returns (similarities, keys, labels) stays readable
  }
}

/** The engine's plan, trainer, labels and batching for PBE: what the run uses and --dry-run describes. */
function pbeFitOptions(
  model: tf.LayersModel,
  corpus: Corpus,
  config: PurifyConfig,
  compute: Compute,
  optimizer: tf.Optimizer,
  state: Pick<PbeState, 'eps' | 'lr' | 'trusted' | 'generators' | 'suspects'>,
  controller: ScheduleController,
  store: ScoreStore | undefined,
  shuffleBuffer = 10_000,
) {
  const pgd: PgdOptions = { eps: state.eps, alpha: state.eps * config.pgd.alphaRatio, steps: config.pgd.steps, randomStart: config.pgd.randomStart };
  const plan: FitPlan = {
    rounds: controller.rounds,
    epochs: (round) => controller.epochs(round),
    epoch: ({ round, epoch, rows }) => ({
      // the suspects train in every epoch, with their repaired labels: the real trigger, unlearned
      keys: new Set([...state.trusted, ...state.suspects.map(([key]) => key)]),
      keysName: state.suspects.length ? `S_${round} + ${state.suspects.length} suspects` : `S_${round}`,
      adversarial: state.generators.includes('linf-pgd') ? controller.plan(round, epoch, rows) : { ...controller.plan(round, epoch, rows), adversarialShare: 0 },
      seed: config.seed * 7919 + round * 101 + epoch,
    }),
  };
  const attackSummary = Number.isNaN(state.eps) ? `eps=auto (probe), steps=${config.pgd.steps}` : undefined;
  return {
    corpus,
    plan,
    optimizer,
    trainer: adversarialTrainer(model, optimizer, compute, { pgd, attackSummary, weightDecay: config.optimizer.weightDecay, trainSummary: `train(sgd lr=${state.lr})` }),
    labels: { source: config.labels, pseudoLabel: (key: string) => store?.pseudoLabel(key), requiredBy: `--labels ${config.labels} needs it` },
    batchSize: config.batchSize,
    shuffleBuffer,
  };
}

/** The chain of PBE's first epoch as a run with this config and compute would build it (`pbe purify --dry-run`). */
export function describePbe(model: tf.LayersModel, corpus: Corpus, config: PurifyConfig, compute: ComputeOptions): string {
  const controller = new ScheduleController(config);
  const eps = config.pgd.eps === 'auto' ? NaN : config.pgd.eps;
  const lr = config.optimizer.lr === 'auto' ? 'auto' : config.optimizer.lr;
  const optimizer = sgdMomentum(1, config.optimizer.momentum); // never stepped; the summary shows the configured lr
  try {
    const state = { eps, lr: lr as number, trusted: [], generators: ['linf-pgd' as const], suspects: [] };
    const options = pbeFitOptions(model, corpus, config, new Compute(model, compute), optimizer, state, controller, undefined);
    return epochChain(corpus, options.plan.epoch({ round: 0, epoch: 0, batchesDone: 0, partial: null, partialSeconds: 0, rows: [] }), { ...options, skip: 0 }).summary;
  } finally {
    optimizer.dispose();
  }
}

interface ReferenceResult {
  store: ScoreStore;
  probe: ProbeImages;
}

async function referencePass(
  compute: Compute,
  corpus: Corpus,
  config: PurifyConfig,
  numClasses: number,
  log: PurifyOptions['log'],
  progress: ProgressSink,
  stop?: StopSignal,
  spill?: SpillOptions,
): Promise<ReferenceResult> {
  const store = new ScoreStore(numClasses, 1024, spill);
  const probe = new ProbeImages(config.probe.samples);
  let duplicates = 0;
  const started = performance.now();
  try {
    await forEachInferenceBatch(corpus.samples().output, config.inference, async (samples, x, shape) => {
      const logits = await compute.logits(x, shape);
      failpoint('reference-batch');
      samples.forEach((s, i) => {
        if (!store.add(s.key, s.url, logits, i * numClasses, s.label)) duplicates++;
        else if (probe.size < config.probe.samples && hashUniform(s.key, config.seed + 1) < 0.5) probe.add(s);
      });
      progress({ kind: 'pass', name: 'reference', done: store.size + duplicates });
    }, stop);
  } catch (err) {
    store.close();
    throw err;
  }
  if (store.spillPath) log(`reference pass: ${store.size} samples > scoreStore.spillAbove ${spill!.above}: reference logits kept in ${store.spillPath}`);
  if (duplicates > 0) log(`reference pass: ${duplicates} duplicate keys ignored (first occurrence kept)`);
  log(`reference pass: ${store.size} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { store, probe };
}

/** Measures PGD on the probe samples against the labels training will use (the given ones where `labels` takes them, else pseudo-labels from the reference pass). */
function pickEps(model: tf.LayersModel, probeImages: ProbeImages, store: ScoreStore, config: PurifyConfig, log: PurifyOptions['log']) {
  const { x, shape } = probeImages.batch();
  const labels = Int32Array.from(probeImages.keys, (key, i) => (config.labels !== 'pseudo' && probeImages.given[i] >= 0 ? probeImages.given[i] : store.pseudoLabel(key)!));
  const measure = (grid: number[]) => (probeImages.size ? probeEps(model, x, shape, labels, grid, config.pgd) : []);
  if (config.pgd.eps !== 'auto') {
    const probe = measure([config.pgd.eps]);
    return { eps: config.pgd.eps, epsReason: 'set by config', probe };
  }
  const probe = measure(config.probe.epsGrid);
  const { eps, reason } = chooseEps(probe, config.probe.minFlipRate);
  log(`PGD eps ${formatEps(eps)} chosen by probe on ${probeImages.size} samples: ${reason}`);
  return { eps, epsReason: reason, probe };
}

export interface PurificationRule {
  similarity: 'logits' | 'softmax';
  keepWithin: 'all' | 'predicted-class';
}

/**
 * The data purification a run uses. "auto" (the default of both fields) takes softmax similarity within predicted
 * classes when a probe saw a backdoor (WaNet: ASR 30.6% -> 2.5%), and the authors' logits over all data when none
 * did: on a clean model the new rule cost 2.2 points of ACC (88.4 -> 86.2), the authors' 0.6.
 */
export function purificationRule(config: Pick<PurifyConfig, 'similarity' | 'keepWithin'>, backdoorSignal: boolean): PurificationRule {
  return {
    similarity: config.similarity === 'auto' ? (backdoorSignal ? 'softmax' : 'logits') : config.similarity,
    keepWithin: config.keepWithin === 'auto' ? (backdoorSignal ? 'predicted-class' : 'all') : config.keepWithin,
  };
}

function initialTrustedSet(store: ScoreStore, fraction: number, seed: number): Set<string> {
  const draws = Float32Array.from(store.keys, (k) => hashUniform(k, seed));
  return new Set(topIndices(draws, fraction).map((i) => store.keys[i]));
}

async function similarityPass(
  compute: Compute,
  corpus: Corpus,
  store: ScoreStore,
  config: Pick<PurifyConfig, 'inference' | 'softmaxTemperature'> & Pick<PurificationRule, 'similarity'>,
  log: PurifyOptions['log'],
  round: number,
  progress: ProgressSink,
  stop?: StopSignal,
): Promise<Int32Array> {
  const started = performance.now();
  const k = store.numClasses;
  const temperature = config.softmaxTemperature;
  const similarity = config.similarity === 'softmax' ? (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => softmaxCosine(a, ao, b, bo, n, temperature) : cosine;
  const predicted = new Int32Array(store.size);
  let done = 0;
  let unknown: Sample | undefined;
  progress({ kind: 'pass', name: 'scoring', done, total: store.size });
  await forEachInferenceBatch(corpus.samples().output, config.inference, async (samples, x, shape) => {
    const logits = await compute.logits(x, shape);
    failpoint('similarity-batch');
    samples.forEach((s, i) => {
      const index = store.indexOf(s.key);
      if (index === undefined) {
        unknown ??= s;
        return;
      }
      const [ref, offset] = store.reference(index);
      store.setSimilarity(index, similarity(ref, offset, logits, i * k, k));
      predicted[index] = argmax(logits, i * k, k);
    });
    done += samples.length;
    progress({ kind: 'pass', name: 'scoring', done, total: store.size });
  }, stop);
  // the data must be the reference pass's: a changed corpus would leave stale similarities
  if (unknown || done !== store.size) {
    const what = unknown ? `sample ${unknown.key} (${unknown.url}) was not in it` : `${done} samples were read, ${store.size} then`;
    throw inputError({ url: 'purify' }, `the data changed since the run's reference pass: ${what}; start the run again (--resume DIR --restart)`);
  }
  log(`round ${round}: similarity pass over ${store.size} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return predicted;
}

function invertOnProbe(model: tf.LayersModel, probeImages: ProbeImages, config: PurifyConfig, log: PurifyOptions['log']) {
  if (!config.inversion.enabled || probeImages.size === 0) return { trigger: null, tied: [], classes: [], reason: 'trigger inversion disabled' };
  const { x, shape } = probeImages.batch();
  const result = probeTriggers(model, x, shape, { ...config.inversion, seed: config.seed });
  log(`trigger inversion on ${probeImages.size} samples in ${result.seconds.toFixed(1)} s: ${result.reason}`);
  return result;
}
function universalOnProbe(model: tf.LayersModel, probeImages: ProbeImages, config: PurifyConfig, log: PurifyOptions['log']) {
  if (!config.universal.enabled || probeImages.size === 0) return { perturbation: null, perturbations: [], classes: [], reason: 'universal probe disabled' };
  const { x, shape } = probeImages.batch();
  const result = probePerturbations(model, x, shape, { ...config.universal, seed: config.seed });
  log(`universal additive probe on ${probeImages.size} samples in ${result.seconds.toFixed(1)} s: ${result.reason}`);
  return result;
}

/**
 * PBE in the defense registry. Setting: none (only the given data; labels optional: the shards' labels where present, pseudo-labels where not).
 * Config: config/defaults.json and a preset (config/presets), documented in config/README.md. Scores every sample
 * (suspicion 1 - cos(r, f(x)); "flagged": outside the final trusted set).
 */
export const pbe: Defense<PurifyConfig> = {
  name: 'pbe',
  title: 'Progressive Backdoor Erasing (Mu et al., CVPR 2023), without clean data',
  data: 'none',
  loadConfig: ({ preset, file, overrides }) => {
    const nested = Object.entries(overrides).reduce<Record<string, unknown>>(
      (all, [flag, value]) => (value === undefined ? all : mergeConfig(all, flag.split('.').reduceRight<unknown>((v, key) => ({ [key]: v }), value) as Record<string, unknown>)),
      {},
    );
    return loadPurifyConfig({ preset, file, overrides: nested });
  },
  async run(model, ctx, config) {
    const result = await purifyPbe(model, ctx.data, {
      config,
      log: ctx.log,
      evaluate: ctx.evaluate,
      onEpoch: ctx.onEpoch,
      shuffleBuffer: ctx.shuffleBuffer,
      checkpoint: ctx.checkpoint && { ...ctx.checkpoint, resume: ctx.checkpoint.resume as PbeCheckpoint | undefined },
      stop: ctx.stop,
      progress: ctx.progress,
      compute: ctx.compute,
    });
    const { store, trusted, flag, findings } = result;
    const suspicion = store.similarities().map((s) => 1 - s);
    return {
      rows: result.rows,
      pipeline: result.pipeline,
      info: {
        eps: result.eps,
        epsReason: result.epsReason,
        lr: result.lr,
        probe: result.probe,
        inversion: { reason: findings.inversionReason, classes: findings.inversion, trigger: findings.trigger && { target: findings.trigger.target, maskL1: findings.trigger.maskL1, success: findings.trigger.success }, tied: findings.tied.map(({ target, maskL1, success }) => ({ target, maskL1, success })) },
        universal: {
          reason: findings.universalReason,
          classes: findings.universal.map(({ target, norm, success, anomaly }) => ({ target, norm, success, anomaly })),
          perturbation: findings.perturbation && { target: findings.perturbation.target, norm: findings.perturbation.norm, success: findings.perturbation.success },
        },
        generators: findings.generators,
        purification: result.purification,
        backdoorSignal: findings.backdoorSignal,
        suspects: findings.suspects.length,
        flag: { method: findings.backdoorSignal ? 'otsu-chord' : 'none (no backdoor signal)', threshold: Number.isFinite(flag.threshold) ? flag.threshold : null, count: flag.count },
        samples: store.size,
        trusted: trusted.size,
      },
      scores: { keys: store.keys, urls: store.urls, suspicion, flagged: new Set(store.keys.filter((_, i) => flag.flagged[i] === 1)) },
      writeFiles: async (dir, run) => {
        await writeScores(dir, store, trusted, config.labels, { flagged: flag.flagged, relabel: new Map(findings.suspects) });
        await writePurifyReport(dir, { corpus: ctx.data, store, trusted, infectedModel: run.infectedModel, purified: run.model, pgd: { ...config.pgd, eps: result.eps }, log: run.log });
      },
      detail: result,
    };
  },
  describe: (model, ctx, config) => {
    const chain = describePbe(model, ctx.data, config, ctx.compute);
    const inv = config.inversion;
    const grid = (config.pgd.eps === 'auto' ? config.probe.epsGrid : [config.pgd.eps]).join(', ');
    const probes = inv.enabled
      ? `probes on ${config.probe.samples} samples: PGD at eps ${grid}; trigger inversion (${inv.steps} steps per class, ${inv.refineSteps} for a flagged one) -> generators linf-pgd and/or trigger-unlearning (adversarial/choose.ts)`
      : `probe on ${config.probe.samples} samples: PGD at eps ${grid} (trigger inversion disabled) -> linf-pgd`;
    const uni = config.universal.enabled ? `; universal additive probe (${config.universal.steps} steps per class) -> perturbation-unlearning when masked inversion flags nothing` : '';
    return `${probes}${uni}\nround 0, with linf-pgd: ${chain}`;
  },
};
