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

/**
 * Area under the ROC curve of `scores` (higher = more suspicious) against ground truth: the probability that a
 * poisoned sample scores above a clean one, ties counting half (the Mann–Whitney U statistic over n₊·n₋).
 * Keys absent from `poisoned` are left out; NaN when either class is empty.
 */
export function auroc(scores: Map<string, number>, poisoned: Map<string, boolean>): number {
  const rows: [number, boolean][] = [];
  for (const [key, score] of scores) {
    const truth = poisoned.get(key);
    if (truth !== undefined) rows.push([score, truth]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < rows.length; ) {
    let j = i;
    while (j < rows.length && rows[j][0] === rows[i][0]) j++;
    const midRank = (i + j + 1) / 2; // 1-based ranks i+1..j share their mean
    for (let t = i; t < j; t++) {
      if (rows[t][1]) {
        positives++;
        rankSum += midRank;
      }
    }
    i = j;
  }
  const negatives = rows.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
