"""The live monitor in a real browser: JupyterLab + headless Chromium + Playwright.

Runs a notebook that launches the test engine (``%sciml teststep``) and shows its
monitor twice (the launch and ``%sciml show``), then checks from the DOM that both
views render and advance, that the charts draw, that Stop stops the job (in the page
and on disk), and saves screenshots (light and dark theme) to the git-ignored ``test-artifacts/``
(``make docs-images`` copies them into ``docs/`` for the README).

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``); the test
fails, rather than skips, without it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    JS_CHART_INK,
    JS_KERNEL_READY,
    JS_MONITORS,
    JS_OUTPUT_ERRORS,
    start_lab,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TESTS_DIR = Path(__file__).parent
STEPS, DELAY = 600, 0.05  # a 30 s job: long enough to watch, screenshot and stop it on a busy machine


@pytest.fixture
def lab(tmp_path):
    _require_chromium()  # before starting anything
    # relative to the kernel's working folder (root_dir), so the monitor (and the screenshot
    # in docs/) shows "saved in sciml-runs/live" rather than a temp path
    server = start_lab(tmp_path, {"SCIML_RUNS_DIR": "sciml-runs"})
    server.runs = server.root / "sciml-runs"
    try:
        yield server
    finally:
        server.stop()


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's Chromium. Install it with "
            "`apt-get update && apt-get install -y chromium` (browser downloads such as "
            "`playwright install` do not work here).",
            pytrace=False,
        )


def _poll(fn, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _increasing_distinct(values: list[str]) -> list[float]:
    out: list[float] = []
    for v in values:
        if v in (None, ""):
            continue
        x = float(v)
        if not out or x != out[-1]:
            out.append(x)
    return out


@pytest.mark.timeout(240)
def test_monitor_live_in_jupyterlab(lab, artifacts):
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    nb = "monitor.ipynb"
    write_notebook(lab.root / nb, [
        f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r})\n"
        "import engines; engines.register_magic()\n"
        "%load_ext sciml_lab",
        f"%sciml teststep --steps {STEPS} --delay {DELAY} --name live",
        "%sciml show live",
    ])

    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 960})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

            def diagnostics() -> str:
                try:
                    errors = page.evaluate(JS_OUTPUT_ERRORS)
                except Exception as exc:  # the page may be gone
                    errors = [f"(could not read outputs: {exc})"]
                return ("\n--- cell stderr/errors ---\n" + "\n".join(errors)
                        + "\n--- browser console (errors/warnings) ---\n" + "\n".join(console[-30:])
                        + "\n--- JupyterLab log ---\n" + lab.log_tail(40))

            try:
                _run(page, lab, nb, artifacts)
            except Exception as exc:
                try:
                    page.screenshot(path=str(artifacts / "monitor-failure.png"))
                except Exception:
                    pass
                raise AssertionError(f"{exc}\n{diagnostics()}") from exc
        finally:
            browser.close()
    print(f"browser test: {time.monotonic() - t0:.1f} s")


def _run(page, lab, nb: str, artifacts: Path) -> None:
    page.goto(lab.url(f"lab/tree/{nb}"), wait_until="domcontentloaded")
    # the toolbar says "idle" before the kernel session exists: wait for the kernel itself
    _poll(lambda: page.evaluate(JS_KERNEL_READY) == "ready", 90, "the notebook's kernel to be connected and idle",
          interval=0.25)
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); }")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    # ---- both views (launch + %sciml show) render with progress, charts and badges
    _poll(lambda: (lambda ms: len(ms) == 2 and all(m["progress"] for m in ms))(page.evaluate(JS_MONITORS)),
          45, "two .sciml-monitor views with a progress value")
    samples: list[list[dict]] = []
    t_end = time.monotonic() + 4.0
    while time.monotonic() < t_end:
        samples.append(page.evaluate(JS_MONITORS))
        time.sleep(0.2)
    last = samples[-1]
    for i in range(2):
        seq = [s[i]["progress"] for s in samples]
        distinct = _increasing_distinct(seq)
        assert len(distinct) >= 4, f"monitor {i}: progress took too few values: {seq}"
        assert distinct == sorted(distinct), f"monitor {i}: progress went backwards: {distinct}"
        assert 0 < distinct[-1] < 100, f"monitor {i}: progress {distinct[-1]} out of the running range"
        stats = {s[i]["stats"] for s in samples}
        assert len(stats) >= 3, f"monitor {i}: the step counter did not change: {stats}"
        assert all(t.startswith("step ") for t in stats), stats
        assert last[i]["status"] == "running", last[i]
        assert last[i]["canvases"] >= 2, f"monitor {i}: expected the engine's 2 uPlot charts: {last[i]}"
        assert all(w > 100 and h > 50 for w, h in last[i]["canvasSizes"]), last[i]["canvasSizes"]
        assert last[i]["badges"] >= 1, f"monitor {i}: no .sciml-badge: {last[i]}"
        assert last[i]["latex"] == 3, f"monitor {i}: the live view's LaTeX was not typeset: {last[i]}"
        ink = page.evaluate(JS_CHART_INK, i)
        assert all(n > 150 for n in ink), f"monitor {i}: a chart has no drawn series (coloured pixels {ink})"
    assert page.locator(".sciml-monitor .sciml-badge").first.text_content().startswith("|mean|")

    # ---- screenshots while the job runs: light, then dark theme
    panel = page.locator(".jp-NotebookPanel").first
    shot = artifacts / "monitor.png"
    panel.screenshot(path=str(shot))

    page.evaluate("() => { window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'}); }")
    _poll(lambda: page.evaluate("() => document.body.dataset.jpThemeLight === 'false'"), 15, "the dark theme")
    _poll(lambda: page.evaluate(
        "() => getComputedStyle(document.querySelector('.sciml-monitor')).getPropertyValue('--jp-layout-color1').trim()")
        .lower() not in ("", "white", "#fff", "#ffffff"), 10, "dark theme CSS variables")
    time.sleep(0.6)  # let the charts rebuild in the new colours and receive a few rows
    dark_state = page.evaluate(JS_MONITORS)
    for i in range(2):
        ink = page.evaluate(JS_CHART_INK, i)
        assert all(n > 150 for n in ink), f"dark theme, monitor {i}: a chart is empty (coloured pixels {ink})"
        # the charts are rebuilt in the new colours while the page re-lays out: same size as before
        assert dark_state[i]["canvasSizes"] == last[i]["canvasSizes"], (last[i], dark_state[i])
    dark = artifacts / "monitor-dark.png"
    panel.screenshot(path=str(dark))

    # ---- Stop (first view): both views of the job say stopped, progress freezes
    before = page.evaluate(JS_MONITORS)
    assert all(m["status"] == "running" for m in before), (
        f"the job ended before the test could stop it (machine too slow?): {before}")
    page.locator(".sciml-monitor .sciml-stop").first.click()
    _poll(lambda: all(m["status"] == "stopped" for m in page.evaluate(JS_MONITORS)), 15,
          "data-status=stopped on both views")
    frozen = page.evaluate(JS_MONITORS)
    time.sleep(1.5)
    after = page.evaluate(JS_MONITORS)
    for i in range(2):
        assert after[i]["progress"] == frozen[i]["progress"], (i, frozen[i], after[i])
        assert after[i]["stats"].split(" · ")[0] == frozen[i]["stats"].split(" · ")[0], (i, frozen[i], after[i])
        assert float(after[i]["progress"]) < 100, after[i]
    assert page.locator(".sciml-monitor .sciml-stop").first.is_disabled()

    record = _poll(lambda: (lambda p: p.exists() and json.loads(p.read_text()))(lab.runs / "live" / "job.json"),
                   10, "job.json")
    _poll(lambda: json.loads((lab.runs / "live" / "job.json").read_text())["status"] == "stopped", 10,
          f"job.json to say stopped (it says {record.get('status')!r})")
    # the status pill shows the verdict recorded in job.json, in its colour
    verdict = json.loads((lab.runs / "live" / "job.json").read_text())["verdict"]
    assert verdict["text"].startswith("stopped"), verdict
    _poll(lambda: all(m["pill"] == verdict["text"] for m in page.evaluate(JS_MONITORS)), 10,
          f"both pills to read {verdict['text']!r}")
    assert all(f"sciml-status-{verdict['level']}" in m["pillClass"] for m in page.evaluate(JS_MONITORS))
