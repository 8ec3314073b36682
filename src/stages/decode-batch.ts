import type { RawArray, RawSample, Sample } from '../sources/types.js';
import type { DecodeSampleOptions } from './decode.js';

/**
 * How a batch of samples crosses to a decode worker and back. Out: the batch's files packed into one buffer that
 * is transferred, with a layout table beside, and an empty SharedArrayBuffer for the output. Back: the worker has
 * written the shapes and pixels into that output, and the samples are views on it. The keys and urls stay on the
 * calling thread; no JSON and no object per sample crosses.
 *
 * Why a SharedArrayBuffer allocated here: V8 counts a buffer transferred in from another thread as old external
 * memory and answers every ~64 MB of them with a full mark-compact of the receiving heap, which cost the calling
 * thread more than the decoding saved (bench/stream.ts, decode alone); a buffer allocated here is counted as
 * young and freed by the cheap young-generation GC. The worker writes it once, before the task ends; nothing
 * writes it after, so the samples are as immutable as any other. (Copying the pixels out of a reused shared slot
 * into a buffer of the calling thread's own instead cost that thread the copy and a page fault every few samples.)
 *
 *   input  every file (and record array) of the batch, back to back
 *   layout per sample: fileCount, error, array, then (name, offset, length) per file; error is the reader's
 *          reason (a name) or -1; array is -1 or dtype (a name), offset, length, rank, shape…
 *   names  the extensions, dtypes and reasons that layout refers to by index
 *   output per sample: height, width, channels, label (-1: none), note (int32), then every good sample's HWC
 *          float32 pixels, back to back; height 0 marks a bad sample whose reason is notes[note]; otherwise note
 *          is its `.json` (notes[note], JSON) or -1. A batch that does not fit comes back in a larger one.
 */

export interface DecodeTask {
  input: Uint8Array;
  output: SharedArrayBuffer;
  layout: Int32Array;
  names: string[];
  opts: DecodeSampleOptions;
}

export interface DecodeTaskResult {
  /** Pixel values in the output, after the shape table. */
  pixelCount: number;
  notes: string[];
  /** The batch did not fit in the task's output: it is here instead. */
  grown?: SharedArrayBuffer;
}

const SHAPE = 5;

/** Output bytes for `samples` images of `pixels` values each. */
export function outputBytes(samples: number, pixels: number): number {
  return 4 * samples * (SHAPE + pixels);
}

/**
 * Packs raw samples for a worker: their bytes copied once into one buffer that then moves to the worker, and an
 * output of `output` bytes for the worker to fill.
 */
export function packTask(samples: readonly RawSample[], output: number, opts: DecodeSampleOptions): DecodeTask {
  let size = 0;
  let entries = 0;
  const count = (data: Uint8Array) => {
    size += data.byteLength;
    entries += 3;
  };
  for (const s of samples) {
    entries += 3;
    s.files.forEach(count);
    if (s.array) {
      size += s.array.data.byteLength + 4; // float32 data is kept 4-aligned
      entries += 3 + s.array.shape.length;
    }
  }
  const bytes = new Uint8Array(size);
  const layout = new Int32Array(entries);
  const names: string[] = [];
  const name = (text: string) => {
    const i = names.indexOf(text);
    return i >= 0 ? i : names.push(text) - 1;
  };
  let at = 0;
  let pos = 0;
  const put = (data: Uint8Array, align: number) => {
    at = Math.ceil(at / align) * align;
    bytes.set(data, at);
    layout[pos++] = at;
    layout[pos++] = data.byteLength;
    at += data.byteLength;
  };
  const putFile = (data: Uint8Array, ext: string) => {
    layout[pos++] = name(ext);
    put(data, 1);
  };
  for (const s of samples) {
    layout[pos++] = s.files.size;
    layout[pos++] = s.error === undefined ? -1 : name(s.error);
    if (s.array) {
      layout[pos++] = name(s.array.dtype);
      put(s.array.data, 4);
      layout[pos++] = s.array.shape.length;
      for (const d of s.array.shape) layout[pos++] = d;
    } else {
      layout[pos++] = -1;
    }
    s.files.forEach(putFile);
  }
  return { input: bytes, output: new SharedArrayBuffer(output), layout, names, opts };
}

