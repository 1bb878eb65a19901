// An engine's live view (see wire.json: view): curves with a filled band (e.g. an
// emulator's slice with its 95 % band) and a table whose LaTeX columns KaTeX typesets
// (e.g. the Pareto front of equations).
import uPlot from "uplot";
import katex from "katex";
import { formatValue } from "./util.js";
import { CHART_HEIGHT, PALETTE, chartAxes, el } from "./theme.js";

// uPlot's options and data of one plot of a view
export function viewPlot(pl, theme, width) {
  const names = Object.keys(pl.lines || {});
  const band = pl.band && pl.band.lower && pl.band.upper ? pl.band : null;
  const series = [{ label: pl.x_label || "x" }];
  const data = [pl.x];
  if (band) {
    for (const k of ["lower", "upper"]) {
      series.push({ label: band.label ? `${band.label} (${k})` : k, stroke: PALETTE[0] + "55", width: 1, points: { show: false } });
      data.push(band[k]);
    }
  }
  names.forEach((n, i) => {
    series.push({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false } });
    data.push(pl.lines[n]);
  });
  const opts = {
    title: pl.title || "",
    width,
    height: CHART_HEIGHT,
    scales: { x: { time: false } },
    axes: chartAxes(theme, pl.x_label || ""),
    series,
    bands: band ? [{ series: [2, 1], fill: PALETTE[0] + "33" }] : [],
    legend: { live: false },
  };
  return { opts, data };
}

// The table of a view, or null when it has none: {title, columns, rows: [{selected,
// cells: [{latex} | {text}]}]}.
export function viewTable(v) {
  if (!v.columns || !v.rows) return null;
  const latex = new Set(v.latex || []);
  const rows = v.rows.map((row, i) => ({
    selected: i === v.selected,
    cells: row.map((cell, j) => {
      if (latex.has(v.columns[j]) && typeof cell === "string") return { latex: cell };
      return { text: typeof cell === "number" ? formatValue(cell, ".4g") : String(cell ?? "") };
    }),
  }));
  return { title: v.title, columns: v.columns, rows };
}

// What a view shows: its plots and its table (null: none).
export function viewParts(v) {
  return { plots: v.plots || [], table: viewTable(v) };
}

function tableNode(t) {
  const table = el("table", "sciml-view-table");
  const head = el("tr");
  for (const c of t.columns) head.appendChild(el("th", "", c));
  table.appendChild(head);
  for (const row of t.rows) {
    const tr = el("tr", row.selected ? "sciml-selected" : "");
    for (const cell of row.cells) {
      const td = el("td");
      if (cell.latex !== undefined) {
        td.className = "sciml-latex";
        td.innerHTML = katex.renderToString(cell.latex, { throwOnError: false, displayMode: false });
      } else {
        td.textContent = cell.text;
      }
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  return table;
}

export class LiveView {
  // widthOf(): the width the view's plots are sized for (that of the charts)
  constructor(node, widthOf) {
    this.node = node;
    this.widthOf = widthOf;
    this.plots = [];
  }

  render(v, theme) {
    this.destroy();
    this.node.replaceChildren();
    const plotBox = el("div", "sciml-charts");
    this.node.appendChild(plotBox);
    const { plots, table } = viewParts(v || {});
    for (const pl of plots) {
      const { opts, data } = viewPlot(pl, theme, this.widthOf());
      const wrap = el("div", "sciml-chart sciml-view-plot");
      plotBox.appendChild(wrap);
      this.plots.push(new uPlot(opts, data, wrap));
    }
    this.node.style.display = table || plots.length ? "" : "none";
    if (!table) return;
    if (table.title) this.node.appendChild(el("div", "sciml-view-title", table.title));
    this.node.appendChild(tableNode(table));
  }

  destroy() {
    this.plots.forEach((p) => p.destroy());
    this.plots = [];
  }
}
