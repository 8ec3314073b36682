import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { BadSampleLog } from '../sources/bad-samples.js';
import type { DataOptions } from '../sources/dataset.js';
import { writeSamples } from '../sources/dataset.js';
import { convertFashionMnist, fashionMnistSource } from '../sources/fashion-mnist.js';
import type { Log } from '../cli/log.js';
import { outRelative, settingsHash } from './plan.js';

/**
 * The data of a bench: training shards the attacks poison, the clean extra set held back from the same training
 * data (defenses with data "clean" get it; no model is trained on it), and the test shards. Each step writes a
 * `complete` marker last, so a bench stopped in the middle redoes only the unfinished step.
 */
export interface BenchData {
  train: string[];
  clean?: string[];
  test: string[];
  /** What it is, for the tables. */
  what: string;
  /** Known once the clean extra set was split off. */
  trainSamples?: number;
  cleanSamples: number;
}

export interface BenchDataOptions {
  out: string;
  dataset?: 'fashion-mnist';
  data?: string[];
  testData?: string[];
  /** With --dataset: training images taken (the clean extra set comes on top). */
  trainSamples?: number;
  testSamples?: number;
  cleanSamples: number;
  dataOptions: DataOptions;
  log: Log;
}

export async function prepareBenchData(o: BenchDataOptions): Promise<BenchData> {
  let source: { train: string[]; test: string[]; what: string };
  if (o.dataset) {
    if (o.data || o.testData) throw usageError('--dataset and --data/--test-data are alternatives: give one');
    if (!existsSync(fashionMnistSource)) throw usageError(`--dataset fashion-mnist reads ${fashionMnistSource} (apt-get install dataset-fashion-mnist), which is missing`);
    const trainLimit = (o.trainSamples ?? 60_000 - o.cleanSamples) + o.cleanSamples;
    const testLimit = o.testSamples ?? 10_000;
    const dir = join(o.out, 'data', `fashion-mnist-${trainLimit}-${testLimit}`);
    if (!existsSync(join(dir, 'complete'))) {
      await rm(dir, { recursive: true, force: true });
      o.log(`converting Fashion-MNIST (${trainLimit} train, ${testLimit} test) into ${dir}`);
      await convertFashionMnist({ source: fashionMnistSource, out: dir, trainLimit, testLimit });
    }
    source = { train: [join(dir, 'train-*.tar')], test: [join(dir, 'test-*.tar')], what: `Fashion-MNIST (${fashionMnistSource})` };
  } else {
    if (!o.data || !o.testData) throw usageError('bench needs --dataset fashion-mnist, or --data and --test-data shards');
    if (o.trainSamples !== undefined || o.testSamples !== undefined) throw usageError('--train-samples and --test-samples go with --dataset; with --data, give the shards you want used');
    source = { train: o.data, test: o.testData, what: o.data.join(' ') };
  }
  if (o.cleanSamples === 0) return { train: source.train, test: source.test, what: source.what, cleanSamples: 0 };
  const split = await splitCleanSet(source.train, o);
  return { ...split, test: source.test, what: source.what };
}

/**
 * Holds back `cleanSamples` of the training data, chosen by a hash of their keys (so spread over the classes and
 * shards whatever their order), into clean/; the rest goes to train/.
 */
async function splitCleanSet(train: string[], o: BenchDataOptions): Promise<{ train: string[]; clean: string[]; trainSamples: number; cleanSamples: number }> {
  const dir = join(o.out, 'data', `split-${settingsHash({ train: outRelative(train, o.out), clean: o.cleanSamples })}`);
  const marker = join(dir, 'complete');
  const spec = { train: [join(dir, 'train-*.tar')], clean: [join(dir, 'clean-*.tar')] };
  if (existsSync(marker)) {
    const done = JSON.parse(await readFile(marker, 'utf8')) as { trainSamples: number; cleanSamples: number };
    return { ...spec, ...done };
  }
  await rm(dir, { recursive: true, force: true });
  const badSamples = new BadSampleLog({ policy: 'skip', maxBadSamples: 1000, log: o.log });
  const corpus = shardCorpus(train, { ...o.dataOptions, badSamples, requireLabels: true });
  const keys: string[] = [];
  for await (const s of corpus.samples().output) keys.push(s.key);
  if (keys.length <= o.cleanSamples) throw usageError(`--clean-samples ${o.cleanSamples} leaves no training data: the training shards hold ${keys.length} usable samples`);
  const rank = (key: string) => createHash('sha256').update(key).digest().readUInt32BE(0);
  const clean = new Set([...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).slice(0, o.cleanSamples));
  const rest = new Set(keys.filter((k) => !clean.has(k)));
  o.log(`holding back ${clean.size} clean samples of ${keys.length} as the clean extra set, in ${dir}`);
  await writeSamples(corpus.samples(clean, 'the clean extra set').output, join(dir, 'clean'), { samplesPerShard: 5000 });
  await writeSamples(corpus.samples(rest, 'the training set').output, join(dir, 'train'), { samplesPerShard: 5000 });
  const counts = { trainSamples: rest.size, cleanSamples: clean.size };
  await writeFileAtomic(marker, JSON.stringify({ ...counts, from: train, skipped: badSamples.count }, null, 2) + '\n');
  return { ...spec, ...counts };
}
