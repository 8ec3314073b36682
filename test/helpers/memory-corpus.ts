import type { Corpus } from '../../src/pipeline/corpus.js';
import { pipe } from '../../src/pipeline/pipe.js';
import { createRng } from '../../src/pipeline/random.js';
import { shuffle } from '../../src/stages/shuffle.js';
import type { Sample } from '../../src/sources/types.js';

/** A corpus over samples held in memory (tests only): restartable, selects by key. */
export function memoryCorpus(samples: Sample[]): Corpus {
  return {
    samples(keys, _keysName, order) {
      const output = (async function* () {
        for (const s of samples) if (!keys || keys.has(s.key)) yield s;
      })();
      const all = { output, summary: `memory(${samples.length})` };
      return order ? pipe(all, shuffle<Sample>(order)) : all;
    },
  };
}

/**
 * A synthetic 28x28 grayscale 10-class dataset that is not Fashion-MNIST: class c is a bright 7x7 square at one
 * of 10 fixed places on a dim noisy background, with jitter of one pixel.
 */
export function syntheticSquares(n: number, seed: number, prefix = 'syn'): Sample[] {
  const rng = createRng(seed);
  const places = [...Array(10).keys()].map((c) => [2 + 9 * Math.floor(c / 4), 2 + 6 * (c % 4)]);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 10;
    const pixels = Float32Array.from({ length: 784 }, () => 0.3 * rng());
    const [r0, c0] = places[label].map((p) => p + Math.floor(rng() * 3) - 1);
    for (let r = r0; r < r0 + 7; r++) for (let c = c0; c < c0 + 7; c++) pixels[r * 28 + c] = 0.7 + 0.3 * rng();
    return { key: `${prefix}-${String(i).padStart(6, '0')}`, url: 'memory', pixels, height: 28, width: 28, channels: 1, label };
  });
}
