import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EpochRow } from '../../src/pipeline/engine.js';
import { createRng } from '../../src/pipeline/random.js';
import { ScoreStore } from '../../src/pipeline/score-store.js';
import { differenceImage, pngDataUrl } from '../../src/report/html/images.js';
import { writeReportImages, type ReportImages } from '../../src/report/report-images.js';
import { writeCsvAtomic } from '../../src/report/csv.js';
import { writeMetrics, writeRunJson, writeScores } from '../../src/report/run-dir.js';

/**
 * A run directory written through the run's own writers, with made-up numbers: `samples` samples of which a
 * `poisonRate` share is poisoned (poisoned ones get higher suspicion), 3 rounds, images of random noise with a
 * bright corner on the poisoned ones, and a poison manifest beside the "data". For report tests and the bench.
 */
export async function writeRunFixture(
  root: string,
  o: { samples: number; poisonRate?: number; suspiciousImages?: number; adversarialImages?: number; badSamples?: number; seed?: number },
): Promise<{ dir: string; manifest: string; poisoned: number }> {
  const rand = createRng(o.seed ?? 1);
  const dir = join(root, 'run');
  const data = join(root, 'poisoned');
  await mkdir(dir, { recursive: true });
  await mkdir(data, { recursive: true });
  const classes = 10;
  const store = new ScoreStore(classes, o.samples);
  const poisoned: boolean[] = [];
  const trusted = new Set<string>();
  const manifest: Record<string, unknown>[] = [];
  const logits = new Float32Array(classes);
  for (let i = 0; i < o.samples; i++) {
    const key = `train-${String(i).padStart(6, '0')}`;
    const isPoisoned = rand() < (o.poisonRate ?? 0.1);
    for (let c = 0; c < classes; c++) logits[c] = rand();
    logits[isPoisoned ? 0 : i % classes] += 5;
    store.add(key, `${data}/train-000000.tar`, logits, 0, isPoisoned ? 0 : i % classes);
    const suspicion = isPoisoned ? 0.15 + 0.8 * rand() : 0.12 * rand() ** 2;
    store.setSimilarity(i, 1 - suspicion);
    poisoned.push(isPoisoned);
    manifest.push({ key, poisoned: isPoisoned, original_label: i % classes });
  }
  const sims = store.similarities();
  const order = Array.from(sims.keys()).sort((a, b) => sims[b] - sims[a]);
  order.slice(0, Math.round(0.7 * o.samples)).forEach((i) => trusted.add(store.keys[i]));
  await writeScores(dir, store, trusted, 'given', { flagged: Uint8Array.from(store.keys, (k) => (trusted.has(k) ? 0 : 1)), relabel: new Map() });
  await writeCsvAtomic(join(data, 'poison-manifest.csv'), ['key', 'poisoned', 'original_label'], manifest);

  const rows: EpochRow[] = [];
  const plan = [6, 4, 4];
  let e = 0;
  plan.forEach((epochs, round) => {
    for (let epoch = 0; epoch < epochs; epoch++, e++) {
      const adversarial = round === 0 || epoch === 0;
      rows.push({
        round, epoch, adversarialShare: adversarial ? 1 : 0, adversarialBatches: adversarial ? 4 : 0,
        trusted: [0.1, 0.5, 0.7][round] * o.samples, samples: [0.1, 0.5, 0.7][round] * o.samples,
        loss: 2 / (1 + e), flipRate: adversarial ? 0.8 - 0.04 * e : null, concentration: adversarial ? 0.7 - 0.05 * e : null,
        concentrationClass: adversarial ? (e < 3 ? 0 : 4) : null, seconds: 2 + rand(), acc: 0.7 + 0.01 * e, asr: e === 0 ? 0.5 : 0.03,
      });
    }
  });
  await writeMetrics(dir, rows);

  const badSamples = o.badSamples ?? 2;
  await writeCsvAtomic(join(dir, 'bad-samples.csv'), ['url', 'key', 'reason'], Array.from({ length: badSamples }, (_, i) => ({ url: `${data}/train-000000.tar`, key: `broken-${i}`, reason: 'cannot decode: not a PNG <b>' })));

  const image = (bright: boolean) => {
    const pixels = new Float32Array(28 * 28).map(() => 0.3 * rand());
    if (bright) for (let y = 24; y < 28; y++) for (let x = 24; x < 28; x++) pixels[y * 28 + x] = 1;
    return { pixels, height: 28, width: 28, channels: 1 };
  };
  const top = order.slice().reverse().slice(0, o.suspiciousImages ?? 40);
  const images: ReportImages = {
    suspicious: top.map((i) => ({ key: store.keys[i], url: store.urls[i], suspicion: 1 - sims[i], trusted: trusted.has(store.keys[i]), label: store.givenLabel(i) ?? null, pseudoLabel: store.pseudoAt(i), png: pngDataUrl(image(poisoned[i])) })),
    adversarial: {
      eps: 0.05,
      steps: 7,
      examples: Array.from({ length: o.adversarialImages ?? 6 }, (_, j) => {
        const original = image(false);
        const adv = { ...original, pixels: original.pixels.map((v) => v + (rand() < 0.5 ? -0.05 : 0.05)) };
        const diff = differenceImage(adv, original);
        return { key: store.keys[order[j]], label: j % classes, infectedPrediction: j % classes, adversarialPrediction: 0, purifiedPrediction: j % classes, original: pngDataUrl(original), adversarial: pngDataUrl(adv), difference: pngDataUrl(diff.image), differenceScale: diff.scale };
      }),
    },
  };
  await writeReportImages(dir, images);
  const probe = [0.02, 0.05, 0.1].map((eps, k) => ({ eps, flipRate: 0.3 + 0.3 * k, concentration: 0.7, concentrationClass: 0, flippedTo: [70, 3, 5, 2, 6, 2, 6, 2, 2, 2] }));
  await writeRunJson(dir, {
    command: 'purify',
    args: { model: join(root, 'infected'), data: [`${data}/train-*.tar`], out: dir, preset: 'fashion-mnist', evalData: ['test-*.tar'], evalAttack: 'blend', target: 0, evalSamples: 300 },
    preset: 'fashion-mnist',
    config: { labels: 'pseudo', pgd: { eps: 'auto', steps: 7 }, controller: { cleanConcentration: 0.35 } },
    backend: { name: 'wasm' },
    versions: { node: process.version, tfjs: '4.22.0' },
    status: 'complete',
    startedAt: '2026-11-29T12:00:00.000Z',
    eps: 0.05,
    epsReason: 'the smallest eps of the grid that flips at least 50% of predictions',
    lr: 0.01,
    probe,
    pipeline: 'tar(2 shards) -> decode -> batch(128)',
    samples: o.samples,
    trusted: trusted.size,
    badSamples,
    before: { acc: 0.88, asr: 0.98 },
    after: { acc: 0.86, asr: 0.03 },
    seconds: 120,
  });
  return { dir, manifest: join(data, 'poison-manifest.csv'), poisoned: poisoned.filter(Boolean).length };
}
