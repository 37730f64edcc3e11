"""Building and caching the Go binaries otelkit runs: its collector, Jaeger v2 and Loki 3.

Nothing here is downloaded prebuilt: each binary is compiled from Go modules with the local ``go``
(≥ 1.24), once, and kept in otelkit's cache directory (``$OTELKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/otelkit``, else ``~/.cache/otelkit``)::

    <cache>/bin/ocb-<version>                        the OpenTelemetry Collector Builder
    <cache>/otelcol/<sha256(manifest)[:16]>/<name>   the collector built from that exact manifest
    <cache>/jaeger/<version>/jaeger                  Jaeger v2 (all-in-one)
    <cache>/loki/<version>/loki                      Loki 3 (single binary)
    <cache>/logs/<what>-build.log                    the full output of the last build

The collector's key is the hash of the manifest's bytes, so an edited manifest builds a new
binary and an unchanged one never rebuilds. Builds run in a ``.build-*`` directory next to their
destination and the finished binary is renamed into place only after it ran once: an interrupted
or failed build never leaves a cached binary behind (stale ``.build-*`` directories are removed by
the next build). A lock file serialises concurrent builds of the same binary. Stand-in modules a
manifest's ``replaces:`` points at are written by :mod:`otelkit.local.gobuild.stubs`.

Recipes (see the project notes for why): the collector with ``builder --config`` (ocb installed by
``go install …/cmd/builder@<the manifest's component version>``); Jaeger and Loki by
``go mod download -json MODULE@VERSION``, a writable copy of the module's ``Dir``, the nested
modules its go.mod replaces with ``./`` paths (module zips leave them out, e.g. Loki's
``pkg/push``), then ``go build -o … ./cmd/<name>``.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from otelkit.errors import ExternalToolError
from otelkit.local.gobuild.cache import (
    backend_target,
    cache_root,
    collector_target,
    find_backend,
    is_executable,
    load_manifest,
)
from otelkit.local.gobuild.stubs import write_stubs

__all__ = ["ensure_backend", "ensure_collector"]

MIN_GO = (1, 24)
HEARTBEAT_SECONDS = 15.0
_TAIL_LINES = 25

Progress = Callable[[str], object]


# --- building --------------------------------------------------------------------------------


def ensure_collector(manifest: Path | None = None, *, progress: Progress = print) -> Path:
    """Return the collector built from ``manifest`` (default: the repo's), building it if needed.

    The first build takes ~5 minutes on 2 cores (less with a warm Go module cache); ``progress``
    receives one line per step, the builder's output, and a heartbeat every ~15 s.

    Raises:
        UsageError: the manifest cannot be read or is not an ocb manifest.
        ExternalToolError: ``go`` is missing or too old, or ocb, the build or the built binary failed.
    """
    m = load_manifest(manifest)
    target = collector_target(m)
    if is_executable(target):
        return target
    go = _find_go()
    with _build_lock(target, progress):
        if is_executable(target):  # built by whoever held the lock
            return target
        ocb = _ensure_ocb(go, m.ocb_version, progress)
        progress(
            f"building collector {m.name} from {m.path} with ocb {m.ocb_version}; the first build takes ~5 min"
            " on 2 cores"
        )
        with _build_dir(target) as work:
            config = dict(m.data)
            # ocb resolves output_path against its working directory; ours is a scratch dir next to
            # the cache entry so the finished binary is renamed, not copied, into place.
            config["dist"] = {**m.data["dist"], "output_path": str(work / "src")}
            (work / "manifest.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            write_stubs(m, work / "src", work)
            _run(
                [str(ocb), "--config", str(work / "manifest.yaml")],
                cwd=work,
                env=_go_env(go),
                progress=progress,
                log=_log_path("otelcol"),
            )
            built = work / "src" / m.name
            _check_binary(built, ("components",), progress)
            shutil.copyfile(m.path, work / "builder-manifest.yaml")
            _install(built, target, extra=[work / "builder-manifest.yaml"])
    progress(f"collector ready: {target}")
    return target


def ensure_backend(name: str, *, progress: Progress = print) -> Path:
    """Return the binary of backend ``name`` (``jaeger`` or ``loki``), building it if needed.

    First builds take ~6.5 (Jaeger) and ~8 (Loki) minutes on 2 cores.

    Raises:
        UsageError: ``name`` is not a known backend.
        ExternalToolError: ``go`` is missing or too old, or a download, the build or the built binary failed.
    """
    b = find_backend(name)
    target = backend_target(b)
    if is_executable(target):
        return target
    go = _find_go()
    with _build_lock(target, progress):
        if is_executable(target):
            return target
        progress(f"building {b.name} from {b.module}@{b.version}; the first build takes ~{b.minutes:g} min on 2 cores")
        env = _go_env(go)
        log = _log_path(b.name)
        with _build_dir(target) as work:
            src = work / "src"
            _copy_module(go, b.module, b.version, src, cwd=work, env=env, progress=progress, log=log)
            _copy_nested_modules(go, src, cwd=work, env=env, progress=progress, log=log)
            built = work / b.name
            progress(f"compiling {b.package} (go build prints little while compiling; a heartbeat follows every ~15 s)")
            ldflags = ["-ldflags", b.ldflags] if b.ldflags else []
            _run([go, "build", *ldflags, "-o", str(built), b.package], cwd=src, env=env, progress=progress, log=log)
            _check_binary(built, b.check_args, progress)
            _install(built, target)
    progress(f"{b.name} ready: {target}")
    return target


_GO_FALLBACKS = ("/usr/local/go/bin/go",)
"""Where Go's own installer puts ``go``, often not yet on PATH in a fresh shell."""


def _find_go() -> str:
    go = shutil.which("go") or next((p for p in _GO_FALLBACKS if os.access(p, os.X_OK)), None)
    if go is None:
        raise ExternalToolError(
            "`go` not found on PATH; otelkit builds the collector, Jaeger and Loki from source:"
            " install Go >= 1.24 (https://go.dev/doc/install) and put its bin directory on PATH"
        )
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalToolError(f"`{go} env GOVERSION` failed: {exc}; check your Go installation") from None
    version = out.stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", version)
    if out.returncode != 0 or m is None:
        raise ExternalToolError(
            f"`{go} env GOVERSION` did not print a Go version (got {version or out.stderr.strip()!r});"
            " check your Go installation (Go >= 1.24 is needed)"
        )
    if (int(m.group(1)), int(m.group(2))) < MIN_GO:
        raise ExternalToolError(
            f"Go {version.removeprefix('go')} at {go} is too old; otelkit's builds need Go >= 1.24:"
            " install a newer Go (https://go.dev/doc/install) and put it first on PATH"
        )
    return go


def _go_env(go: str) -> dict[str, str]:
    env = dict(os.environ)
    # Make the go that was found the one ocb runs, and don't stamp VCS info (build dirs have no VCS).
    env["PATH"] = str(Path(go).parent) + os.pathsep + env.get("PATH", "")
    if "-buildvcs" not in env.get("GOFLAGS", ""):
        env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    return env


def _ensure_ocb(go: str, version: str, progress: Progress) -> Path:
    bin_dir = cache_root() / "bin"
    ocb = bin_dir / f"ocb-{version}"
    if is_executable(ocb):
        return ocb
    bin_dir.mkdir(parents=True, exist_ok=True)
    progress(f"installing ocb {version} (go install go.opentelemetry.io/collector/cmd/builder@{version})")
    with tempfile.TemporaryDirectory(prefix=".ocb-", dir=bin_dir) as tmp:
        env = _go_env(go)
        env["GOBIN"] = tmp
        _run(
            [go, "install", f"go.opentelemetry.io/collector/cmd/builder@{version}"],
            cwd=Path(tmp),
            env=env,
            progress=progress,
            log=_log_path("ocb"),
        )
        built = Path(tmp) / "builder"
        if not is_executable(built):
            raise ExternalToolError(
                f"`go install go.opentelemetry.io/collector/cmd/builder@{version}` succeeded but left no"
                f" 'builder' binary in {tmp}; check GOBIN/GOFLAGS in `go env`"
            )
        os.replace(built, ocb)
    return ocb


def _copy_module(
    go: str, module: str, version: str, dest: Path, *, cwd: Path, env: dict[str, str], progress: Progress, log: Path
) -> None:
    progress(f"downloading {module}@{version} (go mod download)")
    # Run outside any module so its go.mod cannot influence what is fetched.
    cmd = [go, "mod", "download", "-json", f"{module}@{version}"]
    out = _run(cmd, cwd=cwd, env=env, progress=progress, log=log, stream=False)
    try:
        info = json.loads(out)
    except json.JSONDecodeError:
        info = {}
    src = info.get("Dir")
    if not src or not Path(src).is_dir():
        raise ExternalToolError(
            f"`go mod download -json {module}@{version}` gave no module directory"
            f" ({info.get('Error') or out.strip()[-500:]!r}); check that the Go module proxy is reachable"
        )
    # Module cache files are read-only; the build tree must be writable (nested modules, go.sum).
    shutil.copytree(src, dest, symlinks=True)
    _make_writable(dest)


def _copy_nested_modules(go: str, src: Path, *, cwd: Path, env: dict[str, str], progress: Progress, log: Path) -> None:
    out = _run([go, "mod", "edit", "-json"], cwd=src, env=env, progress=progress, log=log, stream=False)
    mod = json.loads(out)
    required = {r["Path"]: r["Version"] for r in mod.get("Require") or []}
    for rep in mod.get("Replace") or []:
        new = rep.get("New", {}).get("Path", "")
        old = rep.get("Old", {}).get("Path", "")
        if not new.startswith("./") or (src / new).exists():
            continue
        # A nested module is published as its own module, so the parent's zip leaves it out.
        version = rep.get("Old", {}).get("Version") or required.get(old)
        if not version:
            raise ExternalToolError(
                f"go.mod replaces {old} with {new} but requires no version of it; cannot fetch the nested module"
            )
        _copy_module(go, old, version, src / new, cwd=cwd, env=env, progress=progress, log=log)


def _make_writable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def _check_binary(binary: Path, args: Sequence[str], progress: Progress) -> None:
    cmd = [str(binary), *args]
    progress(f"checking the built binary: {binary.name} {' '.join(args)}")
    if not is_executable(binary):
        raise ExternalToolError(f"the build finished but produced no executable at {binary}")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalToolError(f"the built binary failed to run: `{' '.join(cmd)}`: {exc}") from None
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-_TAIL_LINES:])
        raise ExternalToolError(
            f"the built binary failed its check: `{' '.join(cmd)}` exited {res.returncode}; last lines:\n{tail}"
        )


