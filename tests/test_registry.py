"""One registry of job kinds, which another package extends without touching sciml_lab.

A third-party package is written to a temporary folder with a ``*.dist-info`` whose
``entry_points.txt`` declares its kind in the ``sciml_lab.engines`` group; putting
the folder on ``sys.path`` is all it takes (importlib.metadata reads dist-infos from
any ``sys.path`` folder): nothing is installed, nothing in sciml_lab names it.
"""

from __future__ import annotations

import sys

import pytest

import sciml_lab
from sciml_lab.runtime import registry
from sciml_lab.runtime.job import _JOBS

ENGINE = '''
import xarray as xr
from sciml_lab.kit import Chart, MonitorSpec
from sciml_lab.runtime.registry import Kind


class DiceEngine:
    """Rolls a fixed sequence of dice (no randomness: a resumed run must end where an
    unbroken one does)."""

    kind = "{kind}"
    budget_words = ("rolls",)
    monitor = MonitorSpec(charts=(Chart("mean roll", ("mean",)),), key="mean")

    def __init__(self, rolls=10, offset=0):
        self.rolls, self.offset, self.done_rolls, self.total = int(rolls), int(offset), 0, 0

    def step(self):
        self.done_rolls += 1
        self.total += (self.offset + 7 * self.done_rolls) % 6 + 1
        return {{"mean": self.total / self.done_rolls}}

    def done(self):
        return self.done_rolls >= self.rolls

    def progress(self):
        return self.done_rolls / self.rolls

    def extend(self, rolls):
        self.rolls += rolls

    def snapshot(self):
        return xr.DataTree(xr.Dataset({{"total": ((), self.total), "rolls": ((), self.done_rolls)}}))

    def state_dict(self):
        return {{"done_rolls": self.done_rolls, "total": self.total, "rolls": self.rolls}}

    def load_state_dict(self, s):
        self.done_rolls, self.total, self.rolls = int(s["done_rolls"]), int(s["total"]), int(s["rolls"])

    def config(self):
        return {{"rolls": self.rolls, "offset": self.offset}}

    @classmethod
    def from_config(cls, config, **objects):
        return cls(**config)


def roll(rolls=10, **launch_options):
    from sciml_lab.runtime import launch

    return launch(DiceEngine(rolls), **launch_options)


KIND = Kind("{kind}", engine=DiceEngine, twin=roll, magic="{module}.magic", help="roll dice")
'''

MAGIC = '''
from sciml_lab.magics import add_launch_options, finish_launch, launch_kwargs, positive_int, register_command

from . import roll


def configure(p):
    p.add_argument("--rolls", type=positive_int, default=10)
    add_launch_options(p)


def run(args, cell, shell):
    return finish_launch(roll(args.rolls, **launch_kwargs(args)), args, shell)


register_command("{kind}", configure, run, help="roll dice")
'''


def third_party(tmp_path, monkeypatch, kind: str):
    """A package ``<kind>_pkg`` declaring kind ``kind`` by an entry point, put on sys.path."""
    module = f"{kind}_pkg"
    root = tmp_path / "site"
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(ENGINE.format(kind=kind, module=module))
    (root / module / "magic.py").write_text(MAGIC.format(kind=kind))
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[sciml_lab.engines]\n{kind} = {module}:KIND\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return module


def test_a_kind_from_an_entry_point_reopens_and_resumes(tmp_path, monkeypatch, runs):
    module = third_party(tmp_path, monkeypatch, "dicea")
    assert "dicea" not in registry._KINDS and "dicea" not in registry._DECLARED
    pkg = __import__(module)
    job = pkg.roll(rolls=6, name="dice", runs_dir=runs)
    assert job.wait(30) == "done"
    total = int(job.result["total"])
    _JOBS.pop(job.name)  # as in a new kernel
    again = sciml_lab.open(job.store.path)
    # found through the entry point: the engine rebuilt from its config and checkpoint
    assert again is not job and again.resumable and type(again.engine) is pkg.DiceEngine
    assert again.spec["key"] == "mean" and registry.kind("dicea").twin is pkg.roll
    again.extend(rolls=4)
    assert again.wait(30) == "done" and again.step == 10
    unbroken = pkg.DiceEngine(rolls=10)
    while not unbroken.done():
        unbroken.step()
    assert int(again.result["total"]) == unbroken.total and unbroken.total > total
    assert "dicea" in registry.kinds()


def test_a_kind_from_an_entry_point_gets_its_magic(tmp_path, monkeypatch, runs, ipython_shell, capsys):
    third_party(tmp_path, monkeypatch, "diceb")
    res = ipython_shell.run_cell("%sciml diceb --rolls 5 --name rolled --no-monitor")
    assert res.error_in_exec is None, res.error_in_exec
    job = ipython_shell.user_ns["rolled"]
    assert job.wait(30) == "done" and job.kind == "diceb" and job.step == 5
    ipython_shell.run_cell("%sciml help")
    assert "diceb" in capsys.readouterr().out


def test_an_unknown_kind_names_the_known_ones_and_the_entry_point_group():
    with pytest.raises(KeyError, match=r"no engine of kind 'nosuch'.*flowmc.*sciml_lab\.engines"):
        registry.engine_class("nosuch")


def test_the_builtin_kinds_are_known_without_installed_metadata():
    """sciml_lab declares its own kinds (a checkout that was never pip-installed has
    no entry points), and each resolves to its engine, twin, magic and views."""
    for name in sciml_lab.BUILTIN_KINDS:
        entry = registry.kind(name)
        assert entry.engine.kind == name and callable(entry.twin) and entry.magic
    assert registry.kind("flowmc").view_module().view.__name__ == "view"


def test_declaring_checks_its_arguments():
    with pytest.raises(ValueError, match="module:attr"):
        registry.declare("x", "no_colon")
    with pytest.raises(ValueError, match="expected 'other'"):
        registry.register_kind(registry.Kind("other", engine=sciml_lab.demo.PiEngine))
    with pytest.raises(TypeError, match="expected a Kind"):
        registry.register_kind("pi")


def test_a_reference_that_is_not_a_kind_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "notakind.py").write_text("KIND = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.declare("notakind", "notakind:KIND")
    with pytest.raises(TypeError, match="notakind:KIND is a int, expected a sciml_lab Kind"):
        registry.engine_class("notakind")
    registry._DECLARED.pop("notakind", None)
