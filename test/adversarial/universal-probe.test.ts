import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { chooseGenerators } from '../../src/adversarial/choose.js';
import { probePerturbations } from '../../src/adversarial/universal-probe.js';
import { addPerturbation, invertPerturbation } from '../../src/adversarial/universal-inversion.js';
import { buildModel } from '../../src/models/zoo.js';
import { fitModel } from '../../src/pipeline/fit.js';
import { createRng } from '../../src/pipeline/random.js';
import { predictClasses } from '../../src/eval/evaluate.js';
import type { Sample } from '../../src/sources/types.js';
import { pack } from '../../src/stages/batch.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';

/** SIG's trigger (Barni et al. 2019): a horizontal sinusoid over the whole image, amplitude delta/255, f periods. */
const wave = (delta: number, f = 6) => Float32Array.from({ length: 784 }, (_, k) => (delta / 255) * Math.sin((2 * Math.PI * (k % 28) * f) / 28));

describe('addPerturbation', () => {
  it('adds δ and clips to [0,1]', () => {
    const out = addPerturbation(Float32Array.from([0, 0.5, 0.95]), Float32Array.from([-0.2, 0.3, 0.1]));
    [0, 0.8, 1].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 6));
  });
});

/**
 * The universal additive probe on synthetic squares: a model with a dirty-label additive trigger over the whole
 * image (SIG's sinusoid, 10% of samples relabelled to class 0) gets class 0 flagged and the sinusoid recovered; the
 * same model trained on clean data gets nothing flagged.
 */
describe('universal additive probe', () => {
  const opts = { steps: 60, batchSize: 32, lr: 0.01, lambda: 0.5, anomalyThreshold: 2.5, minGap: 1.5, jointAnomalyThreshold: 2, jointMinGap: 1.3, minSuccess: 0.8, refineSteps: 100, seed: 1 };
  const sig = wave(60);
  let infected: tf.LayersModel;
  let clean: tf.LayersModel;
  let probe: ReturnType<typeof pack>;

  beforeAll(async () => {
    await initBackend('wasm');
    const data = syntheticSquares(2500, 21);
    const rng = createRng(3);
    const poisoned: Sample[] = data.map((s) => (rng() < 0.1 ? { ...s, pixels: addPerturbation(sig, s.pixels), label: 0 } : s));
    infected = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    clean = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    await fitModel(infected, memoryCorpus(poisoned), { epochs: 3, batchSize: 64, lr: 0.002, seed: 2, log: () => {} });
    await fitModel(clean, memoryCorpus(data), { epochs: 3, batchSize: 64, lr: 0.002, seed: 2, log: () => {} });
    probe = pack(syntheticSquares(300, 77, 'probe').map((s) => ({ ...s, label: 0 })));
  }, 300_000);

  it('the trained backdoor works (a precondition)', () => {
    const test = syntheticSquares(300, 99, 'test').filter((s) => s.label !== 0);
    const asr = (m: tf.LayersModel) => predictClasses(m, test.map((s) => addPerturbation(sig, s.pixels)), [28, 28, 1]).filter((c) => c === 0).length / test.length;
    expect(asr(infected)).toBeGreaterThan(0.9);
    expect(asr(clean)).toBeLessThan(0.3);
  });

  it('flags the additive trigger’s target on the infected model, and its δ looks like the sinusoid', () => {
    const tensors = tf.memory().numTensors;
    const r = probePerturbations(infected, probe.x, probe.shape, opts);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(r.classes).toHaveLength(10);
    expect(r.perturbation?.target).toBe(0);
    expect(r.perturbation!.success).toBeGreaterThanOrEqual(0.8);
    expect(r.reason).toMatch(/class 0 needs a universal perturbation of L2 norm/);
    const d = r.perturbation!.delta;
    const cos = d.reduce((a, v, i) => a + v * sig[i], 0) / Math.sqrt(d.reduce((a, v) => a + v * v, 0) * sig.reduce((a, v) => a + v * v, 0));
    expect(cos).toBeGreaterThan(0.2);
    expect(chooseGenerators(undefined, { trigger: null }, 0.5, r)).toMatchObject({ names: ['perturbation-unlearning'], backdoorSignal: true });
  }, 300_000);

  it('flags nothing on the clean model', () => {
    const r = probePerturbations(clean, probe.x, probe.shape, opts);
    expect(r.perturbation).toBeNull();
    expect(r.reason).toMatch(/no class's trigger is an outlier/);
    expect(chooseGenerators(undefined, { trigger: null }, 0.5, r).backdoorSignal).toBe(false);
  }, 300_000);

  it('leaves the model unchanged', () => {
    const weights = clean.getWeights().map((w) => w.dataSync().slice());
    const p = invertPerturbation(clean, probe.x.subarray(0, 40 * 784), [40, 28, 28, 1], 3, { ...opts, steps: 3 });
    clean.getWeights().forEach((w, i) => expect(w.dataSync()).toEqual(weights[i]));
    expect(p.delta).toHaveLength(784);
    expect(Math.max(...p.delta.map(Math.abs))).toBeLessThanOrEqual(1);
  });
});

describe('choosing generators with the universal probe', () => {
  const pgd = (concentration: number) => ({ eps: 0.05, flipRate: 0.6, concentration, concentrationClass: 6 });
  const universal = { perturbation: { target: 0, delta: new Float32Array(1), norm: 1.2, success: 0.95 } };
  const trigger = { trigger: { target: 0, mask: new Float32Array(1), pattern: new Float32Array(1), maskL1: 9, success: 1 } };
  it('masked inversion comes first: its choices do not change', () => {
    expect(chooseGenerators(pgd(0.25), trigger, 0.5, universal).names).toEqual(['trigger-unlearning']);
    expect(chooseGenerators(pgd(0.8), trigger, 0.5, universal).names).toEqual(['linf-pgd', 'trigger-unlearning']);
  });
  it('no masked trigger, a universal one: perturbation unlearning, beside PGD when flips concentrate', () => {
    expect(chooseGenerators(pgd(0.27), { trigger: null }, 0.5, universal)).toMatchObject({ names: ['perturbation-unlearning'], backdoorSignal: true });
    expect(chooseGenerators(pgd(0.8), { trigger: null }, 0.5, universal).names).toEqual(['linf-pgd', 'perturbation-unlearning']);
  });
  it('universal.unlearn "all" (opt-in): without any flag, perturbation unlearning and still no backdoor signal; flags keep their choices', () => {
    const none = { perturbation: null };
    expect(chooseGenerators(pgd(0.27), { trigger: null }, 0.5, none, true)).toMatchObject({ names: ['perturbation-unlearning'], backdoorSignal: false });
    expect(chooseGenerators(pgd(0.27), { trigger: null }, 0.5, none, false)).toMatchObject({ names: ['linf-pgd'], backdoorSignal: false });
    expect(chooseGenerators(pgd(0.25), trigger, 0.5, none, true).names).toEqual(['trigger-unlearning']);
    expect(chooseGenerators(pgd(0.27), { trigger: null }, 0.5, universal, true)).toMatchObject({ names: ['perturbation-unlearning'], backdoorSignal: true });
  });
});
