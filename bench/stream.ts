/**
 * Streaming throughput and memory of the input side (issue 4): `npm run bench:stream`.
 *
 * Generates (once, into bench/out/stream/, git-ignored) 1,000,000 samples of 28×28 grayscale PNG + `.cls` in
 * WebDataset tar shards of 10,000, then measures, each in a fresh child process so that peak RSS is its own:
 *   decode alone   100k raw samples held in memory → decode pool (1 and 2 workers; 0 = main thread, for reference)
 *   whole chain    open → tar → decode pool → batch(256) → inference with cnn-small (wasm), 1 and 2 workers
 *                  (both decode to the expected shape 28x28x1, as the purify command does for its model's input)
 *   peak RSS       of the whole chain over 100k and over 1M samples (process.resourceUsage().maxRSS: main thread
 *                  and workers together)
 *
 *   npm run bench:stream                    # everything (~6 min here, the first run ~2 more for the corpus)
 *   node dist/bench/stream.js --max 200000  # a smaller corpus and runs, for a quick look
 *
 * Options: --max N (corpus size, default 1,000,000), --decode-samples N (default 100,000), --rounds N (decode-alone
 * runs per worker count, taking turns; default 5: the 2/1 ratio of single runs spreads by ±5% on a shared machine).
 * PBE_BENCH_TRACE=1 prints the whole chain's memory every 100k samples.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { packageRoot } from '../src/config/paths.js';
import { buildModel } from '../src/models/zoo.js';
import { decodePool } from '../src/pipeline/decode-pool.js';
import { rawSource } from '../src/sources/dataset.js';
import { encodePng } from '../src/sources/image.js';
import { ShardWriter } from '../src/sources/tar-writer.js';
import type { RawSample, Sample } from '../src/sources/types.js';
import { decode } from '../src/stages/decode.js';

const SHARD = 10_000;
/** The images' shape, given to decode as the purify command gives its model's input shape. */
const SHAPE = { height: 28, width: 28, channels: 1 };
const trace = process.env.PBE_BENCH_TRACE === '1';
const OUT = join(packageRoot, 'bench', 'out', 'stream');
const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

interface Result {
  samples: number;
  seconds: number;
  rate: number;
  maxRssMiB: number;
  /** CPU time of the whole process (all threads) per sample: what the work costs, whatever else runs here. */
  cpuUs: number;
  /** Decode alone: CPU µs per sample of the main thread, the workers, and V8's helper threads (GC, compiler). */
  threads?: { main: number; workers: number; helpers: number };
}

let cpuAtStart = process.cpuUsage();

