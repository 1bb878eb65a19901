"""Showing the inline views (Bokeh) in a notebook: offline, and in JupyterLab's theme.

The engines' ``plots`` modules build Bokeh objects from xarray results; this module
shows them. :func:`show` (or simply leaving a view as the last expression of a cell
after ``%load_ext sciml_lab``) embeds the view with BokehJS served from the installed
``bokeh`` package (``bokeh.resources.INLINE``, sent once per kernel), never from a CDN,
so views render on an air-gapped cluster. In the browser the view reads JupyterLab's
theme (its CSS variables and ``data-jp-theme-light``) and recolours its canvases and
tables, also when the theme is switched later; outside JupyterLab it keeps Bokeh's
light colours. Importing this module also makes ``bokeh.io.output_notebook()`` load
BokehJS inline unless ``BOKEH_RESOURCES`` says otherwise.

Example:
    >>> from bokeh.plotting import figure
    >>> p = figure(width=200, height=150); _ = p.line([1, 2], [3, 4])
    >>> html = embed_html(p)
    >>> "sciml-bokeh" in html and "cdn.bokeh.org" not in html
    True
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

__all__ = ["show", "embed_html", "follow_theme", "load_bokehjs", "THEME_JS"]

# Recolours every model of the document from JupyterLab's CSS variables; runs when the
# document is ready and again whenever JupyterLab switches theme. `cb_obj` is the document.
THEME_JS = r"""
const doc = cb_obj;
const body = document.body;
if (!body || body.dataset.jpThemeLight === undefined) return;  // not JupyterLab: Bokeh's own colours
function apply() {
  const st = getComputedStyle(body);
  const v = (name, fallback) => st.getPropertyValue(name).trim() || fallback;
  const bg = v("--jp-layout-color0", "#ffffff"), fg = v("--jp-ui-font-color1", "#212121");
  const fg2 = v("--jp-ui-font-color2", "#616161"), grid = v("--jp-border-color2", "#e0e0e0");
  const border = v("--jp-border-color1", "#bdbdbd");
  const roles = {
    background_fill_color: bg, border_fill_color: bg, outline_line_color: border,
    axis_line_color: fg2, major_tick_line_color: fg2, minor_tick_line_color: fg2,
    major_label_text_color: fg2, axis_label_text_color: fg, grid_line_color: grid,
    label_text_color: fg, border_line_color: border, title_text_color: fg,
  };
  const models = doc._all_models ? Array.from(doc._all_models.values()) : Array.from(doc.all_models || []);
  for (const m of models) {
    const props = m.properties || {};
    const attrs = {};
    for (const [name, colour] of Object.entries(roles)) {
      // a colour set to None (a hidden outline or grid) stays hidden
      if (props[name] !== undefined && m[name] !== null && m[name] !== undefined) attrs[name] = colour;
    }
    if (m.constructor.__name__ === "Title" && props.text_color !== undefined) attrs.text_color = fg;
    if (Object.keys(attrs).length) m.setv(attrs);
  }
  doc.__sciml_theme = body.dataset.jpThemeLight;
}
apply();
if (!doc.__sciml_observer) {
  // JupyterLab sets the attribute, then loads the theme's CSS: apply now and once it has loaded
  doc.__sciml_observer = new MutationObserver(() => { apply(); setTimeout(apply, 300); setTimeout(apply, 1500); });
  doc.__sciml_observer.observe(body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
}
"""

# the HTML parts of a view (tabs, tables) are styled by CSS, which reads the theme's
# variables directly (custom properties reach into Bokeh's shadow DOM)
_TABS_CSS = """
:host { color: var(--jp-ui-font-color1, inherit); }
.bk-header { border-color: var(--jp-border-color2, #e6e6e6); }
.bk-tab { color: var(--jp-ui-font-color2, #5f5f5f); background: transparent; }
.bk-tab.bk-active { color: var(--jp-ui-font-color1, #212121); background: var(--jp-layout-color2, #f2f2f2);
  border-color: var(--jp-brand-color1, #1976d2); }
"""
_TABLE_CSS = """
:host { color: var(--jp-ui-font-color1, inherit); background: var(--jp-layout-color0, #fff); }
.slick-header-column, .slick-header-columns, .slick-headerrow-column { background: var(--jp-layout-color2, #f0f0f0);
  color: var(--jp-ui-font-color1, #212121); border-color: var(--jp-border-color2, #ddd); }
.slick-row, .slick-row.odd, .slick-row.even, .slick-cell { background: var(--jp-layout-color0, #fff);
  color: var(--jp-ui-font-color1, #212121); border-color: var(--jp-border-color3, #eee); }
.slick-row.odd .slick-cell { background: var(--jp-layout-color1, #fafafa); }
.slick-viewport, .slick-pane { background: var(--jp-layout-color0, #fff); }
"""


def _inline_by_default() -> None:
    # Bokeh's own default is its CDN, unreachable where long jobs usually run
    from bokeh.settings import settings

    if "BOKEH_RESOURCES" not in os.environ:
        settings.resources.set_value("inline")


_inline_by_default()


def follow_theme(obj: Any) -> Any:
    """Make ``obj`` (a Bokeh layout or figure) follow JupyterLab's theme when shown,
    with :func:`show`, ``bokeh.io.show`` or ``bokeh.embed``; returns ``obj``.

    Example:
        >>> from bokeh.plotting import figure
        >>> p = follow_theme(figure(width=200, height=150))
        >>> len(p.document.callbacks.js_event_callbacks["document_ready"])
        1
    """
    from bokeh.document import Document
    from bokeh.models import CustomJS, DataTable, InlineStyleSheet, Tabs

    doc = obj.document
    if doc is None:
        doc = Document()
        doc.add_root(obj)
    if not any(getattr(cb, "tags", None) == ["sciml-theme"]
               for cb in doc.callbacks.js_event_callbacks.get("document_ready", [])):
        doc.js_on_event("document_ready", CustomJS(code=THEME_JS, tags=["sciml-theme"]))
    for kind, css in ((Tabs, _TABS_CSS), (DataTable, _TABLE_CSS)):
        for m in obj.select({"type": kind}):
            if not any(getattr(s, "tags", None) == ["sciml-theme"] for s in m.stylesheets):
                m.stylesheets = [*m.stylesheets, InlineStyleSheet(css=css, tags=["sciml-theme"])]
    return obj


_LOADED = False


# what the views need (plots, WebGL, tabs, tables): about 2 MB in the notebook, half of the
# full bundle (MathJax for LaTeX labels is left out; bokeh.io.output_notebook() loads everything)
_COMPONENTS = ("bokeh", "bokeh-gl", "bokeh-widgets", "bokeh-tables")


def load_bokehjs(force: bool = False) -> None:
    """Send BokehJS, from the installed ``bokeh`` package, to the notebook page (once per
    kernel; ``force=True`` again, e.g. after the page was reloaded)."""
    global _LOADED
    if _LOADED and not force:
        return
    from bokeh.io.notebook import load_notebook
    from bokeh.resources import Resources

    load_notebook(resources=Resources(mode="inline", components=list(_COMPONENTS)), hide_banner=True)
    _LOADED = True


def embed_html(obj: Any) -> str:
    """The HTML that shows ``obj`` once BokehJS is in the page (see :func:`load_bokehjs`),
    themed by :func:`follow_theme`; if BokehJS never arrives it says so in the output
    rather than leaving it blank."""
    from bokeh.embed import components

    follow_theme(obj)
    script, div = components(obj)
    body = re.sub(r"^\s*<script[^>]*>|</script>\s*$", "", script)
    uid = uuid.uuid4().hex
    return f"""<div class="sciml-bokeh">{div}
<div id="sciml-bokeh-missing-{uid}" style="display:none;color:var(--jp-error-color1,#d32f2f)">
This view needs BokehJS, which is not loaded in this page (it is sent once per kernel; after a page reload run
<code>sciml_lab.plots.load_bokehjs(force=True)</code> and show the view again).</div></div>
<script type="text/javascript">
(function () {{
  const start = Date.now();
  function attempt() {{
    if (window.Bokeh !== undefined && window.Bokeh.embed !== undefined) {{
{body}
      return;
    }}
    if (Date.now() - start > 10000) {{
      const note = document.getElementById("sciml-bokeh-missing-{uid}");
      if (note) note.style.display = "";
      return;
    }}
    setTimeout(attempt, 100);
  }}
  attempt();
}})();
</script>"""


def show(obj: Any) -> None:
    """Show a view inline in the notebook, offline (BokehJS from the installed package)
    and in JupyterLab's light or dark theme.

    Example:
        >>> from sciml_lab.flowmc import plots  # doctest: +SKIP
        >>> show(plots.view(job.result))         # doctest: +SKIP
    """
    from IPython.display import publish_display_data

    load_bokehjs()
    publish_display_data({"text/html": embed_html(obj), "text/plain": f"<Bokeh {type(obj).__name__}>"})
