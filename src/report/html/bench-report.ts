import { writeFileAtomic } from '../../pipeline/atomic-write.js';
import { groupedBarChart, renderChart } from './charts.js';
import { escapeHtml, figure, figureRow, htmlPage, pct, section, table } from './page.js';

/**
 * bench.html for `pbe bench`: the attacks × defenses × seeds table and ACC / ASR per attack and defense (mean over
 * seeds, bars from the lowest to the highest seed).
 *
 *   await writeBenchReport('bench/out/bench.html', rows, { title: 'Fashion-MNIST, cnn-small', command: 'pbe bench …' });
 */
export interface BenchRow {
  attack: string;
  defense: string;
  seed: number;
  /** Clean accuracy and attack success rate of the defended model, in [0, 1]; null where not measured. */
  acc: number | null;
  asr: number | null;
  /** Further columns (seconds, detection precision…) are shown in the table as they come. */
  [column: string]: unknown;
}

export interface BenchPageOptions {
  title?: string;
  /** The command that produced the rows, shown on the page. */
  command?: string;
}

export async function writeBenchReport(path: string, rows: BenchRow[], opts: BenchPageOptions = {}): Promise<string> {
  await writeFileAtomic(path, await benchReportHtml(rows, opts));
  return path;
}

export async function benchReportHtml(rows: BenchRow[], opts: BenchPageOptions = {}): Promise<string> {
  const groups = summarize(rows);
  const charts: string[] = [];
  for (const [metric, label, axis] of [['acc', 'clean accuracy (ACC)', 'ACC'], ['asr', 'attack success rate (ASR)', 'ASR']] as const) {
    const bars = groups.filter((g) => g[metric].mean !== null).map((g) => ({ x: g.attack, series: g.defense, value: g[metric].mean!, low: g[metric].min!, high: g[metric].max! }));
    if (!bars.length) continue;
    const id = `bench-${metric}`;
    charts.push(figure(id, await renderChart(id, groupedBarChart({ title: `${label} by attack and defense`, xTitle: 'attack', yTitle: axis, bars, yDomain: [0, 1], yFormat: '.0%' }))));
  }
  const summaryTable = table(
    ['attack', 'defense', 'seeds', 'ACC mean', 'ACC range', 'ASR mean', 'ASR range'],
    groups.map((g) => [escapeHtml(g.attack), escapeHtml(g.defense), String(g.seeds), pct(g.acc.mean), range(g.acc), pct(g.asr.mean), range(g.asr)]),
    { numeric: [2, 3, 4, 5, 6] },
  );
  const columns = ['attack', 'defense', 'seed', 'acc', 'asr', ...new Set(rows.flatMap((r) => Object.keys(r)).filter((k) => !['attack', 'defense', 'seed', 'acc', 'asr'].includes(k)))];
  const fullTable = table(
    columns,
    sortRows(rows).map((r) => columns.map((c) => escapeHtml(cell(c, r[c])))),
    { numeric: columns.map((c, i) => (typeof rows.find((r) => r[c] !== null && r[c] !== undefined)?.[c] === 'number' ? i : -1)).filter((i) => i >= 0) },
  );
  return htmlPage({
    title: opts.title ?? 'pbe bench',
    subtitle: opts.command,
    sections: [
      section('charts', 'ACC and ASR per attack and defense', rows.length ? figureRow(charts) + summaryTable : '<p class="muted">No rows.</p>'),
      section('table', 'Every run', fullTable),
    ],
  });
}

interface Stat {
  mean: number | null;
  min: number | null;
  max: number | null;
}

function summarize(rows: BenchRow[]) {
  const byKey = new Map<string, BenchRow[]>();
  for (const r of sortRows(rows)) {
    const key = JSON.stringify([r.attack, r.defense]);
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  return [...byKey.values()].map((rs) => ({ attack: rs[0].attack, defense: rs[0].defense, seeds: rs.length, acc: stat(rs.map((r) => r.acc)), asr: stat(rs.map((r) => r.asr)) }));
}

function stat(values: (number | null)[]): Stat {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (!v.length) return { mean: null, min: null, max: null };
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v) };
}

function range(s: Stat): string {
  return s.min === null || s.min === s.max ? '' : `${pct(s.min)} – ${pct(s.max)}`;
}

function sortRows(rows: BenchRow[]): BenchRow[] {
  return [...rows].sort((a, b) => a.attack.localeCompare(b.attack) || a.defense.localeCompare(b.defense) || a.seed - b.seed);
}

function cell(column: string, v: unknown): string {
  if (v === null || v === undefined) return '–';
  if ((column === 'acc' || column === 'asr') && typeof v === 'number') return pct(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
