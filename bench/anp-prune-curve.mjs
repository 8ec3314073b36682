/**
 * ANP's mask order against pruning: learns the masks of an infected model on the clean extra set (anpMaskStep, the
 * default eps/steps/alpha/lr, seeded batches of 128) and after each of ITERS batches prints, for the k neurons
 * with the lowest masks pruned (k = 0..40), the clean-set accuracy and the test set's ACC and ASR (its first 3000
 * samples). Test data is read only here, to judge the pruning rules, never by the defense.
 *   node bench/anp-prune-curve.mjs DIST ATTACK MODEL_DIR CLEAN_SPEC TEST_SPEC 50,100,200 OUT.txt
 */
import * as tf from '@tensorflow/tfjs';
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
const [dist, attack, modelDir, cleanSpec, testSpec, itersCsv, outFile] = process.argv.slice(2);
const D = resolve(dist);
const { initBackend } = await import(D + '/src/backend/select.js');
const { loadModel } = await import(D + '/src/models/io.js');
const anpMod = await import(D + '/src/defenses/anp.js');
const { shardCorpus } = await import(D + '/src/pipeline/corpus.js');
const { BadSampleLog } = await import(D + '/src/sources/bad-samples.js');
const { loadEvalSet, evaluate } = await import(D + '/src/eval/evaluate.js');
const { triggerFor } = await import(D + '/src/attacks/registry.js');
const { parseAttackOptions } = await import(D + '/src/attacks/options.js');
const { createRng } = await import(D + '/src/pipeline/random.js');
await initBackend('wasm', () => {});
const badSamples = new BadSampleLog({ policy: 'skip', maxBadSamples: 1000, log: () => {} });
const load = async (spec, limit) => loadEvalSet(shardCorpus(spec, { badSamples, requireLabels: true }).samples().output, limit);
const clean = await load(cleanSpec);
const test = await load(testSpec, 3000);
const trigger = { trigger: triggerFor(attack, parseAttackOptions([]))({ height: 28, width: 28, channels: 1 }), target: 0, mode: 'all2one' };
const model = await loadModel(modelDir);
const layers = anpMod.neuronLayers(model);
const state = { masks: layers.map((l) => new Float32Array(l.size).fill(1)), momentum: null, iteration: 0 };
const config = { eps: 0.4, steps: 1, alpha: 0.2, maskLr: 0.2, maskMomentum: 0.9 };
const originals = layers.map((l) => l.scale.read().clone());
const log = (s) => { console.log(s); appendFileSync(outFile, s + '\n'); };
log(`# ${attack} infected: ${JSON.stringify(evaluate(model, test, trigger))} clean-set acc ${evaluate(model, clean).acc}`);
const iters = itersCsv.split(',').map(Number);
const rng = createRng(7);
const n = clean.samples.length;
let order = [];
const c0 = process.cpuUsage(); const t0 = Date.now();
for (let it = 1; it <= iters[iters.length - 1]; it++) {
  if (order.length < 128) { const p = Array.from({ length: n }, (_, i) => i); for (let i = n - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [p[i], p[j]] = [p[j], p[i]]; } order = p; }
  const idx = order.splice(0, 128);
  const xb = new Float32Array(128 * 784); idx.forEach((k, i) => xb.set(clean.samples[k].pixels, i * 784));
  const x = tf.tensor4d(xb, [128, 28, 28, 1]);
  const labels = Int32Array.from(idx, (k) => clean.samples[k].label);
  const u = () => layers.map((l) => Float32Array.from({ length: l.size }, () => (2 * rng() - 1) * config.eps));
  anpMod.anpMaskStep(model, layers, state, x, labels, config, { delta: u(), xi: u() });
  x.dispose();
  if (iters.includes(it)) {
    const c = process.cpuUsage(c0);
    const all = state.masks.flatMap((m, l) => Array.from(m, (v, k) => ({ l, k, v }))).sort((a, b) => a.v - b.v);
    log(`## iters ${it} cpu ${((c.user + c.system) / 1e6).toFixed(0)} s wall ${((Date.now() - t0) / 1000).toFixed(0)} s; masks<=0.2: ${all.filter((a) => a.v <= 0.2).length}; lowest 40: ${all.slice(0, 40).map((a) => `${a.l}:${a.k}=${a.v.toFixed(2)}`).join(' ')}`);
    for (const kp of [0, 2, 4, 6, 8, 10, 12, 15, 20, 25, 30, 40]) {
      layers.forEach((l, i) => { const keep = new Float32Array(l.size).fill(1); all.slice(0, kp).forEach((a) => { if (a.l === i) keep[a.k] = 0; }); tf.tidy(() => l.scale.write(originals[i].mul(tf.tensor1d(keep)))); });
      const r = evaluate(model, test, trigger);
      log(`prune ${kp}: clean-set acc ${(evaluate(model, clean).acc * 100).toFixed(1)} test acc ${(r.acc * 100).toFixed(1)} asr ${(r.asr * 100).toFixed(1)}`);
      layers.forEach((l, i) => l.scale.write(originals[i]));
    }
  }
}
