import { Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import type { BackendInfo } from '../backend/select.js';
import type { ComputeOptions } from '../pipeline/compute.js';
import { join } from 'node:path';
import { attackNames, triggerFor } from '../attacks/registry.js';
import type { DefenseResult } from '../defenses/defense.js';
import type { PurifyResult } from '../defenses/pbe.js';
import { defenseFor, defenseNames } from '../defenses/registry.js';
import type { FitCheckpointState } from '../pipeline/engine.js';
import { evaluate, loadEvalSet, type EvalResult } from '../eval/evaluate.js';
import { loadModel, modelFiles, modelInputShape, modelNumClasses, saveModel } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { checkpointFile, loadCheckpoint, type Checkpoint } from '../pipeline/checkpoint.js';
import { changedInputsError, identityChanges, runIdentity, storedIdentitySchema, validatePbeState, type RunIdentity } from '../pipeline/run-identity.js';
import { validatePurifyConfig, type PurifyConfig } from '../config/schema.js';
import { existsSync } from 'node:fs';
import { StopSignal, StoppedError } from '../pipeline/stop-signal.js';
import { PbeError, usageError } from '../errors.js';
import { version as tfVersion } from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { claimRunDir, lockRunDir, runFiles, writeMetrics, writeRunJson } from '../report/run-dir.js';
import type { LabelSource } from '../stages/label.js';
import { addCommonOptions, addTriggerOptions, intArg, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

export interface PurifyCliOptions extends CommonOptions, TriggerCliOptions {
  model: string;
  data: string[];
  out: string;
  preset?: string;
  config?: string;
  labels?: LabelSource;
  eps?: number;
  lr?: number;
  seed?: number;
  evalData?: string[];
  evalAttack?: string;
  target: number;
  evalSamples: number;
  checkpointEvery?: number;
  resume?: string;
  restart?: boolean;
  overwrite?: boolean;
  computeWorkers?: number;
  weightsRefresh?: 'steps' | 'epoch';
  dryRun?: boolean;
  defense?: string;
  cleanData?: string[];
}

export function registerPurifyCommand(program: Command): void {
  const cmd = program
    .command('purify')
    .description('remove a backdoor: Progressive Backdoor Erasing (default) with only the given (possibly poisoned, unlabelled) data, or another defense')
    .option('--defense <name>', `defense: ${defenseNames.join('|')} (default pbe)`)
    .option('--clean-data <specs...>', 'a small clean labelled extra set, for defenses that need one')
    .option('--model <dir>', 'infected TensorFlow.js model (directory or model.json)')
    .option('--data <specs...>', 'the data to purify with (tar shards; labels optional)')
    .option('--out <dir>', 'run directory: model/, metrics.csv, scores.csv, run.json, bad-samples.csv, report.html, checkpoint/')
    .option('--resume <dir>', 'continue the run in this run directory from its last checkpoint, with its original options and config; refused when its data or model changed')
    .option('--restart', 'with --resume: start that run again from the beginning (its options and config, the data as it is now)')
    .option('--overwrite', 'let a new run replace the run already in --out (its checkpoint, run.json and results)')
    .option('--compute-workers <n>', 'worker threads for PGD and scoring (default: one per core on wasm/cpu, none on tensorflow backends)', intArg('--compute-workers'))
    .addOption(new Option('--weights-refresh <when>', 'when worker replicas get new weights: steps (exact; workers compute PGD and gradients data-parallel) or epoch (PGD with stale weights, overlapped with training on the main thread)').choices(['steps', 'epoch']).default('steps'))
    .option('--dry-run', 'print the pipeline and the merged config, then exit without computing')
    .option('--checkpoint-every <minutes>', 'also checkpoint every this many minutes (always at every epoch end)', numberArg('--checkpoint-every'))
    .option('--preset <name>', 'pbe: per-dataset settings from config/presets (e.g. fashion-mnist, authors)')
    .option('--config <file>', 'JSON file overriding the defense\'s defaults (pbe: config/defaults.json after the preset; others: config/defenses/NAME.json)')
    .option('--labels <source>', 'auto (default): the shards\' labels where a sample has one, the infected model\'s prediction where not; pseudo: always the prediction; given: always the shard\'s label')
    .option('--eps <eps>', 'PGD L∞ radius (default: preset, else chosen by a probe)', numberArg('--eps'))
    .option('--lr <lr>', 'SGD learning rate (default: preset, else the probe learning rate)', numberArg('--lr'))
    .option('--seed <n>', 'seed of every random choice', intArg('--seed'))
    .option('--eval-data <specs...>', 'labelled test shards: report ACC each epoch')
    .option('--eval-attack <name>', `trigger for ASR each epoch: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class of --eval-attack', intArg('--target', 0), 0)
    .option('--eval-samples <n>', 'test samples used for the per-epoch ACC/ASR', intArg('--eval-samples', 1), 1000);
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: PurifyCliOptions) => {
    if (o.dryRun) process.stdout.write(await purifyPlan(o));
    else await purifyCommand(o);
  });
}

export interface PurifyCommandResult {
  defense: string;
  result: DefenseResult;
  /** PBE's own result, when the defense is pbe. */
  pbe?: PurifyResult;
  before?: EvalResult;
  after?: EvalResult;
  seconds: number;
}

/**
 * What purify and its dry run share: the run's options, the defense and its merged config, the model and the
 * corpora. A resumed run takes its options and its config from its run.json (never the config file again).
 */
async function prepare(options: PurifyCliOptions) {
  if (options.restart && !options.resume) throw usageError('--restart goes with --resume RUN_DIR (a new run into an --out in use takes --overwrite)');
  const stored = options.resume ? await storedRun(options.resume) : undefined;
  const o = stored ? stored.options : options;
  if (!o.model || !o.data || !o.out) throw usageError('purify needs --model, --data and --out (or --resume RUN_DIR)');
  const defense = defenseFor(o.defense ?? 'pbe');
  if (defense.data === 'clean' && !o.cleanData) throw usageError(`the ${defense.name} defense needs a clean extra set: --clean-data SPEC`);
  const context = await setup(options, true);
  const overrides = { labels: o.labels, seed: o.seed, 'pgd.eps': o.eps, 'optimizer.lr': o.lr };
  const config = stored ? stored.config : await defense.loadConfig({ preset: o.preset, file: o.config, overrides });
  const model = await loadModel(o.model, { log: (m) => context.log(m) });
  const [height, width, channels] = modelInputShape(model, o.model);
  const numClasses = modelNumClasses(model);
  if (o.evalAttack && o.target >= numClasses) throw usageError(`--target ${o.target} is not a class of the model (classes 0..${numClasses - 1})`);
  const expected = { height, width, channels };
  const corpus = shardCorpus(o.data, { ...context.data, expected, numClasses, badSamples: context.badSamples });
  const clean = o.cleanData ? shardCorpus(o.cleanData, { ...context.data, shardIndex: undefined, numShards: undefined, expected, numClasses, badSamples: context.badSamples, requireLabels: true }) : undefined;
  const workers = o.computeWorkers ?? defaultComputeWorkers(context.backend);
  const compute = computeOptions(workers, context.backend, o.weightsRefresh);
  return { o: { ...o, out: o.out }, ...context, defense, config, model, expected, numClasses, corpus, clean, compute, stored };
}

/** The pipeline purify would run and its merged config (`--dry-run`). */
export async function purifyPlan(options: PurifyCliOptions): Promise<string> {
  const { defense, config, corpus, clean, compute, model, log } = await prepare(options);
  const chain = defense.describe(model, { data: corpus, clean, compute, log }, config);
  return `${chain}\n${JSON.stringify(config, null, 2)}\n`;
}

export async function purifyCommand(options: PurifyCliOptions): Promise<PurifyCommandResult> {
  const started = Date.now();
  const { stored, ...prepared } = await prepare(options);
  const { o, log, config, corpus } = prepared;
  const out = o.out;
  const files = await modelFiles(o.model);
  let identity: RunIdentity;
  let resume: Checkpoint<FitCheckpointState<unknown>> | undefined;
  if (stored) {
    identity = await runIdentity(config, corpus.urls, files, stored.identity.runId);
    const changes = identityChanges(stored.identity, identity);
    if (changes.length > 0 && !options.restart) throw changedInputsError(out, changes);
    if (options.restart) {
      log(`--restart: starting the run in ${out} again from the beginning${changes.length ? ` (changed since it started: ${changes.join('; ')})` : ''}`);
      await claimRunDir(out, { overwrite: true });
      identity = await runIdentity(config, corpus.urls, files);
    } else if (existsSync(checkpointFile(out))) {
      const validateState = prepared.defense.name === 'pbe' ? (state: unknown) => validatePbeState<FitCheckpointState<unknown>>(state, config as PurifyConfig) : undefined;
      resume = await loadCheckpoint<FitCheckpointState<unknown>>(out, { validateState });
    } else {
      log(`--resume ${out}: no checkpoint was written yet; starting the run from the beginning`);
    }
  } else {
    await claimRunDir(out, { overwrite: o.overwrite });
    identity = await runIdentity(config, corpus.urls, files);
  }
  const unlock = await lockRunDir(out);
  try {
    return await runPurify({ ...prepared, identity, resume, started });
  } finally {
    await unlock();
  }
}

type Prepared = Omit<Awaited<ReturnType<typeof prepare>>, 'stored'>;

async function runPurify({ o, log, backend, badSamples, progress, data, defense, config, model, expected, corpus, clean, compute, identity, resume, started }: Prepared & { identity: RunIdentity; resume: Checkpoint<FitCheckpointState<unknown>> | undefined; started: number }): Promise<PurifyCommandResult> {
  const out = o.out;

  let evaluateModel: ((m: typeof model) => EvalResult) | undefined;
  if (o.evalData) {
    const set = await loadEvalSet(shardCorpus(o.evalData, { ...data, shardIndex: undefined, numShards: undefined, expected, badSamples, requireLabels: true }).samples().output, o.evalSamples);
    const attack = o.evalAttack ? { trigger: triggerFor(o.evalAttack, triggerOptions(o))(expected), target: o.target, mode: o.mode } : undefined;
    evaluateModel = (m) => evaluate(m, set, attack);
  }
  const before = resume ? undefined : evaluateModel?.(model);
  if (before) log('infected model', { acc: before.acc, asr: before.asr });

  const runInfo = {
    command: 'purify',
    defense: defense.name,
    data: defense.data,
    args: { ...o, resume: undefined, restart: undefined, overwrite: undefined, backend: undefined, logFormat: undefined, quiet: undefined },
    preset: o.preset ?? null,
    config,
    identity: { runId: identity.runId, data: identity.data, model: identity.model },
    backend,
    versions: { node: process.version, tfjs: tfVersion.tfjs },
  };
  await writeRunJson(out, { ...runInfo, status: 'running', startedAt: new Date(started).toISOString() });
  const stop = new StopSignal().install();
  let result: DefenseResult;
  try {
    result = await defense.run(
      model,
      {
        data: corpus,
        clean,
        log,
        evaluate: evaluateModel && ((m) => {
          const r = evaluateModel!(m);
          return { acc: r.acc, asr: r.asr };
        }),
        onEpoch: (_row, rows) => writeMetrics(out, rows),
        checkpoint: { dir: out, everyMinutes: o.checkpointEvery, resume },
        stop,
        progress,
        compute,
      },
      config,
    );
  } catch (err) {
    // a stopped or failed run says so in run.json and still lists what it skipped
    const stopped = err instanceof StoppedError;
    const ended = { status: stopped ? 'stopped' : 'failed', ...(stopped ? {} : { error: (err as Error).message }), endedAt: new Date().toISOString(), badSamples: badSamples.count };
    await writeRunJson(out, { ...runInfo, ...ended }).catch(() => undefined);
    await badSamples.writeCsv(join(out, runFiles.badSamples)).catch(() => undefined);
    throw err;
  } finally {
    stop.uninstall();
  }
  await badSamples.writeCsv(join(out, runFiles.badSamples));
  await saveModel(model, join(out, runFiles.model));
  await writeMetrics(out, result.rows);
  await result.writeFiles?.(out, { infectedModel: o.model, model, log });
  const after = evaluateModel?.(model);
  const seconds = (Date.now() - started) / 1000;
  await writeRunJson(out, {
    ...runInfo,
    status: 'complete',
    ...result.info,
    pipeline: result.pipeline,
    badSamples: badSamples.count,
    before: before ?? null,
    after: after ?? null,
    seconds,
  });
  log(`purified model written to ${join(out, runFiles.model)}`, { defense: defense.name, acc: after?.acc, asr: after?.asr, skipped: badSamples.count });
  return { defense: defense.name, result, pbe: defense.name === 'pbe' ? (result.detail as PurifyResult) : undefined, before, after, seconds };
}

function computeOptions(workers: number, backend: BackendInfo, weightsRefresh: 'steps' | 'epoch' = 'steps'): ComputeOptions {
  return { workers, backend: backend.name === 'tensorflow-gpu' ? 'tensorflow' : backend.name, weightsRefresh };
}

/**
 * wasm and cpu compute on one core per thread, so PGD and scoring use a worker per core; the TensorFlow
 * backends already use every core (or own the GPU) from the main thread.
 */
function defaultComputeWorkers(backend: BackendInfo): number {
  return backend.name === 'wasm' || backend.name === 'cpu' ? Math.min(4, availableParallelism()) : 0;
}

/** The options, config and identity a run was started with, from its run.json. */
async function storedRun(runDir: string): Promise<{ options: PurifyCliOptions; config: unknown; identity: RunIdentity }> {
  const path = join(runDir, runFiles.runJson);
  let info: { args?: PurifyCliOptions; status?: string; config?: unknown; identity?: unknown };
  try {
    info = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw usageError(`--resume ${runDir}: cannot read ${path} (${(err as Error).message})`);
  }
  if (!info?.args) throw usageError(`--resume ${runDir}: ${path} has no recorded options`);
  if (info.status === 'complete') throw usageError(`--resume ${runDir}: this run is already complete`);
  const identity = storedIdentitySchema.safeParse({ ...(info.identity as object), config: info.config });
  if (!identity.success) {
    throw usageError(`--resume ${runDir}: ${path} records no data fingerprint (a run of an older pbe?), so a resume cannot be checked; start a new run with --overwrite`);
  }
  let config: unknown;
  try {
    // PBE's config is checked again here; another defense's is its own file's, checked when the run started
    config = (info.args.defense ?? 'pbe') === 'pbe' ? validatePurifyConfig(info.config) : info.config;
  } catch (err) {
    throw new PbeError('input', `--resume ${runDir}: the config stored in ${path} is invalid: ${(err as Error).message}`, { cause: err });
  }
  return { options: { ...info.args, out: runDir }, config, identity: { ...identity.data, config } };
}
