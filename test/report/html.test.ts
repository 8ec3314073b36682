import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../src/cli/report.js';
import { rocCurve } from '../../src/eval/roc.js';
import { createRng } from '../../src/pipeline/random.js';
import { benchReportHtml } from '../../src/report/html/bench-report.js';
import { epochChart, renderChart } from '../../src/report/html/charts.js';
import { differenceImage, pngDataUrl } from '../../src/report/html/images.js';
import { inspectReportHtml } from '../../src/report/html/inspect-report.js';
import { escapeHtml } from '../../src/report/html/page.js';
import { findManifest, readCsv, readRunData } from '../../src/report/html/run-data.js';
import { commandLine, runReportHtml } from '../../src/report/html/run-report.js';
import { writeRunFixture } from '../helpers/run-fixture.js';

describe('rocCurve', () => {
  it('matches the pairwise definition of AUROC, ties counting one half', () => {
    const rand = createRng(3);
    const scores = Array.from({ length: 300 }, () => Math.round(rand() * 20) / 20); // many ties
    const positive = scores.map((s) => rand() < 0.2 + 0.5 * s);
    let wins = 0;
    let pairs = 0;
    scores.forEach((sp, i) => {
      if (!positive[i]) return;
      scores.forEach((sn, j) => {
        if (positive[j]) return;
        pairs++;
        wins += sp > sn ? 1 : sp === sn ? 0.5 : 0;
      });
    });
    const roc = rocCurve(scores, positive);
    expect(roc.auroc).toBeCloseTo(wins / pairs, 12);
    expect(roc.points[0]).toEqual({ fpr: 0, tpr: 0 });
    expect(roc.points[roc.points.length - 1]).toEqual({ fpr: 1, tpr: 1 });
  });

  it('is 1 for a perfect ranking, 0 for a reversed one, and thins long curves', () => {
    expect(rocCurve([0.9, 0.8, 0.1, 0.2], [true, true, false, false]).auroc).toBe(1);
    expect(rocCurve([0.1, 0.2, 0.9, 0.8], [true, true, false, false]).auroc).toBe(0);
    const n = 5000;
    const roc = rocCurve(Array.from({ length: n }, (_, i) => i), Array.from({ length: n }, (_, i) => i % 3 === 0), 100);
    expect(roc.points).toHaveLength(100);
    expect(roc.positives + roc.negatives).toBe(n);
  });

  it('rejects scores and labels of different lengths', () => {
    expect(() => rocCurve([1, 2], [true])).toThrow('rocCurve: 2 scores for 1 labels');
  });
});

