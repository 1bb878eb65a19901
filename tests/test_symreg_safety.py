"""Equation text from result files and users is parsed by the project's grammar, never run as code."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import sympy
import torch
import xarray as xr

from sciml_lab.runtime.store import read_result, write_result
from sciml_lab.symreg import SymRegEngine, bootstrap_constants, equation, equation_from_text, is_exact_recovery
from sciml_lab.symreg.expression import Equation, Vocabulary, evaluate, pack, parse_ops
from sciml_lab.symreg.grammar import parse_equation
from sciml_lab.symreg.variation import crossover, fold_constants, mutate, random_program

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real result of a short search, written to disk and read back."""
    X = np.random.default_rng(0).uniform(1, 3, (60, 2))
    e = SymRegEngine(X, 2.5 * X[:, 0] * X[:, 1], ops="+ - * /", iterations=5, seed=0, device="cpu")
    while not e.done():
        e.step()
    path = tmp_path_factory.mktemp("safe") / "result.nc"
    write_result(e.snapshot(), path)
    return path


def crafted(saved, tmp_path, text):
    """The saved result with every front equation replaced by ``text``, written to a new file on disk."""
    tree = read_result(saved)
    pareto = tree["pareto"].to_dataset()
    pareto["equation"] = ("complexity", np.array([text] * pareto.sizes["complexity"], dtype=object).astype(str))
    tree["pareto"] = xr.DataTree(pareto)
    path = tmp_path / "crafted" / "result.nc"
    path.parent.mkdir()
    write_result(tree, path)
    return read_result(path)


def test_a_crafted_result_file_cannot_run_code(saved, tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    tree = crafted(saved, tmp_path, f"__import__('os').system('touch {marker}')")
    assert "__import__" in str(tree["pareto"]["equation"].values[0])  # the payload really is in the file
    with pytest.raises(ValueError, match=r"unknown function '__import__' at position 0"):
        equation(tree)
    with pytest.raises(ValueError, match=r"__import__"):
        bootstrap_constants(tree, n_boot=5)
    with pytest.raises(ValueError, match=r"__import__"):
        equation_from_text(str(tree["pareto"]["equation"].values[0]), ["x0", "x1"])
    assert not marker.exists()


@pytest.mark.parametrize("text, message", [
    ("x0.__class__", r"unexpected character '\.' at position 2"),
    ("lambda: x0", r"unknown name 'lambda'"),
    ("exec('1')", r"unknown function 'exec'"),
    ("x0 + y", r"unknown name 'y' at position 5.*variable \(x0, x1\)"),
    ("sin(x0", r"expected '\)' closing sin\("),
    ("x0 x1", r"expected an operator .* got 'x1' at position 3"),
    ("9**9**9**9", r"too large to compute exactly"),
    ("(" * 500 + "x0" + ")" * 500, r"nesting deeper than"),
    ("", r"expected an equation, got empty text"),
], ids=["attribute", "lambda", "exec", "unknown-variable", "unclosed", "juxtaposed", "huge-power", "deep", "empty"])
def test_bad_equation_text_is_refused_with_the_offending_token(text, message):
    with pytest.raises(ValueError, match=message):
        parse_equation(text, ["x0", "x1"])


def test_a_typed_truth_is_parsed_by_the_same_grammar(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ValueError, match=r"truth: unknown function '__import__'"):
        is_exact_recovery("x0*x1", f"__import__('os').system('touch {marker}')", ["x0", "x1"])
    assert not marker.exists()
    assert is_exact_recovery("2.5000000001*x0*x1", "5/2*x0^x1**0*x1", ["x0", "x1"])
    x0 = sympy.Symbol("x0")
    assert is_exact_recovery(3 * x0 ** 2, "3*x0**2")  # names taken from the expression


def test_equation_from_bootstrap_text_uses_the_grammar():
    x = np.linspace(1, 2, 30)[:, None]
    ds = bootstrap_constants("2.4*x0", x, 2.5 * x[:, 0], n_boot=5)
    assert abs(float(ds.estimate[0]) - 2.5) < 1e-6
    with pytest.raises(ValueError, match=r"unknown name 'os'"):
        bootstrap_constants("os", x, 2.5 * x[:, 0], n_boot=5)


def test_every_printed_engine_equation_parses_back_to_the_same_function():
    """The grammar covers what the engine writes: sympy's text of random programs over every
    built-in operator parses back to an expression with the same values."""
    vocab = Vocabulary(["x0", "x1"], *parse_ops("+ - * / ^ sin cos tan exp log sqrt abs tanh neg square cube inv"))
    rng = np.random.default_rng(5)
    progs = [fold_constants(random_program(rng, vocab, max_depth=4), vocab) for _ in range(300)]
    progs = [c for a, b in zip(progs[::2], progs[1::2]) for c in crossover(mutate(a, rng, vocab), b, rng, vocab)]
    X = rng.uniform(0.2, 2.0, (32, 2))
    values = evaluate(*pack(progs), torch.as_tensor(X), vocab).numpy()
    symbols = [sympy.Symbol(n, real=True) for n in vocab.variables]
    checked = 0
    for p, row in zip(progs, values):
        expr = Equation(*p, vocab).sympy()
        parsed = parse_equation(str(expr), vocab.variables)
        assert parsed.free_symbols == expr.free_symbols, str(expr)  # (printed constants keep 15 digits)
        ok = np.isfinite(row) & (np.abs(row) < 1e8)
        if ok.sum() > 16 and not parsed.has(sympy.zoo, sympy.oo, sympy.nan):
            with np.errstate(all="ignore"):
                got = np.broadcast_to(sympy.lambdify(symbols, parsed, "numpy")(*X.T), row.shape)
            np.testing.assert_allclose(got[ok], row[ok], rtol=1e-9, atol=1e-9)
            checked += 1
    assert checked > 100


def test_custom_operators_are_opaque_functions(saved):
    tree = read_result(saved)
    tree.attrs["ops"] = tree.attrs["ops"] + " myop"
    expr = parse_equation("myop(x0) + 1", ["x0"], ["myop"])
    assert type(expr.args[1]).__name__ == "myop" or "myop" in str(expr)
    with pytest.raises(ValueError, match="custom operator"):
        equation_from_text("myop(x0)", ["x0"], ["myop"])


@pytest.mark.parametrize("module", ["grammar", "identify"])
def test_docstring_examples_of_the_grammar_and_the_intervals_run(module):
    import doctest
    import importlib
    import inspect

    mod = importlib.import_module(f"sciml_lab.symreg.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    missing = [n for n in mod.__all__ if (inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n)))
               and "Example" not in (inspect.getdoc(getattr(mod, n)) or "")]
    assert not missing
