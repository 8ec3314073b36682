import * as tf from '@tensorflow/tfjs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { PbeError } from '../../src/errors.js';
import { loadModel, saveModel } from '../../src/models/io.js';
import { checkTrainable } from '../../src/models/layer-check.js';

let dir: string;

beforeAll(async () => {
  await initBackend('wasm', () => {});
  dir = await mkdtemp(join(tmpdir(), 'pbe-layer-check-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function model(...layers: tf.layers.Layer[]): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let y = input as tf.SymbolicTensor;
  for (const layer of layers) y = layer.apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y });
}

const check = (m: tf.LayersModel) => () => checkTrainable(m, 'm/model.json');

describe('checkTrainable', () => {
  it('accepts a model of supported layers', () => {
    expect(check(model(tf.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2 }), tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 3 })))).not.toThrow();
  });

  it('rejects a layer TF.js cannot differentiate, naming the layer, its class and the supported ones', () => {
    const m = model(tf.layers.conv2d({ filters: 2, kernelSize: 3 }), tf.layers.thresholdedReLU({ theta: 0.2, name: 'gate' }));
    expect(check(m)).toThrow(PbeError);
    expect(check(m)).toThrow(/^m\/model.json: layer "gate" \(ThresholdedReLU\) is not a layer pbe can train; supported layer classes: InputLayer, Conv2D/);
  });

  it('looks inside nested models', () => {
    const inner = tf.sequential({ name: 'block', layers: [tf.layers.centerCrop({ height: 4, width: 4, inputShape: [8, 8, 3], name: 'crop' })] });
    const input = tf.input({ shape: [8, 8, 3] });
    const outer = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(inner.apply(input)) as tf.SymbolicTensor });
    expect(check(outer)).toThrow(/layer "crop" \(CenterCrop\)/);
  });

  it('rejects a dilated DepthwiseConv2D, whose dilation TF.js ignores', () => {
    const m = model(tf.layers.depthwiseConv2d({ kernelSize: 3, dilationRate: 2, name: 'dw' }));
    expect(check(m)).toThrow(/layer "dw" \(DepthwiseConv2D\) has dilation_rate \[2,2\], which TensorFlow.js's DepthwiseConv2D ignores/);
  });

  it('rejects a channels_first layer', () => {
    const input = tf.input({ shape: [3, 8, 8] });
    const m = tf.model({ inputs: input, outputs: tf.layers.conv2d({ filters: 2, kernelSize: 3, dataFormat: 'channelsFirst', name: 'cf' }).apply(input) as tf.SymbolicTensor });
    expect(check(m)).toThrow(/layer "cf" \(Conv2D\) uses data_format channels_first/);
  });

  it('loadModel fails at load for a saved model with such a layer, with a model error', async () => {
    const m = model(tf.layers.conv2d({ filters: 2, kernelSize: 3 }), tf.layers.thresholdedReLU({ name: 'gate' }));
    const where = join(dir, 'thresholded');
    await saveModel(m, where);
    const err = await loadModel(where).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PbeError);
    expect((err as PbeError).code).toBe('model');
    expect((err as Error).message).toMatch(/model\.json: layer "gate" \(ThresholdedReLU\)/);
  });

  it('loadModel refuses a graph model, saying how to convert', async () => {
    const where = join(dir, 'graph');
    await mkdir(where, { recursive: true });
    await writeFile(join(where, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }));
    await expect(loadModel(where)).rejects.toThrow(/is a TensorFlow.js graph model, which cannot be trained; convert the Keras model to a LayersModel/);
  });

  it('loadModel gives a dilated Conv2D a form that trains', async () => {
    const m = model(tf.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 2 }));
    const where = join(dir, 'dilated');
    await saveModel(m, where);
    const loaded = await loadModel(where);
    const x = tf.randomNormal([2, 8, 8, 3]);
    const grads = tf.variableGrads(() => (loaded.apply(x) as tf.Tensor).square().sum() as tf.Scalar,
      loaded.trainableWeights.map((w) => w.read() as tf.Variable));
    expect(Object.keys(grads.grads)).toHaveLength(4);
    tf.dispose([x, grads.value, ...Object.values(grads.grads)]);
  });
});
