import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { poisonSamples } from '../../src/attacks/poison.js';
import { triggerFor } from '../../src/attacks/registry.js';
import { loadPurifyConfig } from '../../src/config/load.js';
import { dataDir } from '../../src/config/paths.js';
import { inspectModel } from '../../src/eval/inspect.js';
import { buildModel } from '../../src/models/zoo.js';
import { shardCorpus } from '../../src/pipeline/corpus.js';
import { fitModel } from '../../src/pipeline/fit.js';
import { BadSampleLog } from '../../src/sources/bad-samples.js';
import type { Sample } from '../../src/sources/types.js';
import { memoryCorpus } from '../helpers/memory-corpus.js';

/** On the committed Fashion-MNIST subset: a Blend-infected model (target 7), a BadNets-infected one (target 2) and a clean one. */
describe('inspect: is this model backdoored, and towards which class?', () => {
  const read = async (name: string) => {
    const corpus = shardCorpus(join(dataDir, 'fashion-mnist-subset', name), { badSamples: new BadSampleLog({ policy: 'fail' }) });
    const out: Sample[] = [];
    for await (const s of corpus.samples().output) out.push(s);
    return out;
  };

  beforeAll(async () => {
    await initBackend('wasm');
  });

  // Three points of the default eps grid, the probe being PGD on every probe image at each: on the default grid the
  // four models here chose 0.0157 (Blend-infected), 0.075 (BadNets-infected: 49% flips at 0.05) and 0.05 (clean,
  // both probe sets: 35% and 33% at 0.0314), which are the eps these three points choose from the same flip rates.
  const epsGrid = [0.0157, 0.05, 0.075];

  let cleanModel: Promise<Awaited<ReturnType<typeof trained>>> | undefined;
  const trainedClean = async () => (cleanModel ??= read('train-*.tar').then(trained));

  async function trained(samples: Sample[]) {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
    await fitModel(model, memoryCorpus(samples), { epochs: 5, batchSize: 64, lr: 0.002, seed: 3, log: () => {} });
    return model;
  }

  it('names the target of a Blend-infected model and sees no backdoor in a clean one', async () => {
    const clean = await read('train-*.tar');
    const probeImages = (await read('test-*.tar')).slice(0, 400);
    const poisoned: Sample[] = [];
    const trigger = triggerFor('blend', { blendRatio: 0.1, patternSeed: 0 });
    for await (const { sample } of poisonSamples((async function* () { yield* clean; })(), { trigger, target: 7, rate: 0.1, seed: 2 })) poisoned.push(sample);
    const config = await loadPurifyConfig({});
    const opts = { ...config.probe, ...config.pgd, epsGrid, threshold: 0.5, inversion: null };

    const infected = inspectModel(await trained(poisoned), probeImages, opts);
    expect(infected.suspected).toBe(true);
    expect(infected.likelyTarget).toBe(7);
    expect(infected.concentration).toBeGreaterThan(0.5);

    const cleanResult = inspectModel(await trainedClean(), probeImages, opts);
    expect(cleanResult.flips).toBeGreaterThan(100);
    expect(cleanResult.concentration).toBeLessThan(0.5);
    expect(cleanResult.suspected).toBe(false);
  }, 300_000);

  it('finds a BadNets patch by trigger inversion (PGD alone does not), recovers it at the patch, and flags nothing on a clean model', async () => {
    const clean = await read('train-*.tar');
    const probeImages = (await read('test-*.tar')).slice(0, 300);
    const poisoned: Sample[] = [];
    const trigger = triggerFor('badnets', { patchSize: 3, patchPosition: 'bottom-right' });
    for await (const { sample } of poisonSamples((async function* () { yield* clean; })(), { trigger, target: 2, rate: 0.1, seed: 2 })) poisoned.push(sample);
    const config = await loadPurifyConfig({});
    const opts = { ...config.probe, ...config.pgd, epsGrid, threshold: 0.5, inversion: { ...config.inversion, seed: 1 } };

    const infected = inspectModel(await trained(poisoned), probeImages, opts);
    expect(infected.pgdSignal).toBe(false);
    expect(infected.suspected).toBe(true);
    expect(infected.target).toBe(2);
    const recovered = infected.inversion!.trigger!;
    expect(recovered.success).toBeGreaterThan(0.9);
    const inPatch = [25, 26, 27].flatMap((r) => [25, 26, 27].map((c) => recovered.mask[r * 28 + c])).reduce((a, v) => a + v, 0);
    expect(inPatch / recovered.maskL1).toBeGreaterThan(0.5);

    const cleanResult = inspectModel(await trainedClean(), probeImages, opts);
    expect(cleanResult.inversion!.trigger).toBeNull();
    expect(Math.max(...cleanResult.inversion!.classes.map((c) => c.anomaly))).toBeLessThan(2);
    expect(cleanResult.suspected).toBe(false);
  }, 300_000);
});
