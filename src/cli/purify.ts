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
import { loadModel, modelInputShape, saveModel } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { checkpointFile, loadCheckpoint } from '../pipeline/checkpoint.js';
import { existsSync } from 'node:fs';
import { StopSignal, StoppedError } from '../pipeline/stop-signal.js';
import { usageError } from '../errors.js';
import { version as tfVersion } from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { runFiles, writeMetrics, writeRunJson } from '../report/run-dir.js';
import { addCommonOptions, addTriggerOptions, intArg, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

export interface PurifyCliOptions extends CommonOptions, TriggerCliOptions {
  model: string;
  data: string[];
  out: string;
  preset?: string;
  config?: string;
  labels?: 'pseudo' | 'given';
  eps?: number;
  lr?: number;
  seed?: number;
  evalData?: string[];
  evalAttack?: string;
  target: number;
  evalSamples: number;
  checkpointEvery?: number;
  resume?: string;
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
    .option('--resume <dir>', 'continue the run in this run directory from its last checkpoint, with its original options')
    .option('--compute-workers <n>', 'worker threads for PGD and scoring (default: one per core on wasm/cpu, none on tensorflow backends)', intArg('--compute-workers'))
    .addOption(new Option('--weights-refresh <when>', 'when worker replicas get new weights: steps (exact; workers compute PGD and gradients data-parallel) or epoch (PGD with stale weights, overlapped with training on the main thread)').choices(['steps', 'epoch']).default('steps'))
    .option('--dry-run', 'print the pipeline and the merged config, then exit without computing')
    .option('--checkpoint-every <minutes>', 'also checkpoint every this many minutes (always at every epoch end)', numberArg('--checkpoint-every'))
    .option('--preset <name>', 'pbe: per-dataset settings from config/presets (e.g. fashion-mnist, authors)')
    .option('--config <file>', 'JSON file overriding the defense\'s defaults (pbe: config/defaults.json after the preset; others: config/defenses/NAME.json)')
    .option('--labels <source>', 'train with pseudo-labels of the infected model (default) or the labels in the shards (given)')
    .option('--eps <eps>', 'PGD L∞ radius (default: preset, else chosen by a probe)', numberArg('--eps'))
    .option('--lr <lr>', 'SGD learning rate (default: preset, else the probe learning rate)', numberArg('--lr'))
    .option('--seed <n>', 'seed of every random choice', intArg('--seed'))
    .option('--eval-data <specs...>', 'labelled test shards: report ACC each epoch')
    .option('--eval-attack <name>', `trigger for ASR each epoch: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class of --eval-attack', intArg('--target'), 0)
    .option('--eval-samples <n>', 'test samples used for the per-epoch ACC/ASR', intArg('--eval-samples'), 1000);
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

/** What purify and its dry run share: the run's options, the defense and its merged config, the model and the corpora. */
async function prepare(options: PurifyCliOptions) {
  const o = options.resume ? await resumeOptions(options.resume) : options;
  if (!o.model || !o.data || !o.out) throw usageError('purify needs --model, --data and --out (or --resume RUN_DIR)');
  const defense = defenseFor(o.defense ?? 'pbe');
  if (defense.data === 'clean' && !o.cleanData) throw usageError(`the ${defense.name} defense needs a clean extra set: --clean-data SPEC`);
  const context = await setup(options, true);
  const overrides = { labels: o.labels, seed: o.seed, 'pgd.eps': o.eps, 'optimizer.lr': o.lr };
  const config = await defense.loadConfig({ preset: o.preset, file: o.config, overrides });
  const model = await loadModel(o.model);
  const [height, width, channels] = modelInputShape(model, o.model);
  const expected = { height, width, channels };
  const corpus = shardCorpus(o.data, { ...context.data, expected, badSamples: context.badSamples });
  const clean = o.cleanData ? shardCorpus(o.cleanData, { ...context.data, shardIndex: undefined, numShards: undefined, expected, badSamples: context.badSamples, requireLabels: true }) : undefined;
  const workers = o.computeWorkers ?? defaultComputeWorkers(context.backend);
  const compute = computeOptions(workers, context.backend, o.weightsRefresh);
  return { o: { ...o, out: o.out }, ...context, defense, config, model, expected, corpus, clean, compute };
}

/** The pipeline purify would run and its merged config (`--dry-run`). */
export async function purifyPlan(options: PurifyCliOptions): Promise<string> {
  const { defense, config, corpus, clean, compute, model, log } = await prepare(options);
  const chain = defense.describe(model, { data: corpus, clean, compute, log }, config);
  return `${chain}\n${JSON.stringify(config, null, 2)}\n`;
}

export async function purifyCommand(options: PurifyCliOptions): Promise<PurifyCommandResult> {
  const started = Date.now();
  const { o, log, backend, badSamples, progress, data, defense, config, model, expected, corpus, clean, compute } = await prepare(options);
  const out = o.out;
  const resume = options.resume && existsSync(checkpointFile(out)) ? await loadCheckpoint<FitCheckpointState<unknown>>(out) : undefined;
  if (options.resume && !resume) log(`--resume ${out}: no checkpoint was written yet; starting the run from the beginning`);

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
    args: { ...o, resume: undefined, backend: undefined, logFormat: undefined, quiet: undefined },
    preset: o.preset ?? null,
    config,
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
    if (err instanceof StoppedError) await writeRunJson(out, { ...runInfo, status: 'stopped', stoppedAt: new Date().toISOString() });
    throw err;
  } finally {
    stop.uninstall();
  }
  await saveModel(model, join(out, runFiles.model));
  await writeMetrics(out, result.rows);
  await result.writeFiles?.(out, { infectedModel: o.model, model, log });
  await badSamples.writeCsv(join(out, 'bad-samples.csv'));
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

/** The options a run was started with, from its run.json. */
async function resumeOptions(runDir: string): Promise<PurifyCliOptions> {
  const path = join(runDir, runFiles.runJson);
  let info: { args?: PurifyCliOptions; status?: string };
  try {
    info = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw usageError(`--resume ${runDir}: cannot read ${path} (${(err as Error).message})`);
  }
  if (!info.args) throw usageError(`--resume ${runDir}: ${path} has no recorded options`);
  if (info.status === 'complete') throw usageError(`--resume ${runDir}: this run is already complete`);
  return { ...info.args, out: runDir };
}
