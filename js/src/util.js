// Pure helpers of the monitor, unit-tested with `node --test` (js/test/).

// Rows arrive as a DataView (or ArrayBuffer) whose byte offset need not be
// 8-byte aligned: copy the bytes before viewing them as float64.
export function decodeRows(buffer, n, width) {
  let bytes;
  if (buffer instanceof ArrayBuffer) bytes = new Uint8Array(buffer);
  else bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const need = n * width * 8;
  if (bytes.byteLength < need) throw new Error(`rows buffer has ${bytes.byteLength} bytes, expected ${need}`);
  const copy = new Uint8Array(need);
  copy.set(bytes.subarray(0, need));
  const flat = new Float64Array(copy.buffer);
  const rows = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = flat.subarray(i * width, (i + 1) * width);
  return rows;
}

export function formatSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (x) => String(x).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

// Python-style format specs: ".3f" fixed decimals, ".2g" significant digits (default ".4g").
export function formatValue(v, fmt) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const m = /\.(\d+)([fge])?$/.exec(fmt || "");
  const digits = m ? parseInt(m[1], 10) : 4;
  const kind = m && m[2] ? m[2] : "g";
  const a = Math.abs(v);
  if (kind === "f" && a < 1e15) return v.toFixed(digits);
  if (kind === "e") return v.toExponential(digits);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(Math.max(0, digits - 1));
  return String(Number(v.toPrecision(Math.max(1, digits))));
}

// "pass" when the metric meets the badge's criterion, "fail" when it does not, "none" when unknown.
export function badgeState(badge, value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "none";
  const ok = { "<": value < badge.value, "<=": value <= badge.value, ">": value > badge.value, ">=": value >= badge.value }[badge.op];
  return ok ? "pass" : "fail";
}

// A log scale cannot draw values <= 0 (a loss that reached exactly 0, say). They are
// drawn at a floor two decades below the smallest positive value of the chart (1 when
// there is none), so that a curve reaching zero visibly drops to the bottom; the count
// and the floor go into the chart's title. `columns`: the y arrays (null = no value).
export function clampForLog(columns) {
  let smallest = Infinity;
  for (const col of columns) for (const v of col) if (v !== null && v > 0 && v < smallest) smallest = v;
  const floor = Number.isFinite(smallest) ? smallest / 100 : 1;
  let clamped = 0;
  const out = columns.map((col) => col.map((v) => {
    if (v === null || Number.isNaN(v) || v > 0) return v;
    clamped++;
    return floor;
  }));
  return { columns: out, clamped, floor };
}

// The phase pill's text: labels[value of the phase metric], then "counter value"
// (e.g. "production · loop 12"); null while the metric has no (valid) value.
export function phaseLabel(phase, metrics) {
  const v = metrics[phase.metric];
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const label = phase.labels[Math.round(v)];
  if (label === undefined) return null;
  const c = phase.counter ? metrics[phase.counter] : undefined;
  return c !== undefined && c !== null && Number.isFinite(c) ? `${label} · ${phase.counter} ${formatValue(c)}` : label;
}

// A linear y-axis that ends at `yMax` at most (a chart's `y_max`): [lo, hi] of the data
// (reference lines included), capped, with a 5 % margin. Values above leave the chart.
export function cappedRange(lo, hi, yMax) {
  if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [yMax - 1, yMax];
  const top = Math.min(hi, yMax);
  const bottom = Math.min(lo, top);
  const pad = 0.05 * (top - bottom || Math.abs(top) || 1);
  return [bottom - pad, top + pad];
}

