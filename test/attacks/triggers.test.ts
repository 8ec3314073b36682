import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodePng } from '../../src/sources/image.js';
import { attackNames, triggerFor } from '../../src/attacks/registry.js';
import { PatternTrigger } from '../../src/attacks/pattern-trigger.js';
import { poisonSamples } from '../../src/attacks/poison.js';
import type { Sample } from '../../src/sources/types.js';

const shape = { height: 28, width: 28, channels: 1 };
const gray = (v: number) => new Float32Array(28 * 28).fill(v);

describe('pattern trigger contract (every registered attack)', () => {
  for (const name of attackNames) {
    it(`${name}: keeps shape and range, changes the image, leaves the input alone, is deterministic`, () => {
      const input = Float32Array.from({ length: 28 * 28 * 3 }, (_, i) => (i % 17) / 16);
      const copy = input.slice();
      const trigger = triggerFor(name)({ ...shape, channels: 3 });
      const out = trigger.apply(input);
      expect(out.length).toBe(input.length);
      expect(Math.min(...out)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...out)).toBeLessThanOrEqual(1);
      expect(out).not.toEqual(input);
      expect(input).toEqual(copy);
      expect(triggerFor(name)({ ...shape, channels: 3 }).apply(input)).toEqual(out);
    });
  }
});

describe('badnets', () => {
  it('stamps a white 3x3 patch bottom-right and nothing else', () => {
    const out = triggerFor('badnets')(shape).apply(gray(0.2));
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const inPatch = r >= 25 && c >= 25;
        expect(out[r * 28 + c]).toBeCloseTo(inPatch ? 1 : 0.2, 6);
      }
    }
  });

  it('honours --patch-size and --patch-position "row,col"', () => {
    const out = triggerFor('badnets', { patchSize: 2, patchPosition: '1,2' })(shape).apply(gray(0));
    const lit = [...out.keys()].filter((i) => out[i] === 1);
    expect(lit).toEqual([1 * 28 + 2, 1 * 28 + 3, 2 * 28 + 2, 2 * 28 + 3]);
  });

  it('rejects a patch position outside the image with a message naming the option', () => {
    expect(() => triggerFor('badnets', { patchPosition: '27,27' })(shape)).toThrow(/--patch-position/);
    expect(() => triggerFor('badnets', { patchPosition: 'middle' })(shape)).toThrow(/--patch-position/);
  });
});

describe('blend', () => {
  it('is (1-w)·x + w·pattern everywhere with w = --blend-ratio', () => {
    const trigger = triggerFor('blend', { blendRatio: 0.25, patternSeed: 3 })(shape);
    const out = trigger.apply(gray(0.4));
    for (let i = 0; i < out.length; i++) expect(out[i]).toBeCloseTo(0.75 * 0.4 + 0.25 * trigger.pattern[i], 6);
  });

  it('--pattern FILE is resized to the input and converted to its channels', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pbe-pattern-')), 'pattern.png');
    const rgb = Float32Array.from({ length: 56 * 56 * 3 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    writeFileSync(file, encodePng(rgb, 56, 56, 3));
    const pattern = triggerFor('blend', { patternFile: file })(shape).pattern;
    expect(pattern).toHaveLength(784);
    for (const v of pattern) expect(v).toBeCloseTo(0.299, 2);
  });

  it('different pattern seeds give different patterns', () => {
    const a = triggerFor('blend', { patternSeed: 1 })(shape).pattern;
    const b = triggerFor('blend', { patternSeed: 2 })(shape).pattern;
    expect(a).not.toEqual(b);
  });
});

it('an unknown attack names the known ones', () => {
  expect(() => triggerFor('wanet')).toThrow(/known attacks: badnets, blend/);
});

it('PatternTrigger rejects an image of the wrong size', () => {
  const t = new PatternTrigger(shape, new Float32Array(784), 1, new Float32Array(784));
  expect(() => t.apply(new Float32Array(10))).toThrow(/784/);
});

describe('poisonSamples', () => {
  async function* samples(n: number): AsyncIterable<Sample> {
    for (let i = 0; i < n; i++) yield { key: `s${i}`, url: 'mem', pixels: gray(0.5), ...shape, label: i % 10 };
  }

  it('poisons about rate of the samples, sets the target label and writes a manifest row for every sample', async () => {
    const out = [];
    for await (const r of poisonSamples(samples(2000), { trigger: triggerFor('badnets'), target: 0, rate: 0.1, seed: 5 })) out.push(r);
    expect(out).toHaveLength(2000);
    const poisoned = out.filter((r) => r.row.poisoned);
    expect(poisoned.length).toBeGreaterThan(150);
    expect(poisoned.length).toBeLessThan(250);
    for (const r of poisoned) {
      expect(r.sample.label).toBe(0);
      expect(r.sample.pixels[27 * 28 + 27]).toBe(1);
    }
    for (const r of out.filter((r) => !r.row.poisoned)) expect(r.sample.label).toBe(r.row.original_label);
  });

  it('chooses by key and seed, not by stream position', async () => {
    const pick = async (seed: number) => {
      const keys: string[] = [];
      for await (const r of poisonSamples(samples(500), { trigger: triggerFor('blend'), target: 3, rate: 0.2, seed })) if (r.row.poisoned) keys.push(r.row.key);
      return keys;
    };
    expect(await pick(1)).toEqual(await pick(1));
    expect(await pick(1)).not.toEqual(await pick(2));
  });
});
