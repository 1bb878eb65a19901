"""Imports run one way: face -> pipelines -> runtime -> engines -> kit.

- face: the ``%sciml`` magics (``sciml_lab/face``, ``sciml_lab/magics.py``, each kind's
  ``magic.py``), the widgets, the Python twins (each kind's ``__init__.py``, ``demo.py``)
  and the plots (views);
- runtime (``sciml_lab/runtime``): jobs, the step loop, executors, the run store and the
  registry of kinds; it names no engine and no face module, not even in a string;
- engines (``flowmc``, ``emulate``, ``symreg`` but their ``__init__``, ``magic`` and
  ``plots`` modules): pure computation;
- pipelines (``sciml_lab/pipeline`` but its ``__init__``, ``magic`` and ``plots``): engines made of
  stages, each stage an ordinary run driven by the runtime's step loop; they import the
  runtime and the engines, and nothing below imports them;
- kit (``sciml_lab/kit``): imports nothing else of sciml_lab.

Every import statement of every module is read with ``ast`` (those inside functions
too), relative ones resolved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sciml_lab

PKG = Path(sciml_lab.__file__).parent
ENGINES = ("flowmc", "emulate", "symreg")
FACE_IN_ENGINE_PACKAGES = ("__init__", "magic", "plots")
FACE = ("sciml_lab.face", "sciml_lab.magics", "sciml_lab.widgets")

#: imports that break the rule today, each to be removed by the change that rewrites its
#: module (the engines are being rebuilt on the kit at the same time); nothing else may join
KNOWN_OFFENDERS: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """The absolute names of the modules ``path`` imports (``from X import a`` also gives
    ``X.a``, which may be a module)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append(base)
            out += [f"{base}.{a.name}" for a in node.names]
    return out


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer(mod: str) -> str:
    if _within(mod, ("sciml_lab.kit",)):
        return "kit"
    if _within(mod, ("sciml_lab.pipeline",)) and mod.split(".")[-1] not in ("pipeline", "magic", "plots"):
        return "pipeline"
    if _within(mod, ("sciml_lab.runtime",)):
        return "runtime"
    parts = mod.split(".")
    if len(parts) >= 3 and parts[1] in ENGINES and parts[2] not in FACE_IN_ENGINE_PACKAGES:
        return "engine"
    return "face"


def _forbidden(layer: str, target: str) -> bool:
    """Whether a module of ``layer`` may not import ``target`` (a sciml_lab module)."""
    if layer == "kit":
        return not _within(target, ("sciml_lab.kit",))
    if layer == "engine":
        return _within(target, ("sciml_lab.runtime", "sciml_lab.pipeline") + FACE)
    if layer == "runtime":
        engine_pkgs = tuple(f"sciml_lab.{e}" for e in ENGINES) + ("sciml_lab.demo", "sciml_lab.plots")
        return target == "sciml_lab" or _within(target, engine_pkgs + ("sciml_lab.pipeline",) + FACE)
    if layer == "pipeline":
        return target == "sciml_lab" or _within(target, FACE + ("sciml_lab.plots", "sciml_lab.demo"))
    return False


def _all_modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "static" not in p.parts)


def test_the_layer_rule_holds():
    offenders = []
    for path in _all_modules():
        mod = _module_name(path)
        layer = _layer(mod)
        for target in sorted(set(_imports(path))):
            if target.startswith("sciml_lab") and _forbidden(layer, target) and (mod, target) not in KNOWN_OFFENDERS:
                offenders.append(f"{mod} ({layer}) imports {target}")
    assert not offenders, "imports against the layers face -> pipelines -> runtime -> engines -> kit:\n  " + "\n  ".join(offenders)


def test_known_offenders_still_offend():
    """An allowed exception that has been fixed must leave the list."""
    found = {(_module_name(p), t) for p in _all_modules() for t in _imports(p)}
    assert not KNOWN_OFFENDERS - found, f"fixed, remove from KNOWN_OFFENDERS: {KNOWN_OFFENDERS - found}"


