// Bundles src/*.js (with uPlot) into ../sciml_lab/widgets/static as ES modules for anywidget.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const out = new URL("../sciml_lab/widgets/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { monitor: "src/monitor.js", board: "src/board.js" },
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  outdir: out,
  logLevel: "warning",
});
const uplotCss = readFileSync(new URL("./node_modules/uplot/dist/uPlot.min.css", import.meta.url), "utf8");
const ownCss = readFileSync(new URL("./src/monitor.css", import.meta.url), "utf8");
writeFileSync(out + "monitor.css", uplotCss + "\n" + ownCss);
console.log("built", out);
