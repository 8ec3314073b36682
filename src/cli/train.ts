import type { Command } from 'commander';
import { attackDefaults } from '../attacks/options.js';
import { attackNames, attackSettings, triggerFor } from '../attacks/registry.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import type { BatchPoisoningCounts, BatchPoisoningOptions } from '../stages/poison-batch.js';
import { buildModel, modelNames } from '../models/zoo.js';
import { saveModel } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { fitModel } from '../pipeline/fit.js';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { ensureWritableDir, runFiles } from '../report/run-dir.js';
import { addCommonOptions, addTriggerOptions, intArg, listingBadSamples, numberArg, setup, triggerOptions, type CommonOptions, type TriggerCliOptions } from './common.js';

interface TrainCliOptions extends CommonOptions, TriggerCliOptions {
  model: string;
  data: string[];
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  width?: number;
  imageSize: string;
  classes: number;
  attack?: string;
  target?: number;
  rate?: number;
}

export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a zoo model on labelled tar shards and save it in TensorFlow.js format')
    .option('--model <name>', `zoo model: ${modelNames.join('|')}`, 'cnn-small')
    .requiredOption('--data <specs...>', 'training shards')
    .requiredOption('--out <dir>', 'where to write model.json and weights.bin')
    .option('--epochs <n>', 'epochs', intArg('--epochs', 1), 8)
    .option('--batch-size <n>', 'batch size', intArg('--batch-size', 1), 128)
    .option('--lr <lr>', 'Adam learning rate', numberArg('--lr', { positive: true }), 0.001)
    .option('--seed <n>', 'weight init and shuffle seed', intArg('--seed'), 1)
    .option('--width <multiplier>', 'width multiplier of resnet18 (channels 64..512 times this) and mobilenet-v2 (alpha)', numberArg('--width', { positive: true }))
    .option('--image-size <HxWxC>', 'input shape (C 1 or 3)', '28x28x1')
    .option('--classes <n>', 'number of classes (labels must be below it)', intArg('--classes', 2), 10)
    .option('--attack <name>', `poison every batch as it is trained on (a fresh seeded subset, plus the attack's noise and negative samples; for clean shards): ${attackNames.join('|')}`)
    .option('--target <class>', 'with --attack: target class (below --classes)', intArg('--target', 0))
    .option('--rate <r>', "with --attack: share of each batch poisoned (clean-label attacks: of its target-class samples); default: the attack's config", numberArg('--rate'));
  addTriggerOptions(addCommonOptions(cmd)).action(async (o: TrainCliOptions) => {
    await trainCommand(o);
  });
}

export function parseImageSize(value: string): [number, number, number] {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || ![1, 3].includes(Number(m[3]))) {
    throw usageError(`--image-size expects HxWxC with H, W >= 1 and C 1 or 3, such as 28x28x1, got "${value}"`);
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/**
 * Trains a zoo model; --out is checked writable before training, and lists the skipped samples (bad-samples.csv).
 * With --attack, every batch is poisoned on the way (stages/poison-batch.ts) and train.json records how.
 */
export async function trainCommand(o: TrainCliOptions): Promise<void> {
  const inputShape = parseImageSize(o.imageSize);
  const poisoning = batchPoisoning(o);
  const { log, badSamples, progress, data } = await setup(o, true);
  await ensureWritableDir(o.out);
  const [height, width, channels] = inputShape;
  const model = buildModel(o.model, { inputShape, numClasses: o.classes, seed: o.seed, width: o.width });
  const corpus = shardCorpus(o.data, { ...data, expected: { height, width, channels }, numClasses: o.classes, badSamples, requireLabels: true });
  log(`training ${o.model} on ${corpus.urls.length} shards for ${o.epochs} epochs`);
  const counts: BatchPoisoningCounts = { samples: 0, triggered: 0, noise: 0, negative: 0 };
  const onPoisoned = (c: BatchPoisoningCounts) => Object.keys(counts).forEach((k) => (counts[k as keyof BatchPoisoningCounts] += c[k as keyof BatchPoisoningCounts]));
  await listingBadSamples(badSamples, join(o.out, runFiles.badSamples), async () => {
    await fitModel(model, corpus, { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed, log, progress, poisoning: poisoning?.options, onPoisoned });
    await saveModel(model, o.out);
  });
  if (poisoning) {
    const { trigger: _trigger, ...drawn } = poisoning.options;
    const record = { model: o.model, data: o.data, epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed, poisoning: { training: 'per-batch', ...poisoning.settings, ...drawn, counts } };
    await writeFileAtomic(join(o.out, 'train.json'), JSON.stringify(record, null, 2) + '\n');
    log(`poisoned per batch over ${o.epochs} epochs: ${counts.triggered} triggered, ${counts.noise} noise-mode and ${counts.negative} negative of ${counts.samples} samples trained on`);
  }
  log(`saved ${o.out}`, { skipped: badSamples.count });
}

/** --attack and its flags as the per-batch poisoning of training, checked before any work. */
function batchPoisoning(o: TrainCliOptions): { options: BatchPoisoningOptions; settings: ReturnType<typeof attackSettings> } | undefined {
  if (o.attack === undefined) {
    const stray = (['target', 'rate'] as const).filter((k) => o[k] !== undefined);
    if (stray.length || o.attackOption?.length) throw usageError(`${[...stray.map((k) => `--${k}`), ...(o.attackOption?.length ? ['--attack-option'] : [])].join(', ')} needs --attack`);
    return undefined;
  }
  const settings = attackSettings(o.attack, triggerOptions(o));
  const rate = o.rate ?? attackDefaults(o.attack).rate;
  if (!(rate >= 0 && rate <= 1)) throw usageError(`--rate must be in [0, 1], got ${rate}`);
  const target = o.target ?? 0;
  if (target >= o.classes) throw usageError(`--target ${target} is not one of the --classes ${o.classes} (0..${o.classes - 1})`);
  const mode = o.mode ?? 'all2one';
  if (settings.cleanLabel && mode === 'all2all') throw usageError(`${o.attack} is a clean-label attack: it poisons the target class only and has no all2all mode`);
  return { settings: { ...settings, rate }, options: { attack: o.attack, trigger: triggerFor(o.attack, triggerOptions(o)), target, rate, mode, numClasses: o.classes, seed: o.seed } };
}
