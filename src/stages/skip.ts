import { stage, type Stage } from '../pipeline/pipe.js';

/**
 * Drops the first `count` items: a resumed epoch skips the batches it had already trained on (placed after the
 * seeded stages, so the rest of the epoch is the same as in an uninterrupted run, and before the costly ones).
 *
 *   pipe(batches, mix(plan, seed), skip(cursor), pgd(...))
 */
export function skip<T>(count: number): Stage<T, T> {
  return stage(count > 0 ? `skip(${count})` : 'skip(0)', async function* (source) {
    let seen = 0;
    for await (const item of source) if (seen++ >= count) yield item;
  });
}
