import type { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stamp } from '../adversarial/trigger-inversion.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { encodePng } from '../sources/image.js';
import { loadPurifyConfig } from '../config/load.js';
import { inspectModel, minFlipsForSignal, type InspectResult } from '../eval/inspect.js';
import type { Sample } from '../sources/types.js';
import { inputError, usageError } from '../errors.js';
import { loadModel, modelInputShape } from '../models/io.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { writeInspectReport } from '../report/html/inspect-report.js';
import { addCommonOptions, intArg, listingBadSamples, numberArg, setup, type CommonOptions } from './common.js';

interface InspectCliOptions extends CommonOptions {
  model: string;
  data: string[];
  samples: number;
  threshold: number;
  json?: boolean;
  out?: string;
  inversion: boolean;
  report?: string;
  badSamples?: string;
}

export function registerInspectCommand(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('is this model backdoored, and towards which class? (adversarial target concentration, no labels needed)')
    .requiredOption('--model <dir>', 'TensorFlow.js model directory or model.json')
    .requiredOption('--data <specs...>', 'images to probe with (labels not needed)')
    .option('--samples <n>', 'images probed', intArg('--samples', 1), 512)
    .option('--threshold <q>', 'concentration from which a backdoor is suspected (a clean Fashion-MNIST cnn-small: 0.37, Blend-infected: 0.71)', numberArg('--threshold', { positive: true }), 0.5)
    .option('--json', 'print one JSON object')
    .option('--no-inversion', 'skip masked trigger inversion and the universal additive probe (the probes that find patch and whole-image triggers; ~1 s per class and 100 images on 2 cores each)')
    .option('--out <dir>', 'write inspect.json and, when a trigger is recovered, its mask, pattern and an example stamped image as PNGs')
    .option('--report <file>', 'also write the verdict as an HTML page (where PGD flips land, the per-class inverted mask sizes, the recovered trigger)')
    .option('--bad-samples <csv>', 'list the skipped samples (url,key,reason) in this file (default with --out: OUT/bad-samples.csv)');
  addCommonOptions(cmd).action(async (o: InspectCliOptions) => {
    const { result, written } = await inspectCommand(o);
    if (o.report) {
      const images = written.filter((f) => f.endsWith('.png')).map((path) => ({ path, caption: path.replace(/^.*trigger-/, 'recovered trigger: ').replace(/\.png$/, '') }));
      await writeInspectReport(o.report, result, { model: o.model, data: o.data, images });
    }
    process.stdout.write(o.json ? JSON.stringify(inspectJson(result)) + '\n' : formatInspect(result, written));
  });
}

export async function inspectCommand(o: InspectCliOptions): Promise<{ result: InspectResult; written: string[] }> {
  if (!(o.threshold <= 1)) throw usageError(`--threshold expects a share in (0, 1], got ${o.threshold}`);
  const { log, badSamples, data } = await setup(o);
  const model = await loadModel(o.model, { log: (m) => log(m) });
  const [height, width, channels] = modelInputShape(model, o.model);
  const corpus = shardCorpus(o.data, { ...data, expected: { height, width, channels }, badSamples });
  const config = await loadPurifyConfig({});
  const badCsv = o.badSamples ?? (o.out ? join(o.out, 'bad-samples.csv') : undefined);
  const samples = await listingBadSamples(badSamples, badCsv, async () => {
    const kept: Sample[] = [];
    for await (const s of corpus.samples().output) {
      kept.push(s);
      if (kept.length >= o.samples) break;
    }
    if (kept.length === 0) throw inputError({ url: 'inspect data' }, 'no usable samples (every one was skipped as bad)');
    return kept;
  });
  if (badSamples.count > 0) log(`inspect skipped ${badSamples.summary()}${badCsv ? `, listed in ${badCsv}` : ' (--bad-samples FILE lists them)'}`);
  const inversion = { ...config.inversion, enabled: o.inversion !== false && config.inversion.enabled, seed: config.seed };
  const universal = { ...config.universal, enabled: o.inversion !== false && config.universal.enabled, seed: config.seed };
  const result = inspectModel(model, samples, { ...config.probe, ...config.pgd, threshold: o.threshold, inversion, universal });
  const written = o.out ? await writeInspectFiles(o.out, result, samples[0], [height, width, channels]) : [];
  return { result, written };
}

