import { move, transferableSymbol, valueSymbol } from 'piscina';
import { isBadSampleError } from '../sources/bad-samples.js';
import type { RawArray, RawSample } from '../sources/types.js';
import { decodeSample, type DecodeSampleOptions } from './decode.js';

/**
 * The decode pool's worker (run by piscina from its compiled `dist/src/stages/decode-worker.js`). A batch crosses
 * as one packed buffer each way, transferred, never copied: all the samples' file bytes in, all their pixels out,
 * with a small JSON index beside. (Transferring a small buffer per file and per image cost more than decoding
 * a 28×28 PNG.) A bad sample comes back as its reason, in its place, so the calling thread reports it in order.
 */

/** Where one sample's parts lie in the packed bytes. */
export interface PackedSample {
  key: string;
  url: string;
  /** [extension, offset, length] per file. */
  files: [string, number, number][];
  array?: { shape: number[]; dtype: RawArray['dtype']; offset: number; length: number };
  error?: string;
}

export interface DecodeTask {
  index: string; // JSON of PackedSample[]
  bytes: Uint8Array;
  opts: DecodeSampleOptions;
}

/** Per sample: [height, width, channels, label (-1: none), offset in pixels, meta JSON or ''], or the bad reason. */
export type DecodedEntry = [number, number, number, number, number, string] | string;

export interface DecodeTaskResult {
  index: string; // JSON of DecodedEntry[]
  pixels: Float32Array;
}

/** Packs raw samples for a task: their bytes copied once into one buffer that then moves to the worker. */
export function packTask(samples: readonly RawSample[], opts: DecodeSampleOptions): DecodeTask {
  let size = 0;
  for (const s of samples) {
    for (const data of s.files.values()) size += data.byteLength;
    if (s.array) size += s.array.data.byteLength + 4; // float32 data is kept 4-aligned
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  const put = (data: Uint8Array, align = 1) => {
    at = Math.ceil(at / align) * align;
    bytes.set(data, at);
    at += data.byteLength;
    return at - data.byteLength;
  };
  const index: PackedSample[] = samples.map((s) => {
    const p: PackedSample = { key: s.key, url: s.url, files: [...s.files].map(([ext, data]) => [ext, put(data), data.byteLength]) };
    if (s.array) p.array = { shape: s.array.shape, dtype: s.array.dtype, offset: put(s.array.data, 4), length: s.array.data.byteLength };
    if (s.error !== undefined) p.error = s.error;
    return p;
  });
  return { index: JSON.stringify(index), bytes, opts };
}

export default async function decodeTask(task: DecodeTask): Promise<unknown> {
  const index = JSON.parse(task.index) as PackedSample[];
  const bytes = task.bytes;
  const view = (offset: number, length: number) => bytes.subarray(offset, offset + length);
  const results = await Promise.all(
    index.map(async (p) => {
      const raw: RawSample = { key: p.key, url: p.url, files: new Map(p.files.map(([ext, offset, length]) => [ext, view(offset, length)])) };
      if (p.array) raw.array = { shape: p.array.shape, dtype: p.array.dtype, data: view(p.array.offset, p.array.length) };
      if (p.error !== undefined) raw.error = p.error;
      try {
        return await decodeSample(raw, task.opts);
      } catch (err) {
        return isBadSampleError(err) ? err.reason : `cannot decode: ${(err as Error).message}`;
      }
    }),
  );
  let total = 0;
  for (const r of results) if (typeof r !== 'string') total += r.pixels.length;
  const pixels = new Float32Array(total);
  let at = 0;
  const entries: DecodedEntry[] = results.map((r) => {
    if (typeof r === 'string') return r;
    pixels.set(r.pixels, at);
    at += r.pixels.length;
    return [r.height, r.width, r.channels, r.label ?? -1, at - r.pixels.length, r.meta === undefined ? '' : JSON.stringify(r.meta)];
  });
  const result: DecodeTaskResult = { index: JSON.stringify(entries), pixels };
  return move({ [transferableSymbol]: [pixels.buffer], [valueSymbol]: result } as unknown as Parameters<typeof move>[0]);
}
