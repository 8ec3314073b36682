import { stage, type Stage } from '../pipeline/pipe.js';
import { createRng } from '../pipeline/random.js';

/**
 * Seeded buffer shuffle (as tf.data's shuffle): holds up to `bufferSize` items, emits a random one each time a
 * new one arrives. Memory stays bounded; the order is random within a window of the stream.
 *
 *   pipe(samples, shuffle({ bufferSize: 10_000, seed: 7 }))
 */
export function shuffle<T>({ bufferSize, seed }: { bufferSize: number; seed: number }): Stage<T, T> {
  return stage(`shuffle(${bufferSize})`, async function* (source) {
    const rng = createRng(seed);
    const buffer: T[] = [];
    for await (const item of source) {
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
