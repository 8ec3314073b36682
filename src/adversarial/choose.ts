import type { ProbePoint } from '../defenses/probe.js';

type PgdProbe = Pick<ProbePoint, 'eps' | 'concentration' | 'concentrationClass'>;
import type { GeneratorName } from './registry.js';
import type { TriggerProbe } from './trigger-probe.js';

export interface GeneratorChoice {
  names: GeneratorName[];
  reason: string;
}

/**
 * Which generators purify this model, from the two probes of the infected model on the user's data:
 *  - trigger-unlearning when masked inversion flags a class (an outlier by mask size: patch-like triggers);
 *  - linf-pgd when PGD flips at the chosen eps pile up on one class (share ≥ `minConcentration`: blended
 *    triggers), and also when inversion flags nothing (PBE as published; on a clean model it is fine-tuning on
 *    adversarial examples).
 */
export function chooseGenerators(pgd: PgdProbe | undefined, triggers: Pick<TriggerProbe, 'trigger'>, minConcentration = 0.5): GeneratorChoice {
  const concentrated = pgd !== undefined && pgd.concentration >= minConcentration;
  const pgdWhy = pgd
    ? `${(pgd.concentration * 100).toFixed(0)}% of PGD flips at eps ${pgd.eps} go to class ${pgd.concentrationClass}`
    : 'no PGD probe';
  const trigger = triggers.trigger;
  if (!trigger) return { names: ['linf-pgd'], reason: `inversion found no trigger; ${pgdWhy}: PBE's L∞ PGD` };
  if (concentrated) return { names: ['trigger-unlearning', 'linf-pgd'], reason: `inversion recovered a trigger of class ${trigger.target}, and ${pgdWhy} (>= ${minConcentration * 100}%): both` };
  return { names: ['trigger-unlearning'], reason: `inversion recovered a trigger of class ${trigger.target}; ${pgdWhy} (< ${minConcentration * 100}%), so L∞ PGD would train on natural confusions: trigger unlearning alone` };
}
