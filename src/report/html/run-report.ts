import { join } from 'node:path';
import type { EpochRow } from '../../pipeline/engine.js';
import { detectionMetrics, type DetectionResult } from '../../eval/detection.js';
import { rocCurve, type RocResult } from '../../eval/roc.js';
import { writeFileAtomic } from '../../pipeline/atomic-write.js';
import { FASHION_MNIST_CLASSES } from '../../sources/fashion-mnist.js';
import { barChart, epochChart, histogramChart, renderChart, rocChart, type Marker, type Series } from './charts.js';
import { imageTile } from './images.js';
import { details, escapeHtml, facts, figure, figureRow, htmlPage, pct, seconds, section, table, verdict, type Section, type Tone } from './page.js';
import { readRunData, type RunData, type ScoreColumns } from './run-data.js';

/**
 * The run report (report.html): what a purification run did and found, from its run directory's files alone.
 *
 *   await writeRunReport('runs/x');                                  // runs/x/report.html
 *   await writeRunReport('runs/x', { manifest: 'poisoned/poison-manifest.csv' });
 */
export const runReportFile = 'report.html';

/** ASR at or below this after purification reads as "removed"; below half of the infected ASR as "weakened". */
export const removedAsr = 0.1;

export async function writeRunReport(dir: string, opts: { manifest?: string; out?: string } = {}): Promise<string> {
  const html = await runReportHtml(await readRunData(dir, opts));
  const out = opts.out ?? join(dir, runReportFile);
  await writeFileAtomic(out, html);
  return out;
}

export async function runReportHtml(run: RunData): Promise<string> {
  const ctx = context(run);
  const sections: Section[] = [
    section('summary', 'Summary', summary(run, ctx)),
    section('found', 'What the method found and chose', await found(run, ctx)),
    section('epochs', 'Over the epochs', await epochCharts(run, ctx)),
    section('scores', 'Suspicion scores', await scoreSection(run, ctx)),
    section('flagged', 'Most suspicious images', flaggedImages(run, ctx)),
    section('adversarial', 'Adversarial examples', adversarialImages(run, ctx)),
    section('bad-samples', 'Bad samples', badSamples(run)),
    section('run', 'The run: command, configuration, time', runFacts(run)),
  ];
  const status = run.info.status ?? 'unknown';
  return htmlPage({
    title: `pbe ${run.info.command ?? 'purify'} report`,
    subtitle: `${run.dir} · ${status}${run.info.startedAt ? ` · started ${run.info.startedAt}` : ''}`,
    sections,
    footer: `Built by <code>pbe report</code> from ${escapeHtml(run.dir)} (run.json, metrics.csv, scores.csv, bad-samples.csv, report-images.json${run.manifest ? `, ${escapeHtml(run.manifest.path)}` : ''}). Rebuild with <code>pbe report ${escapeHtml(run.dir)}</code>.`,
  });
}

interface Context {
  names?: string[];
  /** config.controller.cleanConcentration: q of a clean model. */
  cleanConcentration?: number;
  className: (c: number | null | undefined) => string;
  flaggedKeys?: Set<string>;
  detection?: DetectionResult;
  roc?: RocResult;
  target?: number;
}

function context(run: RunData): Context {
  const names = run.info.preset === 'fashion-mnist' ? FASHION_MNIST_CLASSES : undefined;
  const className = (c: number | null | undefined) => (c === null || c === undefined ? '–' : names?.[c] ? `${c} (${names[c]})` : `${c}`);
  const ctx: Context = { names, className, target: typeof run.info.args?.target === 'number' && run.info.args?.evalAttack ? (run.info.args.target as number) : undefined };
  ctx.cleanConcentration = (run.info.config as { controller?: { cleanConcentration?: number } } | undefined)?.controller?.cleanConcentration;
  const { scores, manifest } = run;
  if (scores) ctx.flaggedKeys = new Set(scores.keys.filter((_, i) => scores.flagged[i]));
  if (scores && manifest) {
    ctx.detection = detectionMetrics(new Map(scores.keys.map((k, i) => [k, scores.flagged[i] === 1])), manifest.poisoned);
    const known = Array.from(scores.keys.keys()).filter((i) => manifest.poisoned.has(scores.keys[i]));
    ctx.roc = rocCurve(known.map((i) => scores.suspicion[i]), known.map((i) => manifest.poisoned.get(scores.keys[i])!));
  }
  return ctx;
}

