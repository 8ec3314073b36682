import { stage, type Stage } from '../pipeline/pipe.js';
import { createRng } from '../pipeline/random.js';

/**
 * Seeded buffer shuffle (as tf.data's shuffle): holds up to `bufferSize` items, emits a random one each time a
 * new one arrives. Memory stays bounded; the order is random within a window of the stream. `hold` maps an item
 * as it enters the buffer (ownPixels: a decoded sample stops pinning its whole batch's buffer while it waits).
 *
 *   pipe(samples, shuffle({ bufferSize: 10_000, seed: 7, hold: ownPixels }))
 */
export function shuffle<T>({ bufferSize, seed, hold }: { bufferSize: number; seed: number; hold?: (item: T) => T }): Stage<T, T> {
  return stage(`shuffle(${bufferSize})`, async function* (source) {
    const rng = createRng(seed);
    const buffer: T[] = [];
    for await (const incoming of source) {
      const item = hold ? hold(incoming) : incoming;
      if (buffer.length < bufferSize) {
        buffer.push(item);
        continue;
      }
      const i = Math.floor(rng() * bufferSize);
      yield buffer[i];
      buffer[i] = item;
    }
    while (buffer.length > 0) {
      const i = Math.floor(rng() * buffer.length);
      yield buffer[i];
      buffer[i] = buffer[buffer.length - 1];
      buffer.pop();
    }
  });
}

/**
 * The sample with pixels of its own: a copy when its pixels are a view on a larger buffer (the decode pool's
 * samples share their batch's), else the sample itself.
 */
export function ownPixels<S extends { pixels: Float32Array }>(sample: S): S {
  const { pixels } = sample;
  return pixels.byteLength === pixels.buffer.byteLength ? sample : { ...sample, pixels: pixels.slice() };
}
