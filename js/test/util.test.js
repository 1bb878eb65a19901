import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeRows, formatSeconds, badgeState, formatValue, clampForLog, phaseLabel } from "../src/util.js";

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
