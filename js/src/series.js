// The rows received, as columns, and what each chart draws of them.
import { clampForLog } from "./util.js";
import { LEADING, STEP, WALL } from "./wire.js";

// Column store of every row received, shared by the charts of one view.
export class Series {
  constructor() { this.reset([]); }
  reset(names) {
    this.names = [...names];
    this.step = [];
    this.wall = [];
    this.cols = Object.fromEntries(this.names.map((n) => [n, []]));
  }
  // rows: arrays laid out as the wire's rows (LEADING values, then one per name)
  append(names, rows) {
    for (const n of names) {
      if (!(n in this.cols)) { this.cols[n] = new Array(this.step.length).fill(null); this.names.push(n); }
    }
    for (const r of rows) {
      this.step.push(r[STEP]);
      this.wall.push(r[WALL]);
      for (let j = 0; j < names.length; j++) {
        const v = r[LEADING.length + j];
        this.cols[names[j]].push(Number.isFinite(v) ? v : null);
      }
      for (const n of this.names) if (!names.includes(n)) this.cols[n].push(null);
    }
  }
}

// The charts of a spec; none: one per metric, for the first six.
export function chartSpecs(spec, names) {
  if (spec.charts && spec.charts.length) return spec.charts;
  return names.slice(0, 6).map((n) => ({ title: n, series: [n], log_y: false, hlines: [] }));
}

// uPlot's data of one chart: [x, ...series, ...reference lines], with `clamped` and
// `floor` set on a log chart (see clampForLog).
export function chartData(s, chart) {
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
