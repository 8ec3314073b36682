import type { RawArray, RawSample, Sample } from '../sources/types.js';
import type { DecodeSampleOptions } from './decode.js';

/**
 * How a batch of samples crosses to a decode worker and back. Out: the batch's files packed into one buffer that
 * is transferred, with a layout table beside. Back: one SharedArrayBuffer that the worker allocated to the size
 * the batch needs and wrote the shapes and pixels into; the samples are views on it. The keys and urls stay on
 * the calling thread; no JSON and no object per sample crosses.
 *
 * Why a SharedArrayBuffer: V8 counts an ArrayBuffer transferred in from another thread as old external memory
 * and answers every ~64 MB of them with a full mark-compact of the receiving heap, which cost the calling thread
 * more than the decoding saved (bench/stream.ts, decode alone). A shared one is not counted so: the calling
 * thread's full GCs stayed at the 2 of loading the input. It is allocated (and zeroed) in the worker, which also
 * spares the calling thread that cost. But no thread counts it either: its memory goes back only once the worker's
 * wrapper is collected too, by a GC the worker, which allocates little else, seldom runs. At 224x224x3 (38 MB a
 * batch of 64) they piled up: 2,000 images decoded and packed peaked at 1,335 MiB RSS, against 446 MiB when an
 * output of TRANSFER_BYTES or more is an ArrayBuffer moved to the calling thread instead, as now: counted there,
 * and freed by the GCs it brings on (one per ~64 MB: a few a second at most for images this large). The worker writes it once, before the task ends; nothing writes it after,
 * so the samples are as immutable as any other. (Copying the pixels out of a reused shared slot into a buffer of
 * the calling thread's own instead cost that thread the copy and a page fault every few samples.)
 *
 *   input  every file (and record array) of the batch, back to back
 *   layout per sample: fileCount, error, array, then (name, offset, length) per file; error is the reader's
 *          reason (a name) or -1; array is -1 or dtype (a name), offset, length, rank, shape…
 *   names  the extensions, dtypes and reasons that layout refers to by index
 *   output per sample: height, width, channels, label (-1: none), note, offset (int32), then the good samples'
 *          HWC float32 pixels, each at its offset (in values): back to back, or in slots of the expected size;
 *          height 0 marks a bad sample whose reason is notes[note]; otherwise note is its `.json` (notes[note],
 *          JSON) or -1.
 */

export interface DecodeTask {
  input: Uint8Array;
  layout: Int32Array;
  names: string[];
  opts: DecodeSampleOptions;
}

export interface DecodeTaskResult {
  output: SharedArrayBuffer | ArrayBuffer;
  notes: string[];
}

const SHAPE = 6;

/** Outputs from this size on are moved ArrayBuffers, smaller ones shared (28x28x1: 200 KB a batch of 64). */
export const TRANSFER_BYTES = 8 * 2 ** 20;

function outputBuffer(bytes: number): SharedArrayBuffer | ArrayBuffer {
  return bytes >= TRANSFER_BYTES ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes);
}

