import { stage, type Stage } from '../pipeline/pipe.js';
import type { RawSample } from '../sources/types.js';

/**
 * Keeps the samples whose key is in `keys`, before decoding (cheap).
 *
 *   pipe(raw, select(trusted, 'trusted'), decode(...))
 */
export function select(keys: ReadonlySet<string>, name = 'keys'): Stage<RawSample, RawSample> {
  return stage(`select(${name}: ${keys.size})`, async function* (source) {
    for await (const sample of source) if (keys.has(sample.key)) yield sample;
  });
}