async function generate(total: number): Promise<void> {
  const marker = join(OUT, `complete-${total}`);
  if (existsSync(marker)) return;
  const started = Date.now();
  // 1000 distinct images (a Fashion-MNIST-like mix of smooth shapes and noise), reused under distinct keys
  const pngs = Array.from({ length: 1000 }, (_, k) => {
    const px = new Float32Array(784);
    for (let i = 0; i < 784; i++) {
      const y = Math.floor(i / 28) - 14;
      const x = (i % 28) - 14;
      px[i] = x * x + y * y < 60 + (k % 90) ? ((k * 31 + i * 7) % 97) / 120 + 0.15 : 0;
    }
    return encodePng(px, 28, 28, 1);
  });
  const writer = new ShardWriter(join(OUT, 'train'), { samplesPerShard: SHARD });
  for (let n = 0; n < total; n++) {
    const files = new Map<string, Uint8Array>([
      ['png', pngs[n % pngs.length]],
      ['cls', Buffer.from(String(n % 10))],
    ]);
    await writer.write({ key: `s${String(n).padStart(7, '0')}`, files });
    if (n > 0 && n % 200_000 === 0) process.stderr.write(`  generated ${n} samples\n`);
  }
  await writer.close();
  writeFileSync(marker, `${total}\n`);
  process.stderr.write(`  corpus: ${total} samples in ${Math.ceil(total / SHARD)} shards, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

const spec = (samples: number) => join(OUT, `train-{000000..${String(Math.ceil(samples / SHARD) - 1).padStart(6, '0')}}.tar`);

/** Child: decode alone, from raw samples already in memory. */
async function decodeAlone(samples: number, workers: number): Promise<Result> {
  const raw: RawSample[] = [];
  for await (const r of rawSource(spec(samples)).open()) {
    raw.push(r);
    if (raw.length === samples) break;
  }
  const stage = workers > 0 ? decodePool({ workers, batchSize: 128, expected: SHAPE }) : decode({ expected: SHAPE });
  // warm up (not counted): the pool starts and every thread compiles its hot code on 2000 samples of its own
  const warmup = 2000 * Math.max(1, workers);
  for await (const _ of stage((async function* () { yield* raw.slice(0, warmup); })(), {})) void _;
  const started = performance.now();
  cpuAtStart = process.cpuUsage();
  const before = threadTimes();
  let n = 0;
  for await (const _ of stage((async function* () { yield* raw.slice(warmup); })(), {})) {
    void _;
    n++;
  }
  const result = done(n, started);
  // per-thread CPU (Linux /proc): the main thread, the `workers` busiest other threads, and the rest
  const after = threadTimes();
  const delta = [...after].map(([tid, t]) => [tid, t - (before.get(tid) ?? 0)] as const);
  const main = delta.find(([tid]) => tid === process.pid)?.[1] ?? 0;
  const others = delta.filter(([tid]) => tid !== process.pid).map(([, t]) => t).sort((a, b) => b - a);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const per = (ms: number) => (ms * 1000) / n;
  result.threads = { main: per(main), workers: per(sum(others.slice(0, workers))), helpers: per(sum(others.slice(workers))) };
  return result;
}

/** CPU milliseconds of each thread of this process, by thread id (utime + stime from /proc, 10 ms ticks). */
function threadTimes(): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) * 10);
    }
  } catch {
    // not Linux: no breakdown
  }
  return out;
}

/** Child: open → tar → decode → batch(256) → cnn-small forward on wasm. */
async function chain(samples: number, workers: number): Promise<Result> {
  await initBackend('wasm', () => {});
  const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const stage = decodePool({ workers, batchSize: 128, expected: SHAPE });
  const started = performance.now();
  cpuAtStart = process.cpuUsage();
  let n = 0;
  let pending: Sample[] = [];
  const infer = () => {
    const x = new Float32Array(pending.length * 784);
    pending.forEach((s, i) => x.set(s.pixels, i * 784));
    tf.tidy(() => (model.predict(tf.tensor4d(x, [pending.length, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync());
    n += pending.length;
    if (trace && n % 100_000 < 256) {
      const m = process.memoryUsage();
      const mib = (v: number) => (v / 2 ** 20).toFixed(0);
      process.stderr.write(`    ${n}: rss ${mib(m.rss)} MiB, heap ${mib(m.heapUsed)}/${mib(m.heapTotal)}, array buffers ${mib(m.arrayBuffers)}, wasm ${mib(tf.memory().numBytes)}\n`);
    }
    pending = [];
  };
  for await (const s of stage(rawSource(spec(samples)).open(), {})) {
    pending.push(s);
    if (pending.length === 256) infer();
    if (n >= samples) break;
  }
  if (pending.length) infer();
  if (tf.memory().numTensors > 50) throw new Error(`tensors leak: ${tf.memory().numTensors}`);
  return done(n, started);
}

function done(n: number, started: number): Result {
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  return { samples: n, seconds, rate: n / seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpuUs: (cpu.user + cpu.system) / n };
}

function child(kind: 'decode' | 'chain', samples: number, workers: number): Result {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, String(samples), String(workers)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop() as string) as Result;
}

async function main(): Promise<void> {
  const childAt = args.indexOf('--child');
  if (childAt >= 0) {
    const [kind, samples, workers] = [args[childAt + 1], Number(args[childAt + 2]), Number(args[childAt + 3])];
    const result = kind === 'decode' ? await decodeAlone(samples, workers) : await chain(samples, workers);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const max = arg('--max', 1_000_000);
  const decodeSamples = Math.min(arg('--decode-samples', 100_000), max);
  const rounds = arg('--rounds', 5);
  const small = Math.min(100_000, max);
  const t0 = Date.now();
  console.log(`bench:stream — ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, load ${loadavg()[0].toFixed(2)}`);
  await generate(max);
  const fmt = (r: Result) =>
    `${Math.round(r.rate).toLocaleString('en-US').padStart(8)} samples/s  (${r.samples} in ${r.seconds.toFixed(1)} s, ${r.cpuUs.toFixed(1)} CPU µs/sample, peak RSS ${r.maxRssMiB.toFixed(0)} MiB)`;

  console.log(`\ndecode alone (28x28 PNG, ${decodeSamples} raw samples in memory, pngjs):`);
  // 1 and 2 workers take turns over `rounds` runs, so that drift in the machine's speed hits both alike; medians
  const runs: Record<number, Result[]> = { 0: [child('decode', decodeSamples, 0)], 1: [], 2: [] };
  for (let i = 0; i < rounds; i++) for (const w of [1, 2]) runs[w].push(child('decode', decodeSamples, w));
  const dec: Record<number, Result> = {};
  for (const w of [0, 1, 2]) {
    dec[w] = [...runs[w]].sort((a, b) => a.rate - b.rate)[Math.floor(runs[w].length / 2)];
    const each = runs[w].length > 1 ? `, runs ${runs[w].map((r) => Math.round(r.rate).toLocaleString('en-US')).join(' / ')}` : '';
    console.log(`  ${w === 0 ? 'main thread' : `${w} worker${w > 1 ? 's ' : '  '}`}  ${fmt(dec[w])}${each}`);
    const t = dec[w].threads;
    if (t) console.log(`      CPU µs/sample by thread: main ${t.main.toFixed(1)}, decode worker${w === 1 ? '' : 's'} ${t.workers.toFixed(1)}, V8 helpers ${t.helpers.toFixed(1)}`);
  }
  console.log(`  2 workers / 1 worker (medians of ${rounds}): ${(dec[2].rate / dec[1].rate).toFixed(2)}x`);
  const t1 = dec[1].threads;
  if (t1 && t1.workers > 0) {
    // with nothing else running: 1 worker goes at the worker's pace (the main thread has the other core);
    // 2 workers share 2 cores with the main thread and the helpers
    const one = 1e6 / Math.max(t1.workers, t1.main + t1.helpers);
    const two = 2e6 / (t1.workers + t1.main + t1.helpers);
    console.log(`  on 2 idle cores, from these CPU costs: 1 worker ~${Math.round(one).toLocaleString('en-US')}/s, 2 workers ~${Math.round(two).toLocaleString('en-US')}/s (${(two / one).toFixed(2)}x)`);
  }

  console.log(`\nwhole chain (open -> tar -> decode -> batch(256) -> cnn-small forward, wasm):`);
  const ch: Record<string, Result> = {};
  for (const w of [1, 2]) {
    ch[`${w}-${small}`] = child('chain', small, w);
    console.log(`  ${w} worker${w > 1 ? 's' : ' '}, ${small} samples  ${fmt(ch[`${w}-${small}`])}`);
  }
  if (max > small) {
    const best = ch[`2-${small}`].rate >= ch[`1-${small}`].rate ? 2 : 1;
    const big = child('chain', max, best);
    console.log(`  ${best} worker${best > 1 ? 's' : ' '}, ${max} samples  ${fmt(big)}`);
    console.log(`\npeak RSS, whole chain with ${best} worker${best > 1 ? 's' : ''}: ${ch[`${best}-${small}`].maxRssMiB.toFixed(0)} MiB at ${small} samples, ${big.maxRssMiB.toFixed(0)} MiB at ${max}`);
  }
  console.log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s, load at the end ${loadavg()[0].toFixed(2)} (2 cores: above ~0.3 other processes share them)`);
}

await main();
