import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import type { Corpus } from '../pipeline/corpus.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import type { ScoreStore } from '../pipeline/score-store.js';
import type { Sample } from '../sources/types.js';
import { pgdExamples } from '../stages/pgd.js';
import { probeChunk } from '../defenses/probe.js';
import { differenceImage, pngDataUrl } from './html/images.js';

/**
 * The pixels the run report shows, saved beside the run (report-images.json) by purify: the most suspicious
 * samples and a few trusted samples beside their PGD examples against the infected model. Saved rather than read
 * back from the data by key when the report is built, so that `pbe report RUN_DIR` works from the run directory
 * alone (the data may be remote, moved or gone) and in a fixed time whatever the data's size, and so that the
 * adversarial examples, which need the models and PGD, are computed where those are at hand. ~1 KB per 28x28 image.
 */
export const reportImagesFile = 'report-images.json';

export interface SuspiciousImage {
  key: string;
  url: string;
  suspicion: number;
  trusted: boolean;
  /** The label in the data, when it has one. */
  label: number | null;
  /** The infected model's prediction. */
  pseudoLabel: number;
  png: string;
}

export interface AdversarialExample {
  key: string;
  label: number | null;
  /** Predictions of the infected model on the image and on its PGD example, and of the purified model on the image. */
  infectedPrediction: number;
  adversarialPrediction: number;
  purifiedPrediction: number;
  original: string;
  adversarial: string;
  /** |adversarial - original| scaled by differenceScale to fill [0, 1]. */
  difference: string;
  differenceScale: number;
}

export interface ReportImages {
  suspicious: SuspiciousImage[];
  adversarial: { eps: number; steps: number; examples: AdversarialExample[] };
  /** Images of a recovered trigger (mask, pattern) with their captions, where the method recovered one. */
  recovered?: { caption: string; png: string }[];
}

export interface CollectOptions {
  corpus: Corpus;
  store: ScoreStore;
  trusted: ReadonlySet<string>;
  infected: tf.LayersModel;
  purified: tf.LayersModel;
  pgd: { eps: number; alphaRatio: number; steps: number };
  /** How many of the most suspicious samples (default 40) and of adversarial examples (default 6). */
  suspicious?: number;
  adversarial?: number;
}

/**
 * One pass over the corpus that decodes only the chosen keys: the `suspicious` samples of highest suspicion
 * (1 - final similarity) and `adversarial` trusted samples spread evenly over the store's order.
 */
export async function collectReportImages(o: CollectOptions): Promise<ReportImages> {
  const { store } = o;
  const sims = store.similarities();
  const bySuspicion = Array.from(sims.keys()).sort((a, b) => sims[a] - sims[b]);
  const top = bySuspicion.slice(0, o.suspicious ?? 40);
  const trustedIdx = Array.from(sims.keys()).filter((i) => o.trusted.has(store.keys[i]));
  const wanted = Math.min(o.adversarial ?? 6, trustedIdx.length);
  const advIdx = Array.from({ length: wanted }, (_, j) => trustedIdx[Math.floor(((j + 0.5) * trustedIdx.length) / wanted)]);

  const keys = new Set([...top, ...advIdx].map((i) => store.keys[i]));
  const found = new Map<string, Sample>();
  for await (const s of o.corpus.samples(keys, 'report images').output) found.set(s.key, s);

  const suspicious: SuspiciousImage[] = [];
  for (const i of top) {
    const s = found.get(store.keys[i]);
    if (!s) continue; // unreadable on this pass: counted as a bad sample by the corpus
    suspicious.push({
      key: s.key,
      url: s.url,
      suspicion: 1 - sims[i],
      trusted: o.trusted.has(s.key),
      label: s.label ?? null,
      pseudoLabel: store.pseudoAt(i),
      png: pngDataUrl(s),
    });
  }
  const advSamples = advIdx.map((i) => found.get(store.keys[i])).filter((s): s is Sample => s !== undefined);
  return { suspicious, adversarial: { eps: o.pgd.eps, steps: o.pgd.steps, examples: adversarialExamples(advSamples, o) } };
}

function adversarialExamples(samples: Sample[], o: CollectOptions): AdversarialExample[] {
  if (samples.length === 0) return [];
  const { height, width, channels } = samples[0];
  const per = height * width * channels;
  const x = new Float32Array(samples.length * per);
  samples.forEach((s, i) => x.set(s.pixels, i * per));
  const n = samples.length;
  const [infectedPred, advPred, purifiedPred, adv] = [new Int32Array(n), new Int32Array(n), new Int32Array(n), new Float32Array(n * per)];
  const chunk = probeChunk(height, width); // PGD's memory grows with the pixels attacked at once
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    tf.tidy(() => {
      const input = tf.tensor4d(x.subarray(start * per, (start + m) * per), [m, height, width, channels]);
      const labels = (o.infected.predict(input) as tf.Tensor).argMax(-1) as tf.Tensor1D;
      const examples = pgdExamples(o.infected, input, labels, { eps: o.pgd.eps, alpha: o.pgd.eps * o.pgd.alphaRatio, steps: o.pgd.steps, randomStart: false });
      infectedPred.set(labels.dataSync() as Int32Array, start);
      advPred.set((o.infected.predict(examples) as tf.Tensor).argMax(-1).dataSync() as Int32Array, start);
      purifiedPred.set((o.purified.predict(input) as tf.Tensor).argMax(-1).dataSync() as Int32Array, start);
      adv.set(examples.dataSync() as Float32Array, start * per);
    });
  }
  return samples.map((s, i) => {
    const advImage = { pixels: adv.subarray(i * per, (i + 1) * per), height, width, channels };
    const diff = differenceImage(advImage, s);
    return {
      key: s.key,
      label: s.label ?? null,
      infectedPrediction: infectedPred[i],
      adversarialPrediction: advPred[i],
      purifiedPrediction: purifiedPred[i],
      original: pngDataUrl(s),
      adversarial: pngDataUrl(advImage),
      difference: pngDataUrl(diff.image),
      differenceScale: diff.scale,
    };
  });
}

export async function writeReportImages(dir: string, images: ReportImages): Promise<void> {
  await writeFileAtomic(join(dir, reportImagesFile), JSON.stringify(images));
}
