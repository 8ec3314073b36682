import { readFile } from 'node:fs/promises';
import { inputError } from '../../errors.js';
import { minFlipsForSignal, type InspectResult } from '../../eval/inspect.js';
import { writeFileAtomic } from '../../pipeline/atomic-write.js';
import { barChart, renderChart } from './charts.js';
import { imageTile, pngDataUrl, type Pixels } from './images.js';
import { escapeHtml, facts, figure, figureRow, htmlPage, pct, section, table, verdict } from './page.js';

/**
 * The page for `pbe inspect`'s verdict: is the model backdoored, and towards which class, with the per-class
 * bar chart of where PGD flips land and any recovered trigger images (mask, pattern…) with their captions.
 *
 *   await writeInspectReport('inspect.html', result, { model: 'infected/', data: ['d/*.tar'], images: [{ caption: 'mask, class 0', path: 'out/mask-0.png' }] });
 */
export type CaptionedImage = { caption: string } & ({ path: string } | { pixels: Pixels } | { png: string });

export interface InspectPageOptions {
  model: string;
  data: string[];
  images?: CaptionedImage[];
  /** Class names by index, where known. */
  classNames?: string[];
}

export async function writeInspectReport(path: string, result: InspectResult, opts: InspectPageOptions): Promise<string> {
  await writeFileAtomic(path, await inspectReportHtml(result, opts));
  return path;
}

export async function inspectReportHtml(r: InspectResult, opts: InspectPageOptions): Promise<string> {
  const name = (c: number) => (opts.classNames?.[c] ? `${c} (${opts.classNames[c]})` : String(c));
  const at = r.points.find((p) => p.eps === r.eps) ?? r.points[r.points.length - 1];
  const tone = r.suspected ? 'bad' : r.flips < minFlipsForSignal && !r.inversion ? 'info' : 'good';
  const recovered = r.inversion?.trigger;
  const headline = r.suspected
    ? `Backdoor suspected, likely target class ${name(r.target ?? r.likelyTarget)}`
    : r.flips < minFlipsForSignal && !r.inversion
      ? 'No backdoor signal: the model resists these perturbations'
      : 'No backdoor found';
  const lines = [
    r.inversion
      ? recovered
        ? `Trigger inversion: class ${escapeHtml(name(recovered.target))} needs a trigger of only <strong>${recovered.maskL1.toFixed(1)} pixels</strong> (anomaly index ${r.inversion.classes[recovered.target].anomaly.toFixed(2)}, other classes need ${Math.round(Math.min(...r.inversion.classes.filter((c) => c.target !== recovered.target).map((c) => c.maskL1)))} or more); it sends ${pct(recovered.success)} of the other images there.`
        : `Trigger inversion: no class's trigger is an outlier by size (largest anomaly index ${Math.max(...r.inversion.classes.map((c) => c.anomaly)).toFixed(2)}).`
      : 'Trigger inversion was not run.',
    r.flips < minFlipsForSignal
      ? `PGD flipped only ${r.flips} of ${r.samples} predictions even at eps ${r.eps}; fewer than ${minFlipsForSignal} flips say nothing about where they go.`
      : `At eps ${r.eps}, PGD flipped ${r.flips} of ${r.samples} predictions and <strong>${pct(r.concentration)} of the flips went to class ${escapeHtml(name(r.likelyTarget))}</strong> (threshold ${pct(r.threshold)}).`,
    'A backdoored model pulls untargeted adversarial examples towards its target class (blended triggers), and its target needs an anomalously small inverted trigger (patch triggers, which hide from PGD).',
  ];
  const sections = [section('verdict', 'Verdict', verdict(tone, headline, lines))];

  const figures: string[] = [];
  if (at?.flippedTo?.length) {
    const total = at.flippedTo.reduce((a, b) => a + b, 0) || 1;
    const id = 'class-concentration';
    figures.push(
      figure(
        id,
        await renderChart(
          id,
          barChart({
            title: `Where PGD flips land (eps ${at.eps})`,
            xTitle: 'class the adversarial example is predicted as',
            yTitle: 'share of flips',
            bars: at.flippedTo.map((n, c) => ({ label: String(c), value: n / total, highlight: c === at.concentrationClass })),
            legend: ['other classes', 'most frequent class'],
            threshold: { y: r.threshold, label: `threshold ${pct(r.threshold, 0)}` },
            yDomain: [0, 1],
            yFormat: '.0%',
          }),
        ),
      ),
    );
  }
  const probeTable = table(
    ['eps', 'predictions flipped', 'most flips go to', 'share of flips'],
    r.points.map((p) => [p.eps === r.eps ? `<strong>${p.eps}</strong> (chosen)` : String(p.eps), pct(p.flipRate), escapeHtml(name(p.concentrationClass)), pct(p.concentration)]),
    { numeric: [1, 3] },
  );
  sections.push(section('concentration', 'Adversarial target concentration', figureRow(figures) + probeTable));
  if (r.inversion) {
    const inv = r.inversion;
    const id = 'inversion-mask-size';
    const chart = await renderChart(
      id,
      barChart({
        title: 'Smallest inverted trigger per class (mask L1)',
        xTitle: 'class',
        yTitle: 'mask L1 (pixels)',
        bars: inv.classes.map((c) => ({ label: String(c.target), value: c.maskL1, highlight: c.target === recovered?.target })),
        legend: ['other classes', 'flagged class'],
      }),
    );
    const inversionTable = table(
      ['class', 'mask L1', 'success', 'anomaly index'],
      inv.classes.map((c) => [escapeHtml(name(c.target)), c.maskL1.toFixed(1), pct(c.success), c.anomaly.toFixed(2)]),
      { numeric: [1, 2, 3] },
    );
    sections.push(section('inversion', 'Trigger inversion', figureRow([figure(id, chart)]) + inversionTable));
  }

  if (opts.images?.length) {
    const tiles = await Promise.all(opts.images.map(async (im) => imageTile(await dataUrl(im), im.caption, [escapeHtml(im.caption)])));
    sections.push(section('trigger', 'Recovered trigger', `<div class="grid" data-grid="trigger">${tiles.join('\n')}</div>`));
  }
  sections.push(section('inputs', 'Inputs', facts([['model', `<code>${escapeHtml(opts.model)}</code>`], ['data', `<code>${escapeHtml(opts.data.join(' '))}</code>`], ['images probed', String(r.samples)]])));
  return htmlPage({ title: 'pbe inspect report', subtitle: opts.model, sections });
}

async function dataUrl(im: CaptionedImage): Promise<string> {
  if ('png' in im) return im.png;
  if ('pixels' in im) return pngDataUrl(im.pixels);
  try {
    return `data:image/png;base64,${(await readFile(im.path)).toString('base64')}`;
  } catch (err) {
    throw inputError({ url: im.path }, `cannot read the image "${im.caption}" (${(err as Error).message})`, err);
  }
}
