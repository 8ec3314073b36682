import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalCommand } from '../../src/cli/eval.js';
import { poisonCommand } from '../../src/cli/poison.js';
import { purifyCommand } from '../../src/cli/purify.js';
import { trainCommand } from '../../src/cli/train.js';
import { dataDir } from '../../src/config/paths.js';

/**
 * poison -> train -> purify -> eval through the commands, on the committed Fashion-MNIST subset (4,000 train,
 * 1,000 test), Blend 10% to class 0, with a shortened schedule (3 rounds of 6, 4, 4 epochs) so that it runs in about a minute.
 */
const subset = join(dataDir, 'fashion-mnist-subset');
const common = { backend: 'wasm' as const, quiet: true, onBadSample: 'skip' as const, maxBadSamples: 10 };
const trigger = { patchSize: 3, patchPosition: 'bottom-right', blendRatio: 0.1, patternSeed: 0 };

describe('pbe end to end on the committed subset (Blend)', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'pbe-e2e-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('purification without clean data lowers ASR and keeps ACC, and writes the run directory', async () => {
    const poisoned = await poisonCommand({ ...common, ...trigger, data: [join(subset, 'train-*.tar')], out: join(work, 'poisoned'), attack: 'blend', target: 0, rate: 0.1, seed: 1, shardSize: 2000 });
    expect(poisoned.total).toBe(4000);
    expect(poisoned.poisoned).toBeGreaterThan(320);
    expect(poisoned.poisoned).toBeLessThan(480);

    await trainCommand({ ...common, model: 'cnn-small', data: [join(work, 'poisoned/train-*.tar')], out: join(work, 'infected'), epochs: 8, batchSize: 64, lr: 0.002, seed: 1, imageSize: '28x28x1', classes: 10 });
    const evalArgs = { ...common, ...trigger, data: [join(subset, 'test-*.tar')], attack: 'blend', target: 0 };
    const before = await evalCommand({ ...evalArgs, model: join(work, 'infected') });
    expect(before.acc).toBeGreaterThan(0.7);
    expect(before.asr).toBeGreaterThan(0.8);

    const out = join(work, 'run');
    const config = join(work, 'short.json');
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(config, JSON.stringify({
        initialFraction: 0.1,
        keepRatio: [0.5, 0.7],
        rounds: [
          { epochs: 6, adversarial: { epochs: 6, share: 1, maxBatches: null } },
          { epochs: 4, adversarial: { epochs: 1, share: 1, maxBatches: 30 } },
          { epochs: 4, adversarial: { epochs: 1, share: 1, maxBatches: 30 } },
        ],
      })),
    );
    const { pbe: result } = await purifyCommand({
      ...common, ...trigger, model: join(work, 'infected'), data: [join(work, 'poisoned/train-*.tar')], out,
      preset: 'fashion-mnist', config, evalData: [join(subset, 'test-*.tar')], evalAttack: 'blend', target: 0, evalSamples: 300,
    });
    const after = await evalCommand({ ...evalArgs, model: join(out, 'model') });
    expect(after.asr).toBeLessThan(0.2);
    expect(after.asr!).toBeLessThan(before.asr! / 4);
    // the default data purification (softmax similarity, kept within predicted classes) costs ACC on this short
    // schedule: measured 87.1 -> 80.5 (ASR 1.2%) with the shards' labels (labels: auto), 78.6 (6.2%) with pseudo-labels
    expect(after.acc).toBeGreaterThan(before.acc - 0.1);

    expect(result!.store.size).toBe(4000);
    // 70% of each class the model predicts, rounded per class: 2,800 give or take half a sample per class
    expect(Math.abs(result!.trusted.size - 2800)).toBeLessThanOrEqual(5);
    const metrics = (await readFile(join(out, 'metrics.csv'), 'utf8')).trim().split('\n');
    expect(metrics[0]).toBe('round,epoch,adversarialShare,adversarialBatches,trusted,samples,loss,flipRate,concentration,concentrationClass,seconds,acc,asr');
    expect(metrics).toHaveLength(1 + 14);
    const scores = (await readFile(join(out, 'scores.csv'), 'utf8')).trim().split('\n');
    expect(scores[0]).toBe('key,url,suspicion,trusted,flagged,pseudo_label,final_label');
    expect(scores).toHaveLength(4001);
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
    expect(run.eps).toBe(0.05);
    expect(run.backend.name).toBe('wasm');
    // report.html and its images: the most suspicious images shown are mostly the poisoned ones
    const images = JSON.parse(await readFile(join(out, 'report-images.json'), 'utf8'));
    const manifest = await readFile(join(work, 'poisoned/poison-manifest.csv'), 'utf8');
    const poisonedKeys = new Set(manifest.split('\n').filter((l) => l.split(',')[1] === '1').map((l) => l.split(',')[0]));
    expect(images.suspicious).toHaveLength(40);
    expect(images.suspicious.filter((im: { key: string }) => poisonedKeys.has(im.key)).length).toBeGreaterThan(30);
    expect(images.adversarial.examples).toHaveLength(6);
    const report = await readFile(join(out, 'report.html'), 'utf8');
    expect(report).toContain('data-chart="acc-asr"');
    expect(report).toContain('data-chart="roc"'); // the manifest beside the poisoned shards was found
  }, 600_000);

  it('BadNets: with its defaults (no preset) purify finds the patch by trigger inversion and erases it', async () => {
    const patch = { ...trigger, patchPosition: 'top-left' };
    await poisonCommand({ ...common, ...patch, data: [join(subset, 'train-*.tar')], out: join(work, 'badnets'), attack: 'badnets', target: 3, rate: 0.1, seed: 1, shardSize: 2000 });
    await trainCommand({ ...common, model: 'cnn-small', data: [join(work, 'badnets/train-*.tar')], out: join(work, 'badnets-infected'), epochs: 8, batchSize: 64, lr: 0.002, seed: 1, imageSize: '28x28x1', classes: 10 });
    const evalArgs = { ...common, ...patch, data: [join(subset, 'test-*.tar')], attack: 'badnets', target: 3 };
    const before = await evalCommand({ ...evalArgs, model: join(work, 'badnets-infected') });
    expect(before.asr).toBeGreaterThan(0.9);

    const config = join(work, 'badnets-short.json');
    await writeFile(config, JSON.stringify({
      initialFraction: 0.2,
      keepRatio: [0.7],
      rounds: [
        { epochs: 3, adversarial: { epochs: 3, share: 1, maxBatches: null } },
        { epochs: 6, adversarial: { epochs: 1, share: 1, maxBatches: 30 } },
      ],
    }));
    const out = join(work, 'badnets-run');
    const { pbe: result } = await purifyCommand({ ...common, ...patch, model: join(work, 'badnets-infected'), data: [join(work, 'badnets/train-*.tar')], out, config, target: 3, evalSamples: 300 });
    expect(result!.findings.trigger?.target).toBe(3);
    expect(result!.findings.generators).toEqual(['trigger-unlearning']);
    const after = await evalCommand({ ...evalArgs, model: join(out, 'model') });
    // measured: ASR 99.9% -> 0.0%, ACC 86.8% -> 78.1% (9 epochs on 4,000 images; on 20,000 with the full schedule ACC stays within a point)
    const measured = `ACC ${before.acc} -> ${after.acc}, ASR ${before.asr} -> ${after.asr}`;
    expect(after.asr, measured).toBeLessThan(0.1);
    expect(after.acc, measured).toBeGreaterThan(before.acc - 0.12);
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
    expect(run.generators).toEqual(['trigger-unlearning']);
    expect(run.purification).toEqual({ similarity: 'softmax', keepWithin: 'predicted-class' }); // auto, with a backdoor seen
    expect(run.flag.count).toBe(result!.flag.count);
    expect(result!.flag.count).toBeGreaterThan(0);
  }, 600_000);
});
