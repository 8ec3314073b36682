import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { inputError } from '../errors.js';

/** The file a spilled store keeps its reference logits in, relative to the run directory (beside the checkpoint, which names it). */
export const spillFile = join('checkpoint', 'scores-reference.f32');

/** Spill the reference logits to `join(dir, spillFile)` (dir: the run directory) once the store holds more than `above` samples. */
export interface SpillOptions {
  dir: string;
  above: number;
}

/** Samples per block read back from (and buffered before writing to) a spill file. */
const BLOCK = 4096;

/**
 * Per-sample state of a purification run, a few numbers per key: the reference logits r = f0(x), the pseudo
 * label argmax r, the given label (or -1), and the latest similarity s = cos(r, f_t(x)).
 *
 * With `spill`, once the store holds more than `spill.above` samples its reference logits (numClasses floats per
 * sample, the one part that grows with the classes) move to a file in the run directory, appended in insertion
 * order (float32, little-endian) and read back a block of samples at a time: a pass over the data in its
 * order (the similarity pass) reads the file once. Keys, urls, labels and similarities stay in memory.
 */
export class ScoreStore {
  readonly keys: string[] = [];
  readonly urls: string[] = [];
  private readonly index = new Map<string, number>();
  private refLogits: Float32Array;
  private pseudoLabels: Int32Array;
  private givenLabels: Int32Array;
  private similarity: Float32Array;
  /** Spilled: the open file, samples written to it, and the block read back last. */
  private spilled: { fd: number; path: string; written: number; hash: ReturnType<typeof createHash>; block: Float32Array; blockStart: number } | undefined;

  constructor(readonly numClasses: number, initialCapacity = 1024, private readonly spill?: SpillOptions) {
    this.refLogits = new Float32Array(initialCapacity * numClasses);
    this.pseudoLabels = new Int32Array(initialCapacity);
    this.givenLabels = new Int32Array(initialCapacity);
    this.similarity = new Float32Array(initialCapacity);
  }

  get size(): number {
    return this.keys.length;
  }

  /** The spill file's path, once the store has spilled. */
  get spillPath(): string | undefined {
    return this.spilled?.path;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  indexOf(key: string): number | undefined {
    return this.index.get(key);
  }

  /** Records a sample's reference logits (logits[offset .. offset+K)). Returns false for a duplicate key. */
  add(key: string, url: string, logits: Float32Array, offset: number, givenLabel: number | undefined): boolean {
    if (this.index.has(key)) return false;
    const i = this.keys.length;
    if (i === this.pseudoLabels.length) this.grow();
    const k = this.numClasses;
    if (this.spilled === undefined && this.spill !== undefined && i >= this.spill.above) this.startSpill();
    if (this.spilled === undefined) this.refLogits.set(logits.subarray(offset, offset + k), i * k);
    else {
      const at = i - this.spilled.written; // refLogits is the write buffer of the samples not yet in the file
      if (at === BLOCK) this.flush();
      this.refLogits.set(logits.subarray(offset, offset + k), (i - this.spilled.written) * k);
    }
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[offset + c] > logits[offset + best]) best = c;
    this.pseudoLabels[i] = best;
    this.givenLabels[i] = givenLabel ?? -1;
    this.similarity[i] = 1;
    this.keys.push(key);
    this.urls.push(url);
    this.index.set(key, i);
    return true;
  }

