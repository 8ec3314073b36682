import type { Command } from 'commander';
import { join } from 'node:path';
import { attackNames, attackSettings, triggerFor } from '../attacks/registry.js';
import { manifestHeaders, poisonSamples, type ManifestRow } from '../attacks/poison.js';
import { usageError } from '../errors.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { writeShards } from '../sources/dataset.js';
import { writeCsvAtomic } from '../report/csv.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { addCommonOptions, addTriggerOptions, intArg, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface PoisonCliOptions extends CommonOptions, TriggerCliOptions {
  data: string[];
  out: string;
  attack: string;
  target: number;
  rate?: number;
  seed: number;
  shardSize: number;
  classes?: number;
}

export function registerPoisonCommand(program: Command): void {
  const cmd = program
    .command('poison')
    .description('write a poisoned copy of tar shards, poison-manifest.csv (ground truth for evaluation) and poison.json (the attack, its options, seed)')
    .requiredOption('--data <specs...>', 'input shards (paths, brace patterns, directories)')
    .requiredOption('--out <dir>', 'output directory for train-NNNNNN.tar shards, poison-manifest.csv and poison.json')
    .requiredOption('--attack <name>', `trigger: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class', intArg('--target'), 0)
    .option('--rate <r>', "share of samples poisoned (clean-label attacks: of the target class's samples); default: the attack's config", numberArg('--rate'))
    .option('--classes <n>', 'number of classes (for --mode all2all)', intArg('--classes'), 10)
    .option('--seed <n>', 'which samples are poisoned', intArg('--seed'), 1)
    .option('--shard-size <n>', 'samples per output shard', intArg('--shard-size'), 5000);
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: PoisonCliOptions) => {
    await poisonCommand(o);
  });
}

export async function poisonCommand(o: PoisonCliOptions): Promise<{ poisoned: number; total: number; shards: string[] }> {
  const settings = attackSettings(o.attack, triggerOptions(o));
  const rate = o.rate ?? settings.rate;
  if (!(rate >= 0 && rate <= 1)) throw usageError(`--rate must be in [0, 1], got ${rate}`);
  const mode = o.mode ?? 'all2one';
  if (settings.cleanLabel && mode === 'all2all') throw usageError(`${o.attack} is a clean-label attack: it poisons the target class only and has no all2all mode`);
  const { log, badSamples, data } = await setup(o);
  const trigger = triggerFor(o.attack, triggerOptions(o));
  const corpus = shardCorpus(o.data, { ...data, badSamples });
  const rows: ManifestRow[] = [];
  const options = { trigger, target: o.target, rate, seed: o.seed, mode, numClasses: o.classes ?? 10 };
  const samples = (async function* () {
    for await (const { sample, row } of poisonSamples(corpus.samples().output, options)) {
      rows.push(row);
      yield sample;
    }
  })();
  const shards = await writeShards(samples, join(o.out, 'train'), { samplesPerShard: o.shardSize });
  await writeCsvAtomic(join(o.out, 'poison-manifest.csv'), manifestHeaders, rows as unknown as Record<string, unknown>[]);
  await badSamples.writeCsv(join(o.out, 'bad-samples.csv'));
  const poisoned = rows.filter((r) => r.poisoned).length;
  const noise = rows.filter((r) => r.change === 'noise').length;
  const record = { ...settings, rate, target: o.target, mode, classes: options.numClasses, seed: o.seed, samples: rows.length, poisoned, noise, data: o.data };
  await writeFileAtomic(join(o.out, 'poison.json'), JSON.stringify(record, null, 2) + '\n');
  log(`poisoned ${poisoned} of ${rows.length} samples (${o.attack}, ${mode}, target ${o.target}${noise ? `, ${noise} noise-mode samples` : ''}) into ${shards.length} shards in ${o.out}`, {
    skipped: badSamples.count,
  });
  return { poisoned, total: rows.length, shards };
}
