import { Option, type Command } from 'commander';
import { usageError } from '../errors.js';
import { convertFashionMnist, fashionMnistSource } from '../sources/fashion-mnist.js';
import { createLog, type LogFormat } from './log.js';

interface FashionMnistCliOptions {
  source: string;
  out: string;
  trainLimit?: number;
  testLimit?: number;
  shardSize: number;
  logFormat?: LogFormat;
  quiet?: boolean;
}

/** `pbe data <dataset>`: public datasets to WebDataset tar shards. */
export function registerDataCommand(program: Command): void {
  const data = program.command('data').description('convert a dataset into WebDataset tar shards');
  data
    .command('fashion-mnist')
    .description(`Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist) -> DIR/train-000000.tar ... and DIR/test-000000.tar ...`)
    .option('--source <dir>', 'directory with the IDX files', fashionMnistSource)
    .option('--out <dir>', 'output directory', 'data/fashion-mnist')
    .option('--train-limit <n>', 'convert the first N training images (default: all 60,000)', count('--train-limit', 0))
    .option('--test-limit <n>', 'convert the first N test images (default: all 10,000)', count('--test-limit', 0))
    .option('--shard-size <n>', 'samples per shard', count('--shard-size', 1), 5000)
    .addOption(new Option('--log-format <format>', 'log lines: pretty (default on a terminal) or json').choices(['pretty', 'json']))
    .option('--quiet', 'no log lines')
    .action(async (o: FashionMnistCliOptions) => {
      const log = createLog({ format: o.logFormat, quiet: o.quiet });
      const started = Date.now();
      const { train, test } = await convertFashionMnist({
        source: o.source, out: o.out, trainLimit: o.trainLimit, testLimit: o.testLimit, shardSize: o.shardSize, log,
      });
      log(`Fashion-MNIST: ${train.samples} train and ${test.samples} test samples in ${o.out} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    });
}

function count(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw usageError(`${name} expects an integer >= ${min}, got "${value}"`);
    return n;
  };
}
