"""The compiled build under test: a copy of this clone with otelkit's hot modules compiled (mypyc).

``bench.run``'s ``*-compiled`` variants (and ``bench.instructions --variants otelkit-compiled``)
run the same app and launcher as the default build's ones, started from :func:`tree` instead of the
clone: a copy of the clone's files with the extension modules ``OTELKIT_COMPILE=1`` builds beside
their sources, made by ``scripts/compiled_build.py`` — the build the README gives users and the
test command runs the unit tests against, with this venv's mypy, setuptools and Python (the
``[test]`` extra has both), built once per source and toolchain (~2 minutes on 2 cores) under
``$OTELKIT_CACHE_DIR/compiled`` (default ``~/.cache/otelkit``). The server runs with that copy as
its working directory and first on its ``PYTHONPATH``, so it imports otelkit from there;
:func:`tree` checks, in a process started the same way, that every listed module is imported
compiled, or the run stops. The copy is made per run and removed at its end.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._procs import ROOT, BenchError

__all__ = ["check_default_clone", "env_for", "remove_tree", "tree"]

_CHECK = "import json; from otelkit._runtime.compiled import compiled_modules; print(json.dumps(compiled_modules()))"


def env_for(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` for a process that imports otelkit from ``folder``: ``folder`` first on its ``PYTHONPATH``."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)}


@functools.cache
def tree() -> Path:
    """A fresh copy of the clone with the compiled extension modules in it, checked (built when not cached)."""
    cache = Path(os.environ.get("OTELKIT_CACHE_DIR") or Path.home() / ".cache" / "otelkit")
    work = Path(tempfile.mkdtemp(prefix="otelkit-bench-compiled-"))
    folder = work / "tree"
    try:
        built = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "compiled_build.py"), "--cache", str(cache), "--tree", str(folder)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if built.returncode != 0:
            raise BenchError(
                "the compiled variants' build failed (above); fix it, or leave the *-compiled variants out"
                " (--variants, --nolog-variants)"
            )
        env = env_for(folder, dict(os.environ))
        done = subprocess.run([sys.executable, "-c", _CHECK], cwd=folder, env=env, capture_output=True, text=True)
        compiled = json.loads(done.stdout) if done.returncode == 0 else {}
        if not compiled or not all(compiled.values()):
            raise BenchError(
                f"otelkit in {folder} does not run compiled ({compiled or done.stderr[-2000:]}); remove"
                f" {cache / 'compiled'} to build it again"
            )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder


def remove_tree() -> None:
    """Remove the copy :func:`tree` made, if it made one (the cached extension modules stay)."""
    if tree.cache_info().currsize:
        shutil.rmtree(tree().parent, ignore_errors=True)
        tree.cache_clear()


def check_default_clone() -> None:
    """The default build's variants run from the clone: its C encoder built in place and current, nothing mypyc'd.

    Builds the C encoder in place (``setup.py build_ext --inplace``, the default build's optional
    extension; a second or so, nothing when current), then checks in a process started as the
    servers are that it is in use and that no compiled module is.
    """
    env = {k: v for k, v in os.environ.items() if k != "OTELKIT_COMPILE"}
    built = subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    done = subprocess.run(
        [sys.executable, "-c", _CHECK], cwd=ROOT, env=env_for(ROOT, env), capture_output=True, text=True
    )
    status = json.loads(done.stdout) if done.returncode == 0 else {}
    if not status:
        raise BenchError(f"could not ask otelkit in {ROOT} what it runs: {done.stderr[-2000:]}")
    mypyc = sorted(name for name, compiled in status.items() if compiled and name not in _native())
    if mypyc:
        raise BenchError(
            f"the clone holds compiled extension modules ({', '.join(mypyc[:3])}…), so its default-build"
            " variants would run compiled; remove them: find otelkit -name '*.so' -delete (the *-compiled"
            " variants build their own)"
        )
    if not all(status[name] for name in _native()):
        raise BenchError(
            "otelkit's C encoder could not be built in the clone, so the default-build variants would run the"
            " Python encoder alone; it needs a C compiler and Python's headers (setup.py build_ext said:"
            f" {built.stderr[-1500:]})"
        )


def _native() -> tuple[str, ...]:
    namespace: dict[str, object] = {}
    exec((ROOT / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    native = namespace["NATIVE"]
    assert isinstance(native, tuple)
    return native
