/**
 * Compute throughput of the model zoo on each backend available here (DESIGN.md §5): forward, PGD step
 * (forward + input gradient of the cross-entropy) and training step (forward + backward + SGD-momentum update),
 * batch 128, for stock wasm, wasm with the project kernels, cpu, and PyTorch on CPU when Debian's python3-torch is
 * installed. Run with `npm run bench:compute`. Installs nothing.
 *
 * FLOPs are counted analytically from the conv and dense layer shapes (2 FLOPs per multiply-accumulate; pooling,
 * activations and the loss are not counted). A PGD step counts 2x forward (forward + the input-gradient half of
 * the backward), a training step 3x forward (backward ≈ 2x forward).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, registerWasmKernels, unregisterWasmKernels } from '../src/backend/index.js';
import { buildModel, type ModelSpec } from '../src/models/zoo.js';

const BATCH = 128;
const PYTHON = '/usr/bin/python3';
const TORCH_THREADS = 2;

interface Case { model: string; spec: ModelSpec }
const cases: Case[] = [
  { model: 'cnn-small', spec: { inputShape: [28, 28, 1], numClasses: 10 } },
  { model: 'cnn4', spec: { inputShape: [32, 32, 3], numClasses: 10 } },
];

type Phase = 'forward' | 'pgd' | 'train';
const phases: Phase[] = ['forward', 'pgd', 'train'];
const flopFactor: Record<Phase, number> = { forward: 1, pgd: 2, train: 3 };

/** Median milliseconds per step, or the reason it cannot run. */
type Timing = number | { fails: string };
interface Row { variant: string; model: string; batch: number; timings: Record<Phase, Timing> }

/**
 * Variants sharing one backend are measured interleaved (A B A B ...) on one model, so drift in machine load
 * hits them alike. `setup` switches to the variant before each step.
 */
interface Variant { name: string; setup: () => void }
interface Group {
  backend: 'wasm' | 'cpu';
  batch: number;
  /** Warm-up and timed steps per phase and variant, by model. */
  steps: Record<string, { warmup: number; iters: number }>;
  variants: Variant[];
}
const groups: Group[] = [
  {
    backend: 'wasm', batch: BATCH, steps: { 'cnn-small': { warmup: 3, iters: 15 }, cnn4: { warmup: 2, iters: 5 } },
    variants: [
      { name: 'wasm stock', setup: unregisterWasmKernels },
      { name: 'wasm + pbe kernels', setup: registerWasmKernels },
    ],
  },
  // Pure JS is ~50x slower: a smaller batch and a single timed step keep the bench short (images/s is per image).
  {
    backend: 'cpu', batch: 8, steps: { 'cnn-small': { warmup: 1, iters: 3 }, cnn4: { warmup: 1, iters: 1 } },
    variants: [{ name: 'cpu (pure JS)', setup: () => {} }],
  },
];

