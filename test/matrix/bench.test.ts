import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchCommand } from '../../src/cli/bench.js';
import { dataDir } from '../../src/config/paths.js';
import { armFailpoint } from '../../src/pipeline/failpoints.js';
import { defenseFor } from '../../src/defenses/registry.js';

/**
 * `pbe bench` in process on one shard of the committed subset (1,000 train, 1,000 test): BadNets × ft and
 * spectral, 1-epoch models. The tables hold every row; a second run recomputes nothing; a defense that fails in
 * the middle of its run is reported and resumed from its checkpoint by the next run.
 */
const subset = join(dataDir, 'fashion-mnist-subset');

describe('pbe bench', () => {
  let out: string;
  const bench = (extra: Record<string, unknown> = {}) =>
    benchCommand({
      data: [join(subset, 'train-000000.tar')], testData: [join(subset, 'test-*.tar')], cleanSamples: 200,
      attacks: 'badnets', defenses: 'ft,spectral', seeds: '1', target: 0, mode: 'all2one', attackOption: [], model: 'cnn-small', epochs: 1,
      batchSize: 64, lr: 0.002, imageSize: '28x28x1', classes: 10, evalSamples: 100, out, backend: 'wasm', quiet: true,
      onBadSample: 'skip', maxBadSamples: 10, ...extra,
    });
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'pbe-bench-'));
  });
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('writes one row per model and cell, with the detection scores of defenses that score samples', async () => {
    const { cells, failed } = await bench();
    expect(failed).toEqual([]);
    expect(cells.map((c) => c.defense)).toEqual(['ft', 'spectral']);
    const csv = (await readFile(join(out, 'bench.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('attack,defense,seed,data,acc,asr,seconds,auroc,ap,flagged,precision,recall,infected_acc,infected_asr,run');
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 4).join(','))).toEqual(['badnets,none,1,none', 'clean,none,1,none', 'badnets,ft,1,clean', 'badnets,spectral,1,none'].sort((a, b) => csv.slice(1).findIndex((l) => l.startsWith(a)) - csv.slice(1).findIndex((l) => l.startsWith(b))));
    const spectral = cells.find((c) => c.defense === 'spectral')!;
    expect(spectral.auroc).toBeGreaterThan(0);
    expect(spectral.auroc).toBeLessThanOrEqual(1);
    expect(cells.find((c) => c.defense === 'ft')!.auroc).toBeNull();
    for (const c of cells) {
      expect(c.acc).toBeGreaterThan(0.3);
      expect(c.asr).toBeGreaterThanOrEqual(0);
    }
    const md = await readFile(join(out, 'bench.md'), 'utf8');
    expect(md).toContain('| attack | infected | ft | spectral |');
    expect(md).toMatch(/\| badnets \| [\d.]+ \([\d.]+\) \| [\d.]+ \([\d.]+\) \| [\d.]+ \([\d.]+\) \|/);
    expect(existsSync(join(out, 'bench.html'))).toBe(true);
    expect(existsSync(join(out, 'runs/badnets/s1/ft/model/model.json'))).toBe(true);
    // each defense runs with its own defaults: the bench's --lr and --epochs train the infected models only
    const ftRun = JSON.parse(await readFile(join(out, 'runs/badnets/s1/ft/run.json'), 'utf8'));
    expect(ftRun.config).toEqual(await defenseFor('ft').loadConfig({ overrides: { seed: 1 } }));
    expect(ftRun.config.optimizer.lr).toBe(0.01);
  });

  it('recomputes nothing when run again, also from a moved --out', async () => {
    const moved = `${out}-moved`;
    await rename(out, moved);
    out = moved;
    const files = ['cells/badnets.ft.s1.json', 'cells/badnets.spectral.s1.json', 'runs/badnets/s1/ft/run.json', 'runs/badnets/s1/spectral/run.json'];
    const models = (await readdir(join(out, 'models'))).map((d) => join('models', d, 'complete.json'));
    expect(models).toHaveLength(2);
    const times = async () => Promise.all([...files, ...models].map(async (f) => (await stat(join(out, f))).mtimeMs));
    const before = await times();
    const { cells } = await bench();
    expect(await times()).toEqual(before);
    expect(cells.map((c) => c.defense)).toEqual(['ft', 'spectral']);
  });

  it('reports a defense that failed and resumes its run on the next bench', async () => {
    await rm(join(out, 'cells/badnets.ft.s1.json'));
    armFailpoint('train-step', 9); // ft takes a few steps an epoch on 200 samples: it fails after some epochs' checkpoints
    const first = await bench();
    expect(first.failed.map((f) => f.what)).toEqual(['cell 1/2: badnets × ft, seed 1']);
    const stopped = JSON.parse(await readFile(join(out, 'runs/badnets/s1/ft/run.json'), 'utf8'));
    expect(stopped.status).toBe('failed');
    const epochsDone = (await readFile(join(out, 'runs/badnets/s1/ft/metrics.csv'), 'utf8')).trim().split('\n').length - 1;
    expect(epochsDone).toBeGreaterThan(0);
    expect(epochsDone).toBeLessThan(20);
    const second = await bench();
    expect(second.failed).toEqual([]);
    const ft = second.cells.find((c) => c.defense === 'ft')!;
    const run = JSON.parse(await readFile(join(out, 'runs/badnets/s1/ft/run.json'), 'utf8'));
    expect(run.status).toBe('complete');
    expect(run.identity.runId).toBe(stopped.identity.runId); // resumed, not started again
    expect((await readFile(join(out, 'runs/badnets/s1/ft/metrics.csv'), 'utf8')).trim().split('\n')).toHaveLength(21); // header + 20 epochs
    expect(ft.acc).toBeGreaterThan(0.3);
  });

  it('trains an attack whose config says per-batch with pbe train --attack on the clean data, and records it', async () => {
    await bench({ attacks: 'wanet', defenses: 'spectral' });
    const [dir] = (await readdir(join(out, 'models'))).filter((d) => d.startsWith('wanet-')).map((d) => join(out, 'models', d));
    expect(JSON.parse(await readFile(join(dir, 'complete.json'), 'utf8')).training).toBe('per-batch');
    const train = JSON.parse(await readFile(join(dir, 'model', 'train.json'), 'utf8'));
    expect(train.data[0]).not.toContain(dir); // the clean shards, not the poisoned copy
    expect(train.poisoning).toMatchObject({ training: 'per-batch', attack: 'wanet', rate: 0.1, target: 0, mode: 'all2one' });
    expect(train.poisoning.counts.triggered).toBeGreaterThan(0);
    expect(train.poisoning.counts.noise).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'poisoned', 'poison-manifest.csv'))).toBe(true); // the defenses' data
  });
});
