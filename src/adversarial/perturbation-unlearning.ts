import type { AdversarialGenerator, GeneratorBatch } from './generator.js';
import { drawnIndex, isStamped } from './trigger-unlearning.js';
import { addPerturbation, type InvertedPerturbation } from './universal-inversion.js';

export interface PerturbationUnlearningOptions {
  /** One perturbation (the flagged class's) or several (every class's, `universal.unlearn: "all"`): a changed sample gets one of them, drawn by its key. */
  perturbations: Pick<InvertedPerturbation, 'delta' | 'target'>[];
  /** Share of the samples that carry the perturbation. */
  share: number;
}

/**
 * Perturbation unlearning: Neural Cleanse's mitigation (Wang et al., S&P 2019 §VI-C) with an additive trigger: a
 * seeded share of the samples carry the universal perturbation recovered for the flagged class
 * (adversarial/universal-probe.ts), x' = clip(x + δ, 0, 1), and keep their training label, so fine-tuning teaches
 * the model that δ does not mean its class (as I-BAU unlearns a universal perturbation: Zeng et al., ICLR 2022).
 * Threat model: a low-amplitude change spread over the whole image (SIG's sinusoid, a blend), which a mask-bounded
 * trigger cannot express. Chosen when the universal probe flags a class and masked inversion does not.
 *
 * Contract: a sample is changed or left untouched, and which δ it gets, by (key, seed) alone (the draw of
 * trigger-unlearning); a changed sample is clip(x + δ, 0, 1): in [0,1], each pixel moved by at most |δ| there.
 *
 *   const x2 = perturbationUnlearning.generate({ x, shape, labels, keys, seed }, { perturbations: [p], share: 0.3 });
 */
export const perturbationUnlearning: AdversarialGenerator<PerturbationUnlearningOptions> = {
  name: 'perturbation-unlearning',
  paper: 'Wang et al., Neural Cleanse, S&P 2019; Zeng et al., I-BAU, ICLR 2022',
  describe: (o) => `the universal perturbation${o.perturbations.length > 1 ? 's' : ''} of class${o.perturbations.length > 1 ? 'es' : ''} ${o.perturbations.map((p) => p.target).join(', ')} on ${o.share} of samples`,
  generate({ x, shape, keys, seed }: GeneratorBatch, { perturbations, share }: PerturbationUnlearningOptions): Float32Array {
    const per = shape[1] * shape[2] * shape[3];
    const out = x.slice();
    keys.forEach((key, i) => {
      if (!isStamped(key, seed, share)) return;
      addPerturbation(perturbations[drawnIndex(key, seed, perturbations.length)].delta, x.subarray(i * per, (i + 1) * per), out, i * per);
    });
    return out;
  },
};
