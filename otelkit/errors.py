"""Exceptions raised by otelkit.

Domain code raises one of these; only the CLI layer prints them (``error: …`` on stderr) and
chooses the exit code. Code that runs inside a user's process on its own (the distro, the
configurator, hooks) catches them, logs one line and never raises into the user's app.

Hierarchy::

    OtelkitError                 base class; ``exit_code`` is what the CLI exits with
    ├── ConfigError              a bad OTELKIT_* / OTEL_* value or configure() argument   (exit 2)
    ├── UsageError               a bad CLI argument or combination of arguments            (exit 2)
    ├── RenderError              a collector pipeline that does not hold together          (exit 2)
    ├── OutputError              an output file that cannot be written                     (exit 2)
    ├── TemplateError            a template is missing or fails to render (install or bug) (exit 1)
    └── ExternalToolError        a binary (go, ocb, otelcol, prometheus…) failed or is missing (exit 1)

Messages follow one shape: what was wrong, the bad value, what is accepted, how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExternalToolError",
    "OtelkitError",
    "OutputError",
    "RenderError",
    "TemplateError",
    "UsageError",
]


class OtelkitError(Exception):
    """Base class of every error otelkit raises on purpose."""

    exit_code: int = 1


class ConfigError(OtelkitError, ValueError):
    """A configuration value (environment variable or argument) is invalid."""

    exit_code = 2
    variable: str | None = None
    """The environment variable whose value is invalid, when it was one."""


class UsageError(OtelkitError, ValueError):
    """A command-line argument, or a combination of them, is invalid."""

    exit_code = 2


class RenderError(OtelkitError, ValueError):
    """A collector pipeline model is inconsistent (undefined component, port clash, …)."""

    exit_code = 2


class OutputError(OtelkitError, OSError):
    """An output file cannot be written."""

    exit_code = 2


class TemplateError(OtelkitError, RuntimeError):
    """One of otelkit's templates is missing (a broken install) or failed to render (a bug)."""


class ExternalToolError(OtelkitError, RuntimeError):
    """An external program is missing, failed, or did not become ready."""

    exit_code = 1
