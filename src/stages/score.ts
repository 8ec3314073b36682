import * as tf from '@tensorflow/tfjs';

/** Logits of a model on one NHWC batch, as a flat Float32Array (N*K). Ownership: disposes its tensors. */
export function predictLogits(model: tf.LayersModel, x: Float32Array, shape: [number, number, number, number]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor4d(x, shape)) as tf.Tensor).dataSync() as Float32Array);
}

export function argmax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let k = 1; k < length; k++) if (values[offset + k] > values[offset + best]) best = k;
  return best;
}

/** cos(a, b) of two length-k vectors stored at offsets in flat arrays; 0 when either is all zeros. */
export function cosine(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, k: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < k; i++) {
    const x = a[aOffset + i];
    const y = b[bOffset + i];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** cos(softmax(a / T), softmax(b / T)) of two length-k logit vectors stored at offsets in flat arrays. */
export function softmaxCosine(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, k: number, temperature = 1): number {
  return cosine(softmax(a, aOffset, k, temperature), 0, softmax(b, bOffset, k, temperature), 0, k);
}

function softmax(logits: Float32Array, offset: number, k: number, temperature: number): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < k; i++) max = Math.max(max, logits[offset + i]);
  const p = new Float32Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += p[i] = Math.exp((logits[offset + i] - max) / temperature);
  for (let i = 0; i < k; i++) p[i] /= sum;
  return p;
}

/**
 * Indices of the top `ratio` share of `scores` (at least one when scores is non-empty), highest first; ties
 * break by index so the choice is deterministic.
 */
export function topIndices(scores: Float32Array | number[], ratio: number): number[] {
  const n = scores.length;
  const k = n === 0 ? 0 : Math.max(1, Math.round(ratio * n));
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => scores[j] - scores[i] || i - j);
  return order.slice(0, k);
}

/**
 * Indices of the top `ratio` share of `scores` within each class of `classes` (at least one per non-empty
 * class), so every class keeps its share; highest first overall, ties by index.
 */
export function topIndicesPerClass(scores: Float32Array | number[], classes: Int32Array, ratio: number): number[] {
  const byClass = new Map<number, number[]>();
  classes.forEach((c, i) => {
    const members = byClass.get(c);
    if (members) members.push(i);
    else byClass.set(c, [i]);
  });
  const kept = [...byClass.values()].flatMap((members) => topIndices(members.map((i) => scores[i]), ratio).map((j) => members[j]));
  return kept.sort((i, j) => scores[j] - scores[i] || i - j);
}
