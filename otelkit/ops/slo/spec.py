"""The SLO spec: its model (:class:`SLOSpec`), defaults, and the checks that read a spec file.

Every error is one :class:`~otelkit.errors.ConfigError` line: the file, the dotted key, the bad value,
what is accepted (``slo.yaml: http.latency.max: invalid duration '2 sec'; expected …``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from otelkit.errors import ConfigError, UsageError
from otelkit.ops.slo.routing import Alerting, parse_alerting
from otelkit.ops.slo.values import SEVERITIES, parse_duration
from otelkit.ops.slo.values import SpecContext as _Spec
from otelkit.ops.slo.values import did_you_mean as _did_you_mean
from otelkit.ops.slo.values import duration as _duration
from otelkit.ops.slo.values import mapping as _mapping
from otelkit.ops.slo.values import show as _show

__all__ = [
    "SEVERITIES",
    "Availability",
    "Objective",
    "SLOSpec",
    "default_spec",
    "load_spec",
    "parse_duration",
    "parse_spec",
]

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
SIZE_FACTOR = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}

# (budget share consumed, long window, short window) per burn-rate pair: SRE workbook, chapter 5.
FAST_BURN = ((0.02, "1h", "5m"), (0.05, "6h", "30m"))
SLOW_BURN = ((0.10, "1d", "2h"), (0.10, "3d", "6h"))
_MIN_PERIOD_SECONDS = 7 * 86400

# Ranges every threshold must fall in, so that what is rendered is what the spec says: no float
# underflow to 0 (1E-400%), no overflow to inf (a 400-digit size), no objective rounded to 100 %.
MIN_PERCENT, MAX_PERCENT = Decimal("0.000001"), Decimal("99.999999")
MIN_BYTES, MAX_BYTES = 1, 2**53  # 8 PiB: every integer up to it is exact as a float
# The spec file is read whole; no SLO spec is anywhere near this (and /dev/zero never ends).
MAX_SPEC_BYTES = 1 << 20


@dataclass(frozen=True)
class Objective:
    """One threshold objective; ``threshold`` is a fraction, seconds or bytes depending on the key."""

    threshold: float
    for_: str
    severity: str
    window: str = "5m"
    quantile: float = 0.95


@dataclass(frozen=True)
class Availability:
    """Share of non-5xx HTTP responses over ``period`` (``objective`` is a fraction, e.g. 0.999)."""

    objective: float = 0.999
    period: str = "30d"


@dataclass(frozen=True)
class SLOSpec:
    """Every objective otelkit renders alerts for; ``None`` means "no alert"."""

    availability: Availability | None = Availability()
    error_rate: Objective | None = Objective(0.05, "2m", "critical")
    latency: Objective | None = Objective(2.0, "5m", "warning")
    queue_latency: Objective | None = Objective(60.0, "5m", "critical")
    task_duration: Objective | None = Objective(300.0, "10m", "warning")
    success_rate: Objective | None = Objective(0.95, "10m", "warning", window="15m")
    backlog: Objective | None = Objective(100.0, "10m", "warning", window="10m")
    workers: Objective | None = Objective(1.0, "2m", "critical")
    auth_failures: Objective | None = Objective(0.1, "5m", "warning")
    rate_limited: Objective | None = Objective(0.05, "5m", "warning")
    memory: Objective | None = Objective(1e9, "10m", "info")
    exporter_failures: Objective | None = Objective(0.0, "5m", "warning")
    queue_usage: Objective | None = Objective(0.8, "5m", "warning")
    target_down: Objective | None = Objective(0.0, "1m", "critical")
    notifications: Objective | None = Objective(0.0, "5m", "warning")
    alerting: Alerting = field(default_factory=Alerting)


def default_spec() -> SLOSpec:
    """The objectives rendered when no spec is given (the user's SLO document, seed 003)."""
    return SLOSpec()


def _seconds(ctx: _Spec, path: str, value: Any) -> float:
    return parse_duration(_duration(ctx, path, value))


def _percent(ctx: _Spec, path: str, value: Any) -> float:
    text = value.strip() if isinstance(value, str) and len(value) <= 64 else ""
    try:
        amount = Decimal(text[:-1].strip()) if text.endswith("%") else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise ctx.error(
            path, f"invalid percentage {_show(value)}; expected a number followed by %, such as 99.9% or 5%"
        )
    if not MIN_PERCENT <= amount <= MAX_PERCENT:
        raise ctx.error(
            path, f"percentage {_show(value)} is out of range; expected from {MIN_PERCENT}% to {MAX_PERCENT}%"
        )
    return float(amount / 100)


def _bytes(ctx: _Spec, path: str, value: Any) -> float:
    size: Decimal | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = Decimal(value)
    elif isinstance(value, str) and len(value) <= 64 and (match := _SIZE.fullmatch(value.strip())) is not None:
        size = Decimal(match.group(1)) * SIZE_FACTOR[match.group(2)]
    if size is None:
        raise ctx.error(path, f"invalid size {_show(value)}; expected bytes or a size such as 512MB, 1GB or 2GiB")
    if not MIN_BYTES <= size <= MAX_BYTES:
        raise ctx.error(path, f"size {_show(value)} is out of range; expected from {MIN_BYTES}B to 8PiB")
    return float(size)


def _count(ctx: _Spec, path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ctx.error(path, f"invalid count {_show(value)}; expected a whole number of at least 1, such as 1 or 100")
    return float(value)


def _quantile(ctx: _Spec, path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ctx.error(
            path, f"invalid quantile {_show(value)}; expected a number between 0 and 1, such as 0.95 or 0.99"
        )
    return float(value)


def _severity(ctx: _Spec, path: str, value: Any) -> str:
    if value not in SEVERITIES:
        hint = _did_you_mean(value, list(SEVERITIES)) if isinstance(value, str) else ""
        raise ctx.error(path, f"invalid severity {_show(value)}; expected one of: {', '.join(SEVERITIES)}{hint}")
    return str(value)


_Parser = Callable[[_Spec, str, Any], Any]

# For each threshold objective: the key holding its threshold, and that threshold's parser.
_OBJECTIVES: dict[str, tuple[str | None, _Parser | None]] = {
    "error_rate": ("max", _percent),
    "latency": ("max", _seconds),
    "queue_latency": ("max", _seconds),
    "task_duration": ("max", _seconds),
    "success_rate": ("min", _percent),
    "backlog": ("max", _count),
    "workers": ("min", _count),
    "auth_failures": ("max", _percent),
    "rate_limited": ("max", _percent),
    "memory": ("max", _bytes),
    "exporter_failures": (None, None),
    "queue_usage": ("max", _percent),
    "target_down": (None, None),
    "notifications": (None, None),
}
_QUANTILES = {"latency", "queue_latency", "task_duration"}
_WINDOWED = {
    "error_rate",
    "latency",
    "queue_latency",
    "task_duration",
    "success_rate",
    "backlog",
    "auth_failures",
    "rate_limited",
    "exporter_failures",
    "notifications",
}
_SECTIONS: dict[str, list[str]] = {
    "http": ["availability", "error_rate", "latency"],
    "security": ["auth_failures", "rate_limited"],
    "celery": ["queue_latency", "task_duration", "success_rate", "backlog", "workers"],
    "process": ["memory"],
    "collector": ["exporter_failures", "queue_usage"],
    "targets": ["down"],
    "alertmanager": ["notifications"],
}


def _objective(ctx: _Spec, name: str, path: str, raw: Any, default: Objective) -> Objective:
    threshold_key, parse = _OBJECTIVES[name]
    allowed = ([threshold_key] if threshold_key else []) + ["for", "severity"]
    if name in _WINDOWED:
        allowed.insert(-2, "window")
    if name in _QUANTILES:
        allowed.insert(0, "quantile")
    raw = _mapping(ctx, path, {} if raw is None or raw is True else raw, allowed)
    objective = default
    if threshold_key and threshold_key in raw:
        assert parse is not None
        objective = replace(objective, threshold=parse(ctx, f"{path}.{threshold_key}", raw[threshold_key]))
    if "quantile" in raw:
        objective = replace(objective, quantile=_quantile(ctx, f"{path}.quantile", raw["quantile"]))
    if "window" in raw:
        objective = replace(objective, window=_duration(ctx, f"{path}.window", raw["window"]))
    if "for" in raw:
        objective = replace(objective, for_=_duration(ctx, f"{path}.for", raw["for"]))
    if "severity" in raw:
        objective = replace(objective, severity=_severity(ctx, f"{path}.severity", raw["severity"]))
    return objective


def _availability(ctx: _Spec, path: str, raw: Any, default: Availability) -> Availability:
    raw = _mapping(ctx, path, {} if raw is None or raw is True else raw, ["objective", "period"])
    result = default
    if "objective" in raw:
        result = replace(result, objective=_percent(ctx, f"{path}.objective", raw["objective"]))
    if "period" in raw:
        period = _duration(ctx, f"{path}.period", raw["period"])
        if parse_duration(period) < _MIN_PERIOD_SECONDS:
            raise ctx.error(
                f"{path}.period", f"period {period!r} is too short; expected 7d or more (the slow alert looks back 3d)"
            )
        result = replace(result, period=period)
    budget = 1 - result.objective
    fastest = max(share * parse_duration(result.period) / parse_duration(long) for share, long, _ in FAST_BURN)
    if fastest * budget >= 1:
        raise ctx.error(
            f"{path}.objective",
            f"objective {number(result.objective * 100)}% leaves an error budget too large for burn-rate alerts "
            f"(the fast alert would need more than 100% errors); expected at least "
            f"{number(math.ceil((100 - 100 / fastest) * 100) / 100)}% for period {result.period}",
        )
    return result


def parse_spec(data: Any, source: str = "<spec>") -> SLOSpec:
    """Check ``data`` (the YAML-loaded spec) and return the :class:`SLOSpec` it describes.

    Raises:
        ConfigError: a key is unknown or a value is invalid; the message names ``source`` and the key.
    """
    ctx = _Spec(source)
    if data is None:
        data = {}
    data = _mapping(ctx, "", data, ["version", *_SECTIONS, "alerting"])
    if "version" in data and (data["version"] != 1 or isinstance(data["version"], bool)):
        raise ctx.error("version", f"unsupported spec version {_show(data['version'])}; expected 1")
    spec = default_spec()
    values: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        raw_section = data.get(section)
        if raw_section is None:
            continue
        if raw_section is False:
            values.update({_field(section, key): None for key in keys})
            continue
        raw_section = _mapping(ctx, section, raw_section, keys)
        for key, raw in raw_section.items():
            name = _field(section, key)
            path = f"{section}.{key}"
            if raw is False:
                values[name] = None
            elif name == "availability":
                values[name] = _availability(ctx, path, raw, Availability())
            else:
                values[name] = _objective(ctx, name, path, raw, getattr(spec, name))
    if "alerting" in data:
        values["alerting"] = parse_alerting(ctx, "alerting", data["alerting"])
    return replace(spec, **values)


def _field(section: str, key: str) -> str:
    return "target_down" if (section, key) == ("targets", "down") else key


def load_spec(path: str | Path) -> SLOSpec:
    """Read and check the spec file at ``path``.

    Raises:
        UsageError: the file cannot be read.
        ConfigError: it is not valid YAML, or not a valid spec.
    """
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read SLO spec {source!r}: {exc.strerror or exc}; pass an existing file to --spec"
        ) from None
    except (ValueError, UnicodeEncodeError):  # a NUL or an unencodable character in the path
        raise UsageError(
            f"cannot read SLO spec {source!r}: not a valid path; pass an existing file to --spec"
        ) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_SPEC_BYTES // 1024} KiB; an SLO spec is a few lines of YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text; save the spec as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply; an SLO spec is a few levels deep") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    return parse_spec(data, source)


def number(value: float) -> str:
    """A number as PromQL and people read it: 0.001, 14.4, 60, 1e+09 → 1000000000."""
    if float(value).is_integer():
        return str(int(value))
    return format(value, ".10g")
