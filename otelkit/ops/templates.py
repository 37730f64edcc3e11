"""The one Jinja environment otelkit renders files with.

``StrictUndefined`` turns a missing variable into an error instead of an empty string, and the
``yaml`` filters dump data with a fixed key order, so the same input always gives the same bytes.
Templates ship inside the package as ``otelkit/templates`` (a wheel install), found with
:mod:`importlib.resources`; in a checkout they are the repository's top-level ``templates/``. A
template that is missing or fails to render is one :class:`~otelkit.errors.TemplateError`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

import otelkit
from otelkit.errors import TemplateError

__all__ = ["UserText", "dump_documents", "environment", "render", "templates_dir"]


def templates_dir() -> Path:
    """Return the directory templates are loaded from: the package's own, else the repository's."""
    shipped = importlib.resources.files("otelkit") / "templates"
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    return Path(otelkit.__file__).resolve().parent.parent / "templates"


class _Dumper(yaml.SafeDumper):
    """Block-style YAML whose nested lists are indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _dump(value: Any) -> str:
    return yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100_000
    )


class UserText(str):
    """A string that came from the user (a flag, a name, an image): always written as a quoted scalar."""

    __slots__ = ()


class _DocumentDumper(_Dumper):
    """Whole YAML documents: user text double-quoted, multi-line strings (embedded files) as ``|`` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if isinstance(value, UserText):
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_DocumentDumper.add_representer(str, _represent_str)
_DocumentDumper.add_representer(UserText, _represent_str)
_Dumper.add_representer(UserText, _represent_str)


def dump_documents(documents: Iterable[Any]) -> str:
    """Dump ``documents`` as a multi-document YAML stream (each starts with ``---``), keys in given order."""
    return yaml.dump_all(
        [_plain(d) for d in documents],
        Dumper=_DocumentDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100_000,
        explicit_start=True,
    )


def _yaml_block(value: Any, indent: int) -> str:
    """Render ``value`` as the YAML that follows ``key:``: inline for empty maps, else an indented block."""
    if value is None or (isinstance(value, Mapping) and not value):
        return " {}"
    pad = " " * indent
    lines = _dump(_plain(value)).rstrip("\n").splitlines()
    return "\n" + "\n".join(pad + line for line in lines)


def _flow_list(items: Iterable[str]) -> str:
    """Render plain identifiers as ``[a, b]``."""
    return "[" + ", ".join(items) + "]"


def _plain(value: Any) -> Any:
    # Mappings may be read-only views and sequences tuples; the dumper wants plain dicts and lists.
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value  # str subclasses (UserText) are kept: the document dumper quotes them


@functools.cache
def environment() -> jinja2.Environment:
    """Return the shared environment (built once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml_block"] = _yaml_block
    env.filters["flow_list"] = _flow_list
    return env


def render(template: str, /, **context: Any) -> str:
    """Render ``template`` (a path relative to :func:`templates_dir`) with ``context``.

    Raises:
        TemplateError: the template is missing or fails to render.
    """
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateNotFound:
        raise TemplateError(
            f"template {template!r} not found in {templates_dir()}: otelkit's templates are missing from this"
            " installation; reinstall otelkit (pip install --force-reinstall otelkit)"
        ) from None
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" at line {line}" if line else ""
        raise TemplateError(
            f"rendering template {template!r} failed ({type(exc).__name__}: {exc}{where}); this is a bug in"
            " otelkit, please report it"
        ) from None
