// Size check of the front end's sources: no file over MAX_FILE lines, no function over
// MAX_FUNCTION lines (from the line of its opening brace to that of its closing one).
// Run by `npm run check`; `node tools/size-check.mjs --report [files]` prints the longest
// functions and every file's length without failing.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const MAX_FILE = 350;
export const MAX_FUNCTION = 60;

// A block opens a function when the text before its brace (on the same line) ends a
// signature: `function f(...)`, `(...) =>`, `x =>`, or a method `name(...)` that is not
// a statement such as if/for/while/switch/catch.
const STATEMENTS = new Set(["if", "for", "while", "switch", "catch", "with"]);
function opensFunction(before) {
  if (/=>\s*$/.test(before)) return true;
  if (/\bfunction\b[^{]*\)\s*$/.test(before)) return true;
  const m = /(?:^|[\s,;{(])(?:async\s+|static\s+|get\s+|set\s+)*([A-Za-z_$][\w$]*)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*$/.exec(before);
  return Boolean(m) && !STATEMENTS.has(m[1]);
}

// The functions of a source text: [{name, start, lines}], strings, template literals and
// comments skipped (regular expressions with braces are not expected in these sources).
export function functionLengths(text) {
  const out = [];
  const stack = []; // {line, fn, before} of each open brace; "${" pushes a template marker
  let line = 1, i = 0, lineStart = 0;
  const modes = []; // "tpl" while inside a template literal
  while (i < text.length) {
    const c = text[i];
    const inTpl = modes[modes.length - 1] === "tpl";
    if (c === "\n") { line++; lineStart = i + 1; i++; continue; }
    if (inTpl) {
      if (c === "\\") { i += 2; continue; }
      if (c === "`") { modes.pop(); i++; continue; }
      if (c === "$" && text[i + 1] === "{") { stack.push({ tpl: true }); modes.push("code"); i += 2; continue; }
      i++; continue;
    }
    if (c === "/" && text[i + 1] === "/") { while (i < text.length && text[i] !== "\n") i++; continue; }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      for (let k = i; k < end; k++) if (text[k] === "\n") { line++; lineStart = k + 1; }
      i = end + 2; continue;
    }
    if (c === "\"" || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === "\\" ? 2 : 1;
      i++; continue;
    }
    if (c === "`") { modes.push("tpl"); i++; continue; }
    if (c === "{") {
      const before = text.slice(lineStart, i);
      stack.push({ line, fn: opensFunction(before), before: before.trim() });
      i++; continue;
    }
    if (c === "}") {
      const open = stack.pop();
      if (open && open.tpl) { modes.pop(); i++; continue; }
      if (open && open.fn) out.push({ name: open.before.slice(0, 60), start: open.line, lines: line - open.line + 1 });
      i++; continue;
    }
    i++;
  }
  return out;
}

function sources(args) {
  if (args.length) return args;
  const dir = new URL("../src/", import.meta.url).pathname;
  return readdirSync(dir).filter((f) => f.endsWith(".js")).sort().map((f) => join(dir, f));
}

const report = process.argv.includes("--report");
const files = sources(process.argv.slice(2).filter((a) => a !== "--report"));
const problems = [];
const all = [];
for (const f of files) {
  const text = readFileSync(f, "utf8");
  const n = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  if (report) console.log(`${String(n).padStart(5)} ${f}`);
  if (n > MAX_FILE) problems.push(`${f}: ${n} lines (at most ${MAX_FILE})`);
  for (const fn of functionLengths(text)) {
    all.push({ ...fn, file: f });
    if (fn.lines > MAX_FUNCTION) problems.push(`${f}:${fn.start}: a function of ${fn.lines} lines (at most ${MAX_FUNCTION}): ${fn.name}`);
  }
}
if (report) {
  console.log("longest functions:");
  for (const fn of all.sort((a, b) => b.lines - a.lines).slice(0, 8)) console.log(`${String(fn.lines).padStart(5)} ${fn.file}:${fn.start} ${fn.name}`);
} else if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