  pseudoLabel(key: string): number | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.pseudoLabels[i];
  }

  givenLabel(i: number): number | undefined {
    return this.givenLabels[i] < 0 ? undefined : this.givenLabels[i];
  }

  pseudoAt(i: number): number {
    return this.pseudoLabels[i];
  }

  /**
   * The reference logits of sample i: an array and the offset of sample i in it. Valid until the next call
   * (a spilled store reuses one block buffer).
   */
  reference(i: number): [Float32Array, number] {
    const k = this.numClasses;
    const s = this.spilled;
    if (s === undefined) return [this.refLogits, i * k];
    if (i >= s.written) return [this.refLogits, (i - s.written) * k];
    if (i < s.blockStart || i >= s.blockStart + BLOCK) {
      const start = i - (i % BLOCK);
      const count = Math.min(BLOCK, s.written - start);
      const bytes = new Uint8Array(s.block.buffer, 0, count * k * 4);
      let read = 0;
      while (read < bytes.length) {
        const n = readSync(s.fd, bytes, read, bytes.length - read, start * k * 4 + read);
        if (n === 0) throw inputError({ url: s.path }, `the score store's spill file ended early (at byte ${start * k * 4 + read}); start the run again (--resume DIR --restart)`);
        read += n;
      }
      s.blockStart = start;
    }
    return [s.block, (i - s.blockStart) * k];
  }

  setSimilarity(i: number, s: number): void {
    this.similarity[i] = s;
  }

  /** Similarities of all samples, in insertion order (a view; do not keep across add()). */
  similarities(): Float32Array {
    return this.similarity.subarray(0, this.size);
  }

  /**
   * The store's whole state as plain typed arrays (for checkpoints). A spilled store writes what it buffers and
   * names its file (relative to the run directory) with the file's SHA-256 instead of carrying the logits.
   */
  snapshot(): ScoreStoreSnapshot {
    const n = this.size;
    const common = {
      numClasses: this.numClasses,
      keys: this.keys.slice(),
      urls: this.urls.slice(),
      pseudoLabels: this.pseudoLabels.slice(0, n),
      givenLabels: this.givenLabels.slice(0, n),
      similarity: this.similarity.slice(0, n),
    };
    if (this.spilled === undefined) return { ...common, refLogits: this.refLogits.slice(0, n * this.numClasses) };
    this.flush();
    return { ...common, refLogits: new Float32Array(0), spill: { file: spillFile, sha256: this.spilled.hash.copy().digest('hex') } };
  }

  /** A store from a snapshot; a spilled one reopens its file in `dir` (the run directory) and checks it. */
  static fromSnapshot(s: ScoreStoreSnapshot, dir?: string): ScoreStore {
    const n = s.keys.length;
    const capacity = Math.max(1, n);
    const store = new ScoreStore(s.numClasses, 0);
    const sized = <T extends Float32Array | Int32Array>(a: T, per = 1): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    if (s.spill === undefined) store.refLogits = sized(s.refLogits, s.numClasses);
    else {
      if (dir === undefined) throw new Error('a spilled score store needs its run directory');
      if (s.spill.file !== spillFile) throw inputError({ url: dir }, `the checkpoint names ${JSON.stringify(s.spill.file)} as the score store's file, not ${spillFile}`);
      store.reopen(join(dir, spillFile), n, s.spill.sha256);
    }
    store.pseudoLabels = sized(s.pseudoLabels);
    store.givenLabels = sized(s.givenLabels);
    store.similarity = sized(s.similarity);
    s.keys.forEach((key, i) => {
      store.keys.push(key);
      store.urls.push(s.urls[i]);
      store.index.set(key, i);
    });
    return store;
  }

  /** Closes the spill file (the file stays: checkpoints name it). */
  close(): void {
    if (this.spilled === undefined || this.spilled.fd < 0) return;
    this.flush();
    closeSync(this.spilled.fd);
    this.spilled.fd = -1;
  }

  private startSpill(): void {
    const path = join(this.spill!.dir, spillFile);
    mkdirSync(join(path, '..'), { recursive: true });
    const fd = openSync(path, 'w+');
    const k = this.numClasses;
    this.spilled = { fd, path, written: 0, hash: createHash('sha256'), block: new Float32Array(BLOCK * k), blockStart: -BLOCK };
    const held = this.refLogits.subarray(0, this.size * k);
    this.write(held);
    this.spilled.written = this.size;
    this.refLogits = new Float32Array(BLOCK * k); // from now on, the write buffer
  }

  /** Appends the buffered logits to the file. */
  private flush(): void {
    const s = this.spilled!;
    const pending = this.size - s.written;
    if (pending === 0) return;
    this.write(this.refLogits.subarray(0, pending * this.numClasses));
    s.written = this.size;
  }

  private write(values: Float32Array): void {
    const s = this.spilled!;
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    let done = 0;
    while (done < bytes.length) done += writeSync(s.fd, bytes, done, bytes.length - done, s.written * this.numClasses * 4 + done);
    s.hash.update(bytes);
  }

  private reopen(path: string, n: number, sha256: string): void {
    const k = this.numClasses;
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (err) {
      throw inputError({ url: path }, `the score store's spill file cannot be opened (${(err as Error).message}); start the run again (--resume DIR --restart)`);
    }
    const hash = createHash('sha256');
    const size = fstatSync(fd).size;
    const buffer = new Uint8Array(BLOCK * k * 4);
    for (let pos = 0; pos < size; ) {
      const got = readSync(fd, buffer, 0, Math.min(buffer.length, size - pos), pos);
      hash.update(buffer.subarray(0, got));
      pos += got;
    }
    if (size !== n * k * 4 || hash.copy().digest('hex') !== sha256) {
      closeSync(fd);
      throw inputError({ url: path }, `the score store's spill file does not match the checkpoint (${size} bytes for ${n} samples of ${k} classes, or another checksum); start the run again (--resume DIR --restart)`);
    }
    this.spilled = { fd, path, written: n, hash, block: new Float32Array(BLOCK * k), blockStart: -BLOCK };
    this.refLogits = new Float32Array(BLOCK * k);
  }

  private grow(): void {
    const capacity = this.pseudoLabels.length * 2;
    const grown = <T extends Float32Array | Int32Array>(a: T, per = 1): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    if (this.spilled === undefined) this.refLogits = grown(this.refLogits, this.numClasses);
    this.pseudoLabels = grown(this.pseudoLabels);
    this.givenLabels = grown(this.givenLabels);
    this.similarity = grown(this.similarity);
  }
}

export interface ScoreStoreSnapshot {
  numClasses: number;
  keys: string[];
  urls: string[];
  /** Empty when `spill` names the file that holds them. */
  refLogits: Float32Array;
  pseudoLabels: Int32Array;
  givenLabels: Int32Array;
  similarity: Float32Array;
  /** A spilled store's file (in the run directory) and its SHA-256. */
  spill?: { file: string; sha256: string };
}
