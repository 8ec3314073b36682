/**
 * Page assembly for the HTML reports: one self-contained file (inline CSS, SVG charts and PNG data URLs, no
 * script, no network), readable on a laptop screen and printable.
 *
 *   const html = htmlPage({ title: 'pbe purify', subtitle: 'runs/x', sections: [section('Verdict', verdict)] });
 */
export function escapeHtml(text: unknown): string {
  return String(text ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export interface Section {
  id: string;
  title: string;
  body: string;
}

export function section(id: string, title: string, body: string): Section {
  return { id, title, body };
}

export function htmlPage(o: { title: string; subtitle?: string; sections: Section[]; footer?: string }): string {
  const nav = o.sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join('');
  const body = o.sections.map((s) => `<section id="${s.id}"><h2>${escapeHtml(s.title)}</h2>\n${s.body}\n</section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(o.title)}</title>
<style>${css}</style>
</head>
<body>
<header><h1>${escapeHtml(o.title)}</h1>${o.subtitle ? `<p class="subtitle">${escapeHtml(o.subtitle)}</p>` : ''}<nav>${nav}</nav></header>
<main>
${body}
</main>
<footer>${o.footer ?? ''}</footer>
</body>
</html>
`;
}

/** A table; cells are HTML already (escape text with escapeHtml). Numeric columns align right. */
export function table(headers: string[], rows: string[][], opts: { numeric?: number[]; className?: string } = {}): string {
  const numeric = new Set(opts.numeric ?? []);
  const cell = (tag: string, c: string, i: number) => `<${tag}${numeric.has(i) ? ' class="num"' : ''}>${c}</${tag}>`;
  return `<table${opts.className ? ` class="${opts.className}"` : ''}><thead><tr>${headers.map((h, i) => cell('th', escapeHtml(h), i)).join('')}</tr></thead>
<tbody>${rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}</tbody></table>`;
}

/** A definition list of label → value (HTML). */
export function facts(items: [string, string][]): string {
  return `<dl class="facts">${items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

export type Tone = 'good' | 'bad' | 'warn' | 'info';

/** The page's answer in one box: a headline and the sentences behind it. */
export function verdict(tone: Tone, headline: string, lines: string[]): string {
  return `<div class="verdict ${tone}" data-verdict="${tone}"><p class="headline">${escapeHtml(headline)}</p>${lines.map((l) => `<p>${l}</p>`).join('')}</div>`;
}

/** A row of figures (charts) that wraps on narrow screens. */
export function figureRow(figures: string[]): string {
  return `<div class="figures">${figures.join('\n')}</div>`;
}

export function figure(id: string, svg: string, caption?: string): string {
  return `<figure class="chart" data-chart="${id}">${svg}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>`;
}

export function details(summary: string, body: string): string {
  return `<details><summary>${escapeHtml(summary)}</summary>${body}</details>`;
}

export const pct = (v: number | null | undefined, digits = 1): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(digits)}%`);

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const css = `
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #dadce0; --good: #137333; --bad: #b3261e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fafafa; }
header { padding: 18px 28px 8px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 22px; }
.subtitle { margin: 2px 0 8px; color: var(--muted); font-family: ui-monospace, monospace; font-size: 13px; word-break: break-all; }
nav a { margin-right: 14px; font-size: 13px; color: #1a73e8; text-decoration: none; }
main { max-width: 1180px; padding: 8px 28px 28px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 18px 16px; margin: 16px 0; }
h2 { font-size: 17px; margin: 4px 0 10px; }
p { margin: 6px 0; max-width: 900px; }
.verdict { border-left: 6px solid; padding: 8px 14px; border-radius: 4px; }
.verdict.good { border-color: var(--good); background: #e6f4ea; }
.verdict.bad { border-color: var(--bad); background: #fce8e6; }
.verdict.warn { border-color: var(--warn); background: #fef7e0; }
.verdict.info { border-color: #1a73e8; background: #e8f0fe; }
.verdict .headline { font-size: 19px; font-weight: 600; margin: 2px 0 6px; }
.figures { display: flex; flex-wrap: wrap; gap: 14px 22px; align-items: flex-start; }
figure { margin: 0; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: var(--muted); max-width: 420px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; margin: 6px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 8px; border-radius: 4px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { width: 104px; font-size: 11px; text-align: center; }
.tile img { width: 84px; height: 84px; image-rendering: pixelated; border: 3px solid #ccc; border-radius: 3px; background: #000; }
.tile.poisoned img { border-color: #d62728; }
.tile.clean img { border-color: #1f77b4; }
.tile .key { font-family: ui-monospace, monospace; word-break: break-all; color: var(--muted); }
.triplets { display: flex; flex-wrap: wrap; gap: 12px 28px; }
.triplet { display: flex; gap: 6px; padding: 6px; border: 1px solid var(--line); border-radius: 4px; }
.legend-swatch { display: inline-block; width: 11px; height: 11px; border: 3px solid; border-radius: 2px; vertical-align: -1px; }
.muted { color: var(--muted); font-size: 13px; }
.good { color: var(--good); } .bad { color: var(--bad); }
details summary { cursor: pointer; color: #1a73e8; font-size: 13px; margin: 6px 0; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
@media print {
  body { background: #fff; font-size: 12px; }
  header nav, details summary { display: none; }
  details > * { display: block; }
  section { break-inside: avoid-page; border: none; padding: 0; margin: 10px 0; }
  main { padding: 0 8px; }
}
`;
