/**
 * Benchmarks of the purification loop (issue: long-running jobs), all in one run so ratios hold:
 *  1. two fully adversarial PBE epochs over the committed Fashion-MNIST subset (4,000 images, batch 128,
 *     eps 0.05, 7 steps) with PGD on the main thread, on 1 and on 2 compute workers computing PGD and gradients
 *     data-parallel (weights every step, exact), and 2 workers attacking with weights once per epoch (look-ahead)
 *     while the main thread trains. The first epoch of a run includes the new workers' warm-up (its first
 *     steps take 230-320 ms against ~200 ms later, on 2 workers); the second is what every later epoch costs;
 *  2. checkpoint write for a Fashion-MNIST-sized run (60,000 samples in the score store, cnn-small);
 *  3. resume-to-first-step: `pbe purify --resume` from process start to the first training step done.
 * Prints medians over BENCH_REPEATS rounds (default 5; the epoch variants take turns in each round) and their ratios;
 * decoding uses `pbe purify`'s default decode workers. Run with `npm run bench:purify`.
 */
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/select.js';
import { loadPurifyConfig } from '../src/config/load.js';
import { dataDir, packageRoot } from '../src/config/paths.js';
import { purifyPbe } from '../src/defenses/pbe.js';
import type { ComputeOptions } from '../src/pipeline/compute.js';
import { saveModel } from '../src/models/io.js';
import { buildModel } from '../src/models/zoo.js';
import { saveCheckpoint } from '../src/pipeline/checkpoint.js';
import { shardCorpus } from '../src/pipeline/corpus.js';
import { ScoreStore } from '../src/pipeline/score-store.js';
import { sgdMomentum } from '../src/stages/train.js';
import { BadSampleLog } from '../src/sources/bad-samples.js';
import { defaultDecodeWorkers } from '../src/cli/common.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const repeats = Number(process.env.BENCH_REPEATS ?? 5);

await initBackend('wasm', () => {});
const subset = join(dataDir, 'fashion-mnist-subset/train-*.tar');
// decoded as `pbe purify` does by default (--decode-workers auto)
const corpus = shardCorpus(subset, { workers: defaultDecodeWorkers(), expected: { height: 28, width: 28, channels: 1 }, badSamples: new BadSampleLog({ policy: 'fail' }) });
const config = await loadPurifyConfig({
  preset: 'fashion-mnist',
  overrides: { initialFraction: 1, keepRatio: [], rounds: [{ epochs: 2, adversarial: { epochs: 2, share: 1, maxBatches: null } }] },
});

/** The seconds of each of two adversarial epochs in one purification run. */
async function adversarialEpochs(compute: ComputeOptions): Promise<[number, number]> {
  const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const result = await purifyPbe(model, corpus, { config, log: () => {}, compute });
  model.dispose();
  return [result.rows[0].seconds, result.rows[1].seconds];
}

console.log(`1. two adversarial PBE epochs per run, 4000 samples, batch 128, PGD eps 0.05 x 7 steps (median of ${repeats} runs)`);
const variants: [string, ComputeOptions][] = [
  ['main thread (0 workers)', { workers: 0, backend: 'wasm', weightsRefresh: 'steps' }],
  ['1 worker, data-parallel (exact)', { workers: 1, backend: 'wasm', weightsRefresh: 'steps' }],
  ['2 workers, data-parallel (exact)', { workers: 2, backend: 'wasm', weightsRefresh: 'steps' }],
  ['2 workers, weights every epoch', { workers: 2, backend: 'wasm', weightsRefresh: 'epoch' }],
];
// rounds of one run per variant, so that drift in the machine's speed hits every variant alike
const times = new Map<string, [number, number][]>(variants.map(([name]) => [name, []]));
for (let i = 0; i < repeats; i++) for (const [name, compute] of variants) times.get(name)!.push(await adversarialEpochs(compute));
/** Median seconds of the first and of the second epoch, by variant. */
const epochSeconds = new Map<string, [number, number]>();
for (const [name] of variants) {
  const runs = times.get(name)!;
  const firsts = runs.map((r) => r[0]);
  const seconds = runs.map((r) => r[1]);
  epochSeconds.set(name, [median(firsts), median(seconds)]);
  const list = (xs: number[]) => xs.map((t) => t.toFixed(2)).join(', ');
  console.log(`   ${name.padEnd(32)} first ${median(firsts).toFixed(2)} s, second ${median(seconds).toFixed(2)} s  ${(4000 / median(seconds)).toFixed(0)} samples/s`);
  console.log(`   ${''.padEnd(32)} (runs: first ${list(firsts)}; second ${list(seconds)})`);
}

