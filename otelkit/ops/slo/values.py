"""Reading values of a spec file: the error context, mappings with known keys, durations.

Shared by the objectives (:mod:`otelkit.ops.slo.spec`) and the alert routing
(:mod:`otelkit.ops.slo.routing`), so that both word their errors the same way: the file, the dotted
key, the bad value, what is accepted.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from typing import Any

from otelkit.errors import ConfigError

__all__ = ["MAX_DURATION", "SEVERITIES", "SpecContext", "did_you_mean", "duration", "mapping", "parse_duration", "show"]

SEVERITIES = ("critical", "warning", "info")
"""Severities an alert can have: ``critical`` pages, ``warning`` and ``info`` open a ticket."""

_DURATION = re.compile(r"^(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
MAX_DURATION = "10y"
"""The longest duration a spec may give (a 400-digit one overflowed float arithmetic)."""
_MAX_DURATION_MS = 10 * _UNIT_MS["y"]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40
_REPR.maxlevel = 2


def show(value: Any) -> str:
    """``repr(value)``, shortened: a spec value may be a huge string, number or alias-bomb structure."""
    return _REPR.repr(value)


class SpecContext:
    """Error context while walking a spec: the file and the dotted key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, message: str) -> ConfigError:
        where = f"{self.source}: {path}: " if path else f"{self.source}: "
        return ConfigError(where + message)


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def mapping(ctx: SpecContext, path: str, value: Any, allowed: list[str]) -> dict[str, Any]:
    """``value`` if it is a mapping whose keys are all in ``allowed``; else the error naming the key."""
    if not isinstance(value, dict):
        raise ctx.error(path, f"expected a mapping with keys {', '.join(allowed)}; got {show(value)}")
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ctx.error(
                where, f"unknown key; expected one of: {', '.join(allowed)}{did_you_mean(str(key), allowed)}"
            )
    return value


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``90s``, ``1h30m`` or ``500ms``, at most 10 years;
    ``ValueError`` if it is none."""
    if not isinstance(text, str) or len(text) > 64 or not _DURATION.fullmatch(text):
        raise ValueError(text)
    # Integer milliseconds: a 400-digit count times a float unit raised OverflowError.
    ms = sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(text))
    if not 0 < ms <= _MAX_DURATION_MS:
        raise ValueError(text)
    return ms / 1000


def duration(ctx: SpecContext, path: str, value: Any) -> str:
    """``value`` if it is a Prometheus duration; else the error naming the key."""
    try:
        parse_duration(value)
    except ValueError:
        raise ctx.error(
            path,
            f"invalid duration {show(value)}; expected a Prometheus duration from 1ms to {MAX_DURATION}"
            " such as 30s, 5m, 1h or 1h30m",
        ) from None
    return str(value)
