"""The engines' live monitors in a real browser (JupyterLab + headless Chromium).

One notebook launches symbolic regression, an emulator and flow-MCMC with ``%sciml``;
the test checks from the DOM that the symreg monitor typesets its live Pareto front in
LaTeX (KaTeX), that the emulator monitor draws its slice with the 95 % band, and that
the flow-MCMC monitor's R-hat badge turns green (R-hat < 1.01) as the run converges
and its phase pill goes from training to production,
and saves a screenshot of each monitor to the git-ignored ``test-artifacts/``
(``make docs-images`` copies them into ``docs/`` for the README).
"""

from __future__ import annotations

import json
import math
import time

import pytest

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, JS_KERNEL_READY, JS_OUTPUT_ERRORS, start_lab, write_notebook
from test_browser import _poll, _require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# coloured (non-grey) pixels in the canvases of the monitor whose kind is `kind`
JS_INK = """(kind) => {
  const m = Array.from(document.querySelectorAll('.sciml-monitor'))
    .find((el) => el.querySelector('.sciml-kind').textContent === kind);
  return Array.from(m.querySelectorAll('.sciml-view-plot canvas')).map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 0 && (Math.abs(r - g) > 30 || Math.abs(g - b) > 30)) n++;
    }
    return n;
  });
}"""

JS_STATE = """() => Array.from(document.querySelectorAll('.sciml-monitor')).map((m) => ({
  kind: m.querySelector('.sciml-kind').textContent,
  status: m.dataset.status,
  katex: m.querySelectorAll('.sciml-view .sciml-latex .katex').length,
  selected: (m.querySelector('.sciml-view tr.sciml-selected .katex-mathml annotation') || {}).textContent || null,
  plots: m.querySelectorAll('.sciml-view-plot canvas').length,
  badges: Array.from(m.querySelectorAll('.sciml-badge')).map((b) => [b.dataset.metric, b.dataset.state, b.textContent]),
  phase: (m.querySelector('.sciml-phase') || {}).textContent || null,
  pill: m.querySelector('.sciml-status').textContent,
  verdictLines: Array.from(m.querySelectorAll('.sciml-verdict li')).map((li) => li.textContent),
}))"""


@pytest.fixture
def lab(tmp_path):
    _require_chromium()
    server = start_lab(tmp_path, {"SCIML_RUNS_DIR": "sciml-runs"})
    try:
        yield server
    finally:
        server.stop()


def _run_all_cells(pw, lab, notebook: str):
    """Chromium on ``notebook`` in the lab, once its kernel is ready, running all its cells."""
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(lab.url(f"lab/tree/{notebook}"), wait_until="domcontentloaded")
    _poll(lambda: page.evaluate(JS_KERNEL_READY) == "ready", 90, "the kernel", interval=0.25)
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); }")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return browser, page


