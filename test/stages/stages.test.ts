import { describe, expect, it } from 'vitest';
import { described, pipe } from '../../src/pipeline/pipe.js';
import { batch } from '../../src/stages/batch.js';
import { assignLabels } from '../../src/stages/label.js';
import { mix } from '../../src/stages/mix.js';
import { prefetch } from '../../src/stages/prefetch.js';
import { select } from '../../src/stages/select.js';
import { ownPixels, shuffle } from '../../src/stages/shuffle.js';
import type { LabeledSample } from '../../src/stages/batch-types.js';
import type { RawSample, Sample } from '../../src/sources/types.js';
import { collect, from } from '../helpers/streams.js';

const labeled = (i: number): LabeledSample => ({ key: `k${i}`, pixels: new Float32Array(4).fill(i), height: 2, width: 2, channels: 1, label: i % 3 });

describe('pipe', () => {
  it('describes the chain and runs stages in order', async () => {
    const run = pipe(described('numbers', from([...Array(10).keys()].map(labeled))), shuffle({ bufferSize: 4, seed: 1 }), batch({ size: 4 }));
    expect(run.summary).toBe('numbers -> shuffle(4) -> batch(4)');
    const batches = await collect(run.output);
    expect(batches.map((b) => b.keys.length)).toEqual([4, 4, 2]);
  });

  it('labels a failing stage with its position', async () => {
    const failing = select(new Set(['a']));
    const src = described<RawSample>('bad', (async function* () {
      yield { key: 'a', url: 'u', files: new Map() };
      throw new Error('boom');
    })());
    const err = await collect(pipe(src, failing).output).catch((e) => e);
    expect(err.message).toBe('boom');
    expect(err.stage).toBe('stage 1 (select(keys: 1))');
  });
});

describe('shuffle', () => {
  it('emits every item exactly once, in a seeded order', async () => {
    const items = [...Array(100).keys()];
    const a = await collect(shuffle<number>({ bufferSize: 16, seed: 3 })(from(items), {}));
    const b = await collect(shuffle<number>({ bufferSize: 16, seed: 3 })(from(items), {}));
    const c = await collect(shuffle<number>({ bufferSize: 16, seed: 4 })(from(items), {}));
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(items);
  });

  it('with hold: ownPixels, buffered samples hold copies of their own pixels, not views on a shared batch buffer', async () => {
    const shared = new Float32Array(6 * 4).map((_, i) => i);
    const samples = [...Array(6).keys()].map((i) => ({ key: `k${i}`, pixels: shared.subarray(i * 4, i * 4 + 4) }));
    const out = await collect(shuffle<(typeof samples)[number]>({ bufferSize: 4, seed: 1, hold: ownPixels })(from(samples), {}));
    expect(out.map((s) => s.key).sort()).toEqual(samples.map((s) => s.key));
    for (const s of out) {
      expect(s.pixels.buffer).not.toBe(shared.buffer);
      expect(s.pixels.buffer.byteLength).toBe(16);
      expect([...s.pixels]).toEqual([...samples[Number(s.key.slice(1))].pixels]);
    }
    const own = { key: 'x', pixels: new Float32Array(4) };
    expect(ownPixels(own)).toBe(own);
  });
});

describe('batch', () => {
  it('packs pixels NHWC and labels in order', async () => {
    const [b] = await collect(batch({ size: 3 })(from([labeled(0), labeled(1), labeled(2)]), {}));
    expect(b.shape).toEqual([3, 2, 2, 1]);
    expect([...b.x]).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    expect([...b.labels]).toEqual([0, 1, 2]);
    expect(b.adversarial).toBe(false);
  });

  it('rejects a sample of another shape, naming its key', async () => {
    const odd = { ...labeled(1), pixels: new Float32Array(9), key: 'odd' };
    await expect(collect(batch({ size: 2 })(from([labeled(0), odd]), {}))).rejects.toThrow(/odd/);
  });
});

describe('select', () => {
  it('keeps only the listed keys', async () => {
    const raw = ['a', 'b', 'c'].map((key) => ({ key, url: 'u', files: new Map<string, Uint8Array>() }));
    const kept = await collect(select(new Set(['a', 'c']))(from(raw), {}));
    expect(kept.map((r) => r.key)).toEqual(['a', 'c']);
  });
});

describe('assignLabels', () => {
  const sample = (key: string, label?: number): Sample => ({ key, url: 'shard.tar', pixels: new Float32Array(1), height: 1, width: 1, channels: 1, label });

  it('uses pseudo-labels or given labels, and reports samples without one', async () => {
    const missing: string[] = [];
    const pseudo = await collect(
      assignLabels({ source: 'pseudo', pseudoLabel: (k) => (k === 'a' ? 7 : undefined), onMissing: (s) => missing.push(s.key) })(from([sample('a', 1), sample('b', 2)]), {}),
    );
    expect(pseudo.map((s) => s.label)).toEqual([7]);
    expect(missing).toEqual(['b']);
    const given = await collect(assignLabels({ source: 'given', pseudoLabel: () => 7, onMissing: (s) => missing.push(s.key) })(from([sample('a', 1), sample('c')]), {}));
    expect(given.map((s) => s.label)).toEqual([1]);
    expect(missing).toEqual(['b', 'c']);
    const auto = await collect(assignLabels({ source: 'auto', pseudoLabel: (k) => (k === 'd' ? 7 : undefined), onMissing: (s) => missing.push(s.key) })(from([sample('a', 1), sample('d'), sample('e')]), {}));
    expect(auto.map((s) => [s.key, s.label])).toEqual([['a', 1], ['d', 7]]);
    expect(missing).toEqual(['b', 'c', 'e']);
  });
});

describe('mix', () => {
  const batches = () => from([...Array(10).keys()].map((i) => ({ keys: [`b${i}`], x: new Float32Array(1), labels: new Int32Array(1), shape: [1, 1, 1, 1] as [number, number, number, number], adversarial: false })));

  it('marks every batch in a fully adversarial epoch', async () => {
    const out = await collect(mix({ round: 0, epoch: 0, adversarialShare: 1, maxAdversarialBatches: null }, 1)(batches(), {}));
    expect(out.every((b) => b.adversarial)).toBe(true);
  });

  it('marks only the first maxAdversarialBatches', async () => {
    const out = await collect(mix({ round: 1, epoch: 0, adversarialShare: 1, maxAdversarialBatches: 3 }, 1)(batches(), {}));
    expect(out.map((b) => b.adversarial)).toEqual([true, true, true, false, false, false, false, false, false, false]);
  });

  it('marks none when the share is 0', async () => {
    const out = await collect(mix({ round: 1, epoch: 2, adversarialShare: 0, maxAdversarialBatches: 0 }, 1)(batches(), {}));
    expect(out.some((b) => b.adversarial)).toBe(false);
  });
});

describe('prefetch', () => {
  it('keeps order, yields everything once, and reads at most size+1 ahead', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 10; i++) {
        produced++;
        yield i;
      }
    }
    const it = prefetch<number>(2)(source(), {})[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toBe(0);
    await new Promise((r) => setTimeout(r, 10));
    expect(produced).toBeLessThanOrEqual(4);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect([first.value, ...rest]).toEqual([...Array(10).keys()]);
  });
});
