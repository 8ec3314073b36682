import type { Command } from 'commander';
import { writeRunReport } from '../report/html/run-report.js';

interface ReportCliOptions {
  poisonManifest?: string;
  out?: string;
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('(re)build report.html of a run directory from its files alone (run.json, metrics.csv, scores.csv, bad-samples.csv, report-images.json)')
    .argument('<run-dir>', 'run directory written by pbe purify')
    .option('--poison-manifest <file>', 'ground truth (key,poisoned) to split the scores by; default: poison-manifest.csv beside the run\'s local data, if any')
    .option('--out <file>', 'where to write the page (default: RUN_DIR/report.html)')
    .action(async (dir: string, o: ReportCliOptions) => {
      const path = await reportCommand(dir, o);
      process.stdout.write(`${path}\n`);
    });
}

export async function reportCommand(dir: string, o: ReportCliOptions = {}): Promise<string> {
  return writeRunReport(dir, { manifest: o.poisonManifest, out: o.out });
}
