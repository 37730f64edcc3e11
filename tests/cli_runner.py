"""Run ``otelkit ARGS…`` in-process through the real entry point, for CLI tests.

``main()`` is what the console script calls: it prints errors as one ``error:`` line and exits
with their code, so tests see exactly what a user sees.
"""

from __future__ import annotations

import pytest

from otelkit.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``otelkit *argv``."""
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
