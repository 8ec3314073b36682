import type { Command } from 'commander';
import { attackNames, attackSettings, triggerFor } from '../attacks/registry.js';
import { evaluate, loadEvalSet, type EvalResult } from '../eval/evaluate.js';
import { loadModel, modelInputShape } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { addCommonOptions, addTriggerOptions, intArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface EvalCliOptions extends CommonOptions, TriggerCliOptions {
  model: string;
  data: string[];
  attack?: string;
  target: number;
  limit?: number;
  json?: boolean;
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('clean accuracy (ACC) and, with --attack, attack success rate (ASR) of a model on test shards')
    .requiredOption('--model <dir>', 'TensorFlow.js model directory or model.json')
    .requiredOption('--data <specs...>', 'labelled test shards')
    .option('--attack <name>', `trigger for ASR: ${attackNames.join('|')}`)
    .option('--target <class>', 'attack target class', intArg('--target'), 0)
    .option('--limit <n>', 'evaluate on the first n samples only', intArg('--limit'))
    .option('--json', 'print one JSON object instead of a table');
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: EvalCliOptions) => {
    const result = await evalCommand(o);
    process.stdout.write(o.json ? JSON.stringify(result) + '\n' : formatEval(result));
  });
}

export async function evalCommand(o: EvalCliOptions): Promise<EvalResult & { attack?: { name: string; options: unknown; mode: string; target: number } }> {
  const { log, badSamples, data } = await setup(o);
  const model = await loadModel(o.model);
  const [height, width, channels] = modelInputShape(model, o.model);
  const corpus = shardCorpus(o.data, { ...data, expected: { height, width, channels }, badSamples, requireLabels: true });
  const set = await loadEvalSet(corpus.samples().output, o.limit);
  const attack = o.attack ? { trigger: triggerFor(o.attack, triggerOptions(o))({ height, width, channels }), target: o.target, mode: o.mode } : undefined;
  const result = evaluate(model, set, attack);
  if (badSamples.count > 0) log(`evaluation skipped ${badSamples.summary()}`);
  if (!o.attack) return result;
  const { options } = attackSettings(o.attack, triggerOptions(o));
  return { ...result, attack: { name: o.attack, options, mode: o.mode ?? 'all2one', target: o.target } };
}

export function formatEval(r: EvalResult): string {
  const lines = [`ACC  ${(r.acc * 100).toFixed(2)}%  (${r.samples} samples)`];
  if (r.asr !== undefined) lines.push(`ASR  ${(r.asr * 100).toFixed(2)}%  (${r.asrSamples} triggered samples)`);
  return lines.join('\n') + '\n';
}
