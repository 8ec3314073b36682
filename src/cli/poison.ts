import type { Command } from 'commander';
import { join } from 'node:path';
import { attackNames, attackSettings, triggerFor } from '../attacks/registry.js';
import { manifestHeaders, poisonSamples, type ManifestRow } from '../attacks/poison.js';
import { usageError } from '../errors.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { writeSamples } from '../sources/dataset.js';
import { ensureWritableDir } from '../report/run-dir.js';
import { writeCsvAtomic } from '../report/csv.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { addCommonOptions, addTriggerOptions, intArg, listingBadSamples, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface PoisonCliOptions extends CommonOptions, TriggerCliOptions {
  data: string[];
  out: string;
  attack: string;
  target: number;
  rate?: number;
  seed: number;
  shardSize: number;
  classes?: number;
  overwrite?: boolean;
}

export function registerPoisonCommand(program: Command): void {
  const cmd = program
    .command('poison')
    .description('write a poisoned copy of tar shards, poison-manifest.csv (ground truth for evaluation) and poison.json (the attack, its options, seed)')
    .requiredOption('--data <specs...>', 'input shards (paths, brace patterns, directories)')
    .requiredOption('--out <dir>', 'output directory for train-NNNNNN.tar shards, poison-manifest.csv and poison.json')
    .requiredOption('--attack <name>', `trigger: ${attackNames.join('|')}`)
    .option('--target <class>', 'target class (below --classes)', intArg('--target', 0), 0)
    .option('--rate <r>', "share of samples poisoned (clean-label attacks: of the target class's samples); default: the attack's config", numberArg('--rate'))
    .option('--classes <n>', 'number of classes: labels and --target must be below it', intArg('--classes', 2), 10)
    .option('--seed <n>', 'which samples are poisoned', intArg('--seed'), 1)
    .option('--shard-size <n>', 'samples per output shard', intArg('--shard-size', 1), 5000)
    .option('--overwrite', 'replace the shards of an earlier run in --out (by default such an --out is refused)');
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: PoisonCliOptions) => {
    await poisonCommand(o);
  });
}

export async function poisonCommand(o: PoisonCliOptions): Promise<{ poisoned: number; total: number; shards: string[] }> {
  const settings = attackSettings(o.attack, triggerOptions(o));
  const rate = o.rate ?? settings.rate;
  if (!(rate >= 0 && rate <= 1)) throw usageError(`--rate must be in [0, 1], got ${rate}`);
  const mode = o.mode ?? 'all2one';
  const numClasses = o.classes ?? 10;
  if (o.target >= numClasses) throw usageError(`--target ${o.target} is not one of the --classes ${numClasses} (0..${numClasses - 1})`);
  if (settings.cleanLabel && mode === 'all2all') throw usageError(`${o.attack} is a clean-label attack: it poisons the target class only and has no all2all mode`);
  const { log, badSamples, data } = await setup(o);
  const trigger = triggerFor(o.attack, triggerOptions(o));
  const corpus = shardCorpus(o.data, { ...data, numClasses, badSamples });
  await ensureWritableDir(o.out);
  const rows: ManifestRow[] = [];
  const options = { trigger, target: o.target, rate, seed: o.seed, mode, numClasses };
  const samples = (async function* () {
    for await (const { sample, row } of poisonSamples(corpus.samples().output, options)) {
      rows.push(row);
      yield sample;
    }
  })();
  const shards = await listingBadSamples(badSamples, join(o.out, 'bad-samples.csv'), async () => {
    const written = await writeSamples(samples, join(o.out, 'train'), {
      format: 'tar',
      samplesPerShard: o.shardSize,
      onBadSample: badSamples.handler,
      existing: o.overwrite ? 'replace' : 'refuse',
    });
    await writeCsvAtomic(join(o.out, 'poison-manifest.csv'), manifestHeaders, rows as unknown as Record<string, unknown>[]);
    return written;
  });
  const poisoned = rows.filter((r) => r.poisoned).length;
  const noise = rows.filter((r) => r.change === 'noise').length;
  const record = { ...settings, rate, target: o.target, mode, classes: numClasses, seed: o.seed, samples: rows.length, poisoned, noise, data: o.data };
  await writeFileAtomic(join(o.out, 'poison.json'), JSON.stringify(record, null, 2) + '\n');
  log(`poisoned ${poisoned} of ${rows.length} samples (${o.attack}, ${mode}, target ${o.target}${noise ? `, ${noise} noise-mode samples` : ''}) into ${shards.length} shards in ${o.out}`, {
    skipped: badSamples.count,
  });
  return { poisoned, total: rows.length, shards };
}
