import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { schemaParts } from '../config/schema.js';
import { penultimateModel } from '../models/layers.js';
import { writeSampleScores } from '../report/run-dir.js';
import type { Sample } from '../sources/types.js';
import { pack } from '../stages/batch.js';
import { createRng } from '../pipeline/random.js';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, labelledSamples, loadDefenseConfig, runPhases, type Defense, type DefenseContext } from './defense.js';

/**
 * Spectral Signatures (Tran, Li, Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS 2018) as a
 * detect-then-fine-tune baseline. Setting: none (the given data and its labels).
 *
 * 1. Penultimate features (the input of the last Dense layer) of every sample under the infected model.
 * 2. Per label class: centre the features, take the top right singular vector v of the centred matrix (power
 *    iteration on its covariance), score each sample by (x - mean)·v squared.
 * 3. Remove the top `removeRatio` of each class by score; fine-tune the infected model on the rest.
 *
 * Options (config/defenses/spectral.json): removeRatio 0.15 (BackdoorBench's percentile 85; the paper removes
 * 1.5 × the expected poison rate per class), fine-tuning 5 epochs at lr 0.01. The paper and BackdoorBench retrain
 * from scratch on the kept data; this baseline fine-tunes the given model, as the other repair defenses do.
 *
 * Contract: the model is fine-tuned in place; suspicion = score / the class's removal threshold (flagged ≥ 1 and
 * removed); a resumed run ends with the same weights.
 */
const schema = fineTuneSchema.extend({ removeRatio: schemaParts.fraction });
type Config = z.infer<typeof schema>;

interface SpectralState {
  phase: number;
  rows: never[];
  keys: string[];
  urls: string[];
  suspicion: Float32Array;
  removed: string[];
}

export const spectral: Defense<Config> = {
  name: 'spectral',
  title: 'Spectral Signatures (Tran et al., NeurIPS 2018): remove outliers per class, then fine-tune',
  data: 'none',
  loadConfig: (sources) => loadDefenseConfig('spectral', schema, sources),
  async run(model, ctx, config) {
    const resumed = ctx.checkpoint?.resume?.state.algorithm as SpectralState | undefined;
    const state = resumed ?? detect(model, await labelledSamples(ctx.data, 'spectral'), config, ctx.log);
    const removed = new Set(state.removed);
    const kept = new Set(state.keys.filter((k) => !removed.has(k)));
    const { rows, pipeline } = await runPhases(ctx, state, [(run) => fineTune(model, { ...spec(ctx, config), keys: kept, keysName: 'kept' }, run)]);
    const scores = { keys: state.keys, urls: state.urls, suspicion: state.suspicion, flagged: removed };
    return { rows, pipeline, info: { removed: removed.size }, scores, writeFiles: (dir) => writeSampleScores(dir, scores) };
  },
  describe: (model, ctx, config) => `spectral(remove ${config.removeRatio} per class) then ${describeFineTune(model, { ...spec(ctx, config), keys: new Set(), keysName: 'kept' })}`,
};

function spec(ctx: DefenseContext, config: Config) {
  return { corpus: ctx.data, labels: givenLabels('spectral needs the given data\'s labels'), config, shuffleBuffer: ctx.shuffleBuffer };
}

function detect(model: tf.LayersModel, samples: Sample[], config: Config, log: DefenseContext['log']): SpectralState {
  const features = penultimateModel(model, 'spectral');
  const dim = features.outputs[0].shape[1] as number;
  const all = new Float32Array(samples.length * dim);
  for (let start = 0; start < samples.length; start += 256) {
    const b = pack(samples.slice(start, start + 256).map((s) => ({ ...s, label: s.label! })));
    all.set(tf.tidy(() => (features.predict(tf.tensor4d(b.x, b.shape)) as tf.Tensor).dataSync() as Float32Array), start * dim);
  }
  const byClass = new Map<number, number[]>();
  samples.forEach((s, i) => byClass.set(s.label!, [...(byClass.get(s.label!) ?? []), i]));
  const suspicion = new Float32Array(samples.length);
  const removed: string[] = [];
  for (const [label, members] of [...byClass].sort((a, b) => a[0] - b[0])) {
    const scores = classScores(all, dim, members, config.seed + label);
    const order = members.map((_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
    const count = Math.round(members.length * config.removeRatio);
    const threshold = count > 0 ? scores[order[count - 1]] : Infinity;
    members.forEach((i, j) => (suspicion[i] = threshold > 0 ? scores[j] / threshold : 0));
    for (const j of order.slice(0, count)) removed.push(samples[members[j]].key);
  }
  log(`spectral: removing ${removed.length} of ${samples.length} samples (top ${config.removeRatio} of each of ${byClass.size} classes)`);
  return { phase: 0, rows: [], keys: samples.map((s) => s.key), urls: samples.map((s) => s.url), suspicion, removed };
}

/** ((x - mean)·v)² for the class's members, v the top eigenvector of their features' covariance. */
function classScores(all: Float32Array, dim: number, members: number[], seed: number): Float64Array {
  const mean = new Float64Array(dim);
  for (const i of members) for (let d = 0; d < dim; d++) mean[d] += all[i * dim + d] / members.length;
  const cov = new Float64Array(dim * dim);
  const x = new Float64Array(dim);
  for (const i of members) {
    for (let d = 0; d < dim; d++) x[d] = all[i * dim + d] - mean[d];
    for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) cov[a * dim + b] += x[a] * x[b];
  }
  const rng = createRng(seed);
  let v = Float64Array.from({ length: dim }, () => rng() - 0.5);
  for (let iter = 0; iter < 100; iter++) {
    const next = new Float64Array(dim);
    for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) next[a] += cov[a * dim + b] * v[b];
    const norm = Math.hypot(...next) || 1;
    v = next.map((n) => n / norm);
  }
  return Float64Array.from(members, (i) => {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += (all[i * dim + d] - mean[d]) * v[d];
    return dot * dot;
  });
}