/** The result without the trigger's pixels (they go to PNG files). */
function inspectJson(r: InspectResult) {
  const trigger = r.inversion?.trigger;
  const delta = r.universal?.perturbation;
  return {
    ...r,
    inversion: r.inversion && { ...r.inversion, trigger: trigger ? { target: trigger.target, maskL1: trigger.maskL1, success: trigger.success } : null, tied: r.inversion.tied.map(({ target, maskL1, success }) => ({ target, maskL1, success })) },
    universal: r.universal && { ...r.universal, perturbation: delta ? { target: delta.target, norm: delta.norm, success: delta.success } : null },
  };
}

async function writeInspectFiles(dir: string, r: InspectResult, example: Sample, [height, width, channels]: [number, number, number]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, bytes: Uint8Array | string) => {
    await writeFileAtomic(join(dir, name), bytes);
    files.push(join(dir, name));
  };
  const trigger = r.inversion?.trigger;
  if (trigger) {
    await write('trigger-mask.png', encodePng(trigger.mask, height, width, 1));
    await write('trigger-pattern.png', encodePng(trigger.pattern, height, width, channels));
    await write('trigger-masked-pattern.png', encodePng(trigger.pattern.map((v, i) => v * trigger.mask[Math.floor(i / channels)]), height, width, channels));
    await write('trigger-example.png', encodePng(stamp(trigger, example.pixels, channels), height, width, channels));
  }
  await write('inspect.json', JSON.stringify(inspectJson(r), null, 2) + '\n');
  return files;
}

export function formatInspect(r: InspectResult, written: string[] = []): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const lines = [`PGD on ${r.samples} images (labels: the model's own predictions)`, '  eps      flipped   most flips go to'];
  for (const p of r.points) lines.push(`  ${p.eps.toFixed(4).padEnd(8)} ${pct(p.flipRate).padStart(7)}   class ${p.concentrationClass} (${pct(p.concentration)} of flips)`);
  lines.push(
    r.flips < minFlipsForSignal
      ? `no backdoor signal: PGD flips only ${r.flips} of ${r.samples} predictions even at eps ${r.eps}; the model resists these perturbations`
      : r.pgdSignal
      ? `PGD signal: at eps ${r.eps}, ${pct(r.concentration)} of adversarial flips go to class ${r.likelyTarget} (threshold ${pct(r.threshold)})`
      : `no PGD signal: at eps ${r.eps}, the most common adversarial class (${r.likelyTarget}) takes ${pct(r.concentration)} of flips (threshold ${pct(r.threshold)}); patch triggers hide from this test, trigger inversion finds them`,
  );
  if (r.inversion) {
    lines.push(`trigger inversion (${r.inversion.seconds.toFixed(1)} s): smallest mask that sends images to each class, and its anomaly index`);
    lines.push('  class   mask L1   success   anomaly');
    for (const c of r.inversion.classes) lines.push(`  ${String(c.target).padEnd(7)} ${c.maskL1.toFixed(1).padStart(7)}   ${pct(c.success).padStart(7)}   ${c.anomaly.toFixed(2).padStart(7)}`);
    lines.push(r.inversion.trigger ? `backdoor suspected: ${r.inversion.reason}` : `no trigger found: ${r.inversion.reason}`);
  }
  if (r.universal) {
    lines.push(`universal additive probe (${r.universal.seconds.toFixed(1)} s): smallest perturbation x + δ that sends images to each class`);
    lines.push('  class   ‖δ‖₂      success   anomaly');
    for (const c of r.universal.classes) lines.push(`  ${String(c.target).padEnd(7)} ${c.norm.toFixed(2).padStart(7)}   ${pct(c.success).padStart(7)}   ${c.anomaly.toFixed(2).padStart(7)}`);
    lines.push(r.universal.perturbation ? `backdoor suspected: ${r.universal.reason}` : `no universal perturbation found: ${r.universal.reason}`);
  }
  lines.push(r.suspected ? `verdict: backdoored, likely target class ${r.target}` : 'verdict: no backdoor found');
  for (const f of written) lines.push(`wrote ${f}`);
  return lines.join('\n') + '\n';
}
