// The wire formats, page side: the JS decodes what the Python encoder produced
// (fixtures/wire.json, kept current by tests/test_wire.py) and reads exactly the keys
// sciml_lab/widgets/wire.json documents.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { WIRE, LEADING, readRows } from "../src/wire.js";
import { Series, chartData, chartSpecs } from "../src/series.js";
import { chartOptions } from "../src/charts.js";
import { viewParts, viewPlot } from "../src/liveview.js";
import { badgeItems } from "../src/badges.js";
import { jobEta } from "../src/status.js";

const FIXTURE = JSON.parse(readFileSync(new URL("./fixtures/wire.json", import.meta.url), "utf8"));
const THEME = { fg: "#555", grid: "#ddd", muted: "#999" };

// the rows' buffer as the page gets it: a DataView at an odd byte offset
function rowsBuffer() {
  const bytes = Buffer.from(FIXTURE.rows.buffer_base64, "base64");
  const host = new Uint8Array(bytes.length + 3);
  host.set(bytes, 3);
  return new DataView(host.buffer, 3, bytes.length);
}

function fixtureSeries() {
  const got = readRows(FIXTURE.rows.message, [rowsBuffer()]);
  const s = new Series();
  if (got.reset) s.reset(got.names);
  s.append(got.names, got.rows);
  return s;
}

// "a.b" paths of every key a format documents ("*" for a map's keys), with those only
// the kernel reads set apart
function documentedPaths(schema, root = schema, prefix = "", out = { page: new Set(), kernel: new Set() }) {
  if (schema.$ref) return documentedPaths(resolve(root, schema.$ref), root, prefix, out);
  if (schema.items) documentedPaths(schema.items, root, prefix, out);
  for (const [k, sub] of Object.entries(schema.properties || {})) {
    (sub["x-read-by"] === "kernel" ? out.kernel : out.page).add(prefix + k);
    documentedPaths(sub, root, `${prefix}${k}.`, out);
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
    out.page.add(`${prefix}*`);
    documentedPaths(schema.additionalProperties, root, `${prefix}*.`, out);
  }
  return out;
}

