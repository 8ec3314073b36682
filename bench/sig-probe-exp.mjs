// Measures universal additive inversion per class on a model and data (experiment for bench/results/sig-probe.md).
// node bench/sig-probe-exp.mjs MODEL 'DATA-GLOB' steps lr lambda [samples]
import { initBackend } from '../dist/src/backend/select.js';
import { loadModel } from '../dist/src/models/io.js';
import { shardCorpus } from '../dist/src/pipeline/corpus.js';
import { BadSampleLog } from '../dist/src/sources/bad-samples.js';
import { pack } from '../dist/src/stages/batch.js';
import { classesOf } from '../dist/src/adversarial/trigger-inversion.js';
import { invertPerturbation } from '../dist/src/adversarial/universal-inversion.js';
import { anomalyIndices } from '../dist/src/adversarial/trigger-inversion.js';
const [model, data, steps = '100', lr = '0.01', lambda = '0.1', n = '512', bs = '32', linf] = process.argv.slice(2);
await initBackend('auto', () => {});
const m = await loadModel(model);
const corpus = shardCorpus([data], { format: 'auto', allowPipe: false, imageSize: 'reject', workers: 1, badSamples: new BadSampleLog(1000), expected: { height: 28, width: 28, channels: 1 } });
const kept = [];
for await (const s of corpus.samples().output) { kept.push(s); if (kept.length >= +n) break; }
const b = pack(kept.map((s) => ({ ...s, label: 0 })));
const predicted = classesOf(m, b.x, b.shape);
const t0 = performance.now();
const res = [];
for (let t = 0; t < 10; t++) res.push(invertPerturbation(m, b.x, b.shape, t, { steps: +steps, batchSize: +bs, lr: +lr, lambda: +lambda, seed: 1, linf: linf === undefined ? undefined : +linf }, predicted));
import { predictClasses } from '../dist/src/eval/evaluate.js';
import { addPerturbation } from '../dist/src/adversarial/universal-inversion.js';
const per = 784;
for (const r of res) {
  const adv = [...predicted.keys()].map((i) => addPerturbation(r.delta, b.x.subarray(i * per, (i + 1) * per)));
  const out = predictClasses(m, adv, [28, 28, 1]);
  const hit = new Array(10).fill(0), tot = new Array(10).fill(0);
  predicted.forEach((c, i) => { tot[c]++; if (out[i] === r.target) hit[c]++; });
  r.perSource = hit.map((h, c) => (c === r.target ? '-' : tot[c] ? Math.round(100 * h / tot[c]) : 'na')).join(',');
  r.minSource = Math.min(...hit.map((h, c) => (c === r.target || !tot[c] ? 1 : h / tot[c])));
}
console.log(res.map((r) => `${r.target}: norm ${r.norm.toFixed(2)} min ${(r.minSource*100).toFixed(0)} per-source ${r.perSource}`).join('\n'));
{
  const N = predicted.length;
  const mu = new Float64Array(per);
  for (let i = 0; i < N; i++) for (let j = 0; j < per; j++) mu[j] += b.x[i * per + j] / N;
  const lines = [];
  for (const r of res) {
    const nrm = Math.sqrt(r.delta.reduce((a, v) => a + v * v, 0)) || 1;
    const proj = [];
    for (let i = 0; i < N; i++) { let s = 0; for (let j = 0; j < per; j++) s += (b.x[i * per + j] - mu[j]) * r.delta[j] / nrm; proj.push(s); }
    const inT = proj.filter((_, i) => predicted[i] === r.target), out = proj.filter((_, i) => predicted[i] !== r.target);
    const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length, sd = (a) => Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2)));
    const d = (mean(inT) - mean(out)) / Math.sqrt((sd(inT) ** 2 + sd(out) ** 2) / 2);
    const mt = new Float64Array(per); inT.length && [...predicted.keys()].filter((i) => predicted[i] === r.target).forEach((i) => { for (let j = 0; j < per; j++) mt[j] += (b.x[i * per + j] - mu[j]) / inT.length; });
    let dot = 0, nm = 0; for (let j = 0; j < per; j++) { dot += mt[j] * r.delta[j]; nm += mt[j] ** 2; }
    // share of δ's energy in its column profile (rows averaged)
    let colE = 0; for (let c = 0; c < 28; c++) { let a = 0; for (let rr = 0; rr < 28; rr++) a += r.delta[rr * 28 + c] / 28; colE += 28 * a * a; }
    lines.push(`${r.target}: n=${inT.length} effect ${d.toFixed(2)} shift ${(mean(inT) - mean(out)).toFixed(2)} sdIn ${sd(inT).toFixed(2)} cos(δ,μt−μ) ${(dot / nrm / Math.sqrt(nm)).toFixed(2)} colEnergy ${(colE / nrm ** 2).toFixed(2)}`);
  }
  console.log(lines.join('\n'));
}
const an = anomalyIndices(res.map((r) => r.norm));
const sorted = [...res].sort((a, b) => a.norm - b.norm);
console.log(JSON.stringify({ model, steps, lr, lambda, seconds: ((performance.now() - t0) / 1000).toFixed(1), gap: (sorted[1].norm / sorted[0].norm).toFixed(2), smallest: sorted[0].target,
  classes: res.map((r, i) => `${r.target}:${r.norm.toFixed(2)}/${(r.success * 100).toFixed(0)}%/a${an[i].toFixed(2)}`).join(' ') }));