function summary(run: RunData, ctx: Context): string {
  const { info, metrics } = run;
  const before = info.before ?? undefined;
  const after = info.after ?? undefined;
  const lines: string[] = [];
  let tone: Tone = 'info';
  let headline: string;
  const attack = info.args?.evalAttack ? `${escapeHtml(info.args.evalAttack)} trigger, target class ${escapeHtml(ctx.className(ctx.target))}` : undefined;
  if (before?.asr !== undefined && after?.asr !== undefined) {
    if (after.asr <= removedAsr) [tone, headline] = ['good', `Backdoor removed: attack success rate ${pct(before.asr)} → ${pct(after.asr)}`];
    else if (after.asr < before.asr / 2) [tone, headline] = ['warn', `Backdoor weakened, not removed: attack success rate ${pct(before.asr)} → ${pct(after.asr)}`];
    else [tone, headline] = ['bad', `Backdoor not removed: attack success rate ${pct(before.asr)} → ${pct(after.asr)}`];
    lines.push(`Measured on ${escapeHtml(info.args?.evalSamples ?? '')} labelled test images (<code>--eval-data</code>) with the ${attack}: the share of triggered images (true class ≠ target) classified as the target.`);
  } else if (after?.acc !== undefined) {
    headline = 'Attack success rate not measured (no --eval-attack)';
  } else {
    headline = info.status === 'complete' ? 'Purification finished; its effect on the backdoor was not measured' : `Run ${info.status ?? 'incomplete'}: the report shows what was written so far`;
    tone = info.status === 'complete' ? 'info' : 'warn';
    lines.push('No labelled test set was given (<code>--eval-data</code>, <code>--eval-attack</code>), so ASR and clean accuracy are unknown. The adversarial target concentration below is the data-free signal: it falls towards a clean model’s level as the backdoor is erased.');
  }
  if (before?.acc !== undefined && after?.acc !== undefined) {
    const drop = before.acc - after.acc;
    lines.push(`Clean accuracy ${pct(before.acc)} → ${pct(after.acc)} <span class="${drop > 0.05 ? 'bad' : 'good'}">(${drop >= 0 ? '−' : '+'}${(Math.abs(drop) * 100).toFixed(1)} points)</span>.`);
  }
  const withQ = metrics.filter((m) => m.concentration !== null);
  const probe = info.probe?.find((p) => p.eps === info.eps);
  if (probe && withQ.length) {
    const last = withQ[withQ.length - 1];
    lines.push(`Adversarial target concentration: on the infected model ${pct(probe.concentration)} of PGD flips went to class ${escapeHtml(ctx.className(probe.concentrationClass))}; on the model being purified, in its last adversarial epoch, ${pct(last.concentration)} went to class ${escapeHtml(ctx.className(last.concentrationClass))} ${ctx.cleanConcentration === undefined ? '' : ` (the level taken for a clean model: ${pct(ctx.cleanConcentration, 0)})`}.`);
  }
  if (run.scores) {
    const flagged = ctx.flaggedKeys!.size;
    lines.push(`<strong>${flagged.toLocaleString('en')} of ${run.scores.keys.length.toLocaleString('en')} training images (${pct(flagged / run.scores.keys.length)}) flagged as poisoned</strong> by the run's own threshold${typeof info.flag === 'object' && info.flag && typeof (info.flag as { threshold: unknown }).threshold === 'number' ? ` (suspicion ≥ ${(info.flag as { threshold: number }).threshold.toFixed(3)})` : ''}: <code>scores.csv</code> lists them with <code>flagged = 1</code>; the most suspicious are shown <a href="#flagged">below</a>.`);
  }
  if (ctx.detection && ctx.roc) {
    const d = ctx.detection;
    lines.push(`Against the poison manifest (${escapeHtml(run.manifest!.path)}): ${d.truePositives.toLocaleString('en')} of the ${d.poisoned.toLocaleString('en')} poisoned images flagged (recall ${pct(d.recall)}), precision ${pct(d.precision)}; suspicion AUROC ${ctx.roc.auroc.toFixed(3)}.`);
  }
  if (info.status && info.status !== 'complete') {
    tone = 'warn';
    lines.push(`This run is <strong>${escapeHtml(info.status)}</strong>${info.status === 'stopped' ? `; continue it with <code>pbe purify --resume ${escapeHtml(run.dir)}</code>` : ''}.`);
  }
  const table1 =
    before || after
      ? table(
          ['model', 'clean accuracy (ACC)', 'attack success rate (ASR)'],
          [
            ['infected (given)', pct(before?.acc), pct(before?.asr)],
            ['purified (model/)', pct(after?.acc), pct(after?.asr)],
          ],
          { numeric: [1, 2] },
        )
      : '';
  return verdict(tone, headline, lines) + table1;
}

