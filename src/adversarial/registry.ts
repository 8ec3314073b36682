import type { AdversarialGenerator } from './generator.js';
import { linfPgd } from './linf-pgd.js';
import { perturbationUnlearning } from './perturbation-unlearning.js';
import { triggerUnlearning } from './trigger-unlearning.js';

/** Every adversarial generator pbe can purify with; the probe (adversarial/choose.ts) picks among them per model. */
export const generators = {
  'linf-pgd': linfPgd,
  'trigger-unlearning': triggerUnlearning,
  'perturbation-unlearning': perturbationUnlearning,
} satisfies Record<string, AdversarialGenerator<never>>;

export type GeneratorName = keyof typeof generators;
export const generatorNames = Object.keys(generators) as GeneratorName[];
