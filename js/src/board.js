// JobBoard: a live table of the kernel's jobs.
import { formatSeconds, formatValue } from "./util.js";

function render({ model, el }) {
  const table = document.createElement("table");
  table.className = "sciml-board";
  el.appendChild(table);
  const draw = () => {
    const rows = model.get("rows") || [];
    const head = "<tr><th>name</th><th>kind</th><th>status</th><th>progress</th><th>elapsed</th><th>key metric</th><th></th></tr>";
    table.innerHTML = head;
    for (const r of rows) {
      const tr = document.createElement("tr");
      const pct = r.progress === null ? "" : `${(100 * r.progress).toFixed(0)}%`;
      const cells = [r.name, r.kind, r.status, pct, formatSeconds(r.elapsed), r.key ? `${r.key} = ${formatValue(r.value)}` : ""];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i === 2) td.className = `sciml-status sciml-status-${r.status}`;
        tr.appendChild(td);
      });
      const td = document.createElement("td");
      if (r.status === "running") {
        const b = document.createElement("button");
        b.textContent = "Stop";
        b.className = "sciml-stop";
        b.addEventListener("click", () => model.send({ type: "stop", name: r.name }));
        td.appendChild(b);
      }
      tr.appendChild(td);
      table.appendChild(tr);
    }
  };
  model.on("change:rows", draw);
  draw();
  return () => model.off("change:rows", draw);
}

export default { render };
