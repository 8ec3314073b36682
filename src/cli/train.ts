import type { Command } from 'commander';
import { buildModel, modelNames } from '../models/zoo.js';
import { saveModel } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { fitModel } from '../pipeline/fit.js';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { ensureWritableDir, runFiles } from '../report/run-dir.js';
import { addCommonOptions, intArg, listingBadSamples, numberArg, setup, type CommonOptions } from './common.js';

interface TrainCliOptions extends CommonOptions {
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
    .option('--classes <n>', 'number of classes (labels must be below it)', intArg('--classes', 2), 10);
  addCommonOptions(cmd).action(async (o: TrainCliOptions) => {
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

/** Trains a zoo model; --out is checked writable before training, and lists the skipped samples (bad-samples.csv). */
export async function trainCommand(o: TrainCliOptions): Promise<void> {
  const inputShape = parseImageSize(o.imageSize);
  const { log, badSamples, progress, data } = await setup(o, true);
  await ensureWritableDir(o.out);
  const [height, width, channels] = inputShape;
  const model = buildModel(o.model, { inputShape, numClasses: o.classes, seed: o.seed, width: o.width });
  const corpus = shardCorpus(o.data, { ...data, expected: { height, width, channels }, numClasses: o.classes, badSamples, requireLabels: true });
  log(`training ${o.model} on ${corpus.urls.length} shards for ${o.epochs} epochs`);
  await listingBadSamples(badSamples, join(o.out, runFiles.badSamples), async () => {
    await fitModel(model, corpus, { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed, log, progress });
    await saveModel(model, o.out);
  });
  log(`saved ${o.out}`, { skipped: badSamples.count });
}
