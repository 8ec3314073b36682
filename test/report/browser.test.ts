import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBenchReport } from '../../src/report/html/bench-report.js';
import { writeInspectReport } from '../../src/report/html/inspect-report.js';
import { writeRunReport } from '../../src/report/html/run-report.js';
import { writeRunFixture } from '../helpers/run-fixture.js';

/**
 * The HTML reports opened in headless Chromium (Debian's `chromium`, or $PBE_CHROMIUM): every chart rendered
 * (an SVG with marks, its axis titles and series names), the image grids complete and decoded, nothing logged to
 * the console, no horizontal scrolling on a laptop-sized window. Screenshots go to test/out/report/.
 */
const executablePath = process.env.PBE_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(executablePath);
const screenshots = resolve('test/out/report');
const chromiumFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface PageCheck {
  charts: Record<string, string[]>;
  images: number[];
  errors: string[];
  overflow: boolean;
}

describe.skipIf(!haveChromium)(`report pages in headless Chromium${haveChromium ? '' : ` (skipped: no browser at ${executablePath}; apt-get install -y chromium, or set PBE_CHROMIUM)`}`, () => {
  let browser: Browser;
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pbe-browser-'));
    await mkdir(screenshots, { recursive: true });
    browser = await chromium.launch({ executablePath, args: chromiumFlags });
  });
  afterAll(async () => {
    await browser?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Opens the page, returns each chart's SVG texts (or why it is empty), image counts per grid, and console errors. */
  async function open(path: string, screenshot: string, gridSelectors: string[]): Promise<PageCheck> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
    const charts = await page.$$eval('figure[data-chart]', (figures) =>
      Object.fromEntries(
        figures.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          const marks = svg?.querySelectorAll('.mark-line path, .mark-rect path, .mark-symbol path, .mark-rule line').length ?? 0;
          const ok = svg && box && box.width > 50 && box.height > 50 && marks > 0;
          return [f.getAttribute('data-chart')!, ok ? Array.from(svg.querySelectorAll('text')).map((t) => t.textContent ?? '') : [`EMPTY (${marks} marks)`]];
        }),
      ),
    );
    const images = await Promise.all(
      gridSelectors.map((sel) => page.$$eval(`${sel} img`, (imgs) => (imgs as HTMLImageElement[]).filter((i) => i.complete && i.naturalWidth > 0).length)),
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    await page.screenshot({ path: join(screenshots, screenshot), fullPage: true });
    await page.close();
    return { charts, images, errors, overflow };
  }

  it('run report: every chart, 40 flagged images, 6 adversarial triplets, no console error', async () => {
    const { dir } = await writeRunFixture(root, { samples: 1000 });
    const check = await open(await writeRunReport(dir), 'run-report.png', ['[data-grid="suspicious"]', '[data-grid="adversarial"]']);
    expect(check.errors).toEqual([]);
    const expected: Record<string, string[]> = {
      'acc-asr': ['Clean accuracy and attack success rate', 'epoch (all rounds)', 'share of test images', 'ACC (clean accuracy)', 'ASR (attack success rate)', 'round 0', 'round 2'],
      loss: ['Training loss', 'epoch (all rounds)', 'cross-entropy'],
      pgd: ['PGD on the current model', 'share', 'flip rate', 'target concentration q'],
      'adversarial-share': ['Adversarial share of batches', 'share of batches'],
      trusted: ['Trusted set', 'samples trained on'],
      'suspicion-histogram': ['Suspicion scores', 'suspicion (1 − similarity)', 'share of its group', 'clean', 'poisoned', 'flagged →'],
      roc: ['FPR: clean flagged', 'TPR: poisoned flagged', 'suspicion score'],
      'probe-classes': ['Where PGD flips land (eps 0.05)', 'share of flips', 'other classes', 'most frequent class'],
    };
    expect(Object.keys(check.charts).sort()).toEqual(Object.keys(expected).sort());
    for (const [id, texts] of Object.entries(expected)) expect(check.charts[id], id).toEqual(expect.arrayContaining(texts));
    expect(check.images).toEqual([40, 18]);
    expect(check.overflow).toBe(false);
  });

  it('inspect page: the per-class chart and the recovered trigger images', async () => {
    const result = {
      samples: 512, eps: 0.05, concentration: 0.72, likelyTarget: 3, flips: 300, suspected: true, threshold: 0.5, pgdSignal: true, inversion: null, target: 3,
      points: [{ eps: 0.05, flipRate: 0.6, concentration: 0.72, concentrationClass: 3, flippedTo: [10, 10, 20, 216, 10, 10, 4, 10, 5, 5] }],
    };
    const mask = { pixels: Float32Array.from({ length: 28 * 28 }, (_, i) => (i % 28 > 24 && i > 24 * 28 ? 1 : 0)), height: 28, width: 28, channels: 1 };
    const path = await writeInspectReport(join(root, 'inspect.html'), result, { model: 'infected/', data: ['d/*.tar'], images: [{ caption: 'mask', pixels: mask }, { caption: 'pattern', pixels: mask }] });
    const check = await open(path, 'inspect-report.png', ['[data-grid="trigger"]']);
    expect(check.errors).toEqual([]);
    expect(check.charts['class-concentration']).toEqual(expect.arrayContaining(['class the adversarial example is predicted as', 'share of flips', 'most frequent class', 'threshold 50%']));
    expect(check.images).toEqual([2]);
  });

  it('bench page: ACC and ASR charts with a series per defense', async () => {
    const rows = ['badnets', 'blend'].flatMap((attack) => ['none', 'pbe', 'ft'].flatMap((defense) => [1, 2].map((seed) => ({ attack, defense, seed, acc: 0.88 - seed / 100, asr: defense === 'none' ? 0.99 : 0.05 * seed }))));
    const check = await open(await writeBenchReport(join(root, 'bench.html'), rows), 'bench-report.png', []);
    expect(check.errors).toEqual([]);
    for (const id of ['bench-acc', 'bench-asr']) expect(check.charts[id], id).toEqual(expect.arrayContaining(['attack', 'badnets', 'blend', 'none', 'pbe', 'ft']));
    expect(check.charts['bench-asr']).toEqual(expect.arrayContaining(['attack success rate (ASR) by attack and defense', 'ASR']));
  });
});