async function found(run: RunData, ctx: Context): Promise<string> {
  const { info } = run;
  const parts: string[] = [];
  const config = info.config as { pgd?: { steps?: number }; labels?: string } | undefined;
  if (info.eps !== undefined) {
    parts.push(`<p>PGD radius <strong>eps ${info.eps}</strong> (L∞, ${config?.pgd?.steps ?? '?'} steps), learning rate <strong>${info.lr}</strong>, labels: ${escapeHtml(config?.labels ?? '?')}${info.epsReason ? ` (eps ${escapeHtml(info.epsReason)})` : ''}.</p>`);
  }
  const inversion = info.inversion as { reason?: string; trigger?: { target: number; maskL1: number; success: number } | null } | undefined;
  if (inversion?.reason) {
    const generators = Array.isArray(info.generators) ? (info.generators as string[]).join(' + ') : '?';
    parts.push(`<p>Trigger inversion: ${inversion.trigger ? `<strong>recovered a ${inversion.trigger.maskL1.toFixed(1)}-pixel trigger of class ${escapeHtml(ctx.className(inversion.trigger.target))}</strong>` : 'no trigger recovered'} (${escapeHtml(inversion.reason)}). Purified with <strong>${escapeHtml(generators)}</strong>${typeof info.suspects === 'number' && info.suspects > 0 ? `; ${info.suspects} samples that leave the target once the trigger is covered were relabelled` : ''}.</p>`);
  }
  const probe = info.probe ?? [];
  if (probe.length) {
    const at = probe.find((p) => p.eps === info.eps) ?? probe[probe.length - 1];
    parts.push(
      `<p>On the infected model, untargeted PGD at eps ${at.eps} moved ${pct(at.flipRate)} of predictions, and <strong>${pct(at.concentration)} of those flips went to class ${escapeHtml(ctx.className(at.concentrationClass))}</strong>. ` +
        `A backdoored model pulls adversarial examples towards its target class; for a clean model they spread over the classes (no class much above a third).</p>`,
      table(
        ['eps', 'predictions flipped', 'most flips go to', 'share of flips'],
        probe.map((p) => [p.eps === info.eps ? `<strong>${p.eps}</strong> (chosen)` : String(p.eps), pct(p.flipRate), escapeHtml(ctx.className(p.concentrationClass)), pct(p.concentration)]),
        { numeric: [1, 3] },
      ),
    );
    if (at.flippedTo?.length) {
      const total = at.flippedTo.reduce((a, b) => a + b, 0) || 1;
      const svg = await renderChart(
        'probe-classes',
        barChart({
          title: `Where PGD flips land (eps ${at.eps})`,
          xTitle: 'class the adversarial example is predicted as',
          yTitle: 'share of flips',
          bars: at.flippedTo.map((n, c) => ({ label: String(c), value: n / total, highlight: c === at.concentrationClass })),
          legend: ['other classes', 'most frequent class'],
          yDomain: [0, 1],
          yFormat: '.0%',
        }),
      );
      parts.push(figure('probe-classes', svg));
    }
  }
  if (run.images?.recovered?.length) {
    parts.push('<p>Recovered trigger:</p>', `<div class="grid">${run.images.recovered.map((r) => imageTile(r.png, r.caption, [escapeHtml(r.caption)])).join('')}</div>`);
  }
  if (info.pipeline) parts.push(details('the pipeline as it ran', `<pre>${escapeHtml(info.pipeline)}</pre>`));
  return parts.join('\n') || '<p class="muted">run.json records no probe (the run stopped before it).</p>';
}

