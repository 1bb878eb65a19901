import { test } from "node:test";
import assert from "node:assert/strict";
import { statusPill, verdictLines } from "../src/verdict.js";
import { cappedRange } from "../src/util.js";

test("a running job shows its state", () => {
  assert.deepEqual(statusPill("running", null), { text: "running", level: "running", title: "" });
  // a verdict left from the previous segment is ignored while the job runs again
  assert.equal(statusPill("running", { status: "converged", text: "converged", level: "ok" }).text, "running");
});

test("a missed target is never shown as done", () => {
  const v = { status: "target missed", reasons: ["R-hat 1.021 > 1.01 (tau)"], warnings: ["tau: ..."] };
  const p = statusPill("done", v);
  assert.equal(p.text, "target missed: R-hat 1.021 > 1.01 (tau)");
  assert.equal(p.level, "warn");
  assert.match(p.title, /R-hat 1.021 > 1.01 \(tau\)\nwarning: tau: \.\.\./);
});

test("the verdict's own text and level are used when present", () => {
  const v = { status: "done", reasons: [], warnings: ["a", "b"], text: "done with 2 warnings", level: "warn" };
  assert.deepEqual(statusPill("done", v), { text: "done with 2 warnings", level: "warn", title: "warning: a\nwarning: b" });
});

test("levels: converged is ok, failed is error, stopped is neutral, warnings are warn", () => {
  assert.equal(statusPill("done", { status: "converged", reasons: ["R-hat 1.004 < 1.01"], warnings: [] }).level, "ok");
  assert.equal(statusPill("failed", { status: "failed", reasons: ["ValueError: x"], warnings: [] }).text,
    "failed: ValueError: x");
  assert.equal(statusPill("failed", { status: "failed", reasons: ["x"], warnings: [] }).level, "error");
  assert.equal(statusPill("stopped", { status: "stopped", reasons: [], warnings: [] }).level, "neutral");
  assert.equal(statusPill("done", { status: "done", reasons: [], warnings: ["w"] }).text, "done with 1 warning");
  assert.equal(statusPill("done", { status: "done", reasons: [], warnings: ["w"] }).level, "warn");
  assert.equal(statusPill("done", { status: "done", reasons: [], warnings: [] }).level, "ok");
});

test("a finished job without a verdict (an old run) shows its state", () => {
  assert.deepEqual(statusPill("done", null), { text: "done", level: "done", title: "" });
});

test("cappedRange keeps 1.01 and 1.02 apart on the R-hat chart", () => {
  const [lo, hi] = cappedRange(1.0, 3.0, 1.1); // early R-hat of 3 no longer squashes the axis
  assert.ok(hi < 1.11 && lo < 1.0 && lo > 0.99, `${lo} ${hi}`);
  assert.ok((1.02 - 1.01) / (hi - lo) > 0.08); // 1.01 and 1.02 are 8 % of the axis apart or more
  const [a, b] = cappedRange(1.003, 1.02, 1.1); // all below the cap: the data's own range
  assert.ok(a < 1.003 && b > 1.02 && b < 1.03);
  assert.equal(cappedRange(null, null, 1.1)[1], 1.1); // no data yet: an axis that ends at the cap
});

test("a finished job lists its reasons and warnings in words; a running one lists nothing", () => {
  const v = { status: "target missed", reasons: ["R-hat 1.021 > 1.01 (tau)"], warnings: ["64 divergent transitions"] };
  assert.deepEqual(verdictLines("done", v), [
    { kind: "reason", text: "R-hat 1.021 > 1.01 (tau)" },
    { kind: "warning", text: "64 divergent transitions" },
  ]);
  assert.deepEqual(verdictLines("running", v), []);
  // a converged run's reasons are its met criteria: the pill says enough, only warnings are listed
  const ok = { status: "converged", reasons: ["R-hat 1.007 < 1.01"], warnings: [] };
  assert.deepEqual(verdictLines("done", ok), []);
  assert.deepEqual(verdictLines("done", { status: "done", warnings: ["9 of 40 simulator runs failed"] }),
    [{ kind: "warning", text: "9 of 40 simulator runs failed" }]);
});
