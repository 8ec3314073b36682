import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodePng } from '../../src/sources/image.js';
import { triggerFor } from '../../src/attacks/registry.js';
import { PatternTrigger } from '../../src/attacks/pattern-trigger.js';
import { poisonSamples } from '../../src/attacks/poison.js';
import type { Sample } from '../../src/sources/types.js';
import { collect } from '../helpers/streams.js';

const shape = { height: 28, width: 28, channels: 1 };
const gray = (v: number) => new Float32Array(28 * 28).fill(v);
const q = (v: number) => Math.round(v * 255) / 255;

function pngFile(pixels: Float32Array, h: number, w: number, c: number): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pbe-pattern-')), 'pattern.png');
  writeFileSync(file, encodePng(pixels, h, w, c));
  return file;
}

describe('badnets', () => {
  it('stamps a white 3x3 patch bottom-right and nothing else', () => {
    const out = triggerFor('badnets')(shape).apply(gray(0.2));
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) expect(out[r * 28 + c]).toBeCloseTo(r >= 25 && c >= 25 ? 1 : q(0.2), 6);
    }
  });

  it('top-left, by option or by the old --patch-position flag', () => {
    for (const opts of [{ position: 'top-left' }, { patchPosition: 'top-left' }]) {
      const out = triggerFor('badnets', opts)(shape).apply(gray(0));
      expect([...out.keys()].filter((i) => out[i] === 1)).toEqual([0, 1, 2, 28, 29, 30, 56, 57, 58]);
    }
  });

  it('honours size and position "row,col"', () => {
    const out = triggerFor('badnets', { size: 2, position: '1,2' })(shape).apply(gray(0));
    expect([...out.keys()].filter((i) => out[i] === 1)).toEqual([1 * 28 + 2, 1 * 28 + 3, 2 * 28 + 2, 2 * 28 + 3]);
  });

  it('checkerboard is the PBE authors\' 3x3 patch (Syyabb/BPE _patchTrigger)', () => {
    const out = triggerFor('badnets', { pattern: 'checkerboard' })(shape).apply(gray(0.5));
    const patch = [25, 26, 27].map((r) => [25, 26, 27].map((c) => out[r * 28 + c]));
    // img[w-1][h-1]=255, [w-1][h-2]=0, [w-1][h-3]=255; [w-2][..]=0,255,0; [w-3][..]=255,0,0 (counted from the corner)
    expect(patch).toEqual([
      [0, 0, 1],
      [0, 1, 0],
      [1, 0, 1],
    ]);
  });

  it('pattern FILE is stamped as the patch', () => {
    const file = pngFile(Float32Array.from([1, 1, 0, 0]), 2, 2, 1);
    const out = triggerFor('badnets', { pattern: file, size: 2, position: 'top-left' })(shape).apply(gray(0.5));
    expect([out[0], out[1], out[28], out[29]]).toEqual([1, 1, 0, 0]);
  });

  it('rejects a patch outside the image with a message naming the option', () => {
    expect(() => triggerFor('badnets', { position: '27,27' })(shape)).toThrow(/attack option badnets\.position is expected to be .*, but got "27,27"/);
    expect(() => triggerFor('badnets', { patchPosition: 'middle' })(shape)).toThrow(/badnets\.position/);
    expect(() => triggerFor('badnets', { size: 0 })).toThrow('attack option badnets.size is expected to be a positive integer, but got 0');
  });
});

describe('blend', () => {
  it('is (1-r)·x + r·pattern everywhere with r = ratio', () => {
    const trigger = triggerFor('blend', { ratio: 0.25, seed: 3 })(shape);
    const pattern = triggerFor('blend', { ratio: 1, seed: 3 })(shape).apply(gray(0));
    const out = trigger.apply(gray(0.4));
    for (let i = 0; i < out.length; i++) expect(Math.abs(out[i] - (0.75 * 0.4 + 0.25 * pattern[i]))).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
  });

  it('pattern FILE is resized to the input and converted to its channels (also as the old patternFile)', () => {
    const file = pngFile(Float32Array.from({ length: 56 * 56 * 3 }, (_, i) => (i % 3 === 0 ? 1 : 0)), 56, 56, 3);
    for (const opts of [{ pattern: file, ratio: 1 }, { patternFile: file, blendRatio: 1 }]) {
      const pattern = triggerFor('blend', opts)(shape).apply(gray(0));
      for (const v of pattern) expect(v).toBeCloseTo(q(0.299), 6);
    }
  });

  it('an unreadable pattern file names the option', () => {
    expect(() => triggerFor('blend', { pattern: '/nonexistent.png' })(shape)).toThrow(/attack option blend\.pattern is expected to be a readable image file/);
  });

  it('different seeds give different patterns', () => {
    expect(triggerFor('blend', { seed: 1 })(shape).apply(gray(0))).not.toEqual(triggerFor('blend', { seed: 2 })(shape).apply(gray(0)));
  });
});