def _install(built: Path, target: Path, *, extra: Sequence[Path] = ()) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for path in extra:
        os.replace(path, target.parent / path.name)
    # The binary goes last and by rename: its presence is what marks the cache entry complete.
    os.replace(built, target)


def _log_path(what: str) -> Path:
    logs = cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{what}-build.log"
    path.write_text("", encoding="utf-8")  # one log per build; each command of it appends
    return path


@contextlib.contextmanager
def _build_lock(target: Path, progress: Progress) -> Iterator[None]:
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent.parent / f".{target.parent.name}.lock"
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another otelkit process is building {target}; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _build_dir(target: Path) -> Iterator[Path]:
    parent = target.parent.parent
    # Holding the lock, any scratch dir left here is from an interrupted build.
    for stale in parent.glob(f".build-{target.parent.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{target.parent.name}-", dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _run(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    progress: Progress,
    log: Path,
    stream: bool = True,
) -> str:
    """Run ``cmd``, appending its output to ``log``; return its stdout (with stderr when streamed).

    With ``stream``, each output line goes to ``progress``; either way a heartbeat with the elapsed
    time goes there after ~15 s without output. On failure: ExternalToolError with the last lines.
    """
    shown = " ".join(str(c) for c in cmd)
    started = time.monotonic()
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    stdout: list[str] = []
    try:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # Streamed output keeps its order in one pipe; JSON-printing commands keep stderr apart.
            stderr=subprocess.STDOUT if stream else subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise ExternalToolError(f"cannot run `{shown}`: {exc.strerror or exc}") from None

    def pump(name: str, pipe: Any) -> None:
        for line in pipe:
            lines.put((name, line))
        lines.put((name, None))

    readers = [
        threading.Thread(target=pump, args=(name, pipe), daemon=True)
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr))
        if pipe is not None
    ]
    for t in readers:
        t.start()
    open_pipes = len(readers)
    try:
        with open(log, "a", encoding="utf-8") as logf:
            logf.write(f"$ {shown}  (in {cwd})\n")
            last = time.monotonic()
            while open_pipes:
                try:
                    name, line = lines.get(timeout=1.0)
                except queue.Empty:
                    if time.monotonic() - last >= HEARTBEAT_SECONDS:
                        progress(f"  … still running ({_format_elapsed(time.monotonic() - started)} elapsed)")
                        last = time.monotonic()
                    continue
                if line is None:
                    open_pipes -= 1
                    continue
                logf.write(line)
                if name == "stdout":
                    stdout.append(line)
                text_line = line.rstrip("\n")
                tail.append(text_line)
                if stream:
                    progress(f"  {text_line}")
                    last = time.monotonic()
            rc = proc.wait()
            logf.write(f"[exit {rc} after {_format_elapsed(time.monotonic() - started)}]\n")
    except BaseException:
        # Interrupted (Ctrl-C, error): take go and its compiler children down with us.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        for t in readers:
            t.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if rc != 0:
        last_lines = "\n".join(tail) or "(no output)"
        raise ExternalToolError(
            f"`{shown}` failed with exit code {rc}; last lines of output:\n{last_lines}\n(full log: {log})"
        )
    return "".join(stdout)
