import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPoisonManifest } from '../attacks/poison.js';
import { purifyCommand, type PurifyCliOptions } from '../cli/purify.js';
import type { SampleScores } from '../defenses/defense.js';
import { defenseFor } from '../defenses/registry.js';
import { detectionMetrics } from '../eval/detection.js';
import { averagePrecision, rocCurve } from '../eval/roc.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { checkpointFile } from '../pipeline/checkpoint.js';
import { runFiles } from '../report/run-dir.js';
import type { BenchContext } from './context.js';
import { scoreModel, type BenchModel } from './models.js';
import { attackOptionsFor, settingsHash, type Cell } from './plan.js';

/** One defense run on one infected model: its scores and where its run directory is. */
export interface CellResult extends Cell {
  /** The data the defense used: none (the given poisoned data only) or clean (the held-back clean extra set). */
  data: 'none' | 'clean';
  acc: number;
  asr: number | null;
  seconds: number;
  /** Against the poison manifest, for defenses that score the given samples (higher: more suspect). */
  auroc: number | null;
  ap: number | null;
  flagged: number | null;
  precision: number | null;
  recall: number | null;
  run: string;
  /** The infected model's and the defense config's hashes: a cell is reused while both are the same. */
  infectedHash: string;
  configHash: string;
}

export const cellFile = (out: string, cell: Cell) => join(out, 'cells', `${cell.attack}.${cell.defense}.s${cell.seed}.json`);

/** The cell's defense config (config/defenses/<name>.json or pbe's defaults, with the bench's seed). */
export async function cellConfigHash(cell: Cell): Promise<string> {
  return settingsHash(await defenseFor(cell.defense).loadConfig({ overrides: { seed: cell.seed } }));
}

/** The stored result of a cell, when it was computed from the same infected model and config. */
export async function storedCell(out: string, cell: Cell, infectedHash: string, configHash: string): Promise<CellResult | undefined> {
  const path = cellFile(out, cell);
  if (!existsSync(path)) return undefined;
  const stored = JSON.parse(await readFile(path, 'utf8')) as CellResult;
  return stored.infectedHash === infectedHash && stored.configHash === configHash ? stored : undefined;
}

/**
 * Runs the cell's defense as `pbe purify` would (its run directory under <out>/runs/), resuming a run a stopped
 * bench left behind, then scores the purified model on the whole test set.
 */
export async function runCell(ctx: BenchContext, cell: Cell, infected: BenchModel, configHash: string): Promise<CellResult> {
  const defense = defenseFor(cell.defense);
  const run = join(ctx.out, 'runs', cell.attack, `s${cell.seed}`, cell.defense);
  if (defense.data === 'clean' && !ctx.data.clean) throw new Error(`${cell.defense} needs the clean extra set, and the bench holds none back (--clean-samples 0)`);
  const attackOption = attackOptionsFor(cell.attack, ctx.attackOptions);
  const options: PurifyCliOptions = {
    ...ctx.common,
    attackOption,
    mode: ctx.mode,
    model: infected.model,
    data: infected.poisonedData!,
    out: run,
    defense: cell.defense,
    cleanData: defense.data === 'clean' ? ctx.data.clean : undefined,
    seed: cell.seed,
    evalData: ctx.data.test,
    evalAttack: cell.attack,
    target: ctx.target,
    evalSamples: ctx.epochEvalSamples,
    weightsRefresh: 'steps',
  };
  const resumable = await unfinishedRun(run, configHash);
  if (resumable) ctx.log(`resuming the run in ${run}`);
  const { result, seconds } = await purifyCommand(resumable ? { ...options, resume: run } : { ...options, overwrite: true });
  const { acc, asr } = await scoreModel(ctx, join(run, runFiles.model), cell.attack, attackOption);
  const detection = result.scores && infected.manifest ? await detectionScores(result.scores, infected.manifest) : undefined;
  const done: CellResult = {
    ...cell, data: defense.data, acc, asr: asr ?? null, seconds,
    auroc: detection?.auroc ?? null, ap: detection?.ap ?? null, flagged: detection?.flagged ?? null, precision: detection?.precision ?? null, recall: detection?.recall ?? null,
    run, infectedHash: infected.hash, configHash,
  };
  await writeFileAtomic(cellFile(ctx.out, cell), JSON.stringify(done, null, 2) + '\n');
  return done;
}

/** A run directory a stopped bench left: started with the same config, not complete, with a checkpoint to go on from. */
async function unfinishedRun(run: string, configHash: string): Promise<boolean> {
  const info = join(run, runFiles.runJson);
  if (!existsSync(info) || !existsSync(checkpointFile(run))) return false;
  const { status, config } = JSON.parse(await readFile(info, 'utf8')) as { status?: string; config?: unknown };
  return status !== 'complete' && settingsHash(config) === configHash;
}

async function detectionScores(scores: SampleScores, manifestPath: string) {
  const manifest = await readPoisonManifest(manifestPath);
  const scored = scores.keys.flatMap((key, i) => (manifest.has(key) ? [i] : []));
  const positive = scored.map((i) => manifest.get(scores.keys[i])!);
  if (!positive.some(Boolean)) return undefined;
  const suspicion = scored.map((i) => scores.suspicion[i]);
  const { precision, recall, flagged } = detectionMetrics(new Map(scores.keys.map((k) => [k, scores.flagged.has(k)])), manifest);
  return { auroc: rocCurve(suspicion, positive).auroc, ap: averagePrecision(suspicion, positive), precision, recall, flagged };
}
