// A uPlot chart in a <figure>: lines or bars over time (unix seconds), over UTC dates, or over named categories.
// The canvas is described for screen readers by `summary`; the exact numbers are in the tables beside each chart.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  readonly label: string;
  readonly values: (number | null)[];
  readonly color?: string;
}

export interface ChartProps {
  readonly id: string;
  readonly caption: string;
  /** What the chart shows, in words (the canvas's accessible name). */
  readonly summary: string;
  /** Unix seconds ('time', 'utc-date') or category indexes ('category'). */
  readonly x: number[];
  readonly series: ChartSeries[];
  readonly kind?: 'lines' | 'bars';
  /** 'utc-date': x is midnight UTC of a calendar date, labelled as that date whatever the browser's timezone. */
  readonly xKind?: 'time' | 'utc-date' | 'category';
  readonly categories?: string[];
  readonly height?: number;
}

const palette = ['#2563eb', '#15803d', '#b91c1c', '#b45309', '#7c3aed', '#0e7490', '#be185d', '#4b5563'];

/** A colour of the page's scheme (light or dark), for what uPlot draws on its canvas. */
const cssColor = (name: string, fallback: string) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

function options(p: ChartProps, width: number): uPlot.Options {
  const ink = {
    stroke: cssColor('--text', '#15181d'),
    grid: { stroke: cssColor('--line', '#d5d9e0'), width: 1 },
    ticks: { stroke: cssColor('--line', '#d5d9e0'), width: 1 },
  };
  const bars = p.kind === 'bars' ? uPlot.paths.bars?.({ size: [0.7, 48], gap: 2 }) : undefined;
  const category = p.xKind === 'category';
  return {
    width,
    height: p.height ?? 200,
    ...(p.xKind === 'utc-date' ? { tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') } : {}),
    cursor: { drag: { x: false, y: false } },
    legend: { show: p.series.length > 1 },
    scales: {
      x: category
        ? { time: false, range: (): [number, number] => [-0.5, Math.max(0.5, p.x.length - 0.5)] }
        : {
            time: true,
            ...(p.kind === 'bars'
              ? { range: (_u: uPlot, min: number, max: number): [number, number] => [min - 43200, max + 43200] }
              : {}),
          },
      y: { range: (_u: uPlot, _min: number, max: number): [number, number] => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      category
        ? {
            ...ink,
            values: (_u: uPlot, splits: number[]) => splits.map((i) => p.categories?.[i] ?? ''),
            splits: () => p.x,
          }
        : ink,
      { ...ink, size: 44 },
    ],
    series: [
      {},
      ...p.series.map((s, i) => {
        const color = s.color ?? palette[i % palette.length] ?? '#2563eb';
        return {
          label: s.label,
          stroke: color,
          width: 2,
          ...(bars
            ? { paths: bars, fill: `${color}cc`, points: { show: false } }
            : { points: { show: p.x.length < 40 } }),
        };
      }),
    ],
  };
}

export function Chart(p: ChartProps): VNode {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${p.kind}|${p.xKind}|${p.series.map((s) => s.label).join(',')}|${p.categories?.join(',') ?? ''}`;
  const data = [p.x, ...p.series.map((s) => s.values)] as uPlot.AlignedData;

  // (Re)create the chart when its shape changes; otherwise only its data.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(options(p, Math.max(200, el.clientWidth)), data, el);
    plot.current = u;
    const resize = new ResizeObserver(() =>
      u.setSize({ width: Math.max(200, el.clientWidth), height: p.height ?? 200 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Only a change of shape rebuilds the chart; new data goes through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<figure class="chart" id=${p.id}>
    <figcaption>${p.caption}</figcaption>
    <div class="chart-box" ref=${box} role="img" aria-label=${p.summary}></div>
  </figure>`;
}
