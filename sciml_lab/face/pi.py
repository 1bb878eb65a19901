"""``%sciml pi``: the demo's launcher, its options derived from :class:`~sciml_lab.demo.PiSettings`.

Imported by ``%load_ext sciml_lab`` through the demo's kind (``Kind.magic``).
"""

from __future__ import annotations

from ..demo import KIND, PiSettings, estimate_pi
from .commands import add_launch_options, add_settings_options, finish_launch, launch_kwargs, register_command, \
    settings_kwargs


def _configure(p) -> None:
    p.set_defaults(settings=add_settings_options(p, PiSettings))
    add_launch_options(p)


def _run(args, cell, shell):
    job = estimate_pi(**settings_kwargs(args, args.settings), **launch_kwargs(args))
    return finish_launch(job, args, shell)


register_command("pi", _configure, _run, help=KIND.help)
