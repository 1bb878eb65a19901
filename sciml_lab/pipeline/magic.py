"""``%sciml calibrate``: the notebook face of the calibration pipeline.

Imported by ``%load_ext sciml_lab`` (never by the engine)::

    %sciml calibrate sir --bounds "beta=0.1:1 gamma=0.05:0.5 i0=0.001:0.05" --observed y_obs --noise 0.01 --name cal
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from ..emulate.magic import parse_emulator_bounds
from ..face.commands import add_launch_options, add_settings_options, finish_launch, launch_kwargs, register_command, \
    resolve_object, settings_kwargs
from .settings import CalibrateSettings


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("simulator", help="the simulator function in the notebook")
    p.add_argument("--bounds", required=True, help="uniform prior, e.g. 'beta=0.1:1 gamma=0.05:0.5'")
    p.add_argument("--observed", required=True, help="the notebook variable holding the observations")
    p.add_argument("--noise", required=True, help="the observations' noise sd: a number or a notebook variable")
    p.set_defaults(settings=add_settings_options(p.add_argument_group("calibration"), CalibrateSettings))
    add_launch_options(p)


def _noise(shell: Any, text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return resolve_object(shell, text, "--noise")


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import calibrate

    simulator = resolve_object(shell, args.simulator, "SIMULATOR")
    if not callable(simulator):
        raise UsageError(f"SIMULATOR: {args.simulator!r} is a {type(simulator).__name__}, expected a function")
    bounds = parse_emulator_bounds(args.bounds)
    if any(len(b) == 3 for b in bounds.values()):
        raise UsageError("--bounds: the prior is uniform on each range; ':log' is not supported here")
    observed = resolve_object(shell, args.observed, "--observed")
    try:
        job = calibrate(simulator, bounds, observed=observed, noise=_noise(shell, args.noise),
                        **settings_kwargs(args, args.settings), **launch_kwargs(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"%sciml calibrate: {exc}") from None
    return finish_launch(job, args, shell)


register_command("calibrate", _configure, _run, cell=False,
                 help="calibrate a simulator's inputs against data: emulate, flow-MCMC, refine where the posterior lives")
