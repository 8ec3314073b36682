/**
 * Which samples a run flags as poisoned, chosen from the scores alone (no manifest). Suspicion 1 − cos(r, c) of
 * the infected and purified logits becomes the chord distance √(2·suspicion) between the unit vectors (the
 * angle's scale, where the clean and the poisoned samples form two modes), and Otsu's threshold splits it: the
 * cut that maximises the between-class variance of the two sides (Otsu, "A Threshold Selection Method from
 * Gray-Level Histograms", 1979), over a 256-bin histogram.
 */
export interface Flag {
  /** Suspicion at and above which a sample is flagged. */
  threshold: number;
  flagged: Uint8Array;
  count: number;
}

export function flagSuspicious(suspicion: Float32Array | number[]): Flag {
  const distance = Float64Array.from(suspicion, (s) => Math.sqrt(2 * Math.max(0, s)));
  const cut = otsuThreshold(distance);
  const flagged = Uint8Array.from(distance, (d) => (d > cut ? 1 : 0));
  const count = flagged.reduce((n, f) => n + f, 0);
  return { threshold: (cut * cut) / 2, flagged, count };
}

/** Otsu's threshold of `values`: the bin edge that best splits their histogram into two classes. */
export function otsuThreshold(values: Float64Array | number[], bins = 256): number {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max > min)) return max;
  const width = (max - min) / bins;
  const counts = new Float64Array(bins);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / width))]++;
  let total = 0;
  let totalMass = 0;
  counts.forEach((c, i) => {
    total += c;
    totalMass += c * (min + (i + 0.5) * width);
  });
  let below = 0;
  let belowMass = 0;
  let best = -1;
  let cut = max;
  for (let i = 0; i < bins - 1; i++) {
    below += counts[i];
    belowMass += counts[i] * (min + (i + 0.5) * width);
    const above = total - below;
    if (below === 0 || above === 0) continue;
    const diff = belowMass / below - (totalMass - belowMass) / above;
    const between = below * above * diff * diff;
    if (between > best) {
      best = between;
      cut = min + (i + 1) * width;
    }
  }
  return cut;
}

/** No sample flagged (a run that saw no backdoor). */
export function noFlag(samples: number): Flag {
  return { threshold: Infinity, flagged: new Uint8Array(samples), count: 0 };
}
