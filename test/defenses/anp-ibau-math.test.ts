import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { anpMaskStep, choosePruned, neuronLayers, type MaskState } from '../../src/defenses/anp.js';
import { hypergradient, perturbedMask, universalStep } from '../../src/defenses/i-bau.js';

/**
 * The core math of anp and i-bau against PyTorch autograd on tiny dense models: the numbers are printed by
 * test/fixtures/anp-ibau-reference.py (/usr/bin/python3 with python3-torch), which differentiates the neuron
 * multipliers and the perturbation directly (anp.ts goes through the layer weights by the chain rule).
 */
function tiny(inputShape: number[], w1: number[][], b1: number[], w2: number[][], b2: number[]): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape }),
      tf.layers.dense({ units: b1.length, activation: 'relu' }),
      tf.layers.dense({ units: b2.length }),
    ],
  });
  model.setWeights([tf.tensor2d(w1), tf.tensor1d(b1), tf.tensor2d(w2), tf.tensor1d(b2)]);
  return model;
}

const close = (actual: ArrayLike<number>, expected: number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
};

beforeAll(async () => {
  await initBackend('wasm');
});

describe('anp', () => {
  const model = () =>
    tiny(
      [1, 1, 3],
      [[0.4, -0.3, 0.2, 0.5], [0.1, 0.6, -0.5, 0.3], [-0.2, 0.4, 0.7, -0.1]], [0.05, -0.02, 0.1, 0.03],
      [[0.3, -0.4], [-0.6, 0.2], [0.5, 0.1], [0.2, -0.3]], [0.01, -0.01],
    );
  const x = [[0.5, -0.2, 0.8], [0.1, 0.9, -0.4], [-0.6, 0.3, 0.7]];
  const config = { eps: 0.4, steps: 1, alpha: 0.2, maskLr: 0.2, maskMomentum: 0.9 };

  it('masks the hidden Dense layer only (not the logits)', () => {
    const m = model();
    expect(neuronLayers(m).map((l) => [l.layer.getClassName(), l.size])).toEqual([['Dense', 4]]);
    m.dispose();
  });

  it('two mask steps (noise sign step, robust + natural gradient, momentum, clip) match PyTorch', () => {
    const m = model();
    const layers = neuronLayers(m);
    const before = m.getWeights().map((w) => Array.from(w.dataSync()));
    const state: MaskState = { masks: [Float32Array.from([1, 0.9, 0.5, 1])], momentum: null, iteration: 0 };
    const input = tf.tensor4d(x.flat(), [3, 1, 1, 3]);
    const labels = Int32Array.from([0, 1, 1]);
    const tensors = tf.memory().numTensors;

    const first = { delta: [Float32Array.from([0.1, -0.3, 0.2, 0.0])], xi: [Float32Array.from([-0.1, 0.25, 0.0, 0.3])] };
    anpMaskStep(m, layers, state, input, labels, config, first);
    close(first.delta[0], [0.4, -0.4, -0.2, 0.4]);
    close(first.xi[0], [0.3, 0.4, 0.4, 0.4]);
    close(state.masks[0], [0.9945885539054871, 0.926423192024231, 0.5058133006095886, 0.9944314956665039]);

    const second = { delta: [Float32Array.from([-0.2, 0.1, 0.35, -0.05])], xi: [Float32Array.from([0.2, -0.15, 0.1, 0.0])] };
    anpMaskStep(m, layers, state, input, labels, config, second);
    close(second.delta[0], [0.2, -0.3, -0.05, 0.35]);
    close(state.masks[0], [0.9844446778297424, 0.9750956892967224, 0.5167675018310547, 0.9840006232261658]);

    // the model's weights are the infected model's again after each step, and no tensor is left behind
    m.getWeights().forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(before[i]));
    expect(tf.memory().numTensors).toBe(tensors);
    input.dispose();
    m.dispose();
  });

  it('prunes by threshold (mask <= t), by the lowest fraction of all neurons, or in mask order while the clean accuracy holds', () => {
    const masks = [Float32Array.from([0.9, 0.1, 0.2]), Float32Array.from([0.05, 0.7, 0.3, 1])];
    const rule = { threshold: 0.2, fraction: 0.3, maxAccuracyDrop: 0.05 };
    expect(choosePruned(masks, { ...rule, pruneBy: 'threshold' })).toEqual([{ layer: 0, neuron: 1 }, { layer: 0, neuron: 2 }, { layer: 1, neuron: 0 }]);
    expect(choosePruned(masks, { ...rule, pruneBy: 'fraction' })).toEqual([{ layer: 1, neuron: 0 }, { layer: 0, neuron: 1 }]);
    // accuracy 0.9 unpruned; pruning costs 0.02 a neuron, except that the third in mask order (layer 0, neuron 2)
    // costs 0.2: the rule stops before it even though later prefixes are not evaluated
    const seen: number[] = [];
    const accuracy = (pruned: { layer: number; neuron: number }[]) => {
      seen.push(pruned.length);
      return 0.9 - 0.02 * pruned.length - (pruned.some((n) => n.layer === 0 && n.neuron === 2) ? 0.2 : 0);
    };
    expect(choosePruned(masks, { ...rule, pruneBy: 'accuracy' }, accuracy)).toEqual([{ layer: 1, neuron: 0 }, { layer: 0, neuron: 1 }]);
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(choosePruned(masks, { ...rule, pruneBy: 'accuracy', maxAccuracyDrop: 0.03 }, accuracy)).toEqual([{ layer: 1, neuron: 0 }]);
  });
});