// Axis tick labels readable at every scale: 1e-5, 2.5e-4 for small values (a plain
// fixed format would print "0"), 12k, 1.2M for large ones (narrow enough for the axis).
export function formatTick(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const a = Math.abs(v);
  const trim = (x, digits) => String(Number(x.toPrecision(digits)));
  if (a >= 1e15) return v.toExponential(1).replace("e+", "e");
  for (const [unit, suffix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (a >= unit) return trim(v / unit, 3) + suffix;
  }
  if (a < 1e-2) {
    const [m, e] = Number(v.toPrecision(2)).toExponential().split("e");
    return `${m}e${e.replace("+", "")}`;
  }
  return trim(v, 3);
}

// Width in pixels of a y axis whose tick labels are `labels` (11px sans-serif digits are
// about 6.5 px wide), so that no label is cut.
export function axisSize(labels) {
  const longest = Math.max(1, ...(labels || []).map((s) => String(s ?? "").length));
  return Math.ceil(18 + 7 * longest); // tick (10) + gap (5) + margin, then the text
}

// Seconds until one `until` criterion ({metric, op, value}) holds, from the trend of its
// metric: a least-squares line through its last `window` updates against wall time,
// extrapolated to the target. A metric recomputed now and then (R-hat, ESS) repeats its
// value in between: a run of equal values counts once, at the time it first appeared.
// 0 when it holds now; null when unknown (too few updates, or not moving toward the target).
export function criterionEta(c, wall, col, now, window = 8) {
  const pts = [];
  for (let i = (col || []).length - 1; i >= 0; i--) {
    const v = col[i], t = wall[i];
    if (v === null || v === undefined || !Number.isFinite(v) || !Number.isFinite(t)) continue;
    if (pts.length && pts[pts.length - 1][1] === v) pts[pts.length - 1][0] = t; // the same update, earlier
    else if (pts.length === window) break;
    else pts.push([t, v]);
  }
  if (!pts.length) return null;
  const latest = pts[0][1];
  if (badgeState(c, latest) === "pass") return 0;
  if (pts.length < 3) return null;
  const n = pts.length;
  const mt = pts.reduce((s, p) => s + p[0], 0) / n, mv = pts.reduce((s, p) => s + p[1], 0) / n;
  let sxx = 0, sxy = 0;
  for (const [t, v] of pts) { sxx += (t - mt) ** 2; sxy += (t - mt) * (v - mv); }
  if (!(sxx > 0)) return null;
  const slope = sxy / sxx;
  const towards = c.op[0] === "<" ? slope < 0 : slope > 0;
  if (!towards) return null;
  const hit = mt + (c.value - mv) / slope;
  return Math.max(0, hit - now);
}

// The ETA the monitor shows. `capEta`: seconds to the end of the budget (the loop cap);
// `criteria`: the job's `until` targets; `series`: {wall, cols} of the rows received.
// kind "cap": the budget ends first (or there is no target); "approx": every target's
// trend reaches it before the cap (seconds ≈ the latest of them; cap: the bound);
// "upto": some target's trend is unknown, so only the cap bounds it; "unknown".
export function estimateEta(capEta, criteria, series, now) {
  const cap = capEta === null || capEta === undefined || !Number.isFinite(capEta) ? null : capEta;
  if (!criteria || !criteria.length) return cap === null ? { kind: "unknown" } : { kind: "cap", seconds: cap };
  const per = criteria.map((c) => criterionEta(c, series.wall, series.cols[c.metric], now));
  if (per.some((x) => x === null)) return cap === null ? { kind: "unknown" } : { kind: "upto", seconds: cap };
  const until = Math.max(...per);
  if (cap !== null && cap <= until) return { kind: "cap", seconds: cap };
  return { kind: "approx", seconds: until, cap };
}

// "ETA 1:39", "ETA ≈ 1:39 (target; at most 29:19)", "ETA ≤ 29:19", "ETA –" (unknown).
export function etaText(e) {
  if (e.kind === "cap") return `ETA ${formatSeconds(e.seconds)}`;
  if (e.kind === "approx") {
    return `ETA ≈ ${formatSeconds(e.seconds)} (target trend` + (e.cap !== null && e.cap !== undefined ? `; at most ${formatSeconds(e.cap)})` : ")");
  }
  if (e.kind === "upto") return `ETA ≤ ${formatSeconds(e.seconds)} (budget; target not yet predictable)`;
  return "ETA –";
}
