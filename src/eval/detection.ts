/** Precision and recall of a "suspected poisoned" flag against ground truth (the poison manifest). */
export interface DetectionResult {
  precision: number;
  recall: number;
  flagged: number;
  poisoned: number;
  truePositives: number;
  /** Samples scored but absent from the manifest (not counted). */
  unmatched: number;
}

export function detectionMetrics(flagged: Map<string, boolean>, poisoned: Map<string, boolean>): DetectionResult {
  let tp = 0;
  let nFlagged = 0;
  let nPoisoned = 0;
  let unmatched = 0;
  for (const [key, isFlagged] of flagged) {
    const truth = poisoned.get(key);
    if (truth === undefined) {
      unmatched++;
      continue;
    }
    if (isFlagged) nFlagged++;
    if (truth) nPoisoned++;
    if (isFlagged && truth) tp++;
  }
  return {
    precision: nFlagged === 0 ? 0 : tp / nFlagged,
    recall: nPoisoned === 0 ? 0 : tp / nPoisoned,
    flagged: nFlagged,
    poisoned: nPoisoned,
    truePositives: tp,
    unmatched,
  };
}
