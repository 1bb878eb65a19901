// DOM and chart styling shared by the monitor's parts: elements, JupyterLab's theme
// colours, the palette, axes and chart sizes.
import { formatTick, axisSize } from "./util.js";

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2"];
export const CHART_HEIGHT = 170;

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cssVar(node, name, fallback) {
  const v = getComputedStyle(node).getPropertyValue(name).trim();
  return v || fallback;
}

// the colours of JupyterLab's current theme, as laid out under `node`
export function readTheme(node) {
  return {
    fg: cssVar(node, "--jp-ui-font-color2", "#555"),
    grid: cssVar(node, "--jp-border-color2", "#ddd"),
    muted: cssVar(node, "--jp-ui-font-color3", "#999"),
  };
}

// Two charts side by side; a container not laid out yet (width 0) gets a guess that
// Charts.fit() corrects once it has a width.
export function chartWidth(containerWidth) {
  return Math.max(220, Math.min(420, (containerWidth || 700) / 2 - 16));
}

// tick labels readable at every scale (1e-5 on a log axis, 12k for a large ESS), and a
// y axis as wide as its longest label so that none is cut
export function axisOptions(theme) {
  return {
    stroke: theme.fg, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid },
    font: "11px sans-serif", values: (u, splits) => splits.map(formatTick),
  };
}
export const yAxis = { size: (u, values) => axisSize(values) };

// the axes of a chart whose abscissa is labelled `xLabel`
export function chartAxes(theme, xLabel) {
  const axis = axisOptions(theme);
  return [{ ...axis, label: xLabel, labelSize: 16, labelFont: "11px sans-serif" }, { ...axis, ...yAxis }];
}
