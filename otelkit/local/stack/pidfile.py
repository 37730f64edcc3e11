"""The pid file a running stack keeps in its work dir, and stopping a stack from another process."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PID_FILE", "alive", "read_pid_file", "stop_running", "zombie"]

PID_FILE = "stack.pid"
"""Written into the work dir while a stack runs: JSON with the owner's pid and every child pid."""

Progress = Callable[[str], object]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid_file(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pid file of a stack running from ``workdir``, or None when there is none."""
    try:
        return dict(json.loads((Path(workdir) / PID_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return None


def stop_running(workdir: str | os.PathLike[str], *, timeout: float = 60.0, progress: Progress | None = None) -> bool:
    """Stop the stack that ``otelkit stack up`` runs from ``workdir``: SIGTERM its owner, wait, then
    SIGKILL whatever of it is left. Returns False when no stack was running there."""
    say: Progress = progress or (lambda _line: None)
    info = read_pid_file(workdir)
    if info is None:
        return False
    owner = int(info.get("pid", 0))
    children = {str(k): int(v) for k, v in (info.get("processes") or {}).items()}
    if not owner or not alive(owner):
        say(f"no live stack owner (pid {owner}); cleaning up what it left")
    else:
        say(f"stopping the stack (pid {owner})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, 15)
        deadline = time.monotonic() + timeout
        while alive(owner) and not zombie(owner) and time.monotonic() < deadline:
            time.sleep(0.1)
    for name, pid in children.items():
        if alive(pid) and not zombie(pid):
            say(f"{name} (pid {pid}) is still running; killing its process group")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, 9)
    with contextlib.suppress(FileNotFoundError):
        (Path(workdir) / PID_FILE).unlink()
    return True


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
