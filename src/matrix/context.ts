import type { CommonOptions } from '../cli/common.js';
import type { Log } from '../cli/log.js';
import type { PoisonMode } from '../attacks/poison.js';
import type { EvalSet } from '../eval/evaluate.js';
import type { BenchData } from './data.js';

/** What every step of a bench shares. */
export interface BenchContext {
  out: string;
  data: BenchData;
  /** How the infected (and the clean reference) models are trained, as `pbe train` takes it. */
  training: { model: string; epochs: number; batchSize: number; lr: number; width?: number; imageSize: string; classes: number };
  target: number;
  mode: PoisonMode;
  /** `--attack-option ATTACK:key=value` flags. */
  attackOptions: string[];
  /** Passed to the poison, train and purify steps (quiet unless --verbose). */
  common: CommonOptions;
  /** The test set every model is scored on (ACC, ASR), read once. */
  testSet: EvalSet;
  /** Test samples the defenses evaluate on after each epoch (metrics.csv). */
  epochEvalSamples: number;
  log: Log;
}
