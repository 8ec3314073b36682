import { isBadSampleError } from '../sources/bad-samples.js';
import { packResults, unpackTask, type DecodeTask, type DecodeTaskResult } from './decode-batch.js';
import { decodeSample } from './decode.js';

/**
 * The decode pool's worker (run by piscina from its compiled `dist/src/stages/decode-worker.js`): a batch's files
 * in, its pixels written into the task's shared output (decode-batch.ts). A bad sample comes back as its reason,
 * in its place, so the calling thread reports it in order with the sample's url and key.
 */
export default async function decodeTask(task: DecodeTask): Promise<DecodeTaskResult> {
  const results = await Promise.all(
    unpackTask(task).map(async (raw) => {
      try {
        return await decodeSample(raw, task.opts);
      } catch (err) {
        return isBadSampleError(err) ? err.reason : `cannot decode: ${(err as Error).message}`;
      }
    }),
  );
  return packResults(results, task);
}
