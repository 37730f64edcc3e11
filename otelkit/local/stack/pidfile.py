"""The pid file a running stack keeps in its work dir, and stopping a stack from another process.

A pid file outlives crashes and reboots, and pids are reused: the number in it may belong to an
unrelated process by the time ``otelkit stack down`` reads it. So each process is recorded with what
identifies it for its whole life: its start time (``/proc/<pid>/stat`` field 22, clock ticks since
boot; no two processes of one boot share a pid and a start time), the boot it started in
(``/proc/sys/kernel/random/boot_id``) and its command line. A process is signalled only while its
start time and boot still match and it still runs the same program (the command line's program
name: Redis and Celery retitle themselves, so the arguments may change). A pid file without these
(written by an older otelkit) signals nothing. Messages name signals (``SIGTERM``, ``SIGKILL``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PID_FILE",
    "ProcessIdentity",
    "alive",
    "identify",
    "read_pid_file",
    "running_owner",
    "stop_running",
    "write_pid_file",
    "zombie",
]

PID_FILE = "stack.pid"
"""Written into the work dir while a stack runs: JSON with the owner and every child process, each
as ``{"pid", "start", "cmdline"}``, and the ``boot_id``."""

Progress = Callable[[str], object]


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells one process from any other that later gets the same pid."""

    pid: int
    start: int
    """Start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    cmdline: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start": self.start, "cmdline": list(self.cmdline)}

    @classmethod
    def from_json(cls, data: Any) -> ProcessIdentity | None:
        """The identity recorded in a pid file entry; None for a bare pid (an older pid file)."""
        if not isinstance(data, Mapping):
            return None
        pid, start, cmdline = data.get("pid"), data.get("start"), data.get("cmdline")
        if not isinstance(pid, int) or not isinstance(start, int) or not isinstance(cmdline, list):
            return None
        if pid <= 0 or not all(isinstance(arg, str) for arg in cmdline):
            return None
        return cls(pid, start, tuple(cmdline))

    def describe(self) -> str:
        shown = " ".join(self.cmdline) or "?"
        return shown if len(shown) <= 80 else shown[:79] + "…"

    @property
    def program(self) -> str:
        """The program's name: the first word of argv[0], without its directory."""
        first = self.cmdline[0].split(" ", 1)[0] if self.cmdline else ""
        return os.path.basename(first)

    def same_process(self, other: ProcessIdentity) -> bool:
        # pid + start time (+ boot) identify a process; the program name guards against a clock-tick
        # collision, when both are known (a process in the middle of exec shows no command line).
        if (self.pid, self.start) != (other.pid, other.start):
            return False
        return not self.program or not other.program or self.program == other.program


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            # The command name (field 2) is in parentheses and may hold spaces and ')'.
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return tuple(arg.decode("utf-8", "surrogateescape") for arg in raw.split(b"\0")[:-1])


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of the live process ``pid``, or None when there is none (or /proc is not readable)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    cmdline = _cmdline(pid)
    # Right after Popen() returns, the child may still be inside execve: no command line yet.
    deadline = time.monotonic() + 0.5
    while cmdline == () and fields[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.005)
        cmdline = _cmdline(pid)
    if cmdline is None:
        return None
    return ProcessIdentity(pid, int(fields[19]), cmdline)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def write_pid_file(path: Path, owner: int, processes: Mapping[str, int], **extra: Any) -> None:
    """Record ``owner`` and ``processes`` (name → pid) with their identities, atomically.

    The file holds ``pid`` (the owner's), ``boot_id``, ``owner`` and ``processes`` (name →
    ``{"pid", "start", "cmdline"}``), and ``extra``."""
    entries: dict[str, Any] = {}
    for name, pid in processes.items():
        identity = identify(pid)
        if identity is not None:
            entries[name] = identity.to_json()
    me = identify(owner)
    info = {
        "pid": owner,
        "boot_id": _boot_id(),
        "owner": me.to_json() if me is not None else {"pid": owner},
        **extra,
        "processes": entries,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_pid_file(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pid file of a stack running from ``workdir``, or None when there is none."""
    try:
        data = json.loads((Path(workdir) / PID_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return dict(data) if isinstance(data, dict) else None


class _Recorded:
    """One process named in a pid file, and whether it is still that process."""

    def __init__(self, name: str, entry: Any, same_boot: bool) -> None:
        self.name = name
        self.identity = ProcessIdentity.from_json(entry)
        self.pid = self.identity.pid if self.identity else _bare_pid(entry)
        self.same_boot = same_boot

    def current(self) -> ProcessIdentity | None:
        return identify(self.pid) if self.pid else None

    def matches(self) -> bool:
        now = self.current()
        return self.identity is not None and self.same_boot and now is not None and now.same_process(self.identity)

    def why_not(self) -> str:
        if self.identity is None:
            return "the pid file does not say which process it was (written by an older otelkit)"
        if not self.same_boot:
            return "the pid file is from before a reboot"
        now = self.current()
        if now is None:
            return "it has exited"
        return f"the pid now belongs to another process ({now.describe()!r})"


def _bare_pid(entry: Any) -> int:
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("pid"), int):
        return int(entry["pid"])
    return 0


def _recorded(info: Mapping[str, Any]) -> tuple[_Recorded, list[_Recorded]]:
    same_boot = bool(info.get("boot_id")) and info.get("boot_id") == _boot_id()
    owner = _Recorded("stack owner", info.get("owner", info.get("pid")), same_boot)
    processes = info.get("processes")
    children = [
        _Recorded(str(name), entry, same_boot)
        for name, entry in (processes.items() if isinstance(processes, dict) else ())
    ]
    return owner, children


def running_owner(workdir: str | os.PathLike[str]) -> int | None:
    """The pid of the live ``otelkit stack up`` that owns ``workdir``'s pid file, or None."""
    info = read_pid_file(workdir)
    if info is None:
        return None
    owner, _ = _recorded(info)
    return owner.pid if owner.matches() and not zombie(owner.pid) else None


def _signal_group(proc: _Recorded, sig: signal.Signals, say: Progress) -> None:
    say(f"{proc.name} (pid {proc.pid}) is still running; sending {sig.name} to its process group")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_running(workdir: str | os.PathLike[str], *, timeout: float = 60.0, progress: Progress | None = None) -> bool:
    """Stop the stack that ``otelkit stack up`` runs from ``workdir``: SIGTERM its owner, wait, then
    SIGKILL whatever of it is left. Only processes that are still the ones recorded are signalled.
    Returns False when there is no pid file there."""
    say: Progress = progress or (lambda _line: None)
    info = read_pid_file(workdir)
    if info is None:
        return False
    owner, children = _recorded(info)
    if owner.matches() and not zombie(owner.pid):
        say(f"stopping the stack (pid {owner.pid}, {signal.SIGTERM.name})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(owner.pid) and not zombie(owner.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    elif owner.pid:
        say(f"not signalling pid {owner.pid}, recorded as the stack owner: {owner.why_not()}")
    for child in children:
        if not child.pid or not alive(child.pid) or zombie(child.pid):
            continue
        if child.matches():
            _signal_group(child, signal.SIGKILL, say)
        else:
            say(f"not signalling pid {child.pid}, recorded as {child.name}: {child.why_not()}")
    with contextlib.suppress(FileNotFoundError):
        (Path(workdir) / PID_FILE).unlink()
    return True
