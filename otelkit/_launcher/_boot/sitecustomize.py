"""``otelkit-instrument``'s start-up hook, run by Python's ``site`` before the app's code.

It sets otelkit up (:func:`otelkit._runtime.bootstrap.initialize`), then runs the ``sitecustomize`` this one
shadows, if there is one further down ``sys.path`` (a distribution's or the user's own): being
first on the path must not take that away. The stock launcher's is skipped: it would set up a
second time. A Python that cannot import otelkit (another interpreter started with the same
environment) is left alone, silently.
"""

from __future__ import annotations


def _initialize() -> None:
    try:
        from otelkit._runtime.bootstrap import initialize
    except Exception:  # another interpreter or virtualenv: nothing to set up here
        return
    initialize()


def _run_shadowed() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    path = [
        entry
        for entry in sys.path
        if os.path.abspath(entry or os.curdir) != here
        and not os.path.abspath(entry or os.curdir).endswith(os.path.join("instrumentation", "auto_instrumentation"))
    ]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_initialize()
_run_shadowed()