describe('i-bau', () => {
  const model = () =>
    tiny(
      [2, 2, 1],
      [[0.5, -0.4, 0.3], [-0.2, 0.6, 0.1], [0.3, 0.2, -0.5], [0.1, -0.3, 0.4]], [0.0, 0.1, -0.05],
      [[0.7, -0.2], [-0.4, 0.5], [0.3, 0.6]], [0.02, 0.0],
    );
  const x = Float32Array.from([0.2, 0.7, 0.1, 0.9, 0.8, 0.3, 0.5, 0.0, 0.4, 0.4, 0.6, 0.2]);

  it('one universal-perturbation step (ascent on CE against the own predictions, L2 regularised) matches PyTorch', () => {
    const m = model();
    const step = universalStep(m, Float32Array.from([0.05, -0.1, 0.2, 0.0]), x, [3, 2, 2, 1], { lr: 10, regularization: 0.001 });
    close(step, [-0.9693036675453186, 0.6272168159484863, 0.34458911418914795, -0.5834464430809021]);
    m.dispose();
  });

  it('the implicit hypergradient (fixed point, K = 5, second derivatives by central differences) matches PyTorch autograd', () => {
    const m = model();
    const tensors = tf.memory().numTensors;
    const outer = { x, shape: [3, 2, 2, 1] as [number, number, number, number], labels: Int32Array.from([1, 0, 1]), perturbed: Float32Array.from([0, 1, 0]) };
    const inner = { x: Float32Array.from([0.6, 0.1, 0.3, 0.7, 0.2, 0.5, 0.9, 0.4, 0.7, 0.8, 0.2, 0.1]), shape: [3, 2, 2, 1] as [number, number, number, number], labels: Int32Array.from([0, 1, 1]) };
    const { grads, loss } = hypergradient(m, Float32Array.from([0.3, -0.5, 0.4, 0.2]), outer, inner, { iterations: 5, innerLr: 0.1, regularization: 0.001, fdStep: 0.01 });
    expect(loss).toBeCloseTo(0.5691806674003601, 5);
    const expected = [
      [-0.021042030304670334, -0.08982743322849274, -0.007605704478919506, 0.17875993251800537, -0.15750087797641754, -0.03190266340970993, 0.017703523859381676, -0.10767178237438202, -0.003600959200412035, 0.13143929839134216, -0.1531912237405777, -0.04002794623374939],
      [0.19670641422271729, -0.29224205017089844, -0.044386621564626694],
      [-0.03090890869498253, 0.030908916145563126, 0.07041194289922714, -0.07041193544864655, 0.05821116641163826, -0.05821116268634796],
      [0.21856269240379333, -0.21856264770030975],
    ];
    // the implicit term moves the gradient of the first kernel by up to 0.009 from the direct gradient (PyTorch's
    // -0.01164 for its first entry); the central differences recover it to 4 decimals
    m.trainableWeights.forEach((w, i) => close(grads[(w.read() as tf.Variable).name].dataSync(), expected[i], 4));
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(tensors);
    m.dispose();
  });

  it('perturbs the floor of portion x batch size samples, chosen by key and seed', () => {
    const keys = Array.from({ length: 250 }, (_, i) => `s${i}`);
    const mask = perturbedMask(keys, 0.01, 7);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(2);
    expect(Array.from(perturbedMask(keys, 0.01, 7))).toEqual(Array.from(mask));
    expect(Array.from(perturbedMask(keys, 0.01, 8))).not.toEqual(Array.from(mask));
    expect(perturbedMask(keys.slice(0, 99), 0.01, 7).every((v) => v === 0)).toBe(true);
  });

  it('the step raises the loss against the model\'s own predictions', () => {
    const m = model();
    const loss = (d: Float32Array) =>
      tf.tidy(() => {
        const images = tf.tensor4d(x, [3, 2, 2, 1]);
        const own = tf.oneHot((m.predict(images) as tf.Tensor).argMax(-1) as tf.Tensor1D, 2).toFloat();
        return tf.losses.softmaxCrossEntropy(own, m.predict(images.add(tf.tensor3d(d, [2, 2, 1]))) as tf.Tensor).dataSync()[0];
      });
    const zero = new Float32Array(4);
    expect(loss(universalStep(m, zero, x, [3, 2, 2, 1], { lr: 1, regularization: 0.001 }))).toBeGreaterThan(loss(zero));
    m.dispose();
  });
});
