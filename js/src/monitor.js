// Live monitor of one sciml_lab job (anywidget front end): wires the synced traits and
// the rows messages (formats: sciml_lab/widgets/wire.json) to the monitor's parts.
//
// State that lasts (status, progress, spec, errors) lives in synced traits; metric
// rows arrive as custom messages carrying one float64 buffer (see wire.js).
import { Series } from "./series.js";
import { Charts, follow } from "./charts.js";
import { LiveView } from "./liveview.js";
import { renderBadges } from "./badges.js";
import { StatusView } from "./status.js";
import { Controls } from "./controls.js";
import { chartWidth, el, readTheme } from "./theme.js";
import { readRows } from "./wire.js";

// which traits each part of the monitor follows
const TRAITS = {
  status: "change:status change:progress change:eta change:step change:elapsed change:error change:traceback " +
    "change:note change:job_name change:kind change:run_dir change:verdict change:resumable",
  badges: "change:metrics change:spec",
  view: "change:view",
  extend: "change:budget_words change:extend_default",
  charts: "change:spec",
};

function render({ model, el: root }) {
  const box = el("div", "sciml-monitor");
  root.appendChild(box);
  const series = new Series();
  const status = new StatusView(box);
  const badges = el("div", "sciml-badges");
  const charts = new Charts(el("div", "sciml-charts"), series);
  const view = new LiveView(el("div", "sciml-view"), () => chartWidth(charts.node.clientWidth));
  const controls = new Controls(model);
  box.append(status.head, status.bar, badges, status.verdict, status.note, charts.node, view.node, controls.node,
    status.errorBox);

  const spec = () => model.get("spec") || {};
  const parts = {
    status: () => { status.render(model, series); controls.renderState(model); },
    badges: () => renderBadges(badges, spec(), model.get("metrics") || {}),
    view: () => view.render(model.get("view"), readTheme(box)),
    extend: () => controls.renderExtend(model),
    charts: () => charts.build(spec(), readTheme(box)),
  };
  const onRows = (msg, buffers) => {
    const got = readRows(msg, buffers);
    if (!got) return;
    const known = series.names.length;
    if (got.reset) series.reset(got.names);
    series.append(got.names, got.rows);
    // charts follow new metrics only when the engine names none
    if (got.reset || (series.names.length !== known && !spec().charts?.length)) parts.charts();
    charts.dirty = true;
  };

  model.on("msg:custom", onRows);
  for (const [part, events] of Object.entries(TRAITS)) model.on(events, parts[part]);
  const unfollow = follow(charts, parts.charts); // frames, resizes, JupyterLab's theme
  for (const part of Object.keys(TRAITS)) parts[part]();
  model.send({ type: "sync" }); // ask for the whole history (late or second views)

  return () => {
    unfollow();
    model.off("msg:custom", onRows);
    for (const part of Object.keys(TRAITS)) model.off(null, parts[part]);
    view.destroy();
    charts.destroy();
  };
}

export default { render };
