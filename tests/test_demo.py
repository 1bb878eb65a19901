"""The demo engine, written against the kit: its checks, its checkpoint and its resume."""

from __future__ import annotations

import math

import pytest
import torch

from sciml_lab.demo import PiEngine


def run(engine: PiEngine) -> dict:
    while not engine.done():
        last = engine.step()
    return last


def test_the_estimate_follows_the_seeded_stream_and_its_error_bar_holds():
    a, b = PiEngine(samples_per_step=2000, steps=5, seed=3), PiEngine(samples_per_step=2000, steps=5, seed=3)
    ma, mb = run(a), run(b)
    assert ma == mb and ma["samples"] == 10_000
    # 4 * (inside / n) with the same draws, counted by hand
    gen = torch.Generator().manual_seed(3)
    inside = sum(int(((xy * xy).sum(1) <= 1).sum()) for xy in (torch.rand(2000, 2, generator=gen) for _ in range(5)))
    assert ma["estimate"] == 4 * inside / 10_000
    assert abs(ma["estimate"] - math.pi) < 5 * ma["stderr"]  # a 5-sigma bound: fails for about 1 seed in 2 million


def test_extend_and_checkpoint_continue_the_same_stream():
    whole = run(PiEngine(samples_per_step=500, steps=6, seed=1))
    first = PiEngine(samples_per_step=500, steps=4, seed=1)
    run(first)
    second = PiEngine.from_config(first.config())
    second.load_state_dict(first.state_dict())
    second.extend(steps=2)
    assert second.progress() == pytest.approx(4 / 6)
    assert run(second) == whole and second.snapshot()["history"].sizes["step"] == 6


def test_a_checkpoint_written_before_the_kit_still_resumes():
    ref = PiEngine(samples_per_step=100, steps=3, seed=0)
    run(ref)
    old = {"gen": ref.state.gen.get_state(), "n_steps": 3, "inside": ref.state.inside, "budget": 3,
           "history": torch.tensor([[r["n_samples"], r["estimate"], r["stderr"]] for r in ref.state.history.rows()],
                                   dtype=torch.float64)}
    engine = PiEngine(samples_per_step=100, steps=3, seed=0)
    engine.load_state_dict(old)
    assert engine.done() and engine.budget == 3 and engine.snapshot()["estimate"]["pi_hat"] == \
        ref.snapshot()["estimate"]["pi_hat"]
    engine.extend(steps=1)
    ref.extend(steps=1)
    assert run(engine) == run(ref)


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, "steps: expected an integer >= 1, got 0"),
    ({"samples_per_step": 2.5}, "samples_per_step: expected an integer >= 1, got 2.5"),
    ({"delay": -1}, "delay: expected a number >= 0, got -1"),
])
def test_bad_settings_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PiEngine(**kwargs)