async function epochCharts(run: RunData, ctx: Context): Promise<string> {
  const rows = run.metrics;
  if (rows.length === 0) return '<p class="muted">No epoch finished yet (metrics.csv is empty or absent).</p>';
  const xs = rows.map((_, i) => i + 1);
  const markers: Marker[] = [];
  rows.forEach((r, i) => {
    if (i === 0 || r.round !== rows[i - 1].round) markers.push({ x: i + 0.5, label: `round ${r.round}` });
  });
  const series = (name: string, pick: (r: EpochRow) => number | null | undefined): Series => ({
    name,
    points: rows.flatMap((r, i) => {
      const y = pick(r);
      return y === null || y === undefined || !Number.isFinite(y) ? [] : [{ x: xs[i], y }];
    }),
  });
  const xTitle = 'epoch (all rounds)';
  const xDomain: [number, number] = [0, rows.length];
  const charts: [string, Parameters<typeof epochChart>[0], string][] = [];
  if (rows.some((r) => r.acc !== undefined || r.asr !== undefined)) {
    const acc = series('ACC (clean accuracy)', (r) => r.acc);
    const asr = series('ASR (attack success rate)', (r) => r.asr);
    if (run.info.before?.acc !== undefined) acc.points.unshift({ x: 0, y: run.info.before.acc });
    if (run.info.before?.asr !== undefined) asr.points.unshift({ x: 0, y: run.info.before.asr });
    charts.push(['acc-asr', { title: 'Clean accuracy and attack success rate', xTitle, yTitle: 'share of test images', series: [acc, asr].filter((s) => s.points.length), markers, yDomain: [0, 1], yFormat: '.0%' }, `Epoch 0 is the infected model. ASR: ${escapeHtml(run.info.args?.evalAttack ?? '')} trigger, target ${escapeHtml(ctx.className(ctx.target))}.`]);
  }
  charts.push(['loss', { title: 'Training loss', xTitle, yTitle: 'cross-entropy', series: [series('loss', (r) => r.loss)], markers }, 'Mean over the epoch’s batches, adversarial ones included.']);
  charts.push([
    'pgd',
    {
      title: 'PGD on the current model',
      xTitle,
      yTitle: 'share',
      series: [series('flip rate', (r) => r.flipRate), series('target concentration q', (r) => r.concentration)].filter((s) => s.points.length),
      markers,
      yDomain: [0, 1],
      yFormat: '.0%',
    },
    'Flip rate: adversarial examples whose prediction moved. q: the largest share of one class among them; it falls as the backdoor is erased (epochs without adversarial batches have none).',
  ]);
  charts.push(['adversarial-share', { title: 'Adversarial share of batches', xTitle, yTitle: 'share of batches', series: [series('adversarial share', (r) => r.adversarialShare)], markers, yDomain: [0, 1], yFormat: '.0%' }, 'The controller’s schedule: the share of each epoch’s batches replaced by PGD examples.']);
  charts.push(['trusted', { title: 'Trusted set', xTitle, yTitle: 'samples trained on', series: [series('trusted samples', (r) => r.trusted)], markers }, 'Each round trains on the samples most similar to the infected model’s view of them (the trusted set), growing round by round.']);
  const figures = await Promise.all(charts.map(async ([id, spec, caption]) => figure(id, await renderChart(id, epochChart({ ...spec, xDomain })), caption)));
  return figureRow(figures);
}

async function scoreSection(run: RunData, ctx: Context): Promise<string> {
  const scores = run.scores;
  if (!scores) return '<p class="muted">No scores.csv (the run did not finish).</p>';
  const flaggedAbove = minFlaggedSuspicion(scores);
  const groups = run.manifest ? ['clean', 'poisoned'] : ['all samples'];
  const groupOf = (i: number) => (run.manifest ? (run.manifest.poisoned.get(scores.keys[i]) ? 'poisoned' : 'clean') : 'all samples');
  const bins = histogram(scores.suspicion, groupOf, groups, 40, run.manifest !== undefined);
  const parts: string[] = [
    `<p>Suspicion of a sample is 1 − cos(infected model’s logits, purified model’s logits): how much purification changed the model’s view of it. Samples above the dashed line are flagged as poisoned (the run’s own threshold: Otsu’s split of the chord distance √(2·suspicion)).${run.manifest ? ' Colours: ground truth from the poison manifest; each group’s bars sum to 100%.' : ' Give <code>pbe report --poison-manifest FILE</code> (or keep <code>poison-manifest.csv</code> beside the data) to split the histogram by ground truth.'}</p>`,
  ];
  const figures = [
    figure(
      'suspicion-histogram',
      await renderChart(
        'suspicion-histogram',
        histogramChart({
          title: 'Suspicion scores',
          xTitle: 'suspicion (1 − similarity)',
          yTitle: run.manifest ? 'share of its group' : 'samples',
          yFormat: run.manifest ? '.0%' : undefined,
          bins,
          groups,
          threshold: flaggedAbove === undefined ? undefined : { x: flaggedAbove, label: 'flagged →' },
          width: 420,
        }),
      ),
    ),
  ];
  if (ctx.roc && ctx.detection) {
    figures.push(figure('roc', await renderChart('roc', rocChart({ title: `ROC of suspicion (AUROC ${ctx.roc.auroc.toFixed(3)})`, points: ctx.roc.points, series: 'suspicion score' }))));
  }
  parts.push(figureRow(figures));
  if (ctx.detection) {
    const d = ctx.detection;
    parts.push(
      table(
        ['flagged', 'poisoned', 'flagged and poisoned', 'precision', 'recall', 'AUROC', 'not in manifest'],
        [[d.flagged, d.poisoned, d.truePositives, pct(d.precision), pct(d.recall), ctx.roc!.auroc.toFixed(3), d.unmatched].map(String)],
        { numeric: [0, 1, 2, 3, 4, 5, 6] },
      ),
    );
  }
  return parts.join('\n');
}

