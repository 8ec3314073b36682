import type { Command } from 'commander';
import { join } from 'node:path';
import { attackNames, triggerFor } from '../attacks/registry.js';
import { loadPurifyConfig } from '../config/load.js';
import { purifyPbe, type EpochRow, type PurifyResult } from '../defenses/pbe.js';
import { evaluate, loadEvalSet, type EvalResult } from '../eval/evaluate.js';
import { loadModel, modelInputShape, saveModel } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { runFiles, writeMetrics, writeRunJson, writeScores } from '../report/run-dir.js';
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
}

export function registerPurifyCommand(program: Command): void {
  const cmd = program
    .command('purify')
    .description('remove a backdoor with Progressive Backdoor Erasing, using only the given (possibly poisoned, unlabelled) data')
    .requiredOption('--model <dir>', 'infected TensorFlow.js model (directory or model.json)')
    .requiredOption('--data <specs...>', 'the data to purify with (tar shards; labels optional)')
    .requiredOption('--out <dir>', 'run directory: model/, metrics.csv, scores.csv, run.json, bad-samples.csv')
    .option('--preset <name>', 'per-dataset settings from config/presets (e.g. fashion-mnist, authors)')
    .option('--config <file>', 'JSON file overriding config/defaults.json (after the preset)')
    .option('--labels <source>', 'train with pseudo-labels of the infected model (default) or the labels in the shards (given)')
    .option('--eps <eps>', 'PGD L∞ radius (default: preset, else chosen by a probe)', numberArg('--eps'))
    .option('--lr <lr>', 'SGD learning rate (default: preset, else the probe learning rate)', numberArg('--lr'))
    .option('--seed <n>', 'seed of every random choice', intArg('--seed'))
    .option('--eval-data <specs...>', 'labelled test shards: report ACC each epoch')
    .option('--eval-attack <name>', `trigger for ASR each epoch: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class of --eval-attack', intArg('--target'), 0)
    .option('--eval-samples <n>', 'test samples used for the per-epoch ACC/ASR', intArg('--eval-samples'), 1000);
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: PurifyCliOptions) => {
    await purifyCommand(o);
  });
}

export interface PurifyCommandResult {
  result: PurifyResult;
  before?: EvalResult;
  after?: EvalResult;
}

export async function purifyCommand(o: PurifyCliOptions): Promise<PurifyCommandResult> {
  const started = Date.now();
  const { log, backend, badSamples } = await setup(o);
  const overrides: Record<string, unknown> = {};
  if (o.labels) overrides.labels = o.labels;
  if (o.seed !== undefined) overrides.seed = o.seed;
  if (o.eps !== undefined) overrides.pgd = { eps: o.eps };
  if (o.lr !== undefined) overrides.optimizer = { lr: o.lr };
  const config = await loadPurifyConfig({ preset: o.preset, file: o.config, overrides });
  const model = await loadModel(o.model);
  const [height, width, channels] = modelInputShape(model, o.model);
  const expected = { height, width, channels };
  const corpus = shardCorpus(o.data, { expected, badSamples });

  let evaluateModel: ((m: typeof model) => EvalResult) | undefined;
  if (o.evalData) {
    const set = await loadEvalSet(shardCorpus(o.evalData, { expected, badSamples }).samples().output, o.evalSamples);
    const attack = o.evalAttack ? { trigger: triggerFor(o.evalAttack, triggerOptions(o))(expected), target: o.target } : undefined;
    evaluateModel = (m) => evaluate(m, set, attack);
  }
  const before = evaluateModel?.(model);
  if (before) log('infected model', { acc: before.acc, asr: before.asr });

  const rows: EpochRow[] = [];
  const result = await purifyPbe(model, corpus, {
    config,
    log,
    evaluate: evaluateModel && ((m) => {
      const r = evaluateModel!(m);
      return { acc: r.acc, asr: r.asr };
    }),
    onEpoch: async (row) => {
      rows.push(row);
      await writeMetrics(o.out, rows);
    },
  });
  await saveModel(model, join(o.out, runFiles.model));
  await writeScores(o.out, result.store, result.trusted, config.labels);
  await badSamples.writeCsv(join(o.out, 'bad-samples.csv'));
  const after = evaluateModel?.(model);
  await writeRunJson(o.out, {
    command: 'purify',
    model: o.model,
    data: o.data,
    preset: o.preset ?? null,
    config,
    eps: result.eps,
    epsReason: result.epsReason,
    lr: result.lr,
    probe: result.probe,
    pipeline: result.pipeline,
    backend,
    versions: { node: process.version, tfjs: (await import('@tensorflow/tfjs')).version.tfjs },
    samples: result.store.size,
    trusted: result.trusted.size,
    badSamples: badSamples.count,
    before: before ?? null,
    after: after ?? null,
    seconds: (Date.now() - started) / 1000,
  });
  log(`purified model written to ${join(o.out, runFiles.model)}`, { acc: after?.acc, asr: after?.asr, skipped: badSamples.count });
  return { result, before, after };
}
