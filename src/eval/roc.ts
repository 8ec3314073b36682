/**
 * The ROC curve and its area for a score where higher means "more likely positive" (suspicion vs the poison
 * manifest). AUROC is the Mann-Whitney statistic: the probability that a random positive scores above a random
 * negative, ties counting one half.
 *
 *   rocCurve(Float32Array.of(0.9, 0.2, 0.4), [true, false, true]).auroc  // 1
 */
export interface RocResult {
  auroc: number;
  /** Points from (0, 0) to (1, 1), one per distinct score, thinned to at most maxPoints. */
  points: { fpr: number; tpr: number }[];
  positives: number;
  negatives: number;
}

export function rocCurve(scores: ArrayLike<number>, positive: ArrayLike<boolean>, maxPoints = 400): RocResult {
  if (scores.length !== positive.length) throw new Error(`rocCurve: ${scores.length} scores for ${positive.length} labels`);
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < positive.length; i++) if (positive[i]) positives++;
  const negatives = scores.length - positives;
  const all: { fpr: number; tpr: number }[] = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  let fp = 0;
  let area = 0; // sum over negatives of positives ranked above (ties: half)
  for (let start = 0; start < order.length; ) {
    let end = start;
    let tiedPos = 0;
    let tiedNeg = 0;
    while (end < order.length && scores[order[end]] === scores[order[start]]) {
      if (positive[order[end]]) tiedPos++;
      else tiedNeg++;
      end++;
    }
    area += tiedNeg * (tp + tiedPos / 2);
    tp += tiedPos;
    fp += tiedNeg;
    all.push({ fpr: negatives ? fp / negatives : 0, tpr: positives ? tp / positives : 0 });
    start = end;
  }
  const auroc = positives && negatives ? area / (positives * negatives) : NaN;
  return { auroc, points: thin(all, maxPoints), positives, negatives };
}

/** Keeps the first and last point and at most maxPoints in all, evenly spaced along the curve's order. */
function thin<T>(points: T[], maxPoints: number): T[] {
  if (points.length <= maxPoints) return points;
  const step = (points.length - 1) / (maxPoints - 1);
  return Array.from({ length: maxPoints }, (_, i) => points[Math.round(i * step)]);
}

/**
 * Average precision (the area under the precision-recall curve as scikit-learn's average_precision_score sums
 * it): the mean over positives of the precision at each distinct score threshold, ties taken together.
 *
 *   averagePrecision([0.9, 0.2, 0.4], [true, false, true])  // 1
 */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  if (scores.length !== positive.length) throw new Error(`averagePrecision: ${scores.length} scores for ${positive.length} labels`);
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < positive.length; i++) if (positive[i]) positives++;
  if (positives === 0) return NaN;
  let tp = 0;
  let ap = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    let tied = 0;
    while (end < order.length && scores[order[end]] === scores[order[start]]) {
      if (positive[order[end]]) tied++;
      end++;
    }
    tp += tied;
    ap += (tied / positives) * (tp / end);
    start = end;
  }
  return ap;
}
