import { stage, type Stage } from '../pipeline/pipe.js';

/**
 * Pulls up to `size` items ahead of the consumer (as tf.data's prefetch), so that reading and decoding the next
 * batches overlap with the work done on the current one. Order is kept; memory is bounded by `size`.
 *
 *   pipe(batches, prefetch(2), pgd(...))
 */
export function prefetch<T>(size: number): Stage<T, T> {
  return stage(`prefetch(${size})`, async function* (source) {
    const it = source[Symbol.asyncIterator]();
    const buffer: Promise<IteratorResult<T>>[] = [];
    const fill = () => {
      while (buffer.length < size + 1) buffer.push(it.next());
    };
    try {
      fill();
      for (;;) {
        const next = await buffer.shift()!;
        if (next.done) return;
        fill();
        yield next.value;
      }
    } finally {
      await it.return?.();
    }
  });
}
