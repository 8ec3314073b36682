import { Option, type Command } from 'commander';
import { dirname, join } from 'node:path';
import { usageError } from '../errors.js';
import { BadSampleLog } from '../sources/bad-samples.js';
import { shardSource, writeSamples } from '../sources/dataset.js';
import { convertFashionMnist, fashionMnistSource } from '../sources/fashion-mnist.js';
import { formatNames, type FormatName } from '../sources/formats.js';
import type { Sample } from '../sources/types.js';
import { addDataOptions, dataOptions, intArg, listingBadSamples, type CommonOptions } from './common.js';
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

interface ConvertCliOptions extends CommonOptions {
  from: string[];
  to: string;
  toFormat?: FormatName;
  shardSize: number;
  dtype: 'uint8' | 'float32';
  shape?: string;
  overwrite?: boolean;
}

/** `pbe data <dataset>`: public datasets to WebDataset tar shards; `pbe data convert`: between formats. */
export function registerDataCommand(program: Command): void {
  const data = program.command('data').description('convert datasets: public ones into shards, or between formats (tar, msgpack, csv, folder)');
  const convert = data
    .command('convert')
    .description('read --from in any format and place, write --to as tar or msgpack shards, a CSV manifest with its images, or an image folder')
    .requiredOption('--from <specs...>', 'input: shard specs, manifests, image folders, URLs (s3://, gs://, https://, -, pipe:)')
    .requiredOption('--to <out>', 'output: a shard prefix (out/train -> out/train-000000.tar), a manifest (out/train.csv) or a folder')
    .addOption(new Option('--to-format <format>', 'output format (default: csv for a .csv --to, else tar)').choices(formatNames))
    .option('--shard-size <n>', 'samples per output shard', count('--shard-size', 1), 1000)
    .addOption(new Option('--dtype <dtype>', 'msgpack pixel type').choices(['uint8', 'float32']).default('uint8'))
    .option('--shape <HxWxC>', 'convert every image to this shape (channels converted; sizes per --image-size-policy)')
    .option('--overwrite', 'replace shards of the same --to prefix left by an earlier run (by default refused)')
    .addOption(new Option('--log-format <format>', 'log lines: pretty (default on a terminal) or json').choices(['pretty', 'json']))
    .option('--quiet', 'no log lines')
    .addOption(new Option('--on-bad-sample <policy>', 'what a bad sample does').choices(['skip', 'fail']).default('skip'))
    .option('--max-bad-samples <n>', 'fail once more samples than this were skipped', intArg('--max-bad-samples', 0), 1000);
  addDataOptions(convert).action(async (o: ConvertCliOptions) => {
    await convertCommand(o);
  });
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

export interface ConvertResult {
  samples: number;
  written: string[];
  badSamples: number;
}

/** `pbe data convert`: read → decode (bad samples per policy, listed in bad-samples.csv beside the output) → write. */
export async function convertCommand(o: ConvertCliOptions): Promise<ConvertResult> {
  const log = createLog({ format: o.logFormat, quiet: o.quiet });
  const started = Date.now();
  const format: FormatName = o.toFormat ?? (o.to.toLowerCase().endsWith('.csv') ? 'csv' : 'tar');
  const badSamples = new BadSampleLog({ policy: o.onBadSample, maxBadSamples: o.maxBadSamples, log });
  const expected = o.shape ? parseShape(o.shape) : undefined;
  const source = shardSource(o.from, { ...dataOptions(o, log), expected, onBadSample: badSamples.handler });
  log(`converting ${source.summary()} -> ${format} ${o.to}`);
  let samples = 0;
  const counted = (async function* (): AsyncGenerator<Sample> {
    for await (const s of source()) {
      samples++;
      yield s;
    }
  })();
  const badCsv = join(format === 'folder' ? o.to : dirname(o.to), 'bad-samples.csv');
  const written = await listingBadSamples(badSamples, badCsv, () =>
    writeSamples(counted, o.to, {
      format,
      samplesPerShard: o.shardSize,
      dtype: o.dtype,
      onShard: (s) => log(`wrote ${s.path}: ${s.samples} samples`, { shard: s.index }),
      onBadSample: (err) => {
        samples--; // read, but the output format cannot hold it: listed, not written
        return badSamples.record(err);
      },
      existing: o.overwrite ? 'replace' : 'refuse',
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  log(`converted ${samples} samples to ${format} (${written.length} file${written.length === 1 ? '' : 's'}) in ${seconds.toFixed(1)} s; ${badSamples.summary()}${badSamples.count ? `, listed in ${badCsv}` : ''}`, {
    samples,
    skipped: badSamples.count,
  });
  return { samples, written, badSamples: badSamples.count };
}

function parseShape(value: string): { height: number; width: number; channels: number } {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || ![1, 3].includes(Number(m[3]))) {
    throw usageError(`--shape expects HxWxC with C 1 or 3, such as 28x28x1, got "${value}"`);
  }
  return { height: Number(m[1]), width: Number(m[2]), channels: Number(m[3]) };
}

function count(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw usageError(`${name} expects an integer >= ${min}, got "${value}"`);
    return n;
  };
}
