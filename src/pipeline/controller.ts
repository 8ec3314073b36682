import type { PurifyConfig } from '../config/schema.js';

/** What the controller decides for one epoch: which share of batches are replaced by PGD examples. */
export interface EpochPlan {
  round: number;
  epoch: number;
  adversarialShare: number;
  /** At most this many adversarial batches in the epoch (the first ones); null for no limit. */
  maxAdversarialBatches: number | null;
}

/**
 * The progressive controller in `schedule` mode: the schedule is data (config/defaults.json, `rounds`), and the
 * controller only reads it: per round its epochs and the keep ratio that sets the next trusted set, per epoch
 * the adversarial share.
 */
export class ScheduleController {
  constructor(private readonly config: Pick<PurifyConfig, 'rounds' | 'keepRatio'>) {}

  get rounds(): number {
    return this.config.rounds.length;
  }

  epochs(round: number): number {
    return this.config.rounds[round].epochs;
  }

  /** The share of the data trusted after `round` (the last round reuses the last ratio for the final set). */
  keepRatio(round: number): number {
    const ratios = this.config.keepRatio;
    return ratios[Math.min(round, ratios.length - 1)];
  }

  plan(round: number, epoch: number): EpochPlan {
    const adv = this.config.rounds[round].adversarial;
    const active = epoch < adv.epochs;
    return {
      round,
      epoch,
      adversarialShare: active ? adv.share : 0,
      maxAdversarialBatches: active ? adv.maxBatches : 0,
    };
  }
}
