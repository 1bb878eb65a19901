import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeRows, formatSeconds, badgeState, formatValue, clampForLog, phaseLabel, formatTick, axisSize, criterionEta,
  estimateEta, etaText,
} from "../src/util.js";

test("decodeRows copies an unaligned DataView", () => {
  const src = new Float64Array([1, 0.5, 3.25, 2, 1.5, NaN]);
  const raw = new Uint8Array(src.byteLength + 3);
  raw.set(new Uint8Array(src.buffer), 3); // offset 3: not 8-byte aligned
  const rows = decodeRows(new DataView(raw.buffer, 3, src.byteLength), 2, 3);
  assert.deepEqual(Array.from(rows[0]), [1, 0.5, 3.25]);
  assert.equal(rows[1][1], 1.5);
  assert.ok(Number.isNaN(rows[1][2]));
});

test("decodeRows rejects a short buffer", () => {
  assert.throws(() => decodeRows(new ArrayBuffer(8), 2, 2), /expected 32/);
});

test("badgeState follows the criterion", () => {
  const b = { op: "<", value: 1.01 };
  assert.equal(badgeState(b, 1.005), "pass");
  assert.equal(badgeState(b, 1.2), "fail");
  assert.equal(badgeState(b, null), "none");
  assert.equal(badgeState({ op: ">=", value: 400 }, 400), "pass");
});

test("formatSeconds and formatValue", () => {
  assert.equal(formatSeconds(3725), "1:02:05");
  assert.equal(formatSeconds(65.4), "1:05");
  assert.equal(formatSeconds(null), "–");
  assert.equal(formatValue(1.0049, ".3g"), "1");
  assert.equal(formatValue(1.00993, ".3f"), "1.010");  // R-hat: fixed decimals, not rounded to "1.01"
  assert.equal(formatValue(6000.4, ".0f"), "6000");
  assert.equal(formatValue(0.008195, ".3g"), "0.00819");
  assert.equal(formatValue(3.14159), "3.142");
  assert.equal(formatValue(0.00001234), "1.234e-5");
});

test("clampForLog draws values <= 0 at a floor below the smallest positive value", () => {
  const { columns, clamped, floor } = clampForLog([[1e-3, 0, null, 2], [5e-2, -1, NaN]]);
  assert.equal(clamped, 2);
  assert.equal(floor, 1e-5);
  assert.deepEqual(columns[0], [1e-3, 1e-5, null, 2]);
  assert.equal(columns[1][1], 1e-5);
  assert.ok(Number.isNaN(columns[1][2]));
  const none = clampForLog([[0, 0]]);
  assert.equal(none.floor, 1);
  assert.deepEqual(none.columns[0], [1, 1]);
});

test("phaseLabel names the phase from its metric, with a counter", () => {
  const ph = { metric: "production", labels: ["training", "production"], counter: "loop" };
  assert.equal(phaseLabel(ph, { production: 0, loop: 3 }), "training · loop 3");
  assert.equal(phaseLabel(ph, { production: 1, loop: 12 }), "production · loop 12");
  assert.equal(phaseLabel(ph, { production: 1 }), "production");
  assert.equal(phaseLabel(ph, {}), null);
  assert.equal(phaseLabel(ph, { production: 5 }), null);
});

test("formatTick labels small values in powers of ten and large ones compactly", () => {
  // a log axis from 1e-5 to 1e-2: every tick distinct and non-zero (was "0", "0")
  const decades = [1e-5, 1.0000000000000002e-4, 1e-3, 1e-2].map(formatTick);
  assert.deepEqual(decades, ["1e-5", "1e-4", "1e-3", "0.01"]);
  assert.equal(formatTick(2.5e-4), "2.5e-4");
  assert.equal(formatTick(-3e-3), "-3e-3");
  assert.equal(formatTick(0), "0");
  assert.equal(formatTick(0.25), "0.25");
  assert.equal(formatTick(1.0125), "1.01");
  assert.equal(formatTick(999), "999");
  // an ESS axis: short labels (was "100,000" cut to "00,000")
  assert.deepEqual([12000, 100000, 1500, 2.5e6].map(formatTick), ["12k", "100k", "1.5k", "2.5M"]);
  assert.equal(formatTick(null), "");
});

