import { isBadSampleError } from '../sources/bad-samples.js';
import { BatchOutput, unpackTask, type DecodeTask, type DecodeTaskResult } from './decode-batch.js';
import { decodeSample } from './decode.js';

/**
 * The decode pool's worker (run by piscina from its compiled `dist/src/stages/decode-worker.js`): a batch's files
 * in, its pixels written into a shared output of the batch's size (decode-batch.ts), straight into each sample's
 * slot when the expected shape is known. A bad sample comes back as its reason, in its place, so the calling
 * thread reports it in order with the sample's url and key.
 */
export default async function decodeTask(task: DecodeTask): Promise<DecodeTaskResult> {
  const raws = unpackTask(task);
  const e = task.opts.expected;
  const out = new BatchOutput(raws.length, e && e.height * e.width * e.channels);
  await Promise.all(
    raws.map(async (raw, i) => {
      try {
        out.set(i, await decodeSample(raw, task.opts, out.slot(i)));
      } catch (err) {
        out.set(i, isBadSampleError(err) ? err.reason : `cannot decode: ${(err as Error).message}`);
      }
    }),
  );
  return out.finish();
}
