// Per-class clean accuracy and per-class ASR (triggered test images of each class predicted as the target) of
// models, to see where an attack costs ACC (bench/results/sig-cost.md).
// npm run build && node bench/per-class.mjs 'TEST-GLOB' ATTACK TARGET MODEL... [-- key=value ...attack options]
import { parseAttackOptions } from '../dist/src/attacks/options.js';
import { triggerFor } from '../dist/src/attacks/registry.js';
import { initBackend } from '../dist/src/backend/select.js';
import { loadEvalSet, predictClasses } from '../dist/src/eval/evaluate.js';
import { loadModel } from '../dist/src/models/io.js';
import { shardCorpus } from '../dist/src/pipeline/corpus.js';
import { BadSampleLog } from '../dist/src/sources/bad-samples.js';

const args = process.argv.slice(2);
const split = args.includes('--') ? args.indexOf('--') : args.length;
const [data, attack, target, ...models] = args.slice(0, split);
await initBackend('auto', () => {});
const corpus = shardCorpus([data], { format: 'auto', allowPipe: false, imageSize: 'reject', workers: 1, badSamples: new BadSampleLog(), expected: { height: 28, width: 28, channels: 1 } });
const { samples } = await loadEvalSet(corpus.samples().output);
const trigger = triggerFor(attack, parseAttackOptions(args.slice(split + 1)))({ height: 28, width: 28, channels: 1 });
const images = samples.map((s) => s.pixels);
const triggered = images.map((x) => trigger.apply(x));
const classes = [...new Set(samples.map((s) => s.label))].sort((a, b) => a - b);
console.log(['model', 'acc', ...classes.map((c) => `acc${c}`), ...classes.map((c) => `asr${c}`)].join(','));
for (const location of models) {
  const model = await loadModel(location);
  const clean = predictClasses(model, images, [28, 28, 1]);
  const bad = predictClasses(model, triggered, [28, 28, 1]);
  const share = (c, hit) => {
    const of = samples.flatMap((s, i) => (s.label === c ? [i] : []));
    return ((100 * of.filter(hit).length) / of.length).toFixed(1);
  };
  const acc = ((100 * samples.filter((s, i) => clean[i] === s.label).length) / samples.length).toFixed(1);
  console.log([location, acc, ...classes.map((c) => share(c, (i) => clean[i] === c)), ...classes.map((c) => share(c, (i) => bad[i] === Number(target)))].join(','));
  model.dispose();
}
