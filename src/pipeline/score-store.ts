/**
 * Per-sample state of a purification run, a few numbers per key: the reference logits r = f0(x), the pseudo
 * label argmax r, the given label (or -1), and the latest similarity s = cos(r, f_t(x)).
 */
export class ScoreStore {
  readonly keys: string[] = [];
  readonly urls: string[] = [];
  private readonly index = new Map<string, number>();
  private refLogits: Float32Array;
  private pseudoLabels: Int32Array;
  private givenLabels: Int32Array;
  private similarity: Float32Array;

  constructor(readonly numClasses: number, initialCapacity = 1024) {
    this.refLogits = new Float32Array(initialCapacity * numClasses);
    this.pseudoLabels = new Int32Array(initialCapacity);
    this.givenLabels = new Int32Array(initialCapacity);
    this.similarity = new Float32Array(initialCapacity);
  }

  get size(): number {
    return this.keys.length;
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
    this.refLogits.set(logits.subarray(offset, offset + k), i * k);
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

  /** The reference logits array and the offset of sample i in it. */
  reference(i: number): [Float32Array, number] {
    return [this.refLogits, i * this.numClasses];
  }

  setSimilarity(i: number, s: number): void {
    this.similarity[i] = s;
  }

  /** Similarities of all samples, in insertion order (a view; do not keep across add()). */
  similarities(): Float32Array {
    return this.similarity.subarray(0, this.size);
  }

  /** The store's whole state as plain typed arrays (for checkpoints). */
  snapshot(): ScoreStoreSnapshot {
    const n = this.size;
    return {
      numClasses: this.numClasses,
      keys: this.keys.slice(),
      urls: this.urls.slice(),
      refLogits: this.refLogits.slice(0, n * this.numClasses),
      pseudoLabels: this.pseudoLabels.slice(0, n),
      givenLabels: this.givenLabels.slice(0, n),
      similarity: this.similarity.slice(0, n),
    };
  }

  static fromSnapshot(s: ScoreStoreSnapshot): ScoreStore {
    const store = new ScoreStore(s.numClasses, Math.max(1, s.keys.length));
    store.refLogits.set(s.refLogits);
    store.pseudoLabels.set(s.pseudoLabels);
    store.givenLabels.set(s.givenLabels);
    store.similarity.set(s.similarity);
    s.keys.forEach((key, i) => {
      store.keys.push(key);
      store.urls.push(s.urls[i]);
      store.index.set(key, i);
    });
    return store;
  }

  private grow(): void {
    const capacity = this.pseudoLabels.length * 2;
    const grown = <T extends Float32Array | Int32Array>(a: T, per = 1): T => {
      const b = new (a.constructor as new (n: number) => T)(capacity * per);
      b.set(a);
      return b;
    };
    this.refLogits = grown(this.refLogits, this.numClasses);
    this.pseudoLabels = grown(this.pseudoLabels);
    this.givenLabels = grown(this.givenLabels);
    this.similarity = grown(this.similarity);
  }
}

export interface ScoreStoreSnapshot {
  numClasses: number;
  keys: string[];
  urls: string[];
  refLogits: Float32Array;
  pseudoLabels: Int32Array;
  givenLabels: Int32Array;
  similarity: Float32Array;
}
