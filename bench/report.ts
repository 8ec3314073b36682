/**
 * How long report.html takes to build for a 60,000-sample run and how much it weighs. The run directory is made
 * up (test/helpers/run-fixture.ts: the run's own writers, 60,000 scores, a poison manifest, 40 + 3x6 images); the
 * build reads it from files as `pbe report` does. Prints the median of 5 builds. Run with `npm run bench:report`.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeRunReport } from '../src/report/html/run-report.js';
import { writeRunFixture } from '../test/helpers/run-fixture.js';

const samples = Number(process.argv[2] ?? 60_000);
const root = join('bench/out', `report-${samples}`);
const { dir } = await writeRunFixture(root, { samples });
const times: number[] = [];
let path = '';
for (let i = 0; i < 5; i++) {
  const started = performance.now();
  path = await writeRunReport(dir);
  times.push((performance.now() - started) / 1000);
}
times.sort((a, b) => a - b);
const bytes = (await stat(path)).size;
console.log(`report.html for ${samples} samples: median ${times[2].toFixed(2)} s over 5 builds (min ${times[0].toFixed(2)}, max ${times[4].toFixed(2)}), ${(bytes / 1e6).toFixed(2)} MB (${path})`);