/** Multiply-accumulates per image of every conv2d and dense layer, times 2. */
function forwardFlopsPerImage(model: tf.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const config = layer.getConfig();
    const out = layer.outputShape as number[];
    const inShape = layer.inputSpec?.[0]?.shape ?? (layer.input as tf.SymbolicTensor).shape;
    const inChannels = inShape[inShape.length - 1] as number;
    if (layer.getClassName() === 'Conv2D') {
      const [kh, kw] = config.kernelSize as number[];
      flops += 2 * out[1] * out[2] * out[3] * kh * kw * inChannels;
    } else if (layer.getClassName() === 'Dense') {
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

function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const kernel = /Kernel '(\w+)' not registered/.exec(message);
  return kernel ? `no kernel (${kernel[1]})` : message.split('\n')[0];
}

/** Forward, PGD-step and training-step closures on a fresh model and a random batch; `dispose` frees them. */
function makeSteps(c: Case, batch: number): { steps: Record<Phase, () => void>; dispose: () => void } {
  const model = buildModel(c.model, c.spec);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const x = tf.randomUniform([batch, ...c.spec.inputShape]);
  const labels = tf.oneHot(tf.randomUniform([batch], 0, c.spec.numClasses, 'int32') as tf.Tensor1D, c.spec.numClasses);
  const loss = (input: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, model.apply(input, { training: true }) as tf.Tensor);
  const steps: Record<Phase, () => void> = {
    forward: () => tf.tidy(() => {
      (model.predict(x) as tf.Tensor).dataSync();
    }),
    pgd: () => tf.tidy(() => {
      const g = tf.grad(loss)(x);
      tf.clipByValue(x.add(g.sign().mul(2 / 255)), 0, 1).dataSync();
    }),
    train: () => tf.tidy(() => {
      optimizer.minimize(() => loss(x) as tf.Scalar, false, vars);
      vars[0].dataSync();
    }),
  };
  return {
    steps,
    dispose: () => {
      tf.dispose([x, labels]);
      optimizer.dispose();
      model.dispose();
    },
  };
}

async function measureGroup(group: Group, c: Case): Promise<Row[]> {
  await initBackend(group.backend, () => {});
  const { steps, dispose } = makeSteps(c, group.batch);

  const rows: Row[] = group.variants.map((v) => ({ variant: v.name, model: c.model, batch: group.batch, timings: {} as Record<Phase, Timing> }));
  for (const phase of phases) {
    const times: number[][] = group.variants.map(() => []);
    const failed: (string | undefined)[] = group.variants.map(() => undefined);
    const { warmup, iters } = group.steps[c.model];
    for (let i = 0; i < warmup + iters; i++) {
      group.variants.forEach((variant, v) => {
        if (failed[v] !== undefined) return;
        variant.setup();
        const t0 = performance.now();
        try {
          steps[phase]();
        } catch (err) {
          failed[v] = describeFailure(err);
          return;
        }
        if (i >= warmup) times[v].push(performance.now() - t0);
      });
    }
    rows.forEach((row, v) => {
      row.timings[phase] = failed[v] !== undefined ? { fails: failed[v]! } : median(times[v]);
    });
  }
  registerWasmKernels();
  dispose();
  return rows;
}

/**
 * Data parallelism the way the product gets it on CPU (one wasm instance per worker thread): WORKERS threads each
 * run the step on BATCH / WORKERS images at the same time; the row reports the wall time of a BATCH-image step,
 * averaged over the timed steps.
 */
const WORKERS = 2;
interface WorkerJob { model: string; phase: Phase; batch: number; warmup: number; iters: number }

async function measureWorkers(c: Case): Promise<Row> {
  const timings = {} as Record<Phase, Timing>;
  const { warmup, iters } = groups[0].steps[c.model];
  for (const phase of phases) {
    const job: WorkerJob = { model: c.model, phase, batch: BATCH / WORKERS, warmup, iters };
    const workers = Array.from({ length: WORKERS }, () => new Worker(new URL(import.meta.url), { workerData: job }));
    try {
      const ready = workers.map((w) => once(w, 'message'));
      await Promise.all(ready);
      const done = workers.map((w) => once(w, 'message'));
      const t0 = performance.now();
      for (const w of workers) w.postMessage('go');
      await Promise.all(done);
      timings[phase] = (performance.now() - t0) / iters;
    } catch (err) {
      timings[phase] = { fails: describeFailure(err) };
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  return { variant: `wasm + pbe kernels, ${WORKERS} workers`, model: c.model, batch: BATCH, timings };
}

async function workerMain(job: WorkerJob): Promise<void> {
  await initBackend('wasm', () => {});
  const c = cases.find((k) => k.model === job.model)!;
  const { steps } = makeSteps(c, job.batch);
  for (let i = 0; i < job.warmup; i++) steps[job.phase]();
  parentPort!.postMessage('ready');
  await once(parentPort!, 'message');
  for (let i = 0; i < job.iters; i++) steps[job.phase]();
  parentPort!.postMessage('done');
}

function torchScript(): string | undefined {
  const here = [new URL('./compute_torch.py', import.meta.url), new URL('../../bench/compute_torch.py', import.meta.url)];
  return here.map((u) => fileURLToPath(u)).find((p) => existsSync(p));
}

/** PyTorch rows, or the reason there are none. */
function measureTorch(): Row[] | string {
  const script = torchScript();
  if (script === undefined) return 'bench/compute_torch.py not found';
  const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${PYTHON}: ${probe.error.message}`;
  if (probe.status !== 0) return `torch is not importable by ${PYTHON} (${probe.stderr.trim().split('\n').pop()})`;
  const rows: Row[] = [];
  for (const c of cases) {
    const { warmup, iters } = groups[0].steps[c.model];
    const args = [script, c.model, String(BATCH), String(iters), String(warmup), String(TORCH_THREADS)];
    const run = spawnSync(PYTHON, args, { encoding: 'utf8' });
    if (run.status !== 0) return `compute_torch.py failed: ${run.stderr.trim().split('\n').pop()}`;
    const r = JSON.parse(run.stdout) as { forward_ms: number; pgd_ms: number; train_ms: number; torch: string };
    rows.push({
      variant: `PyTorch ${r.torch}, ${TORCH_THREADS} threads`,
      model: c.model,
      batch: BATCH,
      timings: { forward: r.forward_ms, pgd: r.pgd_ms, train: r.train_ms },
    });
  }
  return rows;
}

function cell(t: Timing, batch: number, flops: number, phase: Phase): string {
  if (typeof t !== 'number') return `fails: ${t.fails}`.padEnd(26);
  const imgs = (batch * 1000) / t;
  const gflops = (flops * batch * flopFactor[phase]) / (t * 1e6);
  return `${imgs.toFixed(imgs < 100 ? 1 : 0).padStart(6)} img/s ${gflops.toFixed(gflops < 1 ? 2 : 1).padStart(5)} GF/s`.padEnd(26);
}

/** Images/s of `ours` over images/s of `reference`. */
function ratio(reference: Row | undefined, ours: Row | undefined, phase: Phase): string {
  const r = reference?.timings[phase], o = ours?.timings[phase];
  if (typeof r !== 'number' || typeof o !== 'number') return 'n/a';
  return `${((ours!.batch / o) / (reference!.batch / r)).toFixed(2)}x`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const flops = new Map<string, number>();
  for (const c of cases) {
    await initBackend('cpu', () => {});
    const model = buildModel(c.model, c.spec);
    flops.set(c.model, forwardFlopsPerImage(model));
    model.dispose();
  }
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`compute bench: batch ${BATCH}, median of timed steps after warm-up; ${cpus().length} cores, load average ${load()}`);
  console.log('FLOPs: conv + dense MACs x 2 from the layer shapes; PGD step = 2x forward, training step = 3x forward');
  console.log(`"${WORKERS} workers": ${WORKERS} threads with a wasm instance each, ${BATCH / WORKERS} images per thread at once ` +
    '(mean wall time per step); cpu at a smaller batch (pure JS is slow), images/s is per image either way');
  for (const c of cases) {
    console.log(`  ${c.model} ${c.spec.inputShape.join('x')}: ${(flops.get(c.model)! / 1e6).toFixed(2)} MFLOP/image forward`);
  }

  const rows: Row[] = [];
  // Optional argument: only the groups whose backend is named (`node dist/bench/compute.js wasm`), or `torch`.
  const only = process.argv[2];
  for (const group of groups.filter((g) => only === undefined || g.backend === only)) {
    for (const c of cases) rows.push(...await measureGroup(group, c));
  }
  if (only === undefined || only === 'workers') {
    for (const c of cases) rows.push(await measureWorkers(c));
  }
  const torch = only === undefined || only === 'torch' ? measureTorch() : 'not selected';
  if (typeof torch === 'string') console.log(`PyTorch: skipped: ${torch}`);
  else rows.push(...torch);

  console.log('');
  console.log(`${'variant'.padEnd(30)} ${'model'.padEnd(10)} batch ${'forward'.padEnd(26)} ${'PGD step'.padEnd(26)} training step`);
  for (const row of rows) {
    const f = flops.get(row.model)!;
    const cells = phases.map((p) => cell(row.timings[p], row.batch, f, p)).join(' ');
    console.log(`${row.variant.padEnd(30)} ${row.model.padEnd(10)} ${String(row.batch).padStart(5)} ${cells}`);
  }

  console.log('');
  const find = (variant: string | RegExp, model: string) => rows.find((r) => r.model === model &&
    (typeof variant === 'string' ? r.variant === variant : variant.test(r.variant)));
  for (const c of cases) {
    const ours = find('wasm + pbe kernels', c.model);
    const workers = find(`wasm + pbe kernels, ${WORKERS} workers`, c.model);
    const stock = find('wasm stock', c.model);
    const torchRow = find(/^PyTorch/, c.model);
    console.log(`${c.model}: PGD step ours vs stock wasm ${ratio(stock, ours, 'pgd')}; ours vs PyTorch: ` +
      `PGD step ${ratio(torchRow, ours, 'pgd')} (${WORKERS} workers ${ratio(torchRow, workers, 'pgd')}), ` +
      `training step ${ratio(torchRow, ours, 'train')} (${WORKERS} workers ${ratio(torchRow, workers, 'train')})`);
  }
  console.log('(ratios of images/s, >1 = ours faster)');
  console.log(`bench time ${((performance.now() - t0) / 1000).toFixed(0)} s; load average now ${load()}`);
}

if (isMainThread) await main();
else await workerMain(workerData as WorkerJob);