function minFlaggedSuspicion(scores: ScoreColumns): number | undefined {
  let min: number | undefined;
  for (let i = 0; i < scores.keys.length; i++) if (scores.flagged[i] && (min === undefined || scores.suspicion[i] < min)) min = scores.suspicion[i];
  return min;
}

/** Bins of equal width over the values' range, per group; as shares of each group's size when `normalize`. */
function histogram(values: Float64Array, groupOf: (i: number) => string, groups: string[], binCount: number, normalize: boolean) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) hi = lo + 1e-6;
  const width = (hi - lo) / binCount;
  const counts = new Map(groups.map((g) => [g, new Array<number>(binCount).fill(0)]));
  values.forEach((v, i) => {
    counts.get(groupOf(i))![Math.min(binCount - 1, Math.floor((v - lo) / width))]++;
  });
  return groups.flatMap((group) => {
    const c = counts.get(group)!;
    const total = normalize ? c.reduce((a, b) => a + b, 0) || 1 : 1;
    return c.map((count, b) => ({ start: lo + b * width, end: lo + (b + 1) * width, count: count / total, group }));
  });
}

function flaggedImages(run: RunData, ctx: Context): string {
  const images = run.images?.suspicious;
  if (!images?.length) return '<p class="muted">No report-images.json in the run directory (written at the end of <code>pbe purify</code>).</p>';
  const truth = run.manifest?.poisoned;
  const legend = truth
    ? `<p class="muted">Frame: <span class="legend-swatch" style="border-color:#d62728"></span> poisoned, <span class="legend-swatch" style="border-color:#1f77b4"></span> clean (poison manifest). ${images.filter((im) => truth.get(im.key)).length} of these ${images.length} are poisoned.</p>`
    : '';
  const tiles = images.map((im) => {
    const poisoned = truth?.get(im.key);
    return imageTile(
      im.png,
      `${im.key}: suspicion ${im.suspicion.toFixed(3)}`,
      [`<span class="key">${escapeHtml(im.key)}</span>`, `suspicion ${im.suspicion.toFixed(3)}`, `label ${escapeHtml(im.label ?? '–')} · pred ${im.pseudoLabel}`, (ctx.flaggedKeys ? ctx.flaggedKeys.has(im.key) : !im.trusted) ? '<span class="bad">flagged</span>' : 'not flagged'],
      poisoned === undefined ? undefined : poisoned ? 'poisoned' : 'clean',
    );
  });
  return `<p>The ${images.length} training images with the highest suspicion, most suspicious first, with their key, label in the data, and the infected model’s prediction (pred${ctx.names ? `; classes: ${escapeHtml(ctx.names.map((n, i) => `${i} ${n}`).join(', '))}` : ''}).</p>${legend}<div class="grid" data-grid="suspicious">${tiles.join('\n')}</div>`;
}

