"""``sciml_lab.magics``: the ``%sciml`` magic and the launcher API, kept importable
here for ``%load_ext sciml_lab`` and for the kinds' magic modules; they live in
:mod:`sciml_lab.face.magics` and :mod:`sciml_lab.face.commands`.

Example:
    >>> from sciml_lab.magics import positive_int, register_command
    >>> positive_int("2e3"), register_command.__module__
    (2000, 'sciml_lab.face.commands')
"""

from .face.commands import (Command, SciMLParser, add_launch_options, bind_job, finish_launch, launch_kwargs,
                            positive_float, positive_int, raised_in_user_code, register_command, resolve_object,
                            add_settings_options, settings_kwargs)
from .face.magics import load_ipython_extension, sciml, unload_ipython_extension

__all__ = [
    "register_command", "add_launch_options", "launch_kwargs", "finish_launch", "positive_int",
    "positive_float", "resolve_object", "raised_in_user_code", "SciMLParser", "load_ipython_extension",
    "unload_ipython_extension", "sciml", "bind_job", "add_settings_options", "settings_kwargs", "Command",
]