test("axisSize fits the longest tick label", () => {
  assert.ok(axisSize(["100k"]) >= 14 + 4 * 6.5);
  assert.ok(axisSize(["1e-5", "2.5e-4"]) > axisSize(["1e-5"]));
  assert.equal(axisSize(null), axisSize([""]));
});

// rows of a run: wall time 0..n-1 s, a metric following f(t)
function series(n, metrics) {
  const wall = Array.from({ length: n }, (_, i) => i);
  const cols = Object.fromEntries(Object.entries(metrics).map(([k, f]) => [k, wall.map(f)]));
  return { wall, cols };
}

test("criterionEta extrapolates the metric's trend to its target", () => {
  const s = series(20, { ess: (t) => 100 * t, rhat: (t) => 1.2 - 0.01 * t });
  // ESS grows 100/s, at 1900 after 19 s: 2000 is reached at t = 20, i.e. 1 s after now = 19
  assert.ok(Math.abs(criterionEta({ metric: "ess", op: ">", value: 2000 }, s.wall, s.cols.ess, 19) - 1) < 1e-9);
  // R-hat falls 0.01/s from 1.01 at t = 19: below 1.005 in 0.5 s
  assert.ok(Math.abs(criterionEta({ metric: "rhat", op: "<", value: 1.005 }, s.wall, s.cols.rhat, 19) - 0.5) < 1e-9);
  assert.equal(criterionEta({ metric: "ess", op: ">", value: 1000 }, s.wall, s.cols.ess, 19), 0); // met now
  // moving away from the target, flat, or too few points: unknown
  assert.equal(criterionEta({ metric: "ess", op: "<", value: 10 }, s.wall, s.cols.ess, 19), null);
  const flat = series(10, { m: () => 2 });
  assert.equal(criterionEta({ metric: "m", op: ">", value: 3 }, flat.wall, flat.cols.m, 9), null);
  assert.equal(criterionEta({ metric: "m", op: ">", value: 3 }, [0, 1], [1, 2], 1), null);
  assert.equal(criterionEta({ metric: "m", op: ">", value: 3 }, [0, 1, 2, 3], [null, null, null, null], 3), null);
  // a metric recomputed every 5 rows repeats its value in between: its trend is that of the
  // updates (ESS 100 at t = 0, 200 at t = 5...), not flat
  const stepped = series(40, { ess: (t) => 100 * (1 + Math.floor(t / 5)) });
  const e = criterionEta({ metric: "ess", op: ">", value: 1200 }, stepped.wall, stepped.cols.ess, 39);
  assert.ok(Math.abs(e - (55 - 39)) < 1e-9, e); // 1200 at t = 55
});

test("estimateEta takes the earlier of the until targets and the budget", () => {
  const s = series(30, { ess: (t) => 50 * t, rhat: (t) => 1.3 - 0.01 * t });
  const until = [{ metric: "rhat", op: "<", value: 1.01 }, { metric: "ess", op: ">", value: 2000 }];
  // the case of the report: budget ETA 29:19, the targets reached far earlier
  const e = estimateEta(1759, until, s, 29);
  assert.equal(e.kind, "approx");
  assert.ok(Math.abs(e.seconds - 11) < 1e-9, e.seconds); // every target must hold: the later one (ESS, t = 40)
  assert.equal(etaText(e), "ETA ≈ 0:11 (target trend; at most 29:19)");
  // the budget ends before the trend reaches the target
  assert.deepEqual(estimateEta(5, until, s, 29), { kind: "cap", seconds: 5 });
  // a target whose trend is unknown: the budget is only an upper bound
  const flat = series(30, { ess: () => 10, rhat: (t) => 1.3 - 0.01 * t });
  const up = estimateEta(1759, until, flat, 29);
  assert.equal(up.kind, "upto");
  assert.match(etaText(up), /^ETA ≤ 29:19/);
  // no target: the budget's ETA as before; nothing known at all
  assert.equal(etaText(estimateEta(99, [], s, 29)), "ETA 1:39");
  assert.equal(etaText(estimateEta(null, undefined, s, 29)), "ETA –");
  assert.deepEqual(estimateEta(null, until, s, 29), { kind: "approx", seconds: 11, cap: null });
  assert.equal(etaText({ kind: "approx", seconds: 11, cap: null }), "ETA ≈ 0:11 (target trend)");
});
