import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { RawSample } from '../sources/types.js';
import { BatchOutput, unpackTask, type DecodeTask, type DecodeTaskResult } from './decode-batch.js';
import { asBadSample, decodeSample } from './decode.js';

/**
 * The decode pool's worker (run by piscina from its compiled `dist/src/stages/decode-worker.js`): a batch's files
 * in, its pixels written into a shared output of the batch's size (decode-batch.ts), straight into each sample's
 * slot when the expected shape is known. A bad sample comes back as its reason, in its place, so the calling
 * thread reports it in order with the sample's url and key.
 *
 * At most {@link DECODING} samples decode at once (JPEG and WebP decode off the thread, in sharp), and each raw
 * sample is let go once decoded: what a batch keeps alive stays small, so the worker's young-generation GCs
 * have little to copy whatever the batch size.
 */

const DECODING = 4;

export default async function decodeTask(task: DecodeTask): Promise<DecodeTaskResult> {
  const raws: (RawSample | undefined)[] = unpackTask(task);
  const e = task.opts.expected;
  const out = new BatchOutput(raws.length, e && e.height * e.width * e.channels);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < raws.length; i = next++) {
      const raw = raws[i] as RawSample;
      raws[i] = undefined;
      try {
        out.set(i, await decodeSample(raw, task.opts, out.slot(i)));
      } catch (err) {
        out.set(i, asBadSample(raw, err).reason);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DECODING, raws.length) }, lane));
  const result = out.finish();
  // a large output (an ArrayBuffer) is moved, not copied: the calling thread becomes its only owner
  if (result.output instanceof SharedArrayBuffer) return result;
  return move({ [transferableSymbol]: [result.output], [valueSymbol]: result }) as unknown as DecodeTaskResult;
}
