import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { attackSettings, triggerFor } from '../attacks/registry.js';
import { poisonCommand } from '../cli/poison.js';
import { trainCommand } from '../cli/train.js';
import { evaluate } from '../eval/evaluate.js';
import { loadModel } from '../models/io.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { attackDefaults, parseAttackOptions, type AttackTraining } from '../attacks/options.js';
import type { BenchContext } from './context.js';
import { attackOptionsFor, outRelative, outRelativeSettings, settingsHash } from './plan.js';

/**
 * The models a bench starts from, trained once and cached under `<out>/models/`: a reference model trained on
 * the clean training data (its ACC is the "no attack" line; label-consistent poisoning needs it) and one
 * infected model per attack and seed. A model directory counts once its `complete.json` is written. An attack
 * whose config says `"training": "per-batch"` (WaNet, BppAttack) is trained with `pbe train --attack` on the clean
 * data (every batch poisoned on the way); its poisoned shards are still written, as the data the defenses get.
 */
export interface BenchModel {
  /** `clean` or the attack. */
  name: string;
  seed: number;
  hash: string;
  /** The TensorFlow.js model directory. */
  model: string;
  acc: number;
  asr: number | null;
  /** The poisoned training shards and their manifest (infected models). */
  poisonedData?: string[];
  manifest?: string;
  poisoned?: number;
  samples?: number;
  /** The attack's settings as poisoned (defaults, then the bench's --attack-option). */
  attack?: unknown;
  /** How the infected model was trained: on the poisoned shards, or poisoned per batch (`pbe train --attack`). */
  training?: AttackTraining;
  seconds: number;
}

export async function cleanModel(ctx: BenchContext, seed: number): Promise<BenchModel> {
  const hash = settingsHash({ data: outRelative(ctx.data.train, ctx.out), training: ctx.training, seed });
  return cached(ctx, join(ctx.out, 'models', `clean-s${seed}-${hash}`), async (dir, started) => {
    ctx.log(`training the clean reference model (seed ${seed})`);
    await trainCommand({ ...ctx.common, ...ctx.training, data: ctx.data.train, out: join(dir, 'model'), seed });
    const { acc } = await scoreModel(ctx, join(dir, 'model'));
    return { name: 'clean', seed, hash, model: join(dir, 'model'), acc, asr: null, seconds: (Date.now() - started) / 1000 };
  });
}

export async function infectedModel(ctx: BenchContext, attack: string, seed: number, clean: BenchModel): Promise<BenchModel> {
  const attackOption = attackOptionsFor(attack, ctx.attackOptions);
  if (attack === 'lc' && !('model' in parseAttackOptions(attackOption))) attackOption.push(`model=${clean.model}`);
  const settings = attackSettings(attack, parseAttackOptions(attackOption));
  const training = attackDefaults(attack).training;
  // 'data' stays out of the hash, so models cached before per-batch training existed still count
  const hash = settingsHash({ data: outRelative(ctx.data.train, ctx.out), training: ctx.training, seed, attack: outRelativeSettings(settings, ctx.out), target: ctx.target, mode: ctx.mode, poisoning: training === 'data' ? undefined : training });
  return cached(ctx, join(ctx.out, 'models', `${attack}-s${seed}-${hash}`), async (dir, started) => {
    ctx.log(`poisoning with ${attack} and training the infected model (seed ${seed}${training === 'per-batch' ? ', poisoned per batch' : ''})`);
    const poisoned = await poisonCommand({ ...ctx.common, attackOption, mode: ctx.mode, data: ctx.data.train, out: join(dir, 'poisoned'), attack, target: ctx.target, seed, shardSize: 5000, classes: ctx.training.classes, overwrite: true });
    const trainOn = training === 'per-batch' ? { data: ctx.data.train, attack, attackOption, mode: ctx.mode, target: ctx.target } : { data: [join(dir, 'poisoned', 'train-*.tar')] };
    await trainCommand({ ...ctx.common, ...ctx.training, ...trainOn, out: join(dir, 'model'), seed });
    const { acc, asr } = await scoreModel(ctx, join(dir, 'model'), attack, attackOption);
    return {
      name: attack, seed, hash, model: join(dir, 'model'), acc, asr: asr ?? null,
      poisonedData: [join(dir, 'poisoned', 'train-*.tar')], manifest: join(dir, 'poisoned', 'poison-manifest.csv'),
      poisoned: poisoned.poisoned, samples: poisoned.total, attack: settings, training, seconds: (Date.now() - started) / 1000,
    };
  });
}

/** ACC on the bench's test set and, given an attack, its ASR. */
export async function scoreModel(ctx: BenchContext, modelDir: string, attack?: string, attackOption: string[] = []): Promise<{ acc: number; asr?: number }> {
  const model = await loadModel(modelDir);
  try {
    const { height, width, channels } = ctx.testSet.samples[0];
    const trigger = attack ? { trigger: triggerFor(attack, parseAttackOptions(attackOption))({ height, width, channels }), target: ctx.target, mode: ctx.mode } : undefined;
    const { acc, asr } = evaluate(model, ctx.testSet, trigger);
    return { acc, asr };
  } finally {
    model.dispose();
  }
}

async function cached(ctx: BenchContext, dir: string, make: (dir: string, started: number) => Promise<BenchModel>): Promise<BenchModel> {
  const marker = join(dir, 'complete.json');
  if (existsSync(marker)) return placed(dir, JSON.parse(await readFile(marker, 'utf8')) as BenchModel);
  await rm(dir, { recursive: true, force: true });
  const made = await make(dir, Date.now());
  await writeFileAtomic(marker, JSON.stringify(made, null, 2) + '\n');
  return made;
}

/** A cached model's files, under its directory wherever the bench's --out is now (it may have been moved). */
function placed(dir: string, m: BenchModel): BenchModel {
  const poisoned = m.poisonedData && { poisonedData: [join(dir, 'poisoned', 'train-*.tar')], manifest: join(dir, 'poisoned', 'poison-manifest.csv') };
  return { ...m, model: join(dir, 'model'), ...poisoned };
}
