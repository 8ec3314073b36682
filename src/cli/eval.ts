import type { Command } from 'commander';
import { attackNames, attackSettings, triggerFor } from '../attacks/registry.js';
import { evaluate, loadEvalSet, type EvalResult } from '../eval/evaluate.js';
import { usageError } from '../errors.js';
import { loadModel, modelInputShape, modelNumClasses } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { addCommonOptions, addTriggerOptions, intArg, listingBadSamples, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface EvalCliOptions extends CommonOptions, TriggerCliOptions {
  model: string;
  data: string[];
  attack?: string;
  target: number;
  limit?: number;
  json?: boolean;
  badSamples?: string;
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('clean accuracy (ACC) and, with --attack, attack success rate (ASR) of a model on test shards')
    .requiredOption('--model <dir>', 'TensorFlow.js model directory or model.json')
    .requiredOption('--data <specs...>', 'labelled test shards')
    .option('--attack <name>', `trigger for ASR: ${attackNames.join('|')}`)
    .option('--target <class>', 'attack target class', intArg('--target', 0), 0)
    .option('--limit <n>', 'evaluate on the first n samples only', intArg('--limit', 1))
    .option('--bad-samples <csv>', 'list the skipped samples (url,key,reason) in this file')
    .option('--json', 'print one JSON object instead of a table');
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: EvalCliOptions) => {
    const result = await evalCommand(o);
    process.stdout.write(o.json ? JSON.stringify(result) + '\n' : formatEval(result));
  });
}

export async function evalCommand(o: EvalCliOptions): Promise<EvalResult & { attack?: { name: string; options: unknown; mode: string; target: number } }> {
  const { log, badSamples, data } = await setup(o);
  const model = await loadModel(o.model, { log: (m) => log(m) });
  const [height, width, channels] = modelInputShape(model, o.model);
  const numClasses = modelNumClasses(model);
  if (o.attack && o.target >= numClasses) throw usageError(`--target ${o.target} is not a class of the model (classes 0..${numClasses - 1})`);
  const corpus = shardCorpus(o.data, { ...data, expected: { height, width, channels }, numClasses, badSamples, requireLabels: true });
  const result = await listingBadSamples(badSamples, o.badSamples, async () => {
    const set = await loadEvalSet(corpus.samples().output, o.limit);
    const attack = o.attack ? { trigger: triggerFor(o.attack, triggerOptions(o))({ height, width, channels }), target: o.target, mode: o.mode } : undefined;
    return evaluate(model, set, attack);
  });
  if (badSamples.count > 0) log(`evaluation skipped ${badSamples.summary()}${o.badSamples ? `, listed in ${o.badSamples}` : ' (--bad-samples FILE lists them)'}`);
  if (!o.attack) return result;
  const { options } = attackSettings(o.attack, triggerOptions(o));
  return { ...result, attack: { name: o.attack, options, mode: o.mode ?? 'all2one', target: o.target } };
}

export function formatEval(r: EvalResult): string {
  const lines = [`ACC  ${(r.acc * 100).toFixed(2)}%  (${r.samples} samples)`];
  if (r.asr !== undefined) lines.push(`ASR  ${(r.asr * 100).toFixed(2)}%  (${r.asrSamples} triggered samples)`);
  return lines.join('\n') + '\n';
}
