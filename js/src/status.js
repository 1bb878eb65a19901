// The job's status: the head (kind, name, status pill, step · elapsed · ETA), the
// progress bar, the verdict's lines under the pill, the note and the error with its traceback.
import { estimateEta, etaText, formatSeconds } from "./util.js";
import { statusPill, verdictLines } from "./verdict.js";
import { el } from "./theme.js";

// the progress bar's percentage (one decimal), null when the job has no progress
export function progressPercent(p) {
  return p === null || p === undefined ? null : Math.round(1000 * p) / 10;
}

// The ETA shown: the budget's, or earlier where the trends of the spec's `until` targets
// reach them first (see estimateEta).
export function jobEta(spec, capEta, series, now) {
  return estimateEta(capEta, spec.until, series, now);
}

export class StatusView {
  constructor(box) {
    this.box = box; // the monitor's element: its dataset carries the status and verdict
    this.kind = el("span", "sciml-kind");
    this.name = el("span", "sciml-name");
    this.status = el("span", "sciml-status");
    this.stats = el("span", "sciml-stats");
    this.head = el("div", "sciml-head");
    this.head.append(this.kind, this.name, this.status, this.stats);
    this.fill = el("div", "sciml-progress-fill");
    this.label = el("span", "sciml-progress-label");
    this.bar = el("div", "sciml-progress");
    this.bar.append(this.fill, this.label);
    this.verdict = el("ul", "sciml-verdict"); // the finished job's reasons and warnings, in words
    this.note = el("div", "sciml-note");
    this.errorMsg = el("div", "sciml-error-msg");
    this.traceback = el("pre");
    const details = el("details", "sciml-traceback");
    details.append(el("summary", "", "traceback"), this.traceback);
    this.errorBox = el("div", "sciml-error");
    this.errorBox.append(this.errorMsg, details);
  }

  // model: the widget's synced traits; series: the rows received (the ETA's trends)
  render(model, series) {
    const st = model.get("status");
    this.renderPill(st, model.get("verdict"));
    this.renderProgress(model.get("progress"));
    const est = jobEta(model.get("spec") || {}, model.get("eta"), series, model.get("elapsed"));
    this.stats.textContent = `step ${model.get("step")} · ${formatSeconds(model.get("elapsed"))}` +
      (st === "running" && est.kind !== "unknown" ? ` · ${etaText(est)}` : "");
    this.stats.dataset.eta = st === "running" ? est.kind : "";
    this.kind.textContent = model.get("kind");
    this.name.textContent = model.get("job_name");
    this.note.textContent = model.get("note") || "";
    this.note.style.display = this.note.textContent ? "" : "none";
    const err = model.get("error");
    this.errorBox.style.display = err ? "" : "none";
    this.errorMsg.textContent = err || "";
    this.traceback.textContent = model.get("traceback") || "";
  }

  renderPill(st, verdict) {
    const pill = statusPill(st, verdict);
    this.status.textContent = pill.text;
    this.status.title = pill.title;
    this.status.className = `sciml-status sciml-status-${pill.level}`;
    this.box.dataset.status = st;
    this.box.dataset.verdict = pill.level === st ? "" : pill.level;
    const lines = verdictLines(st, verdict);
    this.verdict.replaceChildren(...lines.map((l) => el("li", `sciml-verdict-${l.kind}`, l.text)));
    this.verdict.style.display = lines.length ? "" : "none";
  }

  renderProgress(p) {
    const pct = progressPercent(p);
    this.fill.style.width = pct === null ? "0%" : `${pct}%`;
    this.label.textContent = pct === null ? "" : `${pct.toFixed(1)}%`;
    this.bar.dataset.progress = pct === null ? "" : String(pct);
  }
}