console.log('2. checkpoint write, 60,000 samples in the store, cnn-small weights and momentum');
const dir = await mkdtemp(join(tmpdir(), 'pbe-bench-'));
const store = new ScoreStore(10, 60_000);
const logits = Float32Array.from({ length: 10 }, (_, i) => i);
for (let i = 0; i < 60_000; i++) store.add(`train-${String(i).padStart(6, '0')}`, `data/train-${String(Math.floor(i / 5000)).padStart(6, '0')}.tar`, logits, 0, i % 10);
const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
const optimizer = sgdMomentum(0.01, 0.9);
optimizer.minimize(() => (model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor).sum() as tf.Scalar, false, model.trainableWeights.map((w) => w.read() as tf.Variable));
const state = { rows: [], algorithm: { store: store.snapshot(), trusted: store.keys.slice(0, 42_000) } };
const writes: number[] = [];
for (let i = 0; i < 5; i++) writes.push(await saveCheckpoint(dir, { ...state, algorithm: { ...state.algorithm, store: store.snapshot() } }, model, optimizer));
console.log(`   median ${median(writes).toFixed(3)} s (max ${Math.max(...writes).toFixed(3)} s)`);

console.log('3. resume to first step: `pbe purify --resume` on the subset, from process start to the first train step');
const cli = join(packageRoot, 'dist/src/cli/main.js');
const run = (args: string[], env: Record<string, string>) =>
  new Promise<number>((resolve) => {
    const started = performance.now();
    const child = spawn('node', [cli, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('close', () => resolve((performance.now() - started) / 1000));
  });
await saveModel(model, join(dir, 'model'));
await writeFile(join(dir, 'short.json'), JSON.stringify({ initialFraction: 0.25, keepRatio: [0.5], rounds: [{ epochs: 2, adversarial: { epochs: 2, share: 1, maxBatches: null } }, { epochs: 1, adversarial: { epochs: 0, share: 1, maxBatches: null } }] }));
const resumes: number[] = [];
for (let i = 0; i < repeats; i++) {
  const out = join(dir, `run-${i}`);
  await run(['purify', '--model', join(dir, 'model'), '--data', subset, '--out', out, '--config', join(dir, 'short.json'), '--preset', 'fashion-mnist', '--quiet'], { PBE_FAILPOINT: 'train-step:3' });
  resumes.push(await run(['purify', '--resume', out, '--quiet'], { PBE_FAILPOINT: 'train-step:1' }));
}
console.log(`   median ${median(resumes).toFixed(2)} s`);
await rm(dir, { recursive: true, force: true });

const [main, one, two, twoEpoch] = variants.map(([name]) => epochSeconds.get(name)!);
/** Throughput ratio a / b of epoch `e` (0: first, 1: second). */
const ratio = (a: [number, number], b: [number, number], e: 0 | 1) => (b[e] / a[e]).toFixed(2);
console.log('ratios (epoch throughput): first epoch, second epoch');
console.log(`   2 workers / 1 worker (exact):         ${ratio(two, one, 0)}x, ${ratio(two, one, 1)}x`);
console.log(`   2 workers (epoch refresh) / 1 worker: ${ratio(twoEpoch, one, 0)}x, ${ratio(twoEpoch, one, 1)}x`);
console.log(`   2 workers (exact) / main thread:      ${ratio(two, main, 0)}x, ${ratio(two, main, 1)}x`);
