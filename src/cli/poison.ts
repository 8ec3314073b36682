import type { Command } from 'commander';
import { join } from 'node:path';
import { attackNames, triggerFor } from '../attacks/registry.js';
import { poisonSamples, type ManifestRow } from '../attacks/poison.js';
import { usageError } from '../errors.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { writeShards } from '../sources/dataset.js';
import { writeCsvAtomic } from '../report/csv.js';
import { addCommonOptions, addTriggerOptions, intArg, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface PoisonCliOptions extends CommonOptions, TriggerCliOptions {
  data: string[];
  out: string;
  attack: string;
  target: number;
  rate: number;
  seed: number;
  shardSize: number;
}

export function registerPoisonCommand(program: Command): void {
  const cmd = program
    .command('poison')
    .description('write a poisoned copy of tar shards (all-to-one) and poison-manifest.csv (ground truth for evaluation)')
    .requiredOption('--data <specs...>', 'input shards (paths, brace patterns, directories)')
    .requiredOption('--out <dir>', 'output directory for train-NNNNNN.tar shards and poison-manifest.csv')
    .requiredOption('--attack <name>', `trigger: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class', intArg('--target'), 0)
    .option('--rate <r>', 'share of samples poisoned', numberArg('--rate'), 0.1)
    .option('--seed <n>', 'which samples are poisoned', intArg('--seed'), 1)
    .option('--shard-size <n>', 'samples per output shard', intArg('--shard-size'), 5000);
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: PoisonCliOptions) => {
    await poisonCommand(o);
  });
}

export async function poisonCommand(o: PoisonCliOptions): Promise<{ poisoned: number; total: number; shards: string[] }> {
  if (!(o.rate >= 0 && o.rate <= 1)) throw usageError(`--rate must be in [0, 1], got ${o.rate}`);
  const { log, badSamples, data } = await setup(o);
  const trigger = triggerFor(o.attack, triggerOptions(o));
  const corpus = shardCorpus(o.data, { ...data, badSamples });
  const rows: ManifestRow[] = [];
  const samples = (async function* () {
    for await (const { sample, row } of poisonSamples(corpus.samples().output, { trigger, target: o.target, rate: o.rate, seed: o.seed })) {
      rows.push(row);
      yield sample;
    }
  })();
  const shards = await writeShards(samples, join(o.out, 'train'), { samplesPerShard: o.shardSize });
  await writeCsvAtomic(join(o.out, 'poison-manifest.csv'), ['key', 'poisoned', 'original_label'], rows as unknown as Record<string, unknown>[]);
  await badSamples.writeCsv(join(o.out, 'bad-samples.csv'));
  const poisoned = rows.filter((r) => r.poisoned).length;
  log(`poisoned ${poisoned} of ${rows.length} samples (${o.attack}, target ${o.target}) into ${shards.length} shards in ${o.out}`, {
    skipped: badSamples.count,
  });
  return { poisoned, total: rows.length, shards };
}