@pytest.mark.timeout(420)
def test_engine_monitors_show_latex_front_and_uncertainty_band(lab, artifacts):
    from playwright.sync_api import sync_playwright

    write_notebook(lab.root / "engines.ipynb", [
        "%load_ext sciml_lab\nimport numpy as np\n"
        "rng = np.random.default_rng(0)\nX = rng.uniform(1, 3, size=(200, 2))\ny = 2.5 * X[:, 0] * X[:, 1]\n"
        "def sim(a, b):\n    return np.sin(3 * a) + 0.1 * b",
        "%sciml symreg X y --iterations 60 --seed 0 --name law",  # found in 11-15 iterations on seeds 0-19
        '%sciml emulate sim --bounds "a=0:1 b=-1:1" --budget 40 --name emu',
        "law.wait(120); emu.wait(120); print(law.status, emu.status)",
        '%%sciml flowmc --chains 64 --until "rhat<1.01" --seed 0 --name post\n'
        "def log_prob(x):  # a correlated 2-D Gaussian\n"
        "    return -0.5 * (x[:, 0] ** 2 + (x[:, 1] - 0.8 * x[:, 0]) ** 2 / 0.36)\n"
        "dim = 2",
        "post.wait(240); print(post.status)",
    ])
    with sync_playwright() as pw:
        browser, page = _run_all_cells(pw, lab, "engines.ipynb")
        try:
            try:
                # flow-MCMC: the R-hat badge is seen failing the target while it runs, then passing
                rhat_states, phases = [], []

                def post_done():
                    st = {m["kind"]: m for m in page.evaluate(JS_STATE)}
                    post = st.get("flowmc")
                    if post is not None:
                        rhat_states.extend(b[1] for b in post["badges"] if b[0] == "rhat")
                        if post["phase"] and (not phases or phases[-1] != post["phase"]):
                            phases.append(post["phase"])
                    return len(st) == 3 and all(m["status"] == "done" for m in st.values()) and st
                _poll(post_done, 280, "the three jobs done in their monitors", interval=0.25)
                time.sleep(0.5)  # the last view update
                states = {m["kind"]: m for m in page.evaluate(JS_STATE)}
                law, emu = states["symreg"], states["emulate"]
                assert law["katex"] >= 2, law  # the front: several equations, typeset
                # the selected equation is 2.5 x0 x1 (KaTeX keeps the TeX source in an annotation)
                sel = (law["selected"] or "").replace(" ", "")
                assert "x_{0}" in sel and "x_{1}" in sel and "2.5" in sel, law
                assert emu["plots"] >= 1, emu
                ink = page.evaluate(JS_INK, "emulate")
                assert ink and ink[0] > 300, f"the emulator's slice plot is empty ({ink})"
                post = states["flowmc"]
                rhat = next(b for b in post["badges"] if b[0] == "rhat")
                assert rhat[1] == "pass", post["badges"]  # R-hat < 1.01 at the end...
                # ...after being above it live: the live values are in the run's events.jsonl (a poll
                # of the page every 0.25 s can miss a badge state that lasts one loop on a busy machine)
                events = (lab.root / "sciml-runs" / "post" / "events.jsonl").read_text().splitlines()
                live_rhat = [v for v in (json.loads(line)["metrics"].get("rhat") for line in events)
                             if v is not None and math.isfinite(v)]
                assert live_rhat and max(live_rhat) > 1.01 > live_rhat[-1], live_rhat[:20]
                if "fail" in rhat_states:  # and when the page was seen failing, it passed only later
                    assert rhat_states.index("pass") > rhat_states.index("fail"), rhat_states[:20]
                # the phase pill: training loops, then production loops, live. The live phases are in
                # events.jsonl (on a quiet machine the training loops can end before the page's first
                # 0.25 s poll); the page ends on production, and shows them in order when it saw both
                live_phase = [v for v in (json.loads(line)["metrics"].get("production") for line in events)
                              if v is not None]
                assert 0.0 in live_phase and live_phase[-1] == 1.0, live_phase[:20]
                assert live_phase.index(1.0) > live_phase.index(0.0), live_phase[:20]
                kinds = [p.split(" ")[0] for p in phases]
                assert kinds and kinds[-1] == "production", phases
                if "training" in kinds:
                    assert kinds.index("production") > kinds.index("training"), phases
                assert post["phase"].startswith("production · loop "), post["phase"]
                # each status pill shows its job's verdict (job.json), never a bare "done" for a
                # missed target: the flow-MCMC run met --until, so it converged
                for kind, job in (("symreg", "law"), ("emulate", "emu"), ("flowmc", "post")):
                    record = json.loads((lab.root / "sciml-runs" / job / "job.json").read_text())
                    assert states[kind]["pill"] == record["verdict"]["text"], (kind, states[kind], record["verdict"])
                    # and lists its warnings in words under the pill (with the reasons of a missed target)
                    v = record["verdict"]
                    listed = (v["reasons"] if v["status"] in ("target missed", "failed") else []) + v["warnings"]
                    assert states[kind]["verdictLines"] == listed, (kind, states[kind], v)
                assert post["pill"].startswith("converged"), post
                for kind, name in (("symreg", "symreg.png"), ("emulate", "emulate.png"), ("flowmc", "flowmc.png")):
                    mon = page.locator(".sciml-monitor").filter(has=page.locator(".sciml-kind", has_text=kind))
                    mon.first.screenshot(path=str(artifacts / name))
            except Exception as exc:
                page.screenshot(path=str(artifacts / "engines-failure.png"), full_page=True)
                raise AssertionError(f"{exc}\n{page.evaluate(JS_OUTPUT_ERRORS)}\n{lab.log_tail(30)}") from exc
        finally:
            browser.close()