describe('images', () => {
  it('encodes HWC [0,1] pixels as a PNG data URL that decodes to the same values', () => {
    const pixels = Float32Array.from({ length: 4 * 3 * 3 }, (_, i) => (i % 7) / 6);
    const url = pngDataUrl({ pixels, height: 4, width: 3, channels: 3 });
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    const png = PNG.sync.read(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
    expect([png.width, png.height]).toEqual([3, 4]);
    for (let i = 0; i < 12; i++) for (let c = 0; c < 3; c++) expect(png.data[4 * i + c]).toBe(Math.round(255 * pixels[3 * i + c]));
  });

  it('scales the difference image so that its largest change is white, and reports the scale', () => {
    const a = { pixels: Float32Array.of(0.5, 0.5, 0.5, 0.5), height: 2, width: 2, channels: 1 };
    const b = { ...a, pixels: Float32Array.of(0.5, 0.55, 0.45, 0.52) };
    const d = differenceImage(b, a);
    expect(d.maxAbs).toBeCloseTo(0.05, 6);
    expect(d.scale).toBeCloseTo(20, 4);
    expect(Array.from(d.image.pixels).map((v) => Math.round(v * 100) / 100)).toEqual([0, 1, 1, 0.4]);
  });

  it('names the problem with a bad image', () => {
    expect(() => pngDataUrl({ pixels: new Float32Array(8), height: 2, width: 2, channels: 2 })).toThrow('1 or 3 channels');
    expect(() => pngDataUrl({ pixels: new Float32Array(3), height: 2, width: 2, channels: 1 })).toThrow('3 values for a 2x2x1 image');
  });
});

describe('charts', () => {
  it('renders a Vega-Lite spec to SVG with its series, axis titles and ids prefixed per chart', async () => {
    const svg = await renderChart('c1', epochChart({ title: 'Loss', xTitle: 'epoch', yTitle: 'cross-entropy', series: [{ name: 'loss', points: [{ x: 1, y: 2 }, { x: 2, y: 1 }] }, { name: 'other', points: [{ x: 1, y: 1 }] }], markers: [{ x: 1.5, label: 'round 1' }] }));
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['Loss', 'epoch', 'cross-entropy', 'loss', 'other', 'round 1']) expect(svg).toContain(`>${text}<`);
    const ids = [...svg.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(id.startsWith('c1-')).toBe(true);
  });
});

describe('run report', () => {
  let root: string;
  let fixture: Awaited<ReturnType<typeof writeRunFixture>>;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pbe-report-'));
    fixture = await writeRunFixture(root, { samples: 2000 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads the run directory and finds the poison manifest beside the data', async () => {
    const run = await readRunData(fixture.dir);
    expect(run.metrics).toHaveLength(14);
    expect(run.metrics[6]).toMatchObject({ round: 1, epoch: 0, adversarialShare: 1 });
    expect(run.metrics[7].flipRate).toBeNull();
    expect(run.scores!.keys).toHaveLength(2000);
    expect(run.badSamples!.count).toBe(2);
    expect(run.manifest!.path).toBe(fixture.manifest);
    expect([...run.manifest!.poisoned.values()].filter(Boolean)).toHaveLength(fixture.poisoned);
    expect(run.images!.suspicious).toHaveLength(40);
    expect(findManifest({ args: { data: ['s3://bucket/train-*.tar'] } })).toBeUndefined();
  });

  it('says whether the backdoor was removed, how many images were flagged and how well they match the manifest', async () => {
    const html = await runReportHtml(await readRunData(fixture.dir));
    expect(html).toContain('data-verdict="good"');
    expect(html).toContain('Backdoor removed: attack success rate 98.0% → 3.0%');
    expect(html).toContain('600 of 2,000 training images (30.0%) flagged as poisoned');
    expect(html).toMatch(/suspicion AUROC 1\.000/);
    for (const chart of ['acc-asr', 'loss', 'pgd', 'adversarial-share', 'trusted', 'suspicion-histogram', 'roc', 'probe-classes']) expect(html).toContain(`data-chart="${chart}"`);
    expect(html.match(/<img /g)).toHaveLength(40 + 3 * 6);
    expect(html).toContain('not a PNG &lt;b&gt;'); // bad-sample reasons are escaped
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained: no script, no network
  });

  it('reads the ASR verdict from before/after: weakened and not removed', async () => {
    const run = await readRunData(fixture.dir);
    run.info.after = { acc: 0.8, asr: 0.3 };
    expect(await runReportHtml(run)).toContain('data-verdict="warn"');
    run.info.after = { acc: 0.8, asr: 0.9 };
    expect(await runReportHtml(run)).toContain('Backdoor not removed');
  });

  it('builds from run.json alone for a run stopped before its first epoch', async () => {
    const dir = join(root, 'stopped');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeFile(join(dir, 'run.json'), JSON.stringify({ command: 'purify', status: 'stopped', args: { data: [] } }));
    const html = await runReportHtml(await readRunData(dir));
    expect(html).toContain('data-verdict="warn"');
    expect(html).toContain('pbe purify --resume');
  });

  it('names the file when one of the run directory is corrupt', async () => {
    const dir = join(root, 'corrupt');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeFile(join(dir, 'run.json'), JSON.stringify({ command: 'purify', status: 'complete' }));
    await writeFile(join(dir, 'report-images.json'), '{"suspicious": [');
    await expect(readRunData(dir)).rejects.toThrow(`${join(dir, 'report-images.json')}: cannot read JSON`);
  });

  it('reads CSV files with and without quoted fields alike', async () => {
    const plain = join(root, 'plain.csv');
    const quoted = join(root, 'quoted.csv');
    await writeFile(plain, 'key,poisoned\r\na,1\r\nb,\r\n');
    await writeFile(quoted, 'key,poisoned\n"a,1",1\n"say ""b""",0\n');
    expect(await readCsv(plain)).toEqual([{ key: 'a', poisoned: '1' }, { key: 'b', poisoned: '' }]);
    expect(await readCsv(quoted)).toEqual([{ key: 'a,1', poisoned: '1' }, { key: 'say "b"', poisoned: '0' }]);
  });

  it('pbe report rebuilds report.html from the files, with a manifest given', async () => {
    const out = await reportCommand(fixture.dir, { poisonManifest: fixture.manifest });
    expect(out).toBe(join(fixture.dir, 'report.html'));
    expect(await readFile(out, 'utf8')).toContain('data-chart="roc"');
    await expect(reportCommand(root)).rejects.toThrow(`report: ${root} is not a run directory (no run.json)`);
  });

  it('shows the command line a run stands for', () => {
    expect(commandLine({ command: 'purify', args: { model: 'm', data: ['a b/*.tar', 'c'], dryRun: false, evalSamples: 3, quiet: true } })).toBe("pbe purify --model m --data 'a b/*.tar' c --eval-samples 3 --quiet");
  });
});

describe('inspect and bench pages', () => {
  it('inspect: the verdict, the per-class bar chart with the threshold, and the given trigger images', async () => {
    const result = {
      samples: 512, eps: 0.05, concentration: 0.72, likelyTarget: 3, flips: 300, suspected: true, threshold: 0.5, pgdSignal: true, inversion: null, target: 3,
      points: [{ eps: 0.05, flipRate: 0.6, concentration: 0.72, concentrationClass: 3, flippedTo: [10, 10, 20, 216, 10, 10, 4, 10, 5, 5] }],
    };
    const mask = { pixels: new Float32Array(28 * 28).fill(0.5), height: 28, width: 28, channels: 1 };
    const html = await inspectReportHtml(result, { model: 'infected/', data: ['d/*.tar'], images: [{ caption: 'mask, class 3', pixels: mask }, { caption: 'pattern', png: pngDataUrl(mask) }] });
    expect(html).toContain('Backdoor suspected, likely target class 3');
    expect(html).toContain('data-chart="class-concentration"');
    expect(html).toContain('>threshold 50%<');
    expect(html.match(/<img /g)).toHaveLength(2);
    await expect(inspectReportHtml(result, { model: 'm', data: [], images: [{ caption: 'gone', path: '/nonexistent/mask.png' }] })).rejects.toThrow('/nonexistent/mask.png: cannot read the image "gone"');
  });

  it('bench: ACC and ASR charts per attack and defense, means over seeds, every row in the table', async () => {
    const rows = ['badnets', 'blend'].flatMap((attack) => ['none', 'pbe'].flatMap((defense) => [1, 2].map((seed) => ({ attack, defense, seed, acc: 0.9 - seed / 100, asr: defense === 'pbe' ? 0.02 * seed : 0.99, seconds: 12.5 }))));
    const html = await benchReportHtml(rows, { command: 'pbe bench --seeds 2' });
    expect(html).toContain('data-chart="bench-acc"');
    expect(html).toContain('data-chart="bench-asr"');
    expect(html).toContain('<td class="num">3.0%</td>'); // pbe's mean ASR over seeds 1, 2
    expect(html.match(/<tr>/g)).toHaveLength(1 + 4 + 1 + 8);
    expect(escapeHtml('<a & "b">')).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  });
});
