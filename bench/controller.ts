/**
 * Schedule vs adaptive controller on the demo's data (run `npm run demo` first): the same infected model,
 * poisoned shards, seed and preset, purified once per controller mode. Prints ACC/ASR on the test set, the
 * adversarial batches spent and the wall time of each. Run with `npm run bench:controller`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { triggerFor } from '../src/attacks/registry.js';
import { initBackend } from '../src/backend/select.js';
import { loadPurifyConfig } from '../src/config/load.js';
import { purifyPbe } from '../src/defenses/pbe.js';
import { evaluate, loadEvalSet } from '../src/eval/evaluate.js';
import { loadModel } from '../src/models/io.js';
import { shardCorpus } from '../src/pipeline/corpus.js';
import { BadSampleLog } from '../src/sources/bad-samples.js';

const work = process.argv[2] ?? 'runs/demo/blend-20000';
const testShards = process.argv[3] ?? 'runs/demo/fashion-mnist-20000/test-*.tar';
if (!existsSync(join(work, 'infected/model.json'))) {
  console.log(`skipped: ${work}/infected not found; run \`npm run demo\` first (or pass a demo work directory and test shards)`);
  process.exit(0);
}
await initBackend('wasm', () => {});
const badSamples = new BadSampleLog({ policy: 'fail' });
const corpus = shardCorpus(join(work, 'poisoned/train-*.tar'), { expected: { height: 28, width: 28, channels: 1 }, badSamples });
const test = await loadEvalSet(shardCorpus(testShards, { badSamples }).samples().output);
const attack = { trigger: triggerFor('blend', { blendRatio: 0.1, patternSeed: 0 })({ height: 28, width: 28, channels: 1 }), target: 0 };

for (const mode of ['schedule', 'adaptive'] as const) {
  const model = await loadModel(join(work, 'infected'));
  const config = await loadPurifyConfig({ preset: 'fashion-mnist', overrides: { controller: { mode } } });
  const started = performance.now();
  const result = await purifyPbe(model, corpus, { config, log: () => {}, compute: { workers: 2, backend: 'wasm', weightsRefresh: 'steps' } });
  const seconds = (performance.now() - started) / 1000;
  const r = evaluate(model, test, attack);
  const adversarial = result.rows.reduce((n, row) => n + row.adversarialBatches, 0);
  const round0 = result.rows.filter((row) => row.round === 0).map((row) => row.adversarialShare.toFixed(2)).join(' ');
  console.log(`${mode.padEnd(9)} ACC ${(r.acc * 100).toFixed(2)}%  ASR ${(r.asr! * 100).toFixed(2)}%  adversarial batches ${adversarial}  ${seconds.toFixed(0)} s  round-0 shares: ${round0}`);
}
