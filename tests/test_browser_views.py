"""The engines' inline Bokeh views in a real browser that cannot reach the internet.

One JupyterLab server and one headless Chromium whose every request to a host other than
127.0.0.1/localhost is aborted (an air-gapped cluster). A notebook runs a small flow-MCMC,
emulator and symbolic-regression job and leaves each engine's views as cell values (the
display path of ``%load_ext sciml_lab``). The test checks from the DOM that every view
draws (coloured pixels in its Bokeh canvases), that no console message reports BokehJS
missing, that nothing but loopback was requested, that the live monitor of a run with an
``--until`` target shows an ETA from the target's trend, and that the views follow JupyterLab's
theme: light backgrounds in the light theme, dark ones after switching to the dark theme
(without re-running anything). Screenshots of each engine's views in both themes go to
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, JS_KERNEL_READY, JS_OUTPUT_ERRORS, start_lab, write_notebook
from test_browser import _poll, _require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ENGINES = ("flowmc", "emulate", "symreg")

NOTEBOOK = [
    "%load_ext sciml_lab\n"
    "import numpy as np\n"
    "from sciml_lab import flowmc, emulate, symreg\n"
    "from sciml_lab.flowmc import plots as fplots\nfrom sciml_lab.emulate import plots as eplots\n"
    "from sciml_lab.symreg import plots as splots\n"
    "post = flowmc.sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=16, n_training_loops=1, n_loops=2,\n"
    "                     n_local_steps=10, n_global_steps=10, n_epochs=1, device='cpu', store=False, name='post')\n"
    "emu = emulate.fit(lambda a, b: np.sin(3 * a) + 0.1 * b, {'a': (0, 1), 'b': (-1, 1)}, budget=10, device='cpu',\n"
    "                  n_sobol=128, store=False, name='emu')\n"
    "rng = np.random.default_rng(0); X = rng.uniform(1, 3, size=(30, 2))\n"
    # a run whose --until target is reached long before its loop cap: the monitor's ETA
    "live = flowmc.sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=16, n_training_loops=2, n_loops=2000,\n"
    "                     n_local_steps=10, n_global_steps=10, n_epochs=1, device='cpu', store=False,\n"
    "                     until='ess>100000', name='live')\n"
    "display(live)\n"
    "law = symreg.fit(X, 2.5 * X[:, 0] * X[:, 1], iterations=10, device='cpu', store=False, name='law')\n"
    "print([j.wait(120) for j in (post, emu, law)])",
    # each engine's views as a cell's value: a figure, then the tabbed view
    "fplots.corner(post.result)",
    "eplots.view(emu.result)",
    "splots.view(law.result)",
    "fplots.view(post.result)",  # tabs; the first one is the summary table (HTML, not canvas)
]
# which output cell holds which engine's view
CELLS = {"flowmc": 1, "emulate": 2, "symreg": 3}

# Per inline view (the .sciml-bokeh outputs, in page order): its canvases (inside Bokeh's
# shadow roots), how many coloured (saturated: series colours) pixels they hold, and the
# colour of the plot's border fill (a pixel at the canvas' top-left corner).
JS_VIEWS = """() => {
  function canvases(root, out) {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) canvases(el.shadowRoot, out);
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) out.push(el);
    }
    return out;
  }
  return Array.from(document.querySelectorAll('.sciml-bokeh')).map((view) => {
    const cell = view.closest('.jp-Cell');
    const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
    let ink = 0, corner = null, n = 0;
    for (const c of canvases(view, [])) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      if (corner === null && c.width > 20) {
        const p = 4 * (3 * c.width + 3);
        if (d[p + 3] > 0) corner = [d[p], d[p + 1], d[p + 2]];
      }
      n++;
      for (let i = 0; i < d.length; i += 4) {
        const r = d[i], g = d[i + 1], b = d[i + 2], a = d[i + 3];
        if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) ink++;
      }
    }
    return { cell: cells.indexOf(cell), canvases: n, ink, corner,
             missing: !!view.querySelector('[id^=sciml-bokeh-missing]:not([style*="none"])') };
  });
}"""


# background and text colour of the first summary-table cell (inside Bokeh's shadow roots)
JS_TABLE = """() => {
  function find(root) {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('slick-cell') && el.textContent.trim()) return el;
      if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
    }
    return null;
  }
  const cell = find(document.querySelector('.jp-Notebook')) ;
  if (!cell) return null;
  const st = getComputedStyle(cell);
  return [st.backgroundColor, st.color, cell.textContent.trim()];
}"""
TABLE_CELL = 4


def _rgb(css: str) -> tuple[int, int, int]:
    nums = [float(x) for x in css[css.index("(") + 1:css.index(")")].replace("/", ",").replace(" ", ",").split(",")
            if x.strip()]
    return tuple(int(x) for x in nums[:3])  # type: ignore[return-value]


# the live monitor's ETA: (kind, text) while its job runs
JS_ETA = """() => Array.from(document.querySelectorAll('.sciml-monitor .sciml-stats'))
  .filter((e) => e.dataset.eta).map((e) => [e.dataset.eta, e.textContent])"""


def _luminance(rgb) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


@pytest.mark.timeout(300)  # about 80 s on an idle machine
def test_inline_views_render_offline_in_light_and_dark_themes(tmp_path, artifacts):
    from playwright.sync_api import sync_playwright

    _require_chromium()
    t0 = time.monotonic()
    lab = start_lab(tmp_path)
    write_notebook(lab.root / "views.ipynb", NOTEBOOK)
    blocked: list[str] = []
    console: list[str] = []

    def offline(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                page.route("**/*", offline)
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.goto(lab.url("lab/tree/views.ipynb"), wait_until="domcontentloaded")
                _poll(lambda: page.evaluate(JS_KERNEL_READY) == "ready", 90, "the kernel", interval=0.25)
                print(f"kernel ready after {time.monotonic() - t0:.1f} s")
                page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); }")
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                try:
                    etas = []

                    def watch_eta():
                        # the live run: its ETA comes from the ESS trend, far below the loop cap's;
                        # once seen, the run is stopped (it only competes with the others for the CPU)
                        if any(k == "approx" for k, _ in etas):
                            return True
                        etas.extend(page.evaluate(JS_ETA))
                        if any(k == "approx" for k, _ in etas):
                            monitor = page.locator(".sciml-monitor").first
                            monitor.screenshot(path=str(artifacts / "views-monitor-eta.png"))
                            monitor.locator(".sciml-stop").click()
                            return True
                        return False

                    def drawn():
                        watch_eta()
                        views = page.evaluate(JS_VIEWS)
                        cells = {v["cell"] for v in views if v["ink"] > 200}
                        return set(CELLS.values()) <= cells and views
                    _poll(drawn, 150, "every engine's view drawn", interval=0.25)
                    print(f"views drawn after {time.monotonic() - t0:.1f} s")
                    _poll(watch_eta, 60, "an ETA from the --until trend", interval=0.25)
                    text = next(t for k, t in etas if k == "approx")
                    assert "ETA ≈ " in text and "at most " in text, text
                    results = {}
                    for theme in ("light", "dark"):
                        if theme == "dark":  # switch the theme of the page; nothing is re-run
                            page.evaluate("() => { window.jupyterapp.commands.execute('apputils:change-theme', "
                                          "{theme: 'JupyterLab Dark'}); }")
                            _poll(lambda: page.evaluate("() => document.body.dataset.jpThemeLight === 'false'"), 15,
                                  "the dark theme")

                            def recoloured():
                                vs = page.evaluate(JS_VIEWS)
                                return all(v["corner"] and _luminance(v["corner"]) < 90 for v in vs) and vs
                            _poll(recoloured, 20, "the views recoloured for the dark theme", interval=0.3)
                            time.sleep(0.5)
                        views = page.evaluate(JS_VIEWS)
                        results[theme] = views
                        for engine, cell in CELLS.items():
                            mine = [v for v in views if v["cell"] == cell]
                            assert mine, f"{theme}: no inline view of {engine} (views: {views})"
                            assert sum(v["ink"] for v in mine) > 200, f"{theme}: {engine}'s view is blank: {mine}"
                            assert not any(v["missing"] for v in mine), f"{theme}: {engine}: BokehJS missing"
                            for v in mine:
                                lum = _luminance(v["corner"])
                                # the plot's border fill follows the theme: white-ish / near-black
                                assert (lum > 200) if theme == "light" else (lum < 90), (theme, engine, v)
                            view = page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".jp-OutputArea")
                            view.screenshot(path=str(artifacts / f"views-{engine}-{theme}.png"))
                        # the summary table (HTML) follows the theme too, its text readable on it
                        table = _poll(lambda: page.evaluate(JS_TABLE), 20, "the summary table")
                        bg, fg = _luminance(_rgb(table[0])), _luminance(_rgb(table[1]))
                        assert (bg > 200 and fg < 120) if theme == "light" else (bg < 90 and fg > 150), (theme, table)
                        page.locator(".jp-Notebook .jp-Cell").nth(TABLE_CELL).locator(".jp-OutputArea").screenshot(
                            path=str(artifacts / f"views-flowmc-summary-{theme}.png"))
                except Exception as exc:
                    page.screenshot(path=str(artifacts / "views-failure.png"), full_page=True)
                    raise AssertionError(f"{exc}\nconsole: {console[-20:]}\n{page.evaluate(JS_OUTPUT_ERRORS)}\n"
                                         f"{lab.log_tail(30)}") from exc
            finally:
                browser.close()
    finally:
        lab.stop()
    print(f"done after {time.monotonic() - t0:.1f} s")
    # offline: BokehJS came with the notebook, nothing was fetched from (or tried on) a CDN
    assert not [u for u in blocked if "bokeh" in u], blocked
    bokeh_errors = [m for m in console if "bokeh" in m.lower() and ("error" in m.lower() or "missing" in m.lower())]
    assert not bokeh_errors, bokeh_errors
    # every engine drew in both themes
    assert set(results) == {"light", "dark"}
