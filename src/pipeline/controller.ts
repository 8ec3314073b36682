import type { PurifyConfig } from '../config/schema.js';

/** What the controller observes after each epoch: the adversarial target concentration q (null: no flips measured). */
export interface EpochObservation {
  concentration: number | null;
}

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
  constructor(protected readonly config: Pick<PurifyConfig, 'rounds' | 'keepRatio'>) {}

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

  /** The plan of an epoch; `observed` holds every finished epoch of the run, oldest first. */
  plan(round: number, epoch: number, _observed: readonly EpochObservation[] = []): EpochPlan {
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

/**
 * The `adaptive` controller (DESIGN §2): the schedule's adversarial share, scaled by how much backdoor signal is
 * left. The signal is the adversarial target concentration q of the last epoch that measured one, placed between
 * the level of a clean model (`cleanConcentration`, factor `minShare`) and the infected model's q at the start
 * (factor 1). As q falls to a clean model's level, fewer batches are adversarial and clean accuracy recovers
 * sooner; `minShare` keeps measuring q. Its state is derived from the observed epochs, so a resumed run plans
 * the same epochs.
 */
export class AdaptiveController extends ScheduleController {
  constructor(
    config: Pick<PurifyConfig, 'rounds' | 'keepRatio' | 'controller'>,
    /** q of the infected model at the run's eps (from the probe). */
    private readonly initialConcentration: number,
  ) {
    super(config);
    this.adaptive = config.controller;
  }

  private readonly adaptive: PurifyConfig['controller'];

  override plan(round: number, epoch: number, observed: readonly EpochObservation[] = []): EpochPlan {
    const base = super.plan(round, epoch);
    if (base.adversarialShare === 0) return base;
    const last = [...observed].reverse().find((o) => o.concentration !== null)?.concentration;
    if (last === undefined || last === null) return base;
    const { cleanConcentration, minShare } = this.adaptive;
    const span = this.initialConcentration - cleanConcentration;
    const signal = span > 0 ? (last - cleanConcentration) / span : 1;
    const factor = Math.min(1, Math.max(minShare, signal));
    return { ...base, adversarialShare: base.adversarialShare * factor };
  }
}
