/**
 * Compute throughput of the zoo's real architectures (resnet18, mobilenet-v2) on wasm with the project kernels,
 * on one thread and on 2 worker threads (one wasm instance each, half the batch each: how `pbe purify` computes),
 * against PyTorch on CPU (Debian's python3-torch, 2 threads) in the same run: forward, PGD step (inference-mode
 * forward + input gradient) and training step (training-mode forward + backward + SGD-momentum update).
 * Run with `npm run bench:models` (optional argument: a case name to run only that one). Installs nothing.
 *
 * FLOPs are counted from the conv, depthwise and dense layer shapes (2 per multiply-accumulate); a PGD step
 * counts 2x forward and a training step 3x.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel } from '../src/models/zoo.js';

const PYTHON = '/usr/bin/python3';
const THREADS = 2;

interface Case { name: string; model: string; inputShape: [number, number, number]; width: number; batch: number; warmup: number; iters: number }
const cases: Case[] = [
  { name: 'resnet18-32', model: 'resnet18', inputShape: [32, 32, 3], width: 1, batch: 32, warmup: 1, iters: 3 },
  { name: 'resnet18-224-w0.25', model: 'resnet18', inputShape: [224, 224, 3], width: 0.25, batch: 16, warmup: 1, iters: 3 },
  { name: 'mobilenet-v2-32', model: 'mobilenet-v2', inputShape: [32, 32, 3], width: 1, batch: 32, warmup: 1, iters: 3 },
  { name: 'mobilenet-v2-224-w0.35', model: 'mobilenet-v2', inputShape: [224, 224, 3], width: 0.35, batch: 16, warmup: 1, iters: 3 },
];

type Phase = 'forward' | 'pgd' | 'train';
const phases: Phase[] = ['forward', 'pgd', 'train'];
const flopFactor: Record<Phase, number> = { forward: 1, pgd: 2, train: 3 };
type Timings = Record<Phase, number>;

function forwardFlopsPerImage(model: tf.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape as number[];
    const input = layer.input; // an array for a layer with several inputs (Add, Concatenate): not counted
    const inShape = Array.isArray(input) ? undefined : input.shape;
    const inChannels = inShape ? (inShape[inShape.length - 1] as number) : 0;
    const cls = layer.getClassName();
    const config = layer.getConfig();
    if (cls === 'Conv2D') {
      const [kh, kw] = config.kernelSize as number[];
      flops += 2 * out[1] * out[2] * out[3] * kh * kw * inChannels;
    } else if (cls === 'DepthwiseConv2D') {
      const [kh, kw] = config.kernelSize as number[];
      flops += 2 * out[1] * out[2] * out[3] * kh * kw;
    } else if (cls === 'Dense') {
      flops += 2 * inChannels * out[1];
    }
  }
  return flops;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function makeSteps(c: Case, batch: number): { steps: Record<Phase, () => void>; dispose: () => void } {
  const model = buildModel(c.model, { inputShape: c.inputShape, numClasses: 10, width: c.width, seed: 1 });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const x = tf.randomUniform([batch, ...c.inputShape]);
  const labels = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32') as tf.Tensor1D, 10);
  const loss = (input: tf.Tensor, training: boolean) =>
    tf.losses.softmaxCrossEntropy(labels, model.apply(input, { training }) as tf.Tensor) as tf.Scalar;
  const steps: Record<Phase, () => void> = {
    forward: () => tf.tidy(() => void (model.predict(x) as tf.Tensor).dataSync()),
    pgd: () => tf.tidy(() => {
      const g = tf.grad((input: tf.Tensor) => loss(input, false))(x);
      tf.clipByValue(x.add(g.sign().mul(2 / 255)), 0, 1).dataSync();
    }),
    train: () => tf.tidy(() => {
      optimizer.minimize(() => loss(x, true), false, vars);
      vars[0].dataSync();
    }),
  };
  return { steps, dispose: () => { tf.dispose([x, labels]); optimizer.dispose(); model.dispose(); } };
}

async function measureMain(c: Case): Promise<Timings> {
  await initBackend('wasm', () => {});
  const { steps, dispose } = makeSteps(c, c.batch);
  const timings = {} as Timings;
  for (const phase of phases) {
    const times: number[] = [];
    for (let i = 0; i < c.warmup + c.iters; i++) {
      const t0 = performance.now();
      steps[phase]();
      if (i >= c.warmup) times.push(performance.now() - t0);
    }
    timings[phase] = median(times);
  }
  dispose();
  return timings;
}

interface WorkerJob { name: string; phase: Phase; batch: number }

/** THREADS workers each run the step on batch / THREADS images at once; mean wall time of a whole-batch step. */
async function measureWorkers(c: Case): Promise<Timings> {
  const timings = {} as Timings;
  for (const phase of phases) {
    const job: WorkerJob = { name: c.name, phase, batch: c.batch / THREADS };
    const workers = Array.from({ length: THREADS }, () => new Worker(new URL(import.meta.url), { workerData: job }));
    try {
      await Promise.all(workers.map((w) => once(w, 'message')));
      const done = workers.map((w) => once(w, 'message'));
      const t0 = performance.now();
      for (const w of workers) w.postMessage('go');
      await Promise.all(done);
      timings[phase] = (performance.now() - t0) / c.iters;
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  return timings;
}

async function workerMain(job: WorkerJob): Promise<void> {
  await initBackend('wasm', () => {});
  const c = cases.find((k) => k.name === job.name)!;
  const { steps } = makeSteps(c, job.batch);
  for (let i = 0; i < c.warmup; i++) steps[job.phase]();
  parentPort!.postMessage('ready');
  await once(parentPort!, 'message');
  for (let i = 0; i < c.iters; i++) steps[job.phase]();
  parentPort!.postMessage('done');
}

function measureTorch(c: Case): Timings & { torch: string } | string {
  const script = [new URL('./models_torch.py', import.meta.url), new URL('../../bench/models_torch.py', import.meta.url)]
    .map((u) => fileURLToPath(u)).find((p) => existsSync(p));
  if (script === undefined) return 'bench/models_torch.py not found';
  const [size, , channels] = c.inputShape;
  const args = [script, c.model, String(size), String(channels), String(c.width), String(c.batch), String(c.iters), String(c.warmup), String(THREADS)];
  const run = spawnSync(PYTHON, args, { encoding: 'utf8' });
  if (run.error !== undefined) return `${PYTHON}: ${run.error.message}`;
  if (run.status !== 0) return `models_torch.py failed: ${run.stderr.trim().split('\n').pop()}`;
  const r = JSON.parse(run.stdout) as { forward_ms: number; pgd_ms: number; train_ms: number; torch: string };
  return { forward: r.forward_ms, pgd: r.pgd_ms, train: r.train_ms, torch: r.torch };
}

function cell(ms: number, batch: number, flops: number, phase: Phase): string {
  const imgs = (batch * 1000) / ms;
  const gflops = (flops * batch * flopFactor[phase]) / (ms * 1e6);
  return `${imgs.toFixed(imgs < 100 ? 1 : 0).padStart(6)} img/s ${gflops.toFixed(1).padStart(5)} GF/s`.padEnd(26);
}

async function main(): Promise<void> {
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  const only = process.argv[2];
  const selected = cases.filter((c) => only === undefined || c.name === only);
  console.log(`models bench: median of ${cases[0].iters} timed steps after ${cases[0].warmup} warm-up; ${cpus().length} cores, load average ${load()}`);
  console.log(`"${THREADS} workers": ${THREADS} threads with a wasm instance each, half the batch each; PyTorch with ${THREADS} threads`);
  console.log(`${'case'.padEnd(24)} ${'variant'.padEnd(22)} batch ${'forward'.padEnd(26)} ${'PGD step'.padEnd(26)} training step`);
  for (const c of selected) {
    await initBackend('wasm', () => {});
    const model = buildModel(c.model, { inputShape: c.inputShape, numClasses: 10, width: c.width });
    const flops = forwardFlopsPerImage(model);
    model.dispose();
    const rows: [string, Timings | string][] = [
      ['wasm, 1 thread', await measureMain(c)],
      [`wasm, ${THREADS} workers`, await measureWorkers(c)],
    ];
    const torch = measureTorch(c);
    rows.push([typeof torch === 'string' ? 'PyTorch' : `PyTorch ${torch.torch}`, torch]);
    for (const [variant, t] of rows) {
      const cells = typeof t === 'string' ? `skipped: ${t}` : phases.map((p) => cell(t[p], c.batch, flops, p)).join(' ');
      console.log(`${c.name.padEnd(24)} ${variant.padEnd(22)} ${String(c.batch).padStart(5)} ${cells}`);
    }
    const workers = rows[1][1] as Timings;
    if (typeof torch !== 'string') {
      const ratio = (p: Phase) => (torch[p] / workers[p]).toFixed(2);
      console.log(`${c.name}: ${(flops / 1e6).toFixed(0)} MFLOP/image forward; wasm ${THREADS} workers vs PyTorch (images/s ratio): ` +
        `forward ${ratio('forward')}x, PGD step ${ratio('pgd')}x, training step ${ratio('train')}x`);
    }
  }
  console.log(`load average now ${load()}`);
}

if (isMainThread) await main();
else await workerMain(workerData as WorkerJob);