function resolve(root, ref) {
  return ref.replace(/^#\//, "").split("/").reduce((s, k) => s[k], root);
}

// `value` wrapped so that every key read (on it and below) is added to `read` as a path
// of the schema (a map's key as "*", an undocumented key under its own name)
function recorder(value, schema, root, read, prefix = "") {
  if (value === null || typeof value !== "object") return value;
  if (schema && schema.$ref) schema = resolve(root, schema.$ref);
  if (Array.isArray(value)) {
    return new Proxy(value, {
      get(t, p) {
        if (typeof p === "string" && /^\d+$/.test(p)) return recorder(t[p], schema && schema.items, root, read, prefix);
        return Reflect.get(t, p);
      },
    });
  }
  const child = (p) => {
    if (schema && schema.properties && p in schema.properties) return [p, schema.properties[p]];
    if (schema && typeof schema.additionalProperties === "object") return ["*", schema.additionalProperties];
    return [p, null];
  };
  return new Proxy(value, {
    get(t, p) {
      if (typeof p === "symbol") return Reflect.get(t, p);
      const [key, sub] = child(p);
      read.add(prefix + key);
      return recorder(t[p], sub, root, read, `${prefix}${key}.`);
    },
    ownKeys(t) {
      if (schema && typeof schema.additionalProperties === "object") read.add(`${prefix}*`);
      return Reflect.ownKeys(t);
    },
  });
}

test("the rows from the Python encoder decode to the values it encoded", () => {
  const s = fixtureSeries();
  const want = FIXTURE.rows.expected;
  assert.deepEqual(LEADING, ["step", "wall_time"]);
  assert.deepEqual(s.step, want.step);
  assert.deepEqual(s.wall, want.wall_time);
  assert.deepEqual(s.names, FIXTURE.rows.message.names);
  for (const n of s.names) assert.deepEqual(s.cols[n], want.cols[n], n);
  assert.equal(s.cols.rhat[4], 5e-324, "a subnormal value arrives bit for bit");
  assert.equal(s.cols.late[0], null, "a metric that appeared later is a gap in earlier rows");
});

test("a rows message is read by its documented keys only", () => {
  const read = new Set();
  const schema = WIRE.rows.message;
  readRows(recorder(FIXTURE.rows.message, schema, schema, read), [rowsBuffer()]);
  assert.deepEqual([...read].sort(), [...documentedPaths(schema).page].sort());
  assert.equal(readRows({ type: "other" }, []), null);
});

test("a live view is read by its documented keys, and every one of them", () => {
  const read = new Set();
  const v = recorder(FIXTURE.view, WIRE.view, WIRE.view, read);
  const { plots, table } = viewParts(v);
  for (const pl of plots) viewPlot(pl, THEME, 400);
  assert.ok(table);
  const documented = documentedPaths(WIRE.view);
  assert.deepEqual([...read].sort(), [...documented.page].sort());
  assert.equal(documented.kernel.size, 0);
});

test("the live view's table and plot show the encoded values", () => {
  const { plots, table } = viewParts(FIXTURE.view);
  assert.equal(table.title, "Pareto front for y");
  assert.deepEqual(table.rows.map((r) => r.selected), [false, true, false]);
  assert.deepEqual(table.rows[0].cells, [{ text: "1" }, { latex: "x_{0}" }, { text: "0.25" }, { text: "first" }]);
  assert.deepEqual(table.rows[1].cells[2], { text: "1.500e-7" }); // 4 significant digits
  assert.deepEqual(table.rows[2].cells[2], { text: "" }, "NaN travels as null: an empty cell");
  const { opts, data } = viewPlot(plots[0], THEME, 400);
  assert.deepEqual(opts.series.map((s) => s.label), ["a", "95 % (lower)", "95 % (upper)", "mean", "other"]);
  assert.deepEqual(data[0], FIXTURE.view.plots[0].x);
  assert.equal(data[4][2], null, "inf travels as null: a gap");
  assert.deepEqual(opts.bands, [{ series: [2, 1], fill: "#1f77b433" }]);
});

test("a monitor spec is read by its documented keys, and every page key of it", () => {
  const read = new Set();
  const spec = recorder(FIXTURE.spec, WIRE.spec, WIRE.spec, read);
  const s = fixtureSeries();
  for (const chart of chartSpecs(spec, s.names)) {
    chartOptions(chart, THEME, 400);
    chartData(s, chart);
  }
  badgeItems(spec, { late: 1, loss: 0.5, rhat: 1.0 });
  assert.deepEqual(jobEta(spec, 30, s, 10), { kind: "approx", seconds: 0, cap: 30 }); // the target holds now
  const documented = documentedPaths(WIRE.spec);
  assert.deepEqual([...read].sort(), [...documented.page].sort());
  assert.deepEqual([...documented.kernel].sort(), ["key", "note"]);
});

test("the spec's charts draw the fixture's rows", () => {
  const s = fixtureSeries();
  const [loss, rhat, perRun] = chartSpecs(FIXTURE.spec, s.names).map((c) => chartData(s, c));
  assert.equal(loss.clamped, 1, "the loss of 0 is drawn at the log chart's floor");
  assert.deepEqual(rhat[0], FIXTURE.rows.expected.wall_time);
  assert.deepEqual(rhat[3], [1.01, 1.01, 1.01, 1.01, 1.01], "the reference line");
  assert.deepEqual(perRun[0], [7, -2.5e-300, 1], "rows without the abscissa's metric are left out");
  const items = badgeItems(FIXTURE.spec, { late: 1, loss: 0.5, rhat: 1.02 });
  assert.deepEqual(items.map((i) => i.text), ["production · loss 0.5", "R-hat 1.02 (target <1.01)", "loss 0.50 (target <=0.5)"]);
  assert.deepEqual(items.map((i) => i.data.state), [undefined, "fail", "pass"]);
});
