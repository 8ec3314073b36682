import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getAttack } from '../../src/attacks/registry.js';

// Outputs computed as the reference implementations compute them (PyTorch for WaNet's warp, BackdoorBench's
// code for BppAttack's dithering and FTrojan's block DCT): test/attacks/reference.py writes the fixture.
const cases: { attack: string; options: Record<string, unknown>; shape: [number, number, number]; input: number[]; expected: number[] }[] = JSON.parse(
  readFileSync(new URL('./fixtures/reference.json', import.meta.url), 'utf8'),
);

describe('triggers match the reference implementations', () => {
  it.each(cases.map((c, i) => [`${c.attack} ${JSON.stringify(c.options)} on ${c.shape.join('x')}`, i] as const))('%s', (_, i) => {
    const { attack, options, shape, input, expected } = cases[i];
    const trigger = getAttack(attack).build(options, { height: shape[0], width: shape[1], channels: shape[2] });
    const out = trigger.apply(Float32Array.from(input));
    for (let j = 0; j < out.length; j++) expect(Math.abs(out[j] - expected[j])).toBeLessThan(2e-5);
  });
});
