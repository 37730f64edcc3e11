"""otelkit's compiled build, as README.md tells users to build it, cached; and a copy of the clone that runs it.

    python scripts/compiled_build.py --cache DIR --tree DEST

Builds the extension modules ``OTELKIT_COMPILE=1`` makes of the modules ``otelkit/_runtime/compiled.py``
lists — ``OTELKIT_COMPILE=1 pip wheel --no-build-isolation --no-deps`` of a copy of the clone (pip
builds in the source tree, so never in the clone itself), with the mypy, setuptools and Python of
the interpreter running this script — once per source and toolchain (~2 minutes on 2 cores), into
``DIR/compiled/<key>``; then copies the clone's files (git's tracked and untracked-but-not-ignored
ones) to ``DEST`` with the extension modules beside their sources there, and prints how many it put
in. Used by ``scripts/compiled.sh`` (the unit tests against the compiled build) and by
``bench/_compiled.py`` (the benchmark's compiled variants). Needs a C compiler; a failure is one
``error:`` line (the build's log tail before it) and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BuildError(Exception):
    """What stops the build; printed as one ``error:`` line."""


def _modules(name: str = "MODULES") -> tuple[str, ...]:
    """``MODULES`` (compiled from Python) or ``NATIVE`` (written in C) of otelkit/_runtime/compiled.py."""
    namespace: dict[str, object] = {}
    exec((ROOT / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    modules = namespace[name]
    assert isinstance(modules, tuple)
    return modules


def _key() -> str:
    """What the extension modules depend on: the build files, the compiled sources, Python and the toolchain."""
    digest = hashlib.sha256()
    for path in (ROOT / "setup.py", ROOT / "otelkit" / "_runtime" / "compiled.py", ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    for module in _modules():
        digest.update(ROOT.joinpath(*module.split(".")).with_suffix(".py").read_bytes())
    for module in _modules("NATIVE"):
        digest.update(ROOT.joinpath(*module.split(".")).with_suffix(".c").read_bytes())
    versions = [sys.version, sysconfig.get_platform()]
    for dist in ("mypy", "setuptools"):
        try:
            versions.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            raise BuildError(f"the compiled build needs {dist} in {sys.executable}; pip install -e '.[test]'") from None
    digest.update(repr(versions).encode())
    return digest.hexdigest()[:16]


def copy_clone(dest: Path) -> None:
    """Copy the clone's files (git's tracked and untracked-but-not-ignored ones) into ``dest``."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(f"listing the clone's files with git ls-files failed: {exc}") from exc
    for name in out.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def _extension_modules(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in (folder / "otelkit").rglob("*.so"))


def _build(built: Path) -> None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        raise BuildError(f"the compiled build needs a C compiler ({compiler}); apt-get install gcc libc6-dev")
    print(f"compiling otelkit's hot modules with mypyc into {built} (once per source; ~2 min)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="otelkit-compiled-build-") as tmp:
        source, wheels = Path(tmp) / "source", Path(tmp) / "wheels"
        source.mkdir()
        copy_clone(source)
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps"]
        done = subprocess.run(
            [*pip_wheel, "-w", str(wheels), str(source)],
            env={**os.environ, "OTELKIT_COMPILE": "1"},
            capture_output=True,
            text=True,
        )
        found = sorted(wheels.glob("otelkit-*.whl"))
        if done.returncode != 0 or not found:
            print((done.stdout + done.stderr)[-4000:], file=sys.stderr)
            raise BuildError(f"the compiled build failed (pip wheel exit {done.returncode}; its output above)")
        partial = built.with_name(built.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(found[0]) as wheel:
            members = [name for name in wheel.namelist() if name.endswith(".so")]
            if not members:
                raise BuildError(f"the compiled build's wheel {found[0].name} holds no extension module")
            wheel.extractall(partial, members)
    shutil.rmtree(built, ignore_errors=True)
    partial.rename(built)  # whole or absent: an interrupted build is never taken for a cached one


def build_tree(cache: Path, dest: Path) -> int:
    """The extension modules (built unless cached) in a copy of the clone at ``dest``; how many."""
    built = cache / "compiled" / _key()
    if not built.is_dir():
        _build(built)
    dest.mkdir(parents=True, exist_ok=True)
    copy_clone(dest)
    found = _extension_modules(built)
    for rel in found:
        shutil.copy2(built / rel, dest / rel)
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compiled_build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="the cache directory (the build goes to compiled/)")
    parser.add_argument("--tree", type=Path, required=True, help="where to copy the clone with the build in it")
    args = parser.parse_args(argv)
    try:
        print(build_tree(args.cache, args.tree))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
