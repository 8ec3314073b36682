import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { writeCsvAtomic } from '../report/csv.js';
import { writeBenchReport, type BenchRow } from '../report/html/bench-report.js';
import { attackNames } from '../attacks/registry.js';
import { defenseNames } from '../defenses/registry.js';
import type { CellResult } from './cell.js';
import type { BenchModel } from './models.js';

/**
 * bench.csv (one row per attack, defense and seed, plus each infected model as defense "none" and the clean
 * reference model as attack "clean"), bench.md (per attack: the infected model, then each defense as mean ± sd
 * over seeds) and bench.html, rebuilt from the cached results after every cell.
 */
export interface BenchTables {
  models: BenchModel[];
  cells: CellResult[];
  /** Heading lines: the data, the training, the command. */
  about: string[];
  command: string;
}

export const benchColumns = ['attack', 'defense', 'seed', 'data', 'acc', 'asr', 'seconds', 'auroc', 'ap', 'flagged', 'precision', 'recall', 'infected_acc', 'infected_asr', 'run'];

export async function writeBenchTables(out: string, t: BenchTables): Promise<void> {
  const rows = benchRows(t);
  await writeCsvAtomic(join(out, 'bench.csv'), benchColumns, rows);
  await writeFileAtomic(join(out, 'bench.md'), benchMarkdown(t));
  await writeBenchReport(join(out, 'bench.html'), rows as BenchRow[], { title: 'pbe bench', command: t.command });
}

export function benchRows({ models, cells }: Pick<BenchTables, 'models' | 'cells'>): Record<string, unknown>[] {
  const infected = (attack: string, seed: number) => models.find((m) => m.name === attack && m.seed === seed);
  const modelRows = models.map((m) => ({ attack: m.name, defense: 'none', seed: m.seed, data: 'none', acc: m.acc, asr: m.asr, seconds: m.seconds, run: m.model }));
  const cellRows = cells.map((c) => ({ ...c, infected_acc: infected(c.attack, c.seed)?.acc, infected_asr: infected(c.attack, c.seed)?.asr }));
  return [...modelRows, ...cellRows];
}

export function benchMarkdown({ models, cells, about, command }: BenchTables): string {
  const seeds = [...new Set([...models, ...cells].map((r) => r.seed))].sort((a, b) => a - b);
  const defenses = [...new Set(cells.map((c) => c.defense))].sort((a, b) => registryOrder(defenseNames, a) - registryOrder(defenseNames, b));
  const attacks = [...new Set(models.filter((m) => m.name !== 'clean').map((m) => m.name))].sort((a, b) => registryOrder(attackNames, a) - registryOrder(attackNames, b));
  const lines = ['# pbe bench', '', ...about.map((a) => `- ${a}`), `- seeds: ${seeds.join(', ')}; ACC and ASR on the test set, mean ± sd over seeds`, '', '```', command, '```', ''];
  const clean = models.filter((m) => m.name === 'clean');
  if (clean.length) lines.push(`Model trained on the clean data: ACC ${meanSd(clean.map((m) => m.acc))}.`, '');

  lines.push('## ASR after each defense (ACC in brackets)', '');
  lines.push(`| attack | infected | ${defenses.join(' | ')} |`, `|---|---|${defenses.map(() => '---|').join('')}`);
  for (const attack of attacks) {
    const inf = models.filter((m) => m.name === attack);
    const cellsOf = (d: string) => cells.filter((c) => c.attack === attack && c.defense === d);
    const entry = (rs: { acc: number; asr: number | null }[]) => (rs.length ? `${meanSd(rs.map((r) => r.asr))} (${meanSd(rs.map((r) => r.acc))})` : '–');
    lines.push(`| ${attack} | ${entry(inf)} | ${defenses.map((d) => entry(cellsOf(d))).join(' | ')} |`);
  }
  lines.push('', '## Mean over attacks', '', '| defense | data | attacks | mean ASR | mean ACC | mean ACC drop | minutes per run |', '|---|---|---|---|---|---|---|');
  for (const d of defenses) {
    const rs = cells.filter((c) => c.defense === d);
    const drops = rs.flatMap((c) => {
      const m = models.find((x) => x.name === c.attack && x.seed === c.seed);
      return m ? [m.acc - c.acc] : [];
    });
    lines.push(`| ${d} | ${rs[0].data} | ${new Set(rs.map((c) => c.attack)).size} | ${pct(mean(rs.map((c) => c.asr)))} | ${pct(mean(rs.map((c) => c.acc)))} | ${pct(mean(drops))} | ${(mean(rs.map((c) => c.seconds))! / 60).toFixed(1)} |`);
  }
  const scored = cells.filter((c) => c.auroc !== null);
  if (scored.length) {
    lines.push('', '## Poisoned-sample detection (defenses that score the given data)', '', '| attack | defense | seed | AUROC | AP | flagged | precision | recall |', '|---|---|---|---|---|---|---|---|');
    for (const c of scored) lines.push(`| ${c.attack} | ${c.defense} | ${c.seed} | ${c.auroc!.toFixed(3)} | ${c.ap!.toFixed(3)} | ${c.flagged} | ${pct(c.precision)} | ${pct(c.recall)} |`);
  }
  lines.push('', 'data: none = the given (poisoned) training data only; clean = a clean extra set held back from the training data.', '');
  return lines.join('\n');
}

/** Every cached result under `out` (models/*\/complete.json, cells/*.json). */
export async function readCached(out: string): Promise<{ models: BenchModel[]; cells: CellResult[] }> {
  const models: BenchModel[] = [];
  if (existsSync(join(out, 'models'))) {
    for (const dir of await readdir(join(out, 'models'))) {
      const marker = join(out, 'models', dir, 'complete.json');
      if (existsSync(marker)) models.push(JSON.parse(await readFile(marker, 'utf8')));
    }
  }
  const cells: CellResult[] = [];
  if (existsSync(join(out, 'cells'))) {
    for (const file of (await readdir(join(out, 'cells'))).filter((f) => f.endsWith('.json'))) cells.push(JSON.parse(await readFile(join(out, 'cells', file), 'utf8')));
  }
  return { models, cells };
}

function mean(values: (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function meanSd(values: (number | null)[]): string {
  const v = values.filter((x): x is number => x !== null);
  const m = mean(v);
  if (m === null) return '–';
  if (v.length < 2) return pct(m);
  const sd = Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1));
  return `${pct(m)} ± ${(sd * 100).toFixed(1)}`;
}

function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : (v * 100).toFixed(1);
}

/** Rows and columns in the registries' order (names a registry does not know last). */
function registryOrder(names: readonly string[], name: string): number {
  const i = names.indexOf(name);
  return i < 0 ? names.length : i;
}
