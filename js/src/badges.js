// The phase pill and the convergence badges (see wire.json: spec.phase, spec.badges).
import { badgeState, formatValue, phaseLabel } from "./util.js";
import { el } from "./theme.js";

// What the badges row shows for the latest `metrics`: [{cls, text, data}] (data: the
// element's dataset).
export function badgeItems(spec, metrics) {
  const items = [];
  const label = spec.phase ? phaseLabel(spec.phase, metrics) : null;
  if (label) items.push({ cls: "sciml-badge sciml-phase", text: label, data: { phase: label.split(" ")[0] } });
  for (const b of spec.badges || []) {
    const state = badgeState(b, metrics[b.metric]);
    items.push({
      cls: `sciml-badge sciml-badge-${state}`,
      text: `${b.label} ${formatValue(metrics[b.metric], b.fmt)} (target ${b.op}${formatValue(b.value)})`,
      data: { metric: b.metric, state },
    });
  }
  return items;
}

export function renderBadges(node, spec, metrics) {
  node.replaceChildren(...badgeItems(spec, metrics).map((item) => {
    const e = el("span", item.cls, item.text);
    Object.assign(e.dataset, item.data);
    return e;
  }));
}
