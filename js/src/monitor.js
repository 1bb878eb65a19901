// Live monitor of one sciml_lab job (anywidget front end).
//
// State that lasts (status, progress, spec, errors) lives in synced traits; metric
// rows arrive as custom messages carrying one float64 buffer of shape
// (n, 2 + names.length): step, wall_time, then the metrics in `names` order.
import uPlot from "uplot";
import katex from "katex";
import {
  decodeRows, formatSeconds, badgeState, formatValue, clampForLog, phaseLabel, cappedRange, formatTick, axisSize,
  estimateEta, etaText,
} from "./util.js";
import { statusPill, verdictLines } from "./verdict.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2"];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cssVar(node, name, fallback) {
  const v = getComputedStyle(node).getPropertyValue(name).trim();
  return v || fallback;
}

class Series {
  // Column store of every row received, shared by the charts of one view.
  constructor() { this.reset([]); }
  reset(names) {
    this.names = [...names];
    this.step = [];
    this.wall = [];
    this.cols = Object.fromEntries(this.names.map((n) => [n, []]));
  }
  append(names, rows) {
    for (const n of names) {
      if (!(n in this.cols)) { this.cols[n] = new Array(this.step.length).fill(null); this.names.push(n); }
    }
    for (const r of rows) {
      this.step.push(r[0]);
      this.wall.push(r[1]);
      for (let j = 0; j < names.length; j++) {
        const v = r[2 + j];
        this.cols[names[j]].push(Number.isFinite(v) ? v : null);
      }
      for (const n of this.names) if (!names.includes(n)) this.cols[n].push(null);
    }
  }
}

function chartSpecs(spec, names) {
  if (spec.charts && spec.charts.length) return spec.charts;
  return names.slice(0, 6).map((n) => ({ title: n, series: [n], log_y: false, hlines: [] }));
}

// Two charts side by side; a container not laid out yet (width 0) gets a guess that
// fitCharts() corrects once it has a width.
function chartWidth(containerWidth) {
  return Math.max(220, Math.min(420, (containerWidth || 700) / 2 - 16));
}

// tick labels readable at every scale (1e-5 on a log axis, 12k for a large ESS), and a
// y axis as wide as its longest label so that none is cut
function axisOptions(theme) {
  return {
    stroke: theme.fg, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid },
    font: "11px sans-serif", values: (u, splits) => splits.map(formatTick),
  };
}
const yAxis = { size: (u, values) => axisSize(values) };

function makeChart(container, chart, theme) {
  const width = chartWidth(container.clientWidth);
  const xLabel = chart.x || "time (s)";
  const series = [{ label: xLabel }];
  chart.series.forEach((name, i) => {
    series.push({ label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true, points: { show: false } });
  });
  (chart.hlines || []).forEach((v) => {
    series.push({ label: `${formatValue(v)}`, stroke: theme.muted, dash: [4, 4], width: 1, points: { show: false } });
  });
  const axis = axisOptions(theme);
  const opts = {
    title: chart.title,
    width,
    height: 170,
    scales: { x: { time: false }, y: { distr: chart.log_y ? 3 : 1,
      ...(chart.y_max != null && !chart.log_y ? { range: (u, lo, hi) => cappedRange(lo, hi, chart.y_max) } : {}) } },
    axes: [{ ...axis, label: xLabel, labelSize: 16, labelFont: "11px sans-serif" }, { ...axis, ...yAxis }],
    series,
    legend: { live: false },
    cursor: { drag: { x: true, y: false } },
  };
  const wrap = el("div", "sciml-chart");
  container.appendChild(wrap);
  const plot = new uPlot(opts, [[]].concat(series.slice(1).map(() => [])), wrap);
  return { plot, chart };
}