JS_PIPELINE = """() => Array.from(document.querySelectorAll('.sciml-monitor'))
  .filter((m) => m.querySelector('.sciml-kind').textContent === 'calibrate').map((m) => ({
    status: m.dataset.status,
    phase: (m.querySelector('.sciml-phase') || {}).textContent || null,
    note: (m.querySelector('.sciml-note') || {}).textContent || '',
    pill: m.querySelector('.sciml-status').textContent,
    charts: m.querySelectorAll('canvas').length,
  }))[0] || null"""


@pytest.mark.timeout(420)
def test_a_pipeline_monitor_shows_its_stages_live(lab, artifacts):
    from playwright.sync_api import sync_playwright

    write_notebook(lab.root / "pipeline.ipynb", [
        "%load_ext sciml_lab\nimport numpy as np\nfrom scipy.integrate import solve_ivp\n"
        "T = np.arange(0.5, 5.01, 0.5)\n"
        "def oscillator(omega, zeta):\n"
        "    rhs = lambda t, z: [z[1], -2 * zeta * omega * z[1] - omega ** 2 * z[0]]\n"
        "    return solve_ivp(rhs, (0, T[-1]), [1.0, 0.0], t_eval=T, rtol=1e-8).y[0]\n"
        "y_obs = oscillator(1.7, 0.12) + 0.05 * np.random.default_rng(1).normal(size=T.size)",
        "%sciml calibrate oscillator --bounds 'omega=0.5:3 zeta=0.01:0.5' --observed y_obs --noise 0.05 "
        "--rounds 2 --until 'move<1e-9' --initial 12 --per-round 6 --check 4 --device cpu --name cal",
        "cal.wait(300); print(cal.status)",
    ])
    with sync_playwright() as pw:
        browser, page = _run_all_cells(pw, lab, "pipeline.ipynb")
        try:
            try:
                phases, notes = [], []

                def done():
                    st = page.evaluate(JS_PIPELINE)
                    if st is not None:
                        if st["phase"] and (not phases or phases[-1] != st["phase"]):
                            phases.append(st["phase"])
                        if st["note"] and (not notes or notes[-1] != st["note"]):
                            notes.append(st["note"])
                    return st is not None and st["status"] == "done" and st
                st = _poll(done, 300, "the calibration done in its monitor", interval=0.25)
                time.sleep(0.5)
                st = page.evaluate(JS_PIPELINE)
                # the stages, in order, each an ordinary run in the pipeline's folder
                assert st["note"] == "stages: r0-emulate, r0-sample, r1-emulate, r1-sample", st
                run = lab.root / "sciml-runs" / "cal"
                assert sorted(p.name for p in (run / "stages").iterdir()) == \
                    ["r0-emulate", "r0-sample", "r1-emulate", "r1-sample"]
                # live, the page showed the current stage (the pill) and the stages so far (the note)
                assert any("(emulate, now)" in n for n in notes) and any("(sample, now)" in n for n in notes), notes
                kinds = [p.split(" ")[0] for p in phases]
                assert "sample" in kinds and kinds[-1] == "finished", phases
                # the live order of the stages is in the run's events: emulate, sample, emulate, sample, check
                events = [json.loads(line)["metrics"] for line in (run / "events.jsonl").read_text().splitlines()]
                order = [int(m["stage"]) for m in events if "stage" in m]
                changes = [s for i, s in enumerate(order) if i == 0 or s != order[i - 1]]
                assert changes[:5] == [0, 1, 0, 1, 2], changes
                # an unreachable target: the pill says the target was missed, with the number
                record = json.loads((run / "job.json").read_text())
                assert st["pill"] == record["verdict"]["text"] and st["pill"].startswith("target missed"), st
                assert st["charts"] >= 4, st
                mon = page.locator(".sciml-monitor").filter(has=page.locator(".sciml-kind", has_text="calibrate"))
                mon.first.screenshot(path=str(artifacts / "calibrate.png"))
            except Exception as exc:
                page.screenshot(path=str(artifacts / "pipeline-failure.png"), full_page=True)
                raise AssertionError(f"{exc}\n{page.evaluate(JS_OUTPUT_ERRORS)}\n{lab.log_tail(30)}") from exc
        finally:
            browser.close()