describe('the other triggers', () => {
  it('sig adds delta/255·sin(2πjf/W) to every row', () => {
    const out = triggerFor('sig', { delta: 20, frequency: 3 })(shape).apply(gray(0.5));
    for (let r = 0; r < 28; r += 9) for (let j = 0; j < 28; j++) expect(out[r * 28 + j]).toBeCloseTo(q(0.5 + (20 / 255) * Math.sin((2 * Math.PI * j * 3) / 28)), 6);
  });

  it('trojan draws an irregular mask (not a square) and only brightens', () => {
    const trigger = triggerFor('trojan')(shape);
    const lit = [...trigger.region!].reduce((n, v) => n + v, 0);
    expect(lit).toBeGreaterThan(40);
    expect(lit).toBeLessThan(100);
    const out = trigger.apply(gray(0.3));
    for (let i = 0; i < 784; i++) expect(out[i]).toBeGreaterThanOrEqual(q(0.3));
  });

  it('bpp without dithering squeezes to `squeeze` levels', () => {
    const x = Float32Array.from({ length: 784 }, (_, i) => (i % 256) / 255);
    const out = triggerFor('bpp', { squeeze: 4, dithering: false })(shape).apply(x);
    expect(new Set(out)).toEqual(new Set([0, 85 / 255, 170 / 255, 1].map((v) => Math.fround(v))));
  });

  it('ftrojan reaches the chosen DCT coefficients: a frequency outside the block is refused by name', () => {
    expect(() => triggerFor('ftrojan', { frequencies: [[28, 0]] })(shape)).toThrow(/ftrojan\.frequencies/);
    expect(() => triggerFor('ftrojan', { channels: [2] })(shape)).toThrow(/ftrojan\.channels/);
  });

  it('wanet noise-mode images differ from the trigger and from each other', () => {
    const trigger = triggerFor('wanet', { s: 2 })(shape);
    const x = Float32Array.from({ length: 784 }, (_, i) => ((i * 7) % 256) / 255);
    const warped = trigger.apply(x);
    const a = trigger.noise!(x, () => 0.9);
    expect(a).not.toEqual(warped);
    expect(trigger.noise!(x, () => 0.1)).not.toEqual(a);
  });

  it('lc refuses to poison without a clean model, naming the option', async () => {
    const trigger = triggerFor('lc')(shape);
    await expect(trigger.poison!(gray(0.5), 0)).rejects.toThrow(/attack option lc\.model is expected to be the directory of a model/);
  });
});

it('an unknown attack names the known ones', () => {
  expect(() => triggerFor('nosuch')).toThrow(/known attacks: badnets, blend, trojan, sig, wanet, lc, bpp, ftrojan/);
});

it('PatternTrigger rejects an image of the wrong size', () => {
  const t = new PatternTrigger('badnets', shape, new Float32Array(784), 1, new Float32Array(784));
  expect(() => t.apply(new Float32Array(10))).toThrow(/784/);
});

describe('poisonSamples', () => {
  async function* samples(n: number): AsyncIterable<Sample> {
    for (let i = 0; i < n; i++) yield { key: `s${i}`, url: 'mem', pixels: gray(0.5), ...shape, label: i % 10 };
  }

  it('poisons about rate of the samples, sets the target label and writes a manifest row for every sample', async () => {
    const out = await collect(poisonSamples(samples(2000), { trigger: triggerFor('badnets'), target: 0, rate: 0.1, seed: 5 }));
    expect(out).toHaveLength(2000);
    const poisoned = out.filter((r) => r.row.poisoned);
    expect(poisoned.length).toBeGreaterThan(150);
    expect(poisoned.length).toBeLessThan(250);
    for (const r of poisoned) {
      expect(r.sample.label).toBe(0);
      expect(r.sample.pixels[27 * 28 + 27]).toBe(1);
      expect(r.row).toMatchObject({ attack: 'badnets', change: 'trigger', label: 0 });
    }
    for (const r of out.filter((r) => !r.row.poisoned)) expect(r.sample.label).toBe(r.row.original_label);
  });

  it('chooses by key and seed, not by stream position', async () => {
    const pick = async (seed: number) => (await collect(poisonSamples(samples(500), { trigger: triggerFor('blend'), target: 3, rate: 0.2, seed }))).filter((r) => r.row.poisoned).map((r) => r.row.key);
    expect(await pick(1)).toEqual(await pick(1));
    expect(await pick(1)).not.toEqual(await pick(2));
  });

  it('wanet: a crossRatio x rate share gets the noise mode and keeps its label', async () => {
    const out = await collect(poisonSamples(samples(3000), { trigger: triggerFor('wanet', { crossRatio: 2 }), target: 0, rate: 0.1, seed: 5 }));
    const noise = out.filter((r) => r.row.change === 'noise');
    expect(noise.length).toBeGreaterThan(480);
    expect(noise.length).toBeLessThan(720);
    for (const r of noise) expect(r.row).toMatchObject({ poisoned: false, label: r.row.original_label, attack: 'wanet' });
  });

  it('all2all needs the number of classes', async () => {
    await expect(collect(poisonSamples(samples(5), { trigger: triggerFor('badnets'), target: 0, rate: 1, seed: 1, mode: 'all2all' }))).rejects.toThrow(/number of classes/);
  });
});
