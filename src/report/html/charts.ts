import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Charts for the HTML reports: Vega-Lite specs compiled and rendered by Vega's headless view to SVG at build
 * time, so a page needs no script and no network to show them.
 *
 *   const svg = await renderChart('loss', epochChart({ title: 'Training loss', yTitle: 'loss', series, rounds }));
 */
export type ChartSpec = TopLevelSpec;

const theme = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' as const, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: 'bottom' as const, direction: 'horizontal' as const, labelLimit: 0 },
  title: { fontSize: 14, anchor: 'start' as const, fontWeight: 'bold' as const },
  view: { stroke: '#ccc' },
};

/**
 * The chart as an inline SVG element. Element ids (Vega's clip paths) are prefixed with `id` so that several
 * charts can share one page.
 */
export async function renderChart(id: string, spec: ChartSpec): Promise<string> {
  const { spec: vegaSpec } = compile({ ...spec, config: { ...theme, ...(spec as { config?: object }).config } } as TopLevelSpec);
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg
      .replace(/ id="([^"]+)"/g, ` id="${id}-$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${id}-$1)`)
      .replace('<svg ', `<svg role="img" aria-label="${id}" `);
  } finally {
    view.finalize();
  }
}

export interface SeriesPoint {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: SeriesPoint[];
}

/** A boundary drawn as a dashed vertical rule with its label at the top (e.g. the start of a purification round). */
export interface Marker {
  x: number;
  label: string;
}

const seriesColors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

/** Lines over epochs, one colour per series, with round boundaries marked. */
export function epochChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  markers?: Marker[];
  yDomain?: [number, number];
  yFormat?: string;
  /** The x range shown (every epoch chart of a page shares it, so that they line up). */
  xDomain?: [number, number];
  width?: number;
}): ChartSpec {
  const values = o.series.flatMap((s) => s.points.map((p) => ({ series: s.name, x: p.x, y: p.y })));
  const names = o.series.map((s) => s.name);
  const layers: object[] = [
    {
      mark: { type: 'line', point: { size: 28 }, strokeWidth: 2, clip: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: o.xTitle, axis: { tickMinStep: 1, format: 'd' }, ...(o.xDomain ? { scale: { domain: o.xDomain, nice: false } } : {}) },
        y: {
          field: 'y',
          type: 'quantitative',
          title: o.yTitle,
          ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}),
          ...(o.yFormat ? { axis: { format: o.yFormat } } : {}),
        },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain: names, range: seriesColors.slice(0, names.length) }, ...(names.length < 2 ? { legend: null } : {}) },
      },
    },
  ];
  if (o.markers?.length) {
    layers.push(
      { data: { values: o.markers }, mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
      {
        data: { values: o.markers },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 2, fontSize: 10, color: '#555' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
      },
    );
  }
  return {
    title: o.title,
    width: o.width ?? 340,
    height: 160,
    data: { values },
    layer: layers,
  } as ChartSpec;
}

/** A histogram from pre-computed bins, one colour per group, bars of the groups overlaid. */
export function histogramChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  bins: { start: number; end: number; count: number; group: string }[];
  groups: string[];
  threshold?: Marker;
  yFormat?: string;
  width?: number;
}): ChartSpec {
  const layers: object[] = [
    {
      mark: { type: 'bar', opacity: 0.7, binSpacing: 0 },
      encoding: {
        x: { field: 'start', type: 'quantitative', title: o.xTitle, bin: { binned: true } },
        x2: { field: 'end' },
        y: { field: 'count', type: 'quantitative', title: o.yTitle, stack: null, ...(o.yFormat ? { axis: { format: o.yFormat } } : {}) },
        color: { field: 'group', type: 'nominal', title: null, scale: { domain: o.groups, range: o.groups.length === 1 ? ['#1f77b4'] : ['#1f77b4', '#d62728'] } },
      },
    },
  ];
  if (o.threshold) {
    layers.push(
      { data: { values: [o.threshold] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#333' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
      {
        data: { values: [o.threshold] },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 2, fontSize: 10 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
      },
    );
  }
  return { title: o.title, width: o.width ?? 340, height: 180, data: { values: o.bins }, layer: layers } as ChartSpec;
}

/** A ROC curve with the chance diagonal. */
export function rocChart(o: { title: string; points: { fpr: number; tpr: number }[]; series: string }): ChartSpec {
  const diagonal = [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }];
  return {
    title: o.title,
    width: 210,
    height: 200,
    layer: [
      { data: { values: diagonal }, mark: { type: 'line', strokeDash: [4, 3], color: '#aaa' }, encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' } } },
      {
        data: { values: o.points.map((p) => ({ ...p, series: o.series })) },
        mark: { type: 'line', strokeWidth: 2, interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'FPR: clean flagged', scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: 'TPR: poisoned flagged', scale: { domain: [0, 1] } },
          color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#d62728'] } },
          order: { field: 'fpr' },
        },
      },
    ],
  } as ChartSpec;
}

/** Bars per category; highlighted bars in red; an optional horizontal threshold rule. */
export function barChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  bars: { label: string; value: number; highlight?: boolean }[];
  legend: [string, string];
  threshold?: { y: number; label: string };
  yDomain?: [number, number];
  yFormat?: string;
}): ChartSpec {
  const values = o.bars.map((b) => ({ ...b, kind: b.highlight ? o.legend[1] : o.legend[0] }));
  const layers: object[] = [
    {
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'label', type: 'nominal', title: o.xTitle, sort: null, axis: { labelAngle: 0 } },
        y: { field: 'value', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}), ...(o.yFormat ? { axis: { format: o.yFormat } } : {}) },
        color: { field: 'kind', type: 'nominal', title: null, scale: { domain: o.legend, range: ['#1f77b4', '#d62728'] } },
      },
    },
  ];
  if (o.threshold) {
    layers.push(
      { data: { values: [o.threshold] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#333' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
      {
        data: { values: [o.threshold] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -2, fontSize: 10 },
        encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 'width' }, text: { field: 'label' } },
      },
    );
  }
  return { title: o.title, width: Math.max(220, 36 * o.bars.length), height: 200, data: { values }, layer: layers } as ChartSpec;
}

/** Grouped bars: one group per x category, one bar (and colour) per series within it. */
export function groupedBarChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  bars: { x: string; series: string; value: number; low?: number; high?: number }[];
  yDomain?: [number, number];
  yFormat?: string;
}): ChartSpec {
  const series = [...new Set(o.bars.map((b) => b.series))];
  const groups = new Set(o.bars.map((b) => b.x)).size;
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: series, range: seriesColors.slice(0, series.length) } };
  const x = { field: 'x', type: 'nominal', title: o.xTitle, axis: { labelAngle: 0 } };
  const layers: object[] = [
    {
      mark: { type: 'bar' },
      encoding: {
        x,
        xOffset: { field: 'series', scale: { domain: series } },
        y: { field: 'value', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}), ...(o.yFormat ? { axis: { format: o.yFormat } } : {}) },
        color,
      },
    },
  ];
  if (o.bars.some((b) => b.low !== undefined)) {
    layers.push({
      mark: { type: 'rule', color: '#222' },
      encoding: { x, xOffset: { field: 'series', scale: { domain: series } }, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
    });
  }
  return { title: o.title, width: Math.max(240, groups * Math.max(40, series.length * 18)), height: 180, data: { values: o.bars }, layer: layers } as ChartSpec;
}
