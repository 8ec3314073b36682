import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { poisonSamples } from '../../src/attacks/poison.js';
import { attackNames, getAttack, triggerFor } from '../../src/attacks/registry.js';
import { attackDefaults } from '../../src/attacks/options.js';
import { saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';
import { decodeImage, encodePng } from '../../src/sources/image.js';
import type { Sample } from '../../src/sources/types.js';
import { collect, from } from '../helpers/streams.js';

// One contract over every registered attack (torchattacks' test_atks.py): adding an attack adds it here.
const shapes = [
  { height: 14, width: 14, channels: 1 },
  { height: 16, width: 16, channels: 3 },
];
const lcModels: Record<number, string> = {};

beforeAll(async () => {
  await tf.setBackend('cpu');
  for (const s of shapes) {
    lcModels[s.channels] = join(mkdtempSync(join(tmpdir(), 'pbe-lc-')), 'model');
    await saveModel(buildModel('cnn-small', { inputShape: [s.height, s.width, s.channels], numClasses: 4, seed: 1 }), lcModels[s.channels]);
  }
});

/** 8-bit images, as shards hold them. */
function image(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => Math.round(rng() * 255) / 255);
}

function samples(shape: (typeof shapes)[number], count: number): Sample[] {
  const n = shape.height * shape.width * shape.channels;
  return Array.from({ length: count }, (_, i) => ({ key: `k${i}`, url: 'mem', pixels: image(n, i + 1), ...shape, label: i % 4 }));
}

const options = (name: string, channels: number) => (name === 'lc' ? { model: lcModels[channels] } : {});

describe.each(attackNames)('%s', (name) => {
  it('has defaults in config/attacks and a doc-described schema that accepts them', () => {
    const defaults = attackDefaults(name);
    expect(defaults.rate).toBeGreaterThan(0);
    expect(getAttack(name).options.safeParse(defaults.options).success).toBe(true);
  });

  it.each(shapes)('changes a $height x $width x $channels image within its stated bound and region, deterministically', (shape) => {
    const x = image(shape.height * shape.width * shape.channels, 9);
    const copy = x.slice();
    const trigger = triggerFor(name, options(name, shape.channels))(shape);
    const out = trigger.apply(x);
    expect(x).toEqual(copy);
    expect(out).toHaveLength(x.length);
    expect(out).not.toEqual(x);
    for (let i = 0; i < out.length; i++) {
      expect(out[i]).toBeGreaterThanOrEqual(0);
      expect(out[i]).toBeLessThanOrEqual(1);
      expect(Math.abs(out[i] * 255 - Math.round(out[i] * 255))).toBeLessThan(1e-3);
      expect(Math.abs(out[i] - x[i])).toBeLessThanOrEqual(trigger.maxChange + 0.5 / 255 + 1e-6);
      if (trigger.region && !trigger.region[Math.floor(i / shape.channels)]) expect(out[i]).toBe(x[i]);
    }
    expect(triggerFor(name, options(name, shape.channels))(shape).apply(x)).toEqual(out);
  });

  it('rejects an unknown option, naming it', () => {
    expect(() => triggerFor(name, { nosuch: 1 })).toThrow(`attack option ${name}.nosuch is expected to be one of`);
  });

  it.each(['all2one', 'all2all'] as const)('poisons in %s: labels, clean-label rules, and the same image as eval', async (mode) => {
    const shape = shapes[1];
    const trigger = triggerFor(name, options(name, shape.channels));
    const { cleanLabel } = getAttack(name);
    const input = samples(shape, 40);
    const run = () => collect(poisonSamples(from(input), { trigger, target: 2, rate: 0.5, seed: 3, mode, numClasses: 4 }));
    if (cleanLabel && mode === 'all2all') {
      await expect(run()).rejects.toThrow(/clean-label/);
      return;
    }
    const out = await run();
    const evalTrigger = triggerFor(name, options(name, shape.channels))(shape);
    const poisoned = out.filter((r) => r.row.poisoned);
    expect(poisoned.length).toBeGreaterThan(0);
    for (const [i, { sample, row }] of out.entries()) {
      expect(row.original_label).toBe(input[i].label);
      expect(row.label).toBe(sample.label);
      if (!row.poisoned) {
        expect(sample.label).toBe(input[i].label);
        if (row.change === '') expect(sample.pixels).toBe(input[i].pixels);
        continue;
      }
      expect(row.attack).toBe(name);
      if (cleanLabel) {
        expect(input[i].label).toBe(2);
        expect(sample.label).toBe(2);
      } else {
        expect(sample.label).toBe(mode === 'all2one' ? 2 : (input[i].label! + 1) % 4);
      }
      // what the shard holds (8-bit PNG) is what eval triggers; a train-time-only step (lc's PGD) stays within its own bound
      const stored = decodeImage(encodePng(sample.pixels, shape.height, shape.width, shape.channels), 'png', { url: 'mem' }).pixels;
      const triggered = evalTrigger.apply(input[i].pixels);
      if (!evalTrigger.poison) expect(stored).toEqual(triggered);
      else for (let j = 0; j < stored.length; j++) if (evalTrigger.region![Math.floor(j / shape.channels)]) expect(stored[j]).toBe(triggered[j]);
    }
    expect((await run()).map((r) => r.sample.pixels)).toEqual(out.map((r) => r.sample.pixels));
  });
});
