// Bundles src/*.js (with uPlot and KaTeX) into ../sciml_lab/widgets/static as ES modules for
// anywidget, and src/monitor.css (with uPlot's and KaTeX's CSS, KaTeX's woff2 fonts inlined)
// into monitor.css.
import * as esbuild from "esbuild";
import { mkdirSync } from "node:fs";

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
await esbuild.build({
  entryPoints: { monitor: "src/styles.css" },
  bundle: true,
  minify: true,
  outdir: out,
  // every browser JupyterLab supports reads woff2: older formats are dropped, not shipped
  loader: { ".woff2": "dataurl", ".woff": "empty", ".ttf": "empty" },
  logLevel: "warning",
});
console.log("built", out);