/** Packs raw samples for a worker: their bytes copied once into one buffer that then moves to the worker. */
export function packTask(samples: readonly RawSample[], opts: DecodeSampleOptions): DecodeTask {
  let size = 0;
  let entries = 0;
  for (const s of samples) {
    entries += 3 + 3 * s.files.size;
    for (const data of s.files.values()) size += data.byteLength;
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
  for (const s of samples) {
    layout[pos++] = s.files.size;
    layout[pos++] = s.error === undefined ? -1 : name(s.error);
    if (s.array) {
      const data = s.array.data;
      at = (at + 3) & ~3;
      layout[pos++] = name(s.array.dtype);
      bytes.set(data, at);
      layout[pos++] = at;
      layout[pos++] = data.byteLength;
      at += data.byteLength;
      layout[pos++] = s.array.shape.length;
      for (const d of s.array.shape) layout[pos++] = d;
    } else {
      layout[pos++] = -1;
    }
    for (const [ext, data] of s.files) {
      layout[pos++] = name(ext);
      bytes.set(data, at);
      layout[pos++] = at;
      layout[pos++] = data.byteLength;
      at += data.byteLength;
    }
  }
  return { input: bytes, layout, names, opts };
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

/**
 * Where a worker puts a batch's results. With `pixelsPerSample` known (an expected shape), the output is allocated
 * up front with a slot of that size per sample, and a codec that can writes the pixels straight into the slot
 * ({@link slot}); otherwise each sample's pixels are copied in at the end, into an output of the batch's size.
 */
export class BatchOutput {
  private readonly results: (Sample | string)[];
  private readonly output?: SharedArrayBuffer | ArrayBuffer;

  constructor(private readonly count: number, private readonly pixelsPerSample?: number) {
    this.results = new Array(count);
    if (pixelsPerSample !== undefined) this.output = outputBuffer(4 * count * (SHAPE + pixelsPerSample));
  }

  /** Sample i's place in the output, for a codec to decode into; undefined while the size is not known. */
  slot(i: number): Float32Array | undefined {
    return this.output && new Float32Array(this.output, 4 * (this.count * SHAPE + i * (this.pixelsPerSample as number)), this.pixelsPerSample);
  }

  /** Sample i decoded, or the reason it is bad. */
  set(i: number, result: Sample | string): void {
    this.results[i] = result;
  }

  finish(): DecodeTaskResult {
    const { results, count, pixelsPerSample } = this;
    const output = this.output ?? outputBuffer(4 * results.reduce((n, r) => n + (typeof r === 'string' ? 0 : r.pixels.length), count * SHAPE));
    const shapes = new Int32Array(output, 0, count * SHAPE);
    const values = new Float32Array(output);
    const notes: string[] = [];
    let end = count * SHAPE; // back to back, when there are no slots
    for (let i = 0, row = 0; i < count; i++, row += SHAPE) {
      const r = results[i];
      if (typeof r === 'string') {
        shapes[row] = 0;
        shapes[row + 4] = notes.push(r) - 1;
        continue;
      }
      let at = end;
      if (pixelsPerSample === undefined) {
        end += r.pixels.length;
      } else {
        if (r.pixels.length !== pixelsPerSample) throw new Error(`decoded ${r.pixels.length} pixel values, the batch's slots hold ${pixelsPerSample}`);
        at = count * SHAPE + i * pixelsPerSample;
      }
      if (r.pixels.buffer !== output || r.pixels.byteOffset !== 4 * at) values.set(r.pixels, at);
      shapes[row] = r.height;
      shapes[row + 1] = r.width;
      shapes[row + 2] = r.channels;
      shapes[row + 3] = r.label ?? -1;
      shapes[row + 4] = r.meta === undefined ? -1 : notes.push(JSON.stringify(r.meta)) - 1;
      shapes[row + 5] = at;
    }
    return { output, notes };
  }
}

/**
 * The calling thread's side of {@link BatchOutput}: per sample of the batch, in order, the decoded sample (its
 * pixels a view on the batch's output, nothing copied) or the reason it is bad.
 */
export function unpackResults(result: DecodeTaskResult, samples: readonly RawSample[]): (Sample | string)[] {
  const { output, notes } = result;
  const shapes = new Int32Array(output, 0, samples.length * SHAPE);
  const out: (Sample | string)[] = new Array(samples.length);
  for (let i = 0, row = 0; i < samples.length; i++, row += SHAPE) {
    const height = shapes[row];
    if (height === 0) {
      out[i] = notes[shapes[row + 4]];
      continue;
    }
    const width = shapes[row + 1];
    const channels = shapes[row + 2];
    const label = shapes[row + 3];
    const raw = samples[i];
    const pixels = new Float32Array(output, 4 * shapes[row + 5], height * width * channels);
    const sample: Sample = { key: raw.key, url: raw.url, pixels, height, width, channels, label: label >= 0 ? label : undefined };
    const meta = shapes[row + 4];
    if (meta >= 0) sample.meta = JSON.parse(notes[meta]);
    out[i] = sample;
  }
  return out;
}
