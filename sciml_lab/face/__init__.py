"""The notebook face of sciml_lab: the ``%sciml`` magic (:mod:`.magics`) and the
API through which each job kind adds its launcher (:mod:`.commands`).

The face sits on top: it calls the runtime's public API (jobs, the registry of
kinds) and the widgets; nothing below imports it.
"""