function chartData(s, chart) {
  // abscissa: wall time, or a metric the engine names (e.g. the number of simulator runs);
  // rows where that metric is missing are left out
  let keep = null;
  let x = s.wall;
  if (chart.x) {
    const col = s.cols[chart.x] || [];
    keep = [];
    col.forEach((v, i) => { if (v !== null) keep.push(i); });
    x = keep.map((i) => col[i]);
  }
  const pick = (arr) => (keep ? keep.map((i) => arr[i]) : arr);
  const data = [x];
  for (const name of chart.series) data.push(s.cols[name] ? pick(s.cols[name]) : new Array(x.length).fill(null));
  for (const v of chart.hlines || []) data.push(new Array(x.length).fill(v));
  data.clamped = 0;
  if (chart.log_y) {
    // values <= 0 are drawn at a floor below the smallest positive one (see clampForLog);
    // the reference lines do not set the floor
    const n = chart.series.length;
    const { columns, clamped, floor } = clampForLog(data.slice(1, 1 + n));
    columns.forEach((col, i) => { data[1 + i] = col; });
    data.clamped = clamped;
    data.floor = floor;
  }
  return data;
}

function render({ model, el: root }) {
  const box = el("div", "sciml-monitor");
  root.appendChild(box);

  const head = el("div", "sciml-head");
  const kind = el("span", "sciml-kind");
  const name = el("span", "sciml-name");
  const status = el("span", "sciml-status");
  const stats = el("span", "sciml-stats");
  head.append(kind, name, status, stats);

  const bar = el("div", "sciml-progress");
  const fill = el("div", "sciml-progress-fill");
  const label = el("span", "sciml-progress-label");
  bar.append(fill, label);

  const badges = el("div", "sciml-badges");
  const note = el("div", "sciml-note");
  const verdictList = el("ul", "sciml-verdict"); // the finished job's reasons and warnings, in words
  const view = el("div", "sciml-view");
  const charts = el("div", "sciml-charts");

  const controls = el("div", "sciml-controls");
  const stop = el("button", "sciml-stop", "Stop");
  const extendAmount = el("input", "sciml-extend-amount");
  extendAmount.type = "number";
  extendAmount.min = "1";
  const extendWord = el("select", "sciml-extend-word");
  const extend = el("button", "sciml-extend", "Extend");
  const runDir = el("span", "sciml-rundir");
  controls.append(stop, extend, extendAmount, extendWord, runDir);

  const errorBox = el("div", "sciml-error");
  const errorMsg = el("div", "sciml-error-msg");
  const details = el("details", "sciml-traceback");
  const summary = el("summary", "", "traceback");
  const pre = el("pre");
  details.append(summary, pre);
  errorBox.append(errorMsg, details);

  box.append(head, bar, badges, verdictList, note, charts, view, controls, errorBox);

  const s = new Series();
  let plots = [];
  let dirty = false;
  let unfitted = false; // charts built while the container had no width (not attached, theme switch)

  function theme() {
    return {
      fg: cssVar(box, "--jp-ui-font-color2", "#555"),
      grid: cssVar(box, "--jp-border-color2", "#ddd"),
      muted: cssVar(box, "--jp-ui-font-color3", "#999"),
    };
  }

  function buildCharts() {
    plots.forEach((p) => p.plot.destroy());
    charts.replaceChildren();
    const th = theme();
    plots = chartSpecs(model.get("spec") || {}, s.names).map((c) => makeChart(charts, c, th));
    unfitted = !charts.clientWidth;
    dirty = true;
  }

  function fitCharts() {
    const w = charts.clientWidth;
    if (!w) return false;
    const cw = chartWidth(w);
    for (const p of plots) if (p.plot.width !== cw) p.plot.setSize({ width: cw, height: p.plot.height });
    return true;
  }

  function drawCharts() {
    if (!dirty) return;
    dirty = false;
    for (const p of plots) {
      const data = chartData(s, p.chart);
      p.plot.setData(data);
      const title = p.plot.root.querySelector(".u-title");
      if (title) {
        title.textContent = p.chart.title +
          (data.clamped ? ` (${data.clamped} values ≤ 0 drawn at ${formatValue(data.floor, ".2g")})` : "");
      }
    }
  }

  function renderBadges() {
    const spec = model.get("spec") || {};
    const metrics = model.get("metrics") || {};
    badges.replaceChildren();
    const ph = spec.phase;
    if (ph) {
      const label = phaseLabel(ph, metrics);
      if (label) {
        const e = el("span", "sciml-badge sciml-phase", label);
        e.dataset.phase = label.split(" ")[0];
        badges.appendChild(e);
      }
    }
    for (const b of spec.badges || []) {
      const st = badgeState(b, metrics[b.metric]);
      const e = el("span", `sciml-badge sciml-badge-${st}`);
      e.textContent = `${b.label} ${formatValue(metrics[b.metric], b.fmt)} (target ${b.op}${formatValue(b.value)})`;
      e.dataset.metric = b.metric;
      e.dataset.state = st;
      badges.appendChild(e);
    }
  }

  // curves an engine publishes (e.g. an emulator's slice with its 95 % band): uPlot with a filled band
  let viewPlots = [];
  function renderViewPlots(plots, target) {
    viewPlots.forEach((p) => p.destroy());
    viewPlots = [];
    const th = theme();
    const axis = axisOptions(th);
    for (const pl of plots || []) {
      const names = Object.keys(pl.lines || {});
      const hasBand = pl.band && pl.band.lower && pl.band.upper;
      const series = [{ label: pl.x_label || "x" }];
      const data = [pl.x];
      if (hasBand) {
        for (const k of ["lower", "upper"]) {
          series.push({ label: pl.band.label ? `${pl.band.label} (${k})` : k, stroke: PALETTE[0] + "55", width: 1, points: { show: false } });
          data.push(pl.band[k]);
        }
      }
      names.forEach((n, i) => {
        series.push({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false } });
        data.push(pl.lines[n]);
      });
      const wrap = el("div", "sciml-chart sciml-view-plot");
      target.appendChild(wrap);
      const opts = {
        title: pl.title || "",
        width: chartWidth(charts.clientWidth),
        height: 170,
        scales: { x: { time: false } },
        axes: [{ ...axis, label: pl.x_label || "", labelSize: 16, labelFont: "11px sans-serif" }, { ...axis, ...yAxis }],
        series,
        bands: hasBand ? [{ series: [2, 1], fill: PALETTE[0] + "33" }] : [],
        legend: { live: false },
      };
      viewPlots.push(new uPlot(opts, data, wrap));
    }
  }

  // an engine's live table (e.g. the Pareto front of equations), columns in `latex` typeset by KaTeX
  function renderView() {
    const v = model.get("view") || {};
    view.replaceChildren();
    const plotBox = el("div", "sciml-charts");
    view.appendChild(plotBox);
    renderViewPlots(v.plots, plotBox);
    if (!v.columns || !v.rows) { view.style.display = v.plots && v.plots.length ? "" : "none"; return; }
    view.style.display = "";
    if (v.title) view.appendChild(el("div", "sciml-view-title", v.title));
    const table = el("table", "sciml-view-table");
    const head = el("tr");
    for (const c of v.columns) head.appendChild(el("th", "", c));
    table.appendChild(head);
    const latex = new Set(v.latex || []);
    v.rows.forEach((row, i) => {
      const tr = el("tr", i === v.selected ? "sciml-selected" : "");
      row.forEach((cell, j) => {
        const td = el("td");
        if (latex.has(v.columns[j]) && typeof cell === "string") {
          td.className = "sciml-latex";
          td.innerHTML = katex.renderToString(cell, { throwOnError: false, displayMode: false });
        } else {
          td.textContent = typeof cell === "number" ? formatValue(cell, ".4g") : String(cell ?? "");
        }
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    view.appendChild(table);
  }

  function renderStatus() {
    const st = model.get("status");
    const p = model.get("progress");
    const eta = model.get("eta");
    kind.textContent = model.get("kind");
    name.textContent = model.get("job_name");
    const pill = statusPill(st, model.get("verdict"));
    status.textContent = pill.text;
    status.title = pill.title;
    status.className = `sciml-status sciml-status-${pill.level}`;
    box.dataset.status = st;
    box.dataset.verdict = pill.level === st ? "" : pill.level;
    const lines = verdictLines(st, model.get("verdict"));
    verdictList.replaceChildren(...lines.map((l) => el("li", `sciml-verdict-${l.kind}`, l.text)));
    verdictList.style.display = lines.length ? "" : "none";
    const pct = p === null || p === undefined ? null : Math.round(1000 * p) / 10;
    fill.style.width = pct === null ? "0%" : `${pct}%`;
    label.textContent = pct === null ? "" : `${pct.toFixed(1)}%`;
    bar.dataset.progress = pct === null ? "" : String(pct);
    // the budget's ETA, or earlier where the `until` targets' trends reach them first
    const est = estimateEta(eta, (model.get("spec") || {}).until, s, model.get("elapsed"));
    stats.textContent = `step ${model.get("step")} · ${formatSeconds(model.get("elapsed"))}` +
      (st === "running" && est.kind !== "unknown" ? ` · ${etaText(est)}` : "");
    stats.dataset.eta = st === "running" ? est.kind : "";
    const running = st === "running" || st === "queued";
    stop.disabled = !running;
    extend.disabled = st === "failed" && !model.get("resumable");
    note.textContent = model.get("note") || "";
    note.style.display = note.textContent ? "" : "none";
    const err = model.get("error");
    errorBox.style.display = err ? "" : "none";
    errorMsg.textContent = err || "";
    pre.textContent = model.get("traceback") || "";
    runDir.textContent = model.get("run_dir") ? `saved in ${model.get("run_dir")}` : "";
  }

  function renderExtend() {
    const words = model.get("budget_words") || [];
    const def = model.get("extend_default") || {};
    extendWord.replaceChildren(...words.map((w) => { const o = el("option", "", w); o.value = w; return o; }));
    const w = Object.keys(def)[0] || words[0];
    if (w) extendWord.value = w;
    extendAmount.value = String(def[w] || 100);
    const hide = words.length === 0;
    for (const e of [extend, extendAmount, extendWord]) e.style.display = hide ? "none" : "";
  }

  stop.addEventListener("click", () => model.send({ type: "stop" }));
  extend.addEventListener("click", () => {
    const n = parseInt(extendAmount.value, 10);
    if (!(n > 0)) { extendAmount.classList.add("sciml-invalid"); return; }
    extendAmount.classList.remove("sciml-invalid");
    model.send({ type: "extend", budget: { [extendWord.value]: n } });
  });

  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "rows") return;
    const rows = decodeRows(buffers[0], msg.n, 2 + msg.names.length);
    const known = s.names.length;
    if (msg.reset) s.reset(msg.names);
    s.append(msg.names, rows);
    if (msg.reset || (s.names.length !== known && !(model.get("spec") || {}).charts?.length)) buildCharts();
    dirty = true;
  }

  model.on("msg:custom", onMessage);
  const onStatus = () => renderStatus();
  const onBadges = () => renderBadges();
  const onExtend = () => renderExtend();
  model.on("change:status change:progress change:eta change:step change:elapsed change:error change:traceback change:note change:job_name change:kind change:run_dir change:verdict", onStatus);
  model.on("change:metrics change:spec", onBadges);
  model.on("change:view", renderView);
  model.on("change:budget_words change:extend_default", onExtend);
  model.on("change:resumable", onStatus);
  model.on("change:spec", buildCharts);

  // redraw at most at the display's frame rate, and only when rows arrived
  let raf = 0;
  const loop = () => {
    if (unfitted) unfitted = !fitCharts();
    drawCharts();
    raf = requestAnimationFrame(loop);
  };
  raf = requestAnimationFrame(loop);

  // follow JupyterLab's theme: rebuild the charts' colours when it changes
  const observer = new MutationObserver(() => buildCharts());
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  // and the width of the notebook (panel resized, sidebar toggled)
  const resizer = new ResizeObserver(() => { unfitted = !fitCharts(); });
  resizer.observe(charts);

  renderStatus();
  renderBadges();
  renderView();
  renderExtend();
  buildCharts();
  model.send({ type: "sync" }); // ask for the whole history (late or second views)

  return () => {
    cancelAnimationFrame(raf);
    observer.disconnect();
    resizer.disconnect();
    model.off("msg:custom", onMessage);
    model.off(null, onStatus);
    model.off(null, onBadges);
    model.off(null, onExtend);
    model.off("change:spec", buildCharts);
    model.off("change:view", renderView);
    viewPlots.forEach((p) => p.destroy());
    plots.forEach((p) => p.plot.destroy());
  };
}

export default { render };
