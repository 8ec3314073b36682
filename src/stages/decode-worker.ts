import { move, transferableSymbol, valueSymbol } from 'piscina';
import { isBadSampleError } from '../sources/bad-samples.js';
import type { RawSample, Sample } from '../sources/types.js';
import { decodeSample, type DecodeSampleOptions } from './decode.js';

/**
 * The decode pool's worker (run by piscina from its compiled `dist/src/stages/decode-worker.js`): a batch of raw
 * samples in, decoded samples out, each pixel buffer transferred back, not copied. A bad sample comes back as
 * `{ bad }` in its place, so the calling thread reports it in order.
 */

export interface DecodeTask {
  samples: RawSample[];
  opts: DecodeSampleOptions;
}

export type DecodeResult = { sample: Sample } | { bad: { url: string; key: string; reason: string } };

export default async function decodeTask(task: DecodeTask): Promise<unknown> {
  const results = await Promise.all(
    task.samples.map(async (raw): Promise<DecodeResult> => {
      try {
        return { sample: await decodeSample(raw, task.opts) };
      } catch (err) {
        const reason = isBadSampleError(err) ? err.reason : `cannot decode: ${(err as Error).message}`;
        return { bad: { url: raw.url, key: raw.key, reason } };
      }
    }),
  );
  const transfer = new Set<ArrayBuffer>();
  for (const r of results) if ('sample' in r) transfer.add(r.sample.pixels.buffer as ArrayBuffer);
  return move({ [transferableSymbol]: [...transfer], [valueSymbol]: results } as unknown as Parameters<typeof move>[0]);
}
