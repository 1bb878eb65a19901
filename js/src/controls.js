// Stop and Extend: the buttons that send commands to the kernel (see wire.json: commands).
import { el } from "./theme.js";

// The extend command for `amount` (the input's text) of budget `word`; null when the
// amount is not a positive whole number.
export function extendCommand(word, amount) {
  const n = parseInt(amount, 10);
  return n > 0 ? { type: "extend", budget: { [word]: n } } : null;
}

export class Controls {
  constructor(model) {
    this.stop = el("button", "sciml-stop", "Stop");
    this.extend = el("button", "sciml-extend", "Extend");
    this.amount = el("input", "sciml-extend-amount");
    this.amount.type = "number";
    this.amount.min = "1";
    this.word = el("select", "sciml-extend-word");
    this.runDir = el("span", "sciml-rundir");
    this.node = el("div", "sciml-controls");
    this.node.append(this.stop, this.extend, this.amount, this.word, this.runDir);
    this.stop.addEventListener("click", () => model.send({ type: "stop" }));
    this.extend.addEventListener("click", () => {
      const command = extendCommand(this.word.value, this.amount.value);
      this.amount.classList.toggle("sciml-invalid", !command);
      if (command) model.send(command);
    });
  }

  // what the job's state allows: Stop while it runs, Extend unless it failed for good
  renderState(model) {
    const st = model.get("status");
    this.stop.disabled = !(st === "running" || st === "queued");
    this.extend.disabled = st === "failed" && !model.get("resumable");
    this.runDir.textContent = model.get("run_dir") ? `saved in ${model.get("run_dir")}` : "";
  }

  // the budget words to extend by, the engine's default selected
  renderExtend(model) {
    const words = model.get("budget_words") || [];
    const def = model.get("extend_default") || {};
    this.word.replaceChildren(...words.map((w) => { const o = el("option", "", w); o.value = w; return o; }));
    const w = Object.keys(def)[0] || words[0];
    if (w) this.word.value = w;
    this.amount.value = String(def[w] || 100);
    const hide = words.length === 0;
    for (const e of [this.extend, this.amount, this.word]) e.style.display = hide ? "none" : "";
  }
}
