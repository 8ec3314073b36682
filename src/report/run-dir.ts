import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { outputError, usageError } from '../errors.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import type { ScoreStore } from '../pipeline/score-store.js';
import type { EpochRow } from '../pipeline/engine.js';
import type { LabelSource } from '../stages/label.js';
import { writeCsvAtomic } from './csv.js';

/** The files of a run directory (DESIGN §4); each is written atomically. */
export const runFiles = {
  model: 'model',
  metrics: 'metrics.csv',
  scores: 'scores.csv',
  runJson: 'run.json',
  badSamples: 'bad-samples.csv',
  checkpoint: 'checkpoint',
  lock: 'run.lock',
};

/**
 * Makes `dir` the directory of a new run. One that holds another run (a run.json or a checkpoint) is refused
 * unless `overwrite`, which removes that run's files first; a directory that cannot be written is refused before
 * any work is done.
 */
export async function claimRunDir(dir: string, opts: { overwrite?: boolean; resumeHint?: string } = {}): Promise<void> {
  const held = [runFiles.runJson, runFiles.checkpoint].filter((f) => existsSync(join(dir, f)));
  if (held.length > 0 && !opts.overwrite) {
    const status = readStatus(dir);
    throw usageError(
      `--out ${dir} holds another run (${held.join(', ')}${status ? `; status ${status}` : ''}): ${opts.resumeHint ?? `pass --resume ${dir} to continue it`}, or --overwrite to replace it`,
    );
  }
  if (held.length > 0) {
    for (const f of [runFiles.checkpoint, runFiles.runJson, runFiles.metrics, runFiles.scores, runFiles.model, runFiles.badSamples, 'report.html', 'report-images.json']) {
      await rm(join(dir, f), { recursive: true, force: true });
    }
  }
  await ensureWritableDir(dir);
}

function readStatus(dir: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, runFiles.runJson), 'utf8')).status;
  } catch {
    return undefined;
  }
}

/** Creates `dir` and proves it writable, so that a command fails before its work, not after (exit 1, naming it). */
export async function ensureWritableDir(dir: string): Promise<void> {
  const probe = join(dir, `.pbe-write-test.${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'x');
  } catch (err) {
    throw outputError(dir, err);
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

/**
 * Holds `dir/run.lock` (the process id) while a run writes into it: a second process is refused. A lock left by a
 * process that no longer runs is taken over. Returns the release.
 */
export async function lockRunDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, runFiles.lock);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx');
      await file.writeFile(String(process.pid));
      await file.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw outputError(path, err);
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
        throw usageError(`${dir} is in use by another pbe process (pid ${pid}, ${path}); wait for it to finish or stop it`);
      }
      await rm(path, { force: true });
    }
  }
  throw usageError(`${dir}: cannot take ${path}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const metricsColumns: (keyof EpochRow)[] = [
  'round', 'epoch', 'adversarialShare', 'adversarialBatches', 'trusted', 'samples', 'loss',
  'flipRate', 'concentration', 'concentrationClass', 'seconds', 'acc', 'asr',
];

export async function writeMetrics(dir: string, rows: EpochRow[]): Promise<void> {
  await writeCsvAtomic(join(dir, runFiles.metrics), metricsColumns, rows as unknown as Record<string, unknown>[]);
}

/**
 * scores.csv, streamed a row at a time: key, url, suspicion (1 - final similarity), trusted, flagged (by the run's own threshold), pseudo-label,
 * final label (the label used for training: a relabelled suspect's repaired label, else the given or pseudo-label).
 */
export async function writeScores(
  dir: string,
  store: ScoreStore,
  trusted: Set<string>,
  labels: LabelSource,
  judged: { flagged: Uint8Array; relabel: ReadonlyMap<string, number> },
): Promise<void> {
  const sims = store.similarities();
  const rows = function* () {
    for (let i = 0; i < store.size; i++) {
      const key = store.keys[i];
      yield {
        key,
        url: store.urls[i],
        suspicion: 1 - sims[i],
        trusted: trusted.has(key),
        flagged: judged.flagged[i] === 1,
        pseudo_label: store.pseudoAt(i),
        final_label: judged.relabel.get(key) ?? (labels === 'pseudo' ? store.pseudoAt(i) : store.givenLabel(i) ?? (labels === 'auto' ? store.pseudoAt(i) : '')),
      };
    }
  };
  await writeCsvAtomic(join(dir, runFiles.scores), ['key', 'url', 'suspicion', 'trusted', 'flagged', 'pseudo_label', 'final_label'], rows());
}

export async function writeRunJson(dir: string, info: Record<string, unknown>): Promise<void> {
  await writeFileAtomic(join(dir, runFiles.runJson), JSON.stringify(info, null, 2) + '\n');
}

/** scores.csv of a defense that scores samples other than PBE: key, url, suspicion (higher: more likely poisoned), flagged. Streamed, a row at a time. */
export async function writeSampleScores(dir: string, scores: { keys: string[]; urls: string[]; suspicion: Float32Array; flagged: Set<string> }): Promise<void> {
  const rows = function* () {
    for (let i = 0; i < scores.keys.length; i++) yield { key: scores.keys[i], url: scores.urls[i], suspicion: scores.suspicion[i], flagged: scores.flagged.has(scores.keys[i]) };
  };
  await writeCsvAtomic(join(dir, runFiles.scores), ['key', 'url', 'suspicion', 'flagged'], rows());
}
