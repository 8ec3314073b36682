// Peak tensor memory (tf.profile peakBytes, wasm) per image of the steps a purify worker runs: inference, PGD (3 steps), training gradients;
// and, to compare them with, the sum of the model's layer outputs per image.
// Usage (after `npm run build`): node bench/peak-bytes.mjs [MODEL [SIZE [WIDTH [BATCH]]]], e.g. node bench/peak-bytes.mjs mobilenet-v2 224 0.35 4
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../dist/src/backend/index.js';
import { buildModel } from '../dist/src/models/zoo.js';
import { pgdExamples } from '../dist/src/stages/pgd.js';
const [name = 'mobilenet-v2', size = '224', width = '0.35', batch = '16'] = process.argv.slice(2);
await initBackend('wasm', () => {});
const shape = [Number(size), Number(size), 3];
const b = Number(batch);
const model = buildModel(name, { inputShape: shape, numClasses: 10, width: Number(width), seed: 1 });
const x = tf.randomUniform([b, ...shape]);
const labels = tf.randomUniform([b], 0, 10, 'int32');
const mib = (v) => (v / 2 ** 20).toFixed(0);
const outputs = model.layers.reduce((n, l) => (Array.isArray(l.outputShape[0]) ? n : n + 4 * l.outputShape.slice(1).reduce((a, d) => a * d, 1)), 0);
console.log(`${name} ${size} w${width}: the layers' outputs take ${(outputs / 2 ** 20).toFixed(1)} MiB per image`);
const steps = {
  predict: () => tf.tidy(() => void model.predict(x).dataSync()),
  pgd3: () => tf.tidy(() => void pgdExamples(model, x, labels, { eps: 0.05, alpha: 0.01, steps: 3, randomStart: false }).dataSync()),
  gradients: () => tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), model.apply(x, { training: true })));
    Object.values(grads)[0].dataSync();
  }),
};
for (const [k, f] of Object.entries(steps)) {
  const p = await tf.profile(f);
  console.log(`${name} ${size} w${width} batch ${b} ${k}: peak tensor memory ${mib(p.peakBytes)} MiB (${mib(p.peakBytes / b)} MiB per image); rss ${mib(process.memoryUsage().rss)} MiB`);
}