/** The worker's side of {@link packTask}: the raw samples again, their files views on the one buffer. */
export function unpackTask(task: DecodeTask): RawSample[] {
  const { input: bytes, layout, names } = task;
  const samples: RawSample[] = [];
  let pos = 0;
  const view = () => {
    const offset = layout[pos++];
    return bytes.subarray(offset, offset + layout[pos++]);
  };
  while (pos < layout.length) {
    const fileCount = layout[pos++];
    const error = layout[pos++];
    const dtype = layout[pos++];
    const raw: RawSample = { key: '', url: '', files: new Map() };
    if (error >= 0) raw.error = names[error];
    if (dtype >= 0) {
      const data = view();
      const shape = Array.from(layout.subarray(pos + 1, pos + 1 + layout[pos]));
      pos += 1 + shape.length;
      raw.array = { shape, dtype: names[dtype] as RawArray['dtype'], data };
    }
    for (let f = 0; f < fileCount; f++) {
      const ext = names[layout[pos++]];
      raw.files.set(ext, view());
    }
    samples.push(raw);
  }
  return samples;
}

/** The worker writes the decoded samples, or the reasons they are bad, in order into the task's output. */
export function packResults(results: readonly (Sample | string)[], task: DecodeTask): DecodeTaskResult {
  let pixelCount = 0;
  for (const r of results) if (typeof r !== 'string') pixelCount += r.pixels.length;
  const needed = 4 * (results.length * SHAPE + pixelCount);
  const grown = needed > task.output.byteLength ? new SharedArrayBuffer(needed) : undefined;
  const output = grown ?? task.output;
  const shapes = new Int32Array(output, 0, results.length * SHAPE);
  const pixels = new Float32Array(output, shapes.byteLength, pixelCount);
  const notes: string[] = [];
  let at = 0;
  results.forEach((r, i) => {
    const row = i * SHAPE;
    if (typeof r === 'string') {
      shapes[row] = 0;
      shapes[row + 4] = notes.push(r) - 1;
      return;
    }
    pixels.set(r.pixels, at);
    at += r.pixels.length;
    shapes[row] = r.height;
    shapes[row + 1] = r.width;
    shapes[row + 2] = r.channels;
    shapes[row + 3] = r.label ?? -1;
    shapes[row + 4] = r.meta === undefined ? -1 : notes.push(JSON.stringify(r.meta)) - 1;
  });
  return grown ? { pixelCount, notes, grown } : { pixelCount, notes };
}

/**
 * The calling thread's side of {@link packResults}: per sample of the batch, in order, the decoded sample (its
 * pixels a view on the batch's output, nothing copied) or the reason it is bad.
 */
export function unpackResults(result: DecodeTaskResult, output: SharedArrayBuffer, samples: readonly RawSample[]): (Sample | string)[] {
  const buffer = result.grown ?? output;
  const shapes = new Int32Array(buffer, 0, samples.length * SHAPE);
  const pixels = new Float32Array(buffer, shapes.byteLength, result.pixelCount);
  const { notes } = result;
  const out: (Sample | string)[] = new Array(samples.length);
  let at = 0;
  for (let i = 0, row = 0; i < samples.length; i++, row += SHAPE) {
    const height = shapes[row];
    if (height === 0) {
      out[i] = notes[shapes[row + 4]];
      continue;
    }
    const width = shapes[row + 1];
    const channels = shapes[row + 2];
    const label = shapes[row + 3];
    const end = at + height * width * channels;
    const raw = samples[i];
    const sample: Sample = { key: raw.key, url: raw.url, pixels: pixels.subarray(at, end), height, width, channels, label: label >= 0 ? label : undefined };
    at = end;
    const meta = shapes[row + 4];
    if (meta >= 0) sample.meta = JSON.parse(notes[meta]);
    out[i] = sample;
  }
  return out;
}
