"""Writing output files all-or-nothing: a failed write never leaves a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from otelkit.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and rename it.

    An existing file at ``path`` is left untouched unless the whole new content was written.

    Raises:
        OutputError: the directory does not exist or is not writable.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(
            f"cannot write {str(target)!r}: directory {str(directory)!r} does not exist;"
            " create it or choose another -o path"
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable -o path") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable -o path") from None
    return target
