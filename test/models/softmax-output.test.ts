import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { PbeError } from '../../src/errors.js';
import { loadModel, saveModel } from '../../src/models/io.js';

let dir: string;
let n = 0;

beforeAll(async () => {
  await initBackend('wasm', () => {});
  dir = await mkdtemp(join(tmpdir(), 'pbe-softmax-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function saved(m: tf.LayersModel): Promise<string> {
  const at = join(dir, `m${n++}`);
  await saveModel(m, at);
  return at;
}

const x = () => tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 3);
const outputOf = (m: tf.LayersModel) => tf.tidy(() => (m.predict(x()) as tf.Tensor).arraySync() as number[][]);
const softmaxRows = (rows: number[][]) => tf.tidy(() => tf.softmax(tf.tensor2d(rows)).arraySync() as number[][]);
const expectClose = (a: number[][], b: number[][]) => a.forEach((r, i) => r.forEach((v, j) => expect(v).toBeCloseTo(b[i][j], 5)));

function functional(head: (y: tf.SymbolicTensor) => tf.SymbolicTensor): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const features = tf.layers.flatten().apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }).apply(input)) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: head(features) });
}

describe('a model whose output ends in softmax (most Keras classifiers)', () => {
  const cases: [string, () => tf.LayersModel][] = [
    ['Dense(activation: softmax), Sequential', () => tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5, activation: 'softmax', name: 'probs' }),
    ] })],
    ['a Softmax layer, functional', () => functional((y) => tf.layers.softmax({ name: 'probs' }).apply(tf.layers.dense({ units: 5 }).apply(y)) as tf.SymbolicTensor)],
    ['Activation(softmax), functional', () => functional((y) => tf.layers.activation({ activation: 'softmax', name: 'probs' }).apply(tf.layers.dense({ units: 5 }).apply(y)) as tf.SymbolicTensor)],
  ];

  for (const [what, build] of cases) {
    it(`${what}: loads as logits with a log line, same predictions, and is saved with its softmax back`, async () => {
      const original = build();
      const probabilities = outputOf(original);
      const logs: string[] = [];
      const loaded = await loadModel(await saved(original), { log: (m) => logs.push(m) });
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(/the output layer "probs" \((Dense|Softmax|Activation)\) ends in softmax; pbe trains and scores on the logits before it/);
      const logits = outputOf(loaded);
      expect(logits.some((r) => Math.abs(r.reduce((a, b) => a + b, 0) - 1) > 1e-3 || r.some((v) => v < 0))).toBe(true);
      expectClose(softmaxRows(logits), probabilities); // logits of the same probabilities

      const back = await saved(loaded);
      const json = JSON.parse(await readFile(join(back, 'model.json'), 'utf8'));
      expect(JSON.stringify(json.modelTopology)).toMatch(/"activation":"softmax"|"class_name":"Softmax"/);
      const reloaded = await tf.loadLayersModel(tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: new Uint8Array(await readFile(join(back, 'weights.bin'))).buffer,
      }));
      expectClose(outputOf(reloaded), probabilities);
      [original, loaded, reloaded].forEach((m) => m.dispose());
    });
  }

  it('a logits model loads unchanged, without a log line', async () => {
    const original = functional((y) => tf.layers.dense({ units: 5 }).apply(y) as tf.SymbolicTensor);
    const logs: string[] = [];
    const loaded = await loadModel(await saved(original), { log: (m) => logs.push(m) });
    expect(logs).toEqual([]);
    expectClose(outputOf(loaded), outputOf(original));
    [original, loaded].forEach((m) => m.dispose());
  });

  it('a model whose outputs are probabilities for another reason is refused at load, saying why', async () => {
    // softmax over a conv's channels, then averaged: every output row still sums to 1, and no output layer holds the softmax
    const input = tf.input({ shape: [8, 8, 3] });
    const y = tf.layers.globalAveragePooling2d({}).apply(tf.layers.conv2d({ filters: 5, kernelSize: 3, activation: 'softmax' }).apply(input)) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: y });
    const at = await saved(m);
    await expect(loadModel(at)).rejects.toThrow(PbeError);
    await expect(loadModel(at)).rejects.toThrow(/outputs probabilities \(each output row is non-negative and sums to 1\), but pbe needs logits/);
    m.dispose();
  });
});
