"""Writing output files all-or-nothing: a failed write never leaves a half-written file.

:func:`write_atomic` writes to a temporary file next to the target, flushes it to disk and renames
it over the target, so readers see the old content or the new one, never a mix, and a failure
(permission denied, disk full, Ctrl-C) leaves the target as it was and no temporary file behind.

What the target may be:

- a regular file, or a path that does not exist yet in an existing directory: written;
- a **symbolic link**: written *through*: the file it points to is replaced atomically and the
  link stays. Like the kernel's ``fs.protected_symlinks``, a link in a sticky world-writable
  directory (``/tmp``) is only followed when it belongs to us or to the directory's owner, so a link
  planted by another user cannot redirect a write (as root, onto ``/etc/…``);
- a **directory, FIFO, device or socket**: refused (:class:`~otelkit.errors.OutputError`). Renaming
  over ``/dev/null`` as root would replace the device with a regular file.

A command that writes several files into one ``-o`` directory gets it from :func:`make_directory`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from otelkit.errors import OutputError

__all__ = ["check_target", "make_directory", "write_atomic"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _show(path: str) -> str:
    return repr(path)


def _error(path: str, why: str, fix: str = "choose a writable -o path") -> OutputError:
    return OutputError(f"cannot write {_show(path)}: {why}; {fix}")


def _check_link(link: str) -> None:
    """Refuse to follow a link another user planted in a sticky world-writable directory."""
    st = os.lstat(link)
    parent = os.stat(os.path.dirname(os.path.abspath(link)))
    sticky_world_writable = parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
    if sticky_world_writable and st.st_uid not in (os.geteuid(), parent.st_uid):
        raise _error(
            link,
            f"it is a symbolic link owned by uid {st.st_uid} in the shared directory "
            f"{os.path.dirname(os.path.abspath(link))!r}, which otelkit does not follow",
            "remove the link or choose another -o path",
        )


def check_target(path: str | os.PathLike[str]) -> Path:
    """Return the file ``path`` writes to (the target of a symbolic link), checked for writing.

    Raises:
        OutputError: the path holds a NUL character, is a directory, FIFO, device or socket (also
            through a link), is a link another user planted in a shared directory, or its directory
            does not exist.
    """
    text = os.fspath(path)
    if "\0" in text:
        raise _error(text, "the path contains a NUL character", "choose another -o path")
    if text == "":
        raise _error(text, "the path is empty", "give -o a file path (or '-o -' for stdout)")
    try:
        if os.path.islink(text):
            _check_link(text)
            real = os.path.realpath(text)
        else:
            real = os.path.abspath(text)
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            mode = None
    except OutputError:
        raise
    except OSError as exc:
        raise _error(text, exc.strerror or str(exc)) from None
    except UnicodeEncodeError:
        raise _error(text, "the path is not valid in the file system's encoding", "choose another -o path") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
        where = "" if real == os.path.abspath(text) else f" (the link points to {real!r})"
        raise _error(text, f"it is {kind}{where}, not a regular file", "give -o a file path (or '-o -' for stdout)")
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise _error(text, f"directory {directory!r} does not exist", "create it or choose another -o path")
    return Path(real)


def make_directory(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as the directory to write files into, created when missing (its parent is not).

    Raises:
        OutputError: it exists and is not a directory, its parent does not exist, or it cannot be
            looked at or created (permission denied, a name too long for the file system, …).
    """
    text = os.fspath(path)
    try:
        mode: int | None = os.stat(text).st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError, UnicodeEncodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a valid path"
        raise OutputError(f"cannot write to {text!r}: {why}; choose another -o directory") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            return Path(text)
        raise OutputError(f"cannot write to {text!r}: it is a file, not a directory; choose a directory")
    try:
        os.mkdir(text)
    except OSError as exc:
        raise OutputError(
            f"cannot create {text!r}: {exc.strerror or exc}; create its parent or choose another -o"
        ) from None
    return Path(text)


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and rename it.

    An existing file at ``path`` is left untouched unless the whole new content was written; its
    permission bits (and owner, when run as root) are kept. Returns the file written (the target of
    a symbolic link).

    Raises:
        OutputError: see :func:`check_target`; or the file cannot be written (permission denied,
            disk full, …).
    """
    shown = os.fspath(path)
    target = check_target(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _error(shown, f"the text is not UTF-8 ({exc.reason})") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _error(shown, exc.strerror or str(exc)) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            old = os.stat(target)
        except FileNotFoundError:
            os.chmod(tmp, 0o644)
        else:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            if os.geteuid() == 0 and (old.st_uid, old.st_gid) != (0, 0):
                os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _error(shown, exc.strerror or str(exc)) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target
