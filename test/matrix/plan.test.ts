import { describe, expect, it } from 'vitest';
import { averagePrecision } from '../../src/eval/roc.js';
import { attackOptionsFor, benchCells, outRelative, outRelativeSettings, parseSeeds, pickNames, settingsHash } from '../../src/matrix/plan.js';
import { benchMarkdown, benchRows } from '../../src/matrix/tables.js';
import type { CellResult } from '../../src/matrix/cell.js';
import type { BenchModel } from '../../src/matrix/models.js';

describe('bench plan', () => {
  it('orders cells seed by seed, attack by attack', () => {
    expect(benchCells(['a', 'b'], ['x', 'y'], [1, 2]).map((c) => `${c.seed}${c.attack}${c.defense}`)).toEqual(['1ax', '1ay', '1bx', '1by', '2ax', '2ay', '2bx', '2by']);
  });

  it('hashes settings whatever their key order, and tells different settings apart', () => {
    expect(settingsHash({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(settingsHash({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(settingsHash({ a: 1, b: { c: [1, 2] } })).not.toBe(settingsHash({ a: 1, b: { c: [2, 1] } }));
    expect(settingsHash({ a: 1, b: undefined })).toBe(settingsHash({ a: 1 }));
  });

  it('writes paths under --out relative to it, so a moved bench hashes the same, and leaves other paths alone', () => {
    expect(outRelative(['/a/out/data/train-*.tar', '/b/shards/x.tar'], '/a/out')).toEqual(['$OUT/data/train-*.tar', '/b/shards/x.tar']);
    expect(outRelative(['/a/out/m'], '/a/out')).toEqual(outRelative(['/c/moved/m'], '/c/moved'));
    expect(outRelative(['/a/outside/m'], '/a/out')).toEqual(['/a/outside/m']);
    const lc = (out: string) => ({ attack: 'lc', rate: 0.5, options: { model: `${out}/models/clean-s1-abc/model`, eps: 0.1, patch: 'relative/p.png' } });
    expect(outRelativeSettings(lc('/a/out'), '/a/out')).toEqual({ attack: 'lc', rate: 0.5, options: { model: '$OUT/models/clean-s1-abc/model', eps: 0.1, patch: 'relative/p.png' } });
    expect(settingsHash(outRelativeSettings(lc('/a/out'), '/a/out'))).toBe(settingsHash(outRelativeSettings(lc('/c/moved'), '/c/moved')));
  });

  it('picks names in the registry order and names the unknown ones', () => {
    const known = ['badnets', 'blend', 'sig'];
    expect(pickNames('--attacks', undefined, known)).toEqual(known);
    expect(pickNames('--attacks', 'all', known)).toEqual(known);
    expect(pickNames('--attacks', 'sig, badnets', known)).toEqual(['badnets', 'sig']);
    expect(() => pickNames('--attacks', 'sig,nope', known)).toThrow('--attacks: unknown "nope"; known: badnets, blend, sig');
    expect(() => parseSeeds('1,x')).toThrow(/--seeds expects/);
    expect(parseSeeds('3,1,3')).toEqual([3, 1]);
  });

  it("gives each attack its own --attack-option flags", () => {
    const flags = ['badnets:position=top-left', 'blend:ratio=0.2', 'badnets:size=4'];
    expect(attackOptionsFor('badnets', flags)).toEqual(['position=top-left', 'size=4']);
    expect(attackOptionsFor('sig', flags)).toEqual([]);
    expect(() => attackOptionsFor('badnets', ['size=4'])).toThrow(/ATTACK:key=value/);
  });
});

describe('average precision', () => {
  it('is the mean precision at each positive, ties together', () => {
    expect(averagePrecision([0.9, 0.2, 0.4], [true, false, true])).toBe(1);
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [true, false, true, false])).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
    // one tie of a positive and a negative at the top: precision 1/2 at recall 1
    expect(averagePrecision([0.5, 0.5], [true, false])).toBe(0.5);
  });
});

describe('bench tables', () => {
  const model = (name: string, seed: number, acc: number, asr: number | null): BenchModel => ({ name, seed, hash: `${name}${seed}`, model: `m/${name}`, acc, asr, seconds: 60 });
  const cell = (attack: string, defense: string, seed: number, acc: number, asr: number, data: 'none' | 'clean' = 'none'): CellResult => ({
    attack, defense, seed, data, acc, asr, seconds: 120, auroc: defense === 'pbe' ? 0.9 : null, ap: defense === 'pbe' ? 0.8 : null, flagged: defense === 'pbe' ? 10 : null, precision: 0.5, recall: 0.6, run: 'r', infectedHash: 'h', configHash: 'c',
  });
  const models = [model('clean', 1, 0.88, null), model('badnets', 1, 0.87, 1), model('badnets', 2, 0.86, 0.98)];
  const cells = [cell('badnets', 'pbe', 1, 0.86, 0.02), cell('badnets', 'pbe', 2, 0.84, 0.04), cell('badnets', 'ft', 1, 0.85, 0.5, 'clean')];

  it('has a row per model and per cell, with the infected figures beside each cell', () => {
    const rows = benchRows({ models, cells });
    expect(rows).toHaveLength(6);
    expect(rows.find((r) => r.defense === 'ft')).toMatchObject({ attack: 'badnets', infected_acc: 0.87, infected_asr: 1 });
    expect(rows.filter((r) => r.defense === 'none').map((r) => r.attack)).toEqual(['clean', 'badnets', 'badnets']);
  });

  it('gives mean ± sd over seeds per attack and defense, and the mean over attacks', () => {
    const md = benchMarkdown({ models, cells, about: ['data: test'], command: 'pbe bench --quick' });
    expect(md).toContain('| attack | infected | pbe | ft |');
    expect(md).toContain('| badnets | 99.0 ± 1.4 (86.5 ± 0.7) | 3.0 ± 1.4 (85.0 ± 1.4) | 50.0 (85.0) |');
    expect(md).toContain('| pbe | none | 1 | 3.0 | 85.0 | 1.5 | 2.0 |');
    expect(md).toContain('| ft | clean | 1 | 50.0 | 85.0 | 2.0 | 2.0 |');
    expect(md).toContain('Model trained on the clean data: ACC 88.0.');
    expect(md).toContain('| badnets | pbe | 2 | 0.900 | 0.800 | 10 | 50.0 | 60.0 |');
  });
});
