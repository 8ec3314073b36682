import { Option, type Command } from 'commander';
import { attackNames } from '../attacks/registry.js';
import type { PoisonMode } from '../attacks/poison.js';
import { defenseNames } from '../defenses/registry.js';
import { usageError } from '../errors.js';
import { runBench } from '../matrix/bench.js';
import { parseSeeds, pickNames } from '../matrix/plan.js';
import { modelNames } from '../models/zoo.js';
import { addCommonOptions, intArg, numberArg, setup, type CommonOptions } from './common.js';
import { parseImageSize } from './train.js';

interface BenchCliOptions extends CommonOptions {
  dataset?: string;
  data?: string[];
  testData?: string[];
  trainSamples?: number;
  testSamples?: number;
  cleanSamples?: number;
  attacks?: string;
  defenses?: string;
  seeds: string;
  target: number;
  mode: PoisonMode;
  attackOption: string[];
  model: string;
  epochs?: number;
  batchSize: number;
  lr: number;
  width?: number;
  imageSize: string;
  classes: number;
  evalSamples: number;
  out?: string;
  quick?: boolean;
  verbose?: boolean;
}

/** --quick: a CI-sized matrix (minutes), each setting only where the flag is not given. */
const quick = { trainSamples: 4000, testSamples: 2000, cleanSamples: 500, epochs: 4, attacks: 'badnets,blend', defenses: 'pbe,ft', out: 'runs/bench-quick' };


export function registerBenchCommand(program: Command): void {
  const cmd = program
    .command('bench')
    .description('attacks × defenses × seeds: poison, train each infected model (cached), run each defense (resumable), score ACC/ASR; writes bench.csv, bench.md, bench.html')
    .addOption(new Option('--dataset <name>', 'a dataset pbe converts itself').choices(['fashion-mnist']))
    .option('--data <specs...>', 'labelled training shards (instead of --dataset)')
    .option('--test-data <specs...>', 'labelled test shards (with --data)')
    .option('--train-samples <n>', 'with --dataset: training images the attacks poison (default: all but the clean extra set)', intArg('--train-samples', 1))
    .option('--test-samples <n>', 'with --dataset: test images (default all)', intArg('--test-samples', 1))
    .option('--clean-samples <n>', 'clean training samples held back as the clean extra set of defenses that need one (0: none)', intArg('--clean-samples', 0))
    .option('--attacks <names>', `comma-separated, or all: ${attackNames.join(',')} (default all)`)
    .option('--defenses <names>', `comma-separated, or all: ${defenseNames.join(',')} (default all)`)
    .option('--seeds <list>', 'comma-separated seeds; each poisons, trains and defends anew', '1')
    .option('--target <class>', 'attack target class', intArg('--target', 0), 0)
    .addOption(new Option('--mode <mode>', 'all2one or all2all (clean-label attacks: all2one only)').choices(['all2one', 'all2all']).default('all2one'))
    .option('--attack-option <attack:key=value>', 'an option of one attack (repeatable), e.g. badnets:position=top-left', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--model <name>', `zoo model of the infected models: ${modelNames.join('|')}`, 'cnn-small')
    .option('--epochs <n>', 'epochs of the infected models (default 8)', intArg('--epochs', 1))
    .option('--batch-size <n>', 'batch size of the infected models', intArg('--batch-size', 1), 128)
    .option('--lr <lr>', 'Adam learning rate of the infected models', numberArg('--lr', { positive: true }), 0.001)
    .option('--width <multiplier>', 'width multiplier (resnet18, mobilenet-v2)', numberArg('--width', { positive: true }))
    .option('--image-size <HxWxC>', 'model input shape', '28x28x1')
    .option('--classes <n>', 'number of classes', intArg('--classes', 2), 10)
    .option('--eval-samples <n>', "test samples in each defense's per-epoch ACC/ASR (metrics.csv); the tables use the whole test set", intArg('--eval-samples', 1), 1000)
    .option('--out <dir>', 'cache, runs and tables (default runs/bench; --quick: runs/bench-quick)')
    .option('--quick', `a CI-sized matrix: Fashion-MNIST (without --data) ${Object.entries(quick).filter(([k]) => k !== 'out').map(([k, v]) => `${k} ${v}`).join(', ')} (flags given win)`)
    .option('--verbose', 'log the lines of every poison, train and purify step');
  addCommonOptions(cmd).action(async (o: BenchCliOptions) => {
    const { failed } = await benchCommand(o);
    if (failed.length) throw usageError(`${failed.length} bench step${failed.length === 1 ? '' : 's'} failed: ${failed.map((f) => `${f.what}: ${f.error}`).join('; ')}`);
  });
}

export async function benchCommand(options: BenchCliOptions) {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const quickData = options.data ? { cleanSamples: quick.cleanSamples } : { dataset: 'fashion-mnist', trainSamples: quick.trainSamples, testSamples: quick.testSamples, cleanSamples: quick.cleanSamples };
  const o: BenchCliOptions = options.quick ? { ...quickData, epochs: quick.epochs, attacks: quick.attacks, defenses: quick.defenses, out: quick.out, ...given } as BenchCliOptions : options;
  if (!o.dataset && !o.data) throw usageError('bench needs --dataset fashion-mnist, or --data and --test-data shards');
  parseImageSize(o.imageSize);
  const { log, data } = await setup(o);
  const common = commonOptions(o);
  return runBench({
    out: o.out ?? 'runs/bench',
    dataset: o.dataset as 'fashion-mnist' | undefined,
    data: o.data,
    testData: o.testData,
    trainSamples: o.trainSamples,
    testSamples: o.testSamples,
    cleanSamples: o.cleanSamples ?? 1000,
    attacks: pickNames('--attacks', o.attacks, attackNames),
    defenses: pickNames('--defenses', o.defenses, defenseNames),
    seeds: parseSeeds(o.seeds),
    target: o.target,
    mode: o.mode,
    attackOptions: o.attackOption,
    training: { model: o.model, epochs: o.epochs ?? 8, batchSize: o.batchSize, lr: o.lr, width: o.width, imageSize: o.imageSize, classes: o.classes },
    epochEvalSamples: o.evalSamples,
    common,
    dataOptions: data,
    log,
    command: ['pbe', ...process.argv.slice(2)].join(' '),
  });
}

/**
 * Only the common flags reach the poison, train and purify steps: a bench flag of the same name as a purify flag
 * (--lr, --epochs: the infected models' training) must not override a defense's config.
 */
function commonOptions(o: BenchCliOptions): CommonOptions {
  const { backend, logFormat, onBadSample, maxBadSamples, dataFormat, shardIndex, numShards, s3Endpoint, gsEndpoint, allowPipe, imageSizePolicy, decodeWorkers, maxEntryBytes, maxPixels, ioTimeout } = o;
  return { backend, logFormat, quiet: o.quiet || !o.verbose, onBadSample, maxBadSamples, dataFormat, shardIndex, numShards, s3Endpoint, gsEndpoint, allowPipe, imageSizePolicy, decodeWorkers, maxEntryBytes, maxPixels, ioTimeout };
}
