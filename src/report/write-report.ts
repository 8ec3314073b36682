import type * as tf from '@tensorflow/tfjs';
import type { Corpus } from '../pipeline/corpus.js';
import { loadModel } from '../models/io.js';
import type { ScoreStore } from '../pipeline/score-store.js';
import { writeRunReport } from './html/run-report.js';
import { collectReportImages, writeReportImages } from './report-images.js';

/**
 * The end of `pbe purify`: saves the report's images (report-images.json) and builds report.html. A failure here
 * is logged and does not fail the run, whose model, scores and run.json are written already; `pbe report RUN_DIR`
 * rebuilds the page later.
 */
export async function writePurifyReport(
  dir: string,
  o: {
    corpus: Corpus;
    store: ScoreStore;
    trusted: ReadonlySet<string>;
    /** Where the infected model is read from again: the adversarial examples shown are against it. */
    infectedModel: string;
    purified: tf.LayersModel;
    pgd: { eps: number; alphaRatio: number; steps: number };
    log: (message: string, fields?: Record<string, unknown>) => void;
  },
): Promise<void> {
  const started = performance.now();
  try {
    const infected = await loadModel(o.infectedModel);
    try {
      await writeReportImages(dir, await collectReportImages({ ...o, infected }));
    } finally {
      infected.dispose();
    }
    const path = await writeRunReport(dir);
    o.log(`report written to ${path}`, { seconds: (performance.now() - started) / 1000 });
  } catch (err) {
    o.log(`report.html not written: ${(err as Error).message}; rebuild it with pbe report ${dir}`);
  }
}
