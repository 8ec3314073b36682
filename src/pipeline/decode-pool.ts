import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { packageRoot } from '../config/paths.js';
import { usageError } from '../errors.js';
import { badSampleError, failOnBadSample } from '../sources/bad-samples.js';
import type { RawSample, Sample } from '../sources/types.js';
import type { DecodeOptions } from '../stages/decode.js';
import { decodeSummary } from '../stages/decode.js';
import { packTask, unpackResults, type DecodeTask, type DecodeTaskResult } from '../stages/decode-batch.js';
import { stage, type Stage } from './pipe.js';

/**
 * The decode stage on a piscina pool of worker threads: raw samples go out in batches, their files packed into
 * one transferred buffer, and each batch's pixels come back in one buffer that every sample of the batch is a
 * view on (decode-batch.ts), in the order they came in.
 *
 *   pipe(raw, decodePool({ workers: 2, expected, onBadSample: log.handler }))   // "decode(2 workers) 28x28x1"
 *
 * At most `maxInFlight` batches are out at once (default 2 per worker), and the next raw sample is read only
 * when the consumer asks for more: a slow consumer slows decoding and reading (backpressure end to end). The
 * threads start with the first pass and serve every later pass of the same stage (an epoch re-reads the data);
 * idle for 5 s they exit, and they never keep the process alive.
 *
 * The batch's buffer is a SharedArrayBuffer that its worker wrote once and let go (an ArrayBuffer moved here when it
 * is large: decode-batch.ts says why). A consumer that packs samples
 * into batches (as every stage here does) needs nothing more; one that keeps a few samples of a long stream for
 * long (shuffle, with `hold: ownPixels`), or moves a single sample to another thread, takes a copy of its own first.
 * The worker is the compiled `decode-worker.js` (under `dist/` when this runs from TypeScript sources).
 */

export const decodePoolDefaults = { batchSize: 64, perWorkerInFlight: 2 };

/** Worker threads left idle this long exit (the next pass starts them again). */
const IDLE_MS = 5000;

export function decodePool(opts: DecodeOptions): Stage<RawSample, Sample> {
  const workers = opts.workers ?? 1;
  const batchSize = opts.batchSize ?? decodePoolDefaults.batchSize;
  const maxInFlight = opts.maxInFlight ?? decodePoolDefaults.perWorkerInFlight * workers;
  for (const [name, v] of [['workers', workers], ['batchSize', batchSize], ['maxInFlight', maxInFlight]] as const) {
    if (!Number.isInteger(v) || v < 1) throw usageError(`decodePool(): ${name} is expected to be a positive integer, but got ${v}`);
  }
  const onBadSample = opts.onBadSample ?? failOnBadSample;
  const taskOpts: DecodeTask['opts'] = {
    expected: opts.expected, imageSize: opts.imageSize, numClasses: opts.numClasses, requireLabels: opts.requireLabels, maxPixels: opts.maxPixels,
  };
  let pool: Piscina | undefined;
  return stage(`decode(${workers} worker${workers === 1 ? '' : 's'})${decodeSummary(opts)}`, async function* (source, ctx) {
    // one pool for every pass of this stage (each epoch re-reads): warm threads; idle ones exit, and never hold the process.
    // Two tasks per thread: its next batch is already there when it finishes one (order is kept by `pending`).
    pool ??= new Piscina({ filename: workerFile(), minThreads: 0, maxThreads: workers, idleTimeout: IDLE_MS, concurrentTasksPerWorker: 2, recordTiming: false });
    const threads = pool;
    const pending: { samples: RawSample[]; run: Promise<DecodeTaskResult> }[] = [];
    let batch: RawSample[] = [];
    const submit = () => {
      const task = packTask(batch, taskOpts);
      const transferList = [task.input.buffer as ArrayBuffer, task.layout.buffer as ArrayBuffer];
      const run = threads.run(task, { transferList, signal: ctx?.signal }) as Promise<DecodeTaskResult>;
      run.catch(() => undefined); // awaited in order below; this only keeps an abandoned one from being unhandled
      pending.push({ samples: batch, run });
      batch = [];
    };
    // a consumer that stops early leaves at most maxInFlight batches to finish in the background, unread
    const input = source[Symbol.asyncIterator]();
    let more = true;
    try {
      for (;;) {
        while (more && pending.length < maxInFlight) {
          const next = await input.next();
          if (next.done) more = false;
          else batch.push(next.value);
          if (batch.length === batchSize || (!more && batch.length > 0)) submit();
        }
        const oldest = pending.shift();
        if (!oldest) return;
        const result = await oldest.run;
        const decoded = unpackResults(result, oldest.samples);
        for (let i = 0; i < decoded.length; i++) {
          const d = decoded[i];
          if (typeof d === 'string') await onBadSample(badSampleError(oldest.samples[i], d));
          else yield d;
        }
      }
    } finally {
      if (more) await input.return?.();
    }
  });
}

let resolvedWorker: string | undefined;

/** The compiled worker: beside this file when running from dist/, else dist/ under the package root. */
export function workerFile(): string {
  if (resolvedWorker) return resolvedWorker;
  const here = fileURLToPath(import.meta.url);
  const candidates = [
    ...(here.endsWith('.js') ? [join(here, '..', '..', 'stages', 'decode-worker.js')] : []),
    join(packageRoot, 'dist', 'src', 'stages', 'decode-worker.js'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw usageError(`the decode worker is not built (looked for ${candidates.join(', ')}): run "npm run build", or decode without workers (--decode-workers 0)`);
  resolvedWorker = found;
  return found;
}
