import { join } from 'node:path';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import type { ScoreStore } from '../pipeline/score-store.js';
import type { EpochRow } from '../pipeline/engine.js';
import { writeCsvAtomic } from './csv.js';

/** The files of a run directory (DESIGN §4); each is written atomically. */
export const runFiles = {
  model: 'model',
  metrics: 'metrics.csv',
  scores: 'scores.csv',
  runJson: 'run.json',
};

export const metricsColumns: (keyof EpochRow)[] = [
  'round', 'epoch', 'adversarialShare', 'adversarialBatches', 'trusted', 'samples', 'loss',
  'flipRate', 'concentration', 'concentrationClass', 'seconds', 'acc', 'asr',
];

export async function writeMetrics(dir: string, rows: EpochRow[]): Promise<void> {
  await writeCsvAtomic(join(dir, runFiles.metrics), metricsColumns, rows as unknown as Record<string, unknown>[]);
}

/**
 * scores.csv: key, url, suspicion (1 - final similarity), trusted, flagged (by the run's own threshold), pseudo-label,
 * final label (the label used for training: a relabelled suspect's repaired label, else the given or pseudo-label).
 */
export async function writeScores(
  dir: string,
  store: ScoreStore,
  trusted: Set<string>,
  labels: 'pseudo' | 'given',
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
        final_label: judged.relabel.get(key) ?? (labels === 'given' ? store.givenLabel(i) ?? '' : store.pseudoAt(i)),
      };
    }
  };
  await writeCsvAtomic(join(dir, runFiles.scores), ['key', 'url', 'suspicion', 'trusted', 'flagged', 'pseudo_label', 'final_label'], rows());
}

export async function writeRunJson(dir: string, info: Record<string, unknown>): Promise<void> {
  await writeFileAtomic(join(dir, runFiles.runJson), JSON.stringify(info, null, 2) + '\n');
}

/** scores.csv of a defense that scores samples other than PBE: key, url, suspicion (higher: more likely poisoned), flagged. */
export async function writeSampleScores(dir: string, scores: { keys: string[]; urls: string[]; suspicion: Float32Array; flagged: Set<string> }): Promise<void> {
  const rows = scores.keys.map((key, i) => ({ key, url: scores.urls[i], suspicion: scores.suspicion[i], flagged: scores.flagged.has(key) }));
  await writeCsvAtomic(join(dir, runFiles.scores), ['key', 'url', 'suspicion', 'flagged'], rows);
}
