"""The compiled build under test: a copy of this clone with otelkit's hot modules compiled (mypyc).

``bench.run``'s ``*-compiled`` variants (and ``bench.instructions --variants otelkit-compiled``)
run the same app and launcher as the pure-Python ones, started from :func:`tree` instead of the
clone: a copy of the clone's files with the extension modules ``OTELKIT_COMPILE=1`` builds
(``setup.py``; the modules of ``otelkit/_runtime/compiled.py``) beside their sources. The server
runs with that directory as its working directory and ``PYTHONPATH``, so it imports otelkit from
there; :func:`tree` checks, in a process started the same way, that every listed module is
imported compiled, or the run stops. Building needs mypy and setuptools in this venv (the
``[test]`` extra has both) and a C compiler; the extension modules are built once per source and
toolchain (~2 minutes on 2 cores) and kept under ``$OTELKIT_CACHE_DIR/bench-compiled`` (default
``~/.cache/otelkit``), the copy is made per run and removed at its end.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from bench._procs import ROOT, BenchError

__all__ = ["check_pure_clone", "env_for", "remove_tree", "tree"]

_CHECK = "import json; from otelkit._runtime.compiled import compiled_modules; print(json.dumps(compiled_modules()))"


def _modules() -> tuple[str, ...]:
    namespace: dict[str, object] = {}
    exec((ROOT / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    modules = namespace["MODULES"]
    assert isinstance(modules, tuple)
    return modules


def _source(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _key() -> str:
    """What the extension modules depend on: the build files, the compiled sources, Python and the toolchain."""
    digest = hashlib.sha256()
    for path in (ROOT / "setup.py", ROOT / "otelkit" / "_runtime" / "compiled.py", ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    for module in _modules():
        digest.update(_source(module).read_bytes())
    versions = [sys.version, sysconfig.get_platform()]
    for dist in ("mypy", "setuptools"):
        try:
            versions.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            raise BenchError(
                f"the compiled variants need {dist} in {sys.executable}; install the bench dependencies:"
                " pip install -e '.[bench,test]', or leave the *-compiled variants out (--variants, --nolog-variants)"
            ) from None
    digest.update(repr(versions).encode())
    return digest.hexdigest()[:16]


def _tracked_files() -> list[Path]:
    """The clone's files (git's tracked and untracked-but-not-ignored ones), relative to its root."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"the compiled variants copy the clone's files with git ls-files; it failed: {exc}") from exc
    return [Path(name) for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def _copy_clone(dest: Path) -> None:
    for rel in _tracked_files():
        (dest / rel.parent).mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


def _extension_modules(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in (folder / "otelkit").rglob("*.so"))


def _build(built: Path, work: Path) -> None:
    """``OTELKIT_COMPILE=1 setup.py build_ext --inplace`` in a copy of the clone; the extension modules to ``built``."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        raise BenchError(
            "the compiled variants need a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev),"
            " or leave the *-compiled variants out (--variants, --nolog-variants)"
        )
    print(f"bench: compiling otelkit's hot modules with mypyc into {built} (once per source; ~2 min)", file=sys.stderr)
    source = work / "build"
    source.mkdir()
    _copy_clone(source)
    env = {**os.environ, "OTELKIT_COMPILE": "1"}
    done = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"], cwd=source, env=env, capture_output=True, text=True
    )
    found = _extension_modules(source)
    if done.returncode != 0 or not found:
        raise BenchError(f"the compiled build failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    partial = built.with_name(built.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for rel in found:
        (partial / rel.parent).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, partial / rel)
    shutil.rmtree(built, ignore_errors=True)
    partial.rename(built)  # whole or absent: an interrupted build is never taken for a cached one
    shutil.rmtree(source, ignore_errors=True)


def env_for(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` for a process that imports otelkit from ``folder``: ``folder`` first on its ``PYTHONPATH``."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)}


@functools.cache
def tree() -> Path:
    """A fresh copy of the clone with the compiled extension modules in it, checked (built when not cached)."""
    cache = Path(os.environ.get("OTELKIT_CACHE_DIR") or Path.home() / ".cache" / "otelkit")
    built = cache / "bench-compiled" / _key()
    work = Path(tempfile.mkdtemp(prefix="otelkit-bench-compiled-"))
    try:
        if not built.is_dir():
            _build(built, work)
        folder = work / "tree"
        folder.mkdir()
        _copy_clone(folder)
        for rel in _extension_modules(built):
            shutil.copy2(built / rel, folder / rel)
        done = subprocess.run(
            [sys.executable, "-c", _CHECK],
            cwd=folder,
            env=env_for(folder, dict(os.environ)),
            capture_output=True,
            text=True,
        )
        compiled = json.loads(done.stdout) if done.returncode == 0 else {}
        if not compiled or not all(compiled.values()):
            raise BenchError(
                f"otelkit in {folder} does not run compiled ({compiled or done.stderr[-2000:]}); remove {built}"
                " to build it again"
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


def check_pure_clone() -> None:
    """The pure-Python variants run from the clone: it must hold no extension module of otelkit's."""
    found = _extension_modules(ROOT)
    if found:
        raise BenchError(
            f"the clone holds compiled extension modules ({', '.join(map(str, found[:3]))}…), so its"
            " pure-Python variants would run compiled; remove them: find otelkit -name '*.so' -delete"
            " (the *-compiled variants build their own)"
        )
