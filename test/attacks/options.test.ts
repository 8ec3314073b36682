import { describe, expect, it } from 'vitest';
import { parseAttackOptions } from '../../src/attacks/options.js';
import { attackSettings, triggerFor } from '../../src/attacks/registry.js';

describe('--attack-option key=value', () => {
  it('reads JSON values and falls back to strings', () => {
    expect(parseAttackOptions(['size=4', 'position=top-left', 'dithering=false', 'window=null', 'frequencies=[[3,3],[7,7]]', 'pattern=a=b.png'])).toEqual({
      size: 4,
      position: 'top-left',
      dithering: false,
      window: null,
      frequencies: [[3, 3], [7, 7]],
      pattern: 'a=b.png',
    });
  });

  it('refuses a pair without a key', () => {
    expect(() => parseAttackOptions(['=3'])).toThrow('--attack-option expects key=value, got "=3"');
    expect(() => parseAttackOptions(['size'])).toThrow(/key=value/);
  });
});

describe('option validation names attack, option, expected and actual value', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['badnets', { size: 2.5 }, 'attack option badnets.size is expected to be a positive integer, but got 2.5'],
    ['blend', { ratio: 0 }, 'attack option blend.ratio is expected to be a number in (0, 1], but got 0'],
    ['sig', { delta: 'big' }, 'attack option sig.delta is expected to be a number in [0, 255], but got "big"'],
    ['wanet', { k: 1 }, 'attack option wanet.k is expected to be an integer >= 2, but got 1'],
    ['bpp', { dithering: 'yes' }, 'attack option bpp.dithering is expected to be true or false, but got "yes"'],
    ['ftrojan', { window: 0 }, 'attack option ftrojan.window is expected to be a positive integer or null, but got 0'],
    ['lc', { corners: 'left' }, 'attack option lc.corners is expected to be "all" or "bottom-right", but got "left"'],
    ['trojan', { variation: 2 }, 'attack option trojan.variation is expected to be a number in [0, 1], but got 2'],
  ];
  it.each(cases)('%s %o', (attack, options, message) => {
    expect(() => triggerFor(attack, options)).toThrow(message);
  });

  it('an unknown option lists the known ones', () => {
    expect(() => triggerFor('sig', { amplitude: 3 })).toThrow('attack option sig.amplitude is expected to be one of delta, frequency, but got "an unknown option"');
  });

  it('settings record the attack, its default rate and every resolved option', () => {
    expect(attackSettings('sig', { delta: 20 })).toEqual({ attack: 'sig', rate: 1, cleanLabel: true, options: { delta: 20, frequency: 6 } });
  });
});
