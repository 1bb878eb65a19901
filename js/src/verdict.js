// The status pill of a job: its state while it runs, its verdict once it has ended
// (sciml_lab.runtime.verdict). "done" alone is never shown for a run that missed its
// target or has warnings: the verdict's text and level say so.

const LEVELS = new Set(["ok", "warn", "error", "neutral"]);

// status: the job's state; verdict: the synced dict {status, reasons, warnings, text,
// level} or null. Returns {text, level, title}: level picks the pill's colour
// (ok green, warn orange, error red, neutral grey, or the state itself while running),
// title is the full verdict for the tooltip.
export function statusPill(status, verdict) {
  const finished = status === "done" || status === "stopped" || status === "failed";
  if (!finished || !verdict || !verdict.status) return { text: status, level: status, title: "" };
  const warnings = verdict.warnings || [];
  const reasons = verdict.reasons || [];
  let text = verdict.text;
  if (!text) {
    const n = warnings.length;
    text = verdict.status + (n ? ` with ${n} warning${n === 1 ? "" : "s"}` : "");
    if ((verdict.status === "target missed" || verdict.status === "failed") && reasons.length) {
      text = `${verdict.status}: ${reasons.join("; ")}`;
    }
  }
  let level = LEVELS.has(verdict.level) ? verdict.level : null;
  if (!level) {
    if (verdict.status === "failed") level = "error";
    else if (verdict.status === "target missed" || warnings.length) level = "warn";
    else level = verdict.status === "stopped" ? "neutral" : "ok";
  }
  const title = [...reasons, ...warnings.map((w) => `warning: ${w}`)].join("\n");
  return { text, level, title };
}

// The lines listed under the pill of a finished job: why its verdict is what it is (the
// reasons of a missed target or a failure, which the pill may shorten) and every warning, in
// words and numbers. Empty while the job runs, and for a verdict with nothing to add.
export function verdictLines(status, verdict) {
  const finished = status === "done" || status === "stopped" || status === "failed";
  if (!finished || !verdict || !verdict.status) return [];
  const lines = [];
  if (verdict.status === "target missed" || verdict.status === "failed") {
    for (const r of verdict.reasons || []) lines.push({ kind: "reason", text: r });
  }
  for (const w of verdict.warnings || []) lines.push({ kind: "warning", text: w });
  return lines;
}
