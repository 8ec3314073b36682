/**
 * CPU time of one ANP mask step (src/defenses/anp.ts: noise step, robust and natural gradients) on cnn-small,
 * batch 128, 28x28x1, wasm: the median over 7 steps after 2 warm-ups, in CPU milliseconds (process.cpuUsage), so
 * a shared machine's load changes it less than wall time. Compare builds by alternating them in one session:
 *   for i in 1 2; do for d in OLD/dist NEW/dist; do node bench/anp-mask-step.mjs $d; done; done
 */
import * as tf from '@tensorflow/tfjs';
import { resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
const { initBackend } = await import(`${dist}/src/backend/select.js`);
const { buildModel } = await import(`${dist}/src/models/zoo.js`);
const { anpMaskStep, neuronLayers } = await import(`${dist}/src/defenses/anp.js`);
await initBackend('wasm', () => {});
const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
const layers = neuronLayers(model);
const x = tf.randomUniform([128, 28, 28, 1], 0, 1, 'float32', 1);
const labels = Int32Array.from({ length: 128 }, (_, i) => i % 10);
const state = { masks: layers.map((l) => new Float32Array(l.size).fill(1)), momentum: null, iteration: 0 };
const config = { eps: 0.4, steps: 1, alpha: 0.2, maskLr: 0.2, maskMomentum: 0.9 };
const noise = () => ({ delta: layers.map((l) => new Float32Array(l.size).fill(0.1)), xi: layers.map((l) => new Float32Array(l.size).fill(-0.1)) });
const cpu = [];
for (let i = 0; i < 9; i++) {
  const start = process.cpuUsage();
  anpMaskStep(model, layers, state, x, labels, config, noise());
  const used = process.cpuUsage(start);
  if (i >= 2) cpu.push((used.user + used.system) / 1000);
}
cpu.sort((a, b) => a - b);
console.log(`${dist}: anp mask step, median ${cpu[3].toFixed(0)} CPU ms (${cpu.map((v) => v.toFixed(0)).join(' ')})`);
