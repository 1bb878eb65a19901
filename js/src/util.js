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
