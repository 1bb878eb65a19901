// The live charts of the metrics: one uPlot per chart of the spec, redrawn at most once a
// frame when rows arrived, resized with the notebook, rebuilt with JupyterLab's theme.
import uPlot from "uplot";
import { cappedRange, formatValue } from "./util.js";
import { chartData, chartSpecs } from "./series.js";
import { CHART_HEIGHT, PALETTE, chartAxes, chartWidth, el } from "./theme.js";

// uPlot's options of one chart of the spec (see wire.json: spec.charts)
export function chartOptions(chart, theme, width) {
  const xLabel = chart.x || "time (s)";
  const series = [{ label: xLabel }];
  chart.series.forEach((name, i) => {
    series.push({ label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true, points: { show: false } });
  });
  (chart.hlines || []).forEach((v) => {
    series.push({ label: `${formatValue(v)}`, stroke: theme.muted, dash: [4, 4], width: 1, points: { show: false } });
  });
  const capped = chart.y_max != null && !chart.log_y;
  return {
    title: chart.title,
    width,
    height: CHART_HEIGHT,
    scales: { x: { time: false }, y: { distr: chart.log_y ? 3 : 1,
      ...(capped ? { range: (u, lo, hi) => cappedRange(lo, hi, chart.y_max) } : {}) } },
    axes: chartAxes(theme, xLabel),
    series,
    legend: { live: false },
    cursor: { drag: { x: true, y: false } },
  };
}

// a log chart's title says how many values <= 0 it draws at its floor
export function chartTitle(chart, data) {
  return chart.title + (data.clamped ? ` (${data.clamped} values ≤ 0 drawn at ${formatValue(data.floor, ".2g")})` : "");
}

export class Charts {
  constructor(node, series) {
    this.node = node;
    this.series = series;
    this.plots = [];
    this.dirty = false; // rows arrived since the last draw
    this.unfitted = false; // built while the container had no width (not attached, theme switch)
  }

  build(spec, theme) {
    this.destroy();
    this.node.replaceChildren();
    const width = chartWidth(this.node.clientWidth);
    this.plots = chartSpecs(spec, this.series.names).map((chart) => {
      const opts = chartOptions(chart, theme, width);
      const wrap = el("div", "sciml-chart");
      this.node.appendChild(wrap);
      return { plot: new uPlot(opts, opts.series.map(() => []), wrap), chart };
    });
    this.unfitted = !this.node.clientWidth;
    this.dirty = true;
  }

  // false while the container has no width yet
  fit() {
    const w = this.node.clientWidth;
    if (!w) return false;
    const cw = chartWidth(w);
    for (const p of this.plots) if (p.plot.width !== cw) p.plot.setSize({ width: cw, height: p.plot.height });
    return true;
  }

  // once a frame: fit if still unfitted, and draw if rows arrived
  frame() {
    if (this.unfitted) this.unfitted = !this.fit();
    if (!this.dirty) return;
    this.dirty = false;
    for (const p of this.plots) {
      const data = chartData(this.series, p.chart);
      p.plot.setData(data);
      const title = p.plot.root.querySelector(".u-title");
      if (title) title.textContent = chartTitle(p.chart, data);
    }
  }

  destroy() {
    this.plots.forEach((p) => p.plot.destroy());
    this.plots = [];
  }
}

// Drive `charts`: a frame loop at the display's rate, a refit when the notebook's width
// changes, `onTheme()` when JupyterLab's theme changes. Returns the function that stops it.
export function follow(charts, onTheme) {
  let raf = 0;
  const loop = () => {
    charts.frame();
    raf = requestAnimationFrame(loop);
  };
  raf = requestAnimationFrame(loop);
  const observer = new MutationObserver(() => onTheme());
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  const resizer = new ResizeObserver(() => { charts.unfitted = !charts.fit(); });
  resizer.observe(charts.node);
  return () => {
    cancelAnimationFrame(raf);
    observer.disconnect();
    resizer.disconnect();
  };
}
