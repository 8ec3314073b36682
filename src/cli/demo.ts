import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDir } from '../config/paths.js';
import { detectionMetrics } from '../eval/detection.js';
import { rocCurve } from '../eval/roc.js';
import { convertFashionMnist, fashionMnistSource } from '../sources/fashion-mnist.js';
import { formatEval, evalCommand } from './eval.js';
import { poisonCommand } from './poison.js';
import { purifyCommand } from './purify.js';
import { trainCommand } from './train.js';
import { createLog } from './log.js';
import { intArg, numberArg } from './common.js';
import { attackNames } from '../attacks/registry.js';
import { readPoisonManifest } from '../attacks/poison.js';

interface DemoOptions {
  attack: string;
  full?: boolean;
  train: number;
  out: string;
  epochs: number;
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  logFormat?: 'pretty' | 'json';
  fresh?: boolean;
  attackOption: string[];
  target: number;
  rate?: number;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('Fashion-MNIST end to end: poison, train an infected model, evaluate, purify without clean data, evaluate')
    .option('--attack <name>', `${attackNames.filter((a) => a !== 'lc').join('|')} (lc needs a clean model: use pbe poison)`, 'blend')
    .option('--full', 'use all 60,000 training images (default: --train images)')
    .option('--train <n>', 'training images taken from the Debian dataset', intArg('--train'), 20_000)
    .option('--epochs <n>', 'epochs for the infected model', intArg('--epochs'), 8)
    .option('--out <dir>', 'where the demo writes data, models and runs', 'runs/demo')
    .option('--attack-option <key=value>', 'an option of the attack (repeatable; see config/README.md), e.g. position=top-left', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--target <class>', 'target class', intArg('--target'), 0)
    .option('--rate <r>', "share of training images poisoned (default: the attack's config; 0 trains a clean model)", numberArg('--rate'))
    .option('--fresh', 'redo every step (by default converted data is reused)')
    .option('--backend <name>', 'compute backend')
    .option('--log-format <format>', 'pretty or json')
    .action(async (o: DemoOptions) => {
      await runDemo(o);
    });
}

async function runDemo(o: DemoOptions): Promise<void> {
  const started = Date.now();
  const log = createLog({ format: o.logFormat ?? 'pretty' });
  const common = { backend: o.backend, logFormat: o.logFormat ?? ('pretty' as const), onBadSample: 'skip' as const, maxBadSamples: 1000 };
  const step = (n: number, what: string) => log(`── step ${n}/6: ${what}`);

  step(1, 'data');
  const trainCount = o.full ? 60_000 : o.train;
  let data: { train: string; test: string; what: string };
  if (existsSync(fashionMnistSource)) {
    const dir = join(o.out, `fashion-mnist-${trainCount}`);
    if (o.fresh || !existsSync(join(dir, 'complete'))) {
      await rm(dir, { recursive: true, force: true });
      await convertFashionMnist({ source: fashionMnistSource, out: dir, trainLimit: trainCount, testLimit: 10_000, log });
    }
    data = { train: dir + '/train-*.tar', test: dir + '/test-*.tar', what: `Fashion-MNIST from ${fashionMnistSource}: ${trainCount} train, 10000 test` };
  } else {
    const dir = join(dataDir, 'fashion-mnist-subset');
    data = { train: dir + '/train-*.tar', test: dir + '/test-*.tar', what: `the committed Fashion-MNIST subset in ${dir} (apt-get install dataset-fashion-mnist for more)` };
  }
  log(`data: ${data.what}`);

  const variant = [o.attack, ...o.attackOption.map((kv) => kv.replace(/[^A-Za-z0-9.=-]+/g, '_')), o.target ? `target=${o.target}` : '', o.rate !== undefined ? `rate=${o.rate}` : ''];
  const work = join(o.out, `${variant.filter(Boolean).join(',')}-${trainCount}`);
  const trigger = { attackOption: o.attackOption };
  step(2, `poison with ${o.attack} ${o.rate === undefined ? `at its default rate (config/attacks/${o.attack}.json)` : `at rate ${o.rate}`}, target class ${o.target}`);
  const poisoned = await poisonCommand({ ...common, ...trigger, data: [data.train], out: join(work, 'poisoned'), attack: o.attack, target: o.target, rate: o.rate, seed: 1, shardSize: 5000, overwrite: true });

  step(3, `train the infected model (cnn-small, ${o.epochs} epochs)`);
  await trainCommand({ ...common, model: 'cnn-small', data: [join(work, 'poisoned/train-*.tar')], out: join(work, 'infected'), epochs: o.epochs, batchSize: 128, lr: 0.001, seed: 1, imageSize: '28x28x1', classes: 10 });

  step(4, 'evaluate the infected model');
  const evalArgs = { ...common, ...trigger, data: [data.test], attack: o.attack, target: o.target };
  const before = await evalCommand({ ...evalArgs, model: join(work, 'infected') });
  process.stdout.write(formatEval(before));

  step(5, "purify with PBE (defaults: no preset, no clean data; the poisoned shards' own labels)");
  const { pbe: result } = await purifyCommand({
    ...common, ...trigger,
    model: join(work, 'infected'), data: [join(work, 'poisoned/train-*.tar')], out: join(work, 'purified'), overwrite: true,
    evalData: [data.test], evalAttack: o.attack, target: o.target, evalSamples: 1000,
  }).then((r) => ({ pbe: r.pbe! }));

  step(6, 'evaluate the purified model');
  const after = await evalCommand({ ...evalArgs, model: join(work, 'purified/model') });
  process.stdout.write(formatEval(after));

  const manifest = await readPoisonManifest(join(work, 'poisoned/poison-manifest.csv'));
  const flagged = new Map(result.store.keys.map((k, i) => [k, result.flag.flagged[i] === 1]));
  const detection = detectionMetrics(flagged, manifest);
  const similarities = result.store.similarities();
  const inManifest = result.store.keys.flatMap((k, i) => (manifest.has(k) ? [i] : []));
  const separation = rocCurve(inManifest.map((i) => 1 - similarities[i]), inManifest.map((i) => manifest.get(result.store.keys[i])!)).auroc;
  const recovered = result.findings.trigger;
  const probe = result.probe.find((p) => p.eps === result.eps);
  const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  process.stdout.write(
    [
      '',
      `pbe demo: ${[o.attack, ...o.attackOption].join(' ')}, ${poisoned.poisoned} of ${poisoned.total} training images poisoned, target ${o.target}; ${data.what}`,
      `                 ACC      ASR`,
      `infected      ${pct(before.acc).padStart(6)}   ${pct(before.asr).padStart(6)}`,
      `purified      ${pct(after.acc).padStart(6)}   ${pct(after.asr).padStart(6)}`,
      `probes of the infected model: PGD at eps ${result.eps} flips ${pct(probe?.flipRate)} of predictions, ${pct(probe?.concentration)} of them to class ${probe?.concentrationClass ?? '-'}; ` +
        (recovered ? `trigger inversion recovered a ${recovered.maskL1.toFixed(1)}-pixel trigger of class ${recovered.target}` : 'trigger inversion found no trigger'),
      `generators: ${result.findings.generators.join(' + ')}; lr ${result.lr}`,
      detection.poisoned === 0
        ? `no poisoned samples; the run flagged ${result.flag.count}`
        : `suspicion vs the poison manifest: AUROC ${separation.toFixed(3)}; the run's flag (${result.flag.count} samples): precision ${pct(detection.precision)}, recall ${pct(detection.recall)} (${detection.poisoned} poisoned)`,
      `run directory: ${join(work, 'purified')}; wall time ${minutes} min`,
      `report: ${join(work, 'purified', 'report.html')} (open it in a browser)`,
      '',
    ].join('\n'),
  );
}
