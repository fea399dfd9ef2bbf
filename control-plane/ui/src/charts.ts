// Usage charts with uPlot (a maintained, dependency-free canvas chart library): one line per
// group, one point per UTC day.

import uPlot from "uplot";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

/** Draws a chart into `card`, as wide as the card, and redraws it when the card is resized. */
export function lineChart(
  card: HTMLElement,
  xs: number[],
  names: string[],
  ys: number[][],
  fmt: (v: number) => string,
): uPlot {
  const holder = document.createElement("div");
  holder.className = "chart";
  holder.setAttribute("role", "img");
  holder.setAttribute("aria-label", `${card.getAttribute("aria-label") ?? "chart"}: ${names.join(", ")}`);
  card.append(holder);
  const width = () => Math.max(260, holder.clientWidth || card.clientWidth - 32);
  const opts: uPlot.Options = {
    width: width(),
    height: 240,
    scales: { x: { time: true } },
    axes: [{}, { values: (_u, vals) => vals.map((v) => fmt(v)), size: 70 }],
    series: [
      { label: "day", value: (_u, v) => (v == null ? "" : new Date(v * 1000).toISOString().slice(0, 10)) },
      ...names.map((n, i) => ({
        label: n,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: true, size: 6 },
        value: (_u: uPlot, v: number | null) => (v == null ? "" : fmt(v)),
      })),
    ],
  };
  const plot = new uPlot(opts, [xs, ...ys] as uPlot.AlignedData, holder);
  new ResizeObserver(() => plot.setSize({ width: width(), height: 240 })).observe(card);
  return plot;
}