function adversarialImages(run: RunData, ctx: Context): string {
  const adv = run.images?.adversarial;
  if (!adv?.examples.length) return '<p class="muted">No adversarial examples were saved with this run.</p>';
  const triplets = adv.examples.map(
    (e) => `<div class="triplet">${[
      imageTile(e.original, `${e.key} original`, ['original', `infected: ${escapeHtml(ctx.className(e.infectedPrediction))}`, `purified: ${escapeHtml(ctx.className(e.purifiedPrediction))}`]),
      imageTile(e.adversarial, `${e.key} adversarial`, ['adversarial', `infected: <strong>${escapeHtml(ctx.className(e.adversarialPrediction))}</strong>`]),
      imageTile(e.difference, `${e.key} difference`, ['difference', `×${e.differenceScale.toFixed(1)}`]),
    ].join('')}</div>`,
  );
  const toTarget = ctx.target === undefined ? undefined : adv.examples.filter((e) => e.adversarialPrediction === ctx.target && e.infectedPrediction !== ctx.target).length;
  return `<p>Trusted training images beside their untargeted PGD examples against the <em>infected</em> model (eps ${adv.eps}, ${adv.steps} steps) and the difference, brightened ×scale to be visible. These are the kind of examples purification trains on with their original labels${toTarget === undefined ? '' : `; here ${toTarget} of ${adv.examples.length} land on the target class ${escapeHtml(ctx.className(ctx.target))}`}.</p><div class="triplets" data-grid="adversarial">${triplets.join('\n')}</div>`;
}

function badSamples(run: RunData): string {
  const bad = run.badSamples;
  const count = run.info.badSamples ?? bad?.count;
  if (!bad && count === undefined) return '<p class="muted">No bad-samples.csv.</p>';
  if (!count) return '<p>None: every sample read and decoded.</p>';
  const rows = bad?.first ?? [];
  return `<p><strong>${count}</strong> samples could not be read or decoded and were skipped (all in <code>bad-samples.csv</code>)${rows.length < count ? `; the first ${rows.length}:` : ':'}</p>${table(bad?.columns ?? [], rows.map((r) => (bad?.columns ?? []).map((c) => escapeHtml(r[c]))))}`;
}

function runFacts(run: RunData): string {
  const { info } = run;
  const epochSeconds = run.metrics.reduce((a, r) => a + r.seconds, 0);
  const byRound = new Map<number, { epochs: number; seconds: number }>();
  for (const r of run.metrics) {
    const e = byRound.get(r.round) ?? { epochs: 0, seconds: 0 };
    e.epochs++;
    e.seconds += r.seconds;
    byRound.set(r.round, e);
  }
  const timeRows = [...byRound].map(([round, e]) => [`round ${round}: ${e.epochs} epochs`, seconds(e.seconds)]);
  if (info.seconds !== undefined) timeRows.push(['outside the epochs (reference pass, probe, end-of-round scoring, evaluation, writing)', seconds(info.seconds - epochSeconds)], ['<strong>total</strong>', `<strong>${seconds(info.seconds)}</strong>`]);
  const backend = info.backend ? `${escapeHtml(info.backend.name ?? '?')} ${escapeHtml(JSON.stringify({ ...info.backend, name: undefined }))}` : '–';
  return [
    facts([
      ['command', `<code>${escapeHtml(commandLine(info))}</code>`],
      ['status', escapeHtml(info.status ?? '–')],
      ['started', escapeHtml(info.startedAt ?? '–')],
      ['samples', `${info.samples ?? '–'} (trusted at the end: ${info.trusted ?? '–'})`],
      ['backend', backend],
      ['versions', escapeHtml(Object.entries(info.versions ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '–')],
      ['preset', escapeHtml(info.preset ?? 'none')],
    ]),
    '<h3>Where the time went</h3>',
    table(['part', 'time'], timeRows, { numeric: [1] }),
    details('merged configuration (run.json → config)', `<pre>${escapeHtml(JSON.stringify(info.config ?? {}, null, 2))}</pre>`),
  ].join('\n');
}

/** The command line the run's recorded options stand for (`pbe purify --model … --data …`). */
export function commandLine(info: { command?: string; args?: Record<string, unknown> }): string {
  const flags = Object.entries(info.args ?? {}).flatMap(([name, value]) => {
    if (value === undefined || value === null || value === false) return [];
    const flag = `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    if (value === true) return [flag];
    const values = Array.isArray(value) ? value : [value];
    return [`${flag} ${values.map((v) => shellQuote(String(v))).join(' ')}`];
  });
  return ['pbe', info.command ?? 'purify', ...flags].join(' ');
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
