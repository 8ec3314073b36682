import type { ProbePoint } from '../defenses/probe.js';

type PgdProbe = Pick<ProbePoint, 'eps' | 'concentration' | 'concentrationClass'>;
import type { GeneratorName } from './registry.js';
import type { TriggerProbe } from './trigger-probe.js';
import type { UniversalProbe } from './universal-probe.js';

export interface GeneratorChoice {
  names: GeneratorName[];
  reason: string;
  backdoorSignal: boolean;
}

/**
 * Which generators purify this model, from the two probes of the infected model on the user's data:
 *  - linf-pgd when PGD flips at the chosen eps pile up on one class (share ≥ `minConcentration`): PBE's premise
 *    holds (blended triggers); also when inversion flags nothing (PBE as published: on a clean Fashion-MNIST
 *    model it cost 0.6 points of ACC);
 *  - trigger-unlearning when masked inversion flags a class (patch-like triggers, and blends whose PGD flips
 *    scatter), alone when the PGD flips scatter, beside PGD when they concentrate.
 * Measured (20k Fashion-MNIST, Blend, cnn-small): PGD alone left ASR at 6.9%, both took it to 2.5%. On synthetic
 * squares with a noise Blend both kept ASR at 67% where PGD alone erased it (test/defenses/pbe-probe.test.ts):
 * a known limit of stamping a recovered trigger that is partly a natural feature of the class.
 *  - perturbation-unlearning when masked inversion flags nothing but the universal additive probe
 *    (adversarial/universal-probe.ts) flags a class: a trigger spread over the whole image; alone when the PGD
 *    flips scatter, beside PGD when they concentrate. Masked inversion comes first, so BadNets and Blend, which
 *    both probes flag (universal: anomaly 4.11 and gap 3.93 on 20k Fashion-MNIST), keep their generators.
 *    Measured (SIG Δ=40, class 0 forced by a lowered gap threshold): ASR 65.5% → 0.6%, ACC 81.0 → 80.3, where PBE's
 *    L∞ PGD left 57.5%; the probe itself does not flag SIG on Fashion-MNIST (bench/results/sig-probe.md);
 *  - `unlearnAll` (universal.unlearn "all", opt-in): with no flag at all, perturbation unlearning of every class's
 *    universal perturbation instead of PGD: SIG Δ=60 ASR 87.1% → 26.7% (ACC 81.2 → 78.8); on a clean model it
 *    costs 2.2 points of ACC (88.4 → 86.2, PBE as published 87.8), so it is not the default.
 * `backdoorSignal` says whether any probe saw a backdoor; without one, the run flags no sample as poisoned.
 */
export function chooseGenerators(
  pgd: PgdProbe | undefined,
  triggers: Pick<TriggerProbe, 'trigger'>,
  minConcentration = 0.5,
  universal: Pick<UniversalProbe, 'perturbation'> = { perturbation: null },
  /** `universal.unlearn: "all"`: without any flag, unlearn every class's universal perturbation (opt-in). */
  unlearnAll = false,
): GeneratorChoice {
  const concentrated = pgd !== undefined && pgd.concentration >= minConcentration;
  const pgdWhy = pgd
    ? `${(pgd.concentration * 100).toFixed(0)}% of PGD flips at eps ${pgd.eps} go to class ${pgd.concentrationClass}`
    : 'no PGD probe';
  const trigger = triggers.trigger;
  const delta = universal.perturbation;
  if (!trigger && delta) {
    const why = `masked inversion found no trigger; the universal probe found an outlier perturbation of class ${delta.target} (‖δ‖₂ ${delta.norm.toFixed(2)})`;
    return concentrated
      ? { names: ['linf-pgd', 'perturbation-unlearning'], reason: `${why} and ${pgdWhy} (>= ${minConcentration * 100}%): both`, backdoorSignal: true }
      : { names: ['perturbation-unlearning'], reason: `${why}; ${pgdWhy} (< ${minConcentration * 100}%), so L∞ PGD would train on natural confusions: perturbation unlearning alone`, backdoorSignal: true };
  }
  if (!trigger && unlearnAll) {
    const why = `no masked trigger and no universal outlier; universal.unlearn is "all": every class's universal perturbation is unlearned`;
    return concentrated
      ? { names: ['linf-pgd', 'perturbation-unlearning'], reason: `${why}, beside L∞ PGD (${pgdWhy}, >= ${minConcentration * 100}%)`, backdoorSignal: true }
      : { names: ['perturbation-unlearning'], reason: `${why} (${pgdWhy}, < ${minConcentration * 100}%: no backdoor signal)`, backdoorSignal: false };
  }
  if (!trigger && concentrated) return { names: ['linf-pgd'], reason: `inversion found no trigger; ${pgdWhy} (>= ${minConcentration * 100}%): PBE's L∞ PGD`, backdoorSignal: true };
  if (!trigger) return { names: ['linf-pgd'], reason: `inversion found no trigger and ${pgdWhy} (< ${minConcentration * 100}%): no backdoor signal; PBE's L∞ PGD as published`, backdoorSignal: false };
  if (concentrated) return { names: ['linf-pgd', 'trigger-unlearning'], reason: `${pgdWhy} (>= ${minConcentration * 100}%) and inversion recovered a trigger of class ${trigger.target}: both`, backdoorSignal: true };
  return { names: ['trigger-unlearning'], reason: `inversion recovered a trigger of class ${trigger.target}; ${pgdWhy} (< ${minConcentration * 100}%), so L∞ PGD would train on natural confusions: trigger unlearning alone`, backdoorSignal: true };
}
