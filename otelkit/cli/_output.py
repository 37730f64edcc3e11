"""Where a render command's text goes: stdout (no ``-o``, or ``-o -``) or a file written atomically."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from otelkit.ops.files import write_atomic
from otelkit.ops.yamltext import shell_quote

__all__ = ["emit", "is_stdout"]


def is_stdout(output: Path | None) -> bool:
    """``True`` for no ``-o`` and for ``-o -``."""
    return output is None or os.fspath(output) == "-"


def emit(output: Path | None, text: str) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` and say so on stderr (one line)."""
    if is_stdout(output):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    assert output is not None
    write_atomic(output, text)
    print(f"wrote {shell_quote(os.fspath(output))}", file=sys.stderr)