def _string_offences(path: Path, named) -> list[str]:
    """String constants (docstrings aside) of ``path``'s code that ``named(text)`` flags,
    f-strings that build a ``sciml_lab.`` module name, and ``import_module`` calls on
    a literal name."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        where = f"{_module_name(path)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if named(node.value):
                out.append(f"{where}: {node.value!r:.60}")
        elif isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.Constant) and str(v.value).endswith("sciml_lab.") for v in node.values):
            out.append(f"{where}: an f-string builds a sciml_lab module name")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__", "find_spec"):
            if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                out.append(f"{where}: imports by a literal name")
    return out


def test_no_string_imports_back_up_the_layers():
    """No back-reference by string either (``importlib.import_module(f"sciml_lab.{kind}")``):
    the kit names no other sciml_lab module, the runtime no engine or face module, the
    face's core (magics, widgets) no engine package; kinds come through the registry."""
    engine_pkgs = tuple(f"sciml_lab.{e}" for e in ENGINES) + ("sciml_lab.demo",)
    above_runtime = engine_pkgs + ("sciml_lab.plots",) + FACE
    rules = [
        (sorted((PKG / "kit").rglob("*.py")),
         lambda t: "sciml_lab." in t and not all(w.startswith("sciml_lab.kit") for w in t.split() if "sciml_lab." in w)),
        (sorted((PKG / "runtime").rglob("*.py")), lambda t: any(a in t for a in above_runtime)),
        (sorted((PKG / "face").rglob("*.py")) + sorted((PKG / "widgets").glob("*.py")) + [PKG / "magics.py"],
         lambda t: any(a in t for a in engine_pkgs)),
    ]
    offenders = [o for paths, named in rules for p in paths for o in _string_offences(p, named)]
    assert not offenders, "modules named above their layer in strings:\n  " + "\n  ".join(offenders)


@pytest.mark.parametrize("layer,target,forbidden", [
    ("kit", "sciml_lab.runtime.job", True), ("kit", "sciml_lab.kit.budget", False),
    ("engine", "sciml_lab.runtime", True), ("engine", "sciml_lab.magics", True), ("engine", "sciml_lab.kit", False),
    ("runtime", "sciml_lab.flowmc", True), ("runtime", "sciml_lab.face.magics", True), ("runtime", "sciml_lab", True),
    ("runtime", "sciml_lab.kit.protocol", False), ("face", "sciml_lab.runtime", False),
])
def test_the_rule_itself(layer, target, forbidden):
    """The checker would catch each kind of offence (so that the tests above can fail)."""
    assert _forbidden(layer, target) is forbidden


def test_imports_are_resolved_relative_to_their_package():
    assert "sciml_lab.runtime.store" in _imports(PKG / "runtime" / "loop.py")
    assert "sciml_lab.kit.protocol" in _imports(PKG / "runtime" / "loop.py")
    assert _layer("sciml_lab.flowmc.engine") == "engine" and _layer("sciml_lab.flowmc.magic") == "face"
    assert _layer("sciml_lab.flowmc") == "face" and _layer("sciml_lab.kit.settings") == "kit"


def test_no_public_name_of_a_package_is_shadowed_by_a_submodule():
    """Importing ``pkg.name`` sets ``pkg.name`` to the module: a function or class ``name``
    defined in the package's ``__init__`` would be replaced by it once anything imports
    the submodule."""
    import importlib
    import types

    for path in _all_modules():
        importlib.import_module(_module_name(path))
    shadowed = []
    for path in _all_modules():
        if path.name != "__init__.py":
            continue
        pkg = importlib.import_module(_module_name(path))
        defined = {n.name for n in ast.parse(path.read_text()).body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for name in defined:
            if isinstance(getattr(pkg, name, None), types.ModuleType):
                shadowed.append(f"{pkg.__name__}.{name}")
    assert not shadowed, f"public names replaced by submodules of the same name: {shadowed}"
