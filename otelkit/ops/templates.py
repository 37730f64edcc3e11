"""The one Jinja environment otelkit renders files with.

``StrictUndefined`` turns a missing variable into an error instead of an empty string, and the
``yaml`` filters dump data with a fixed key order, so the same input always gives the same bytes.
Templates live in the repository's top-level ``templates/`` directory (``otelkit/templates`` when
installed as a package that ships them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

import otelkit

__all__ = ["UserText", "dump_documents", "environment", "render", "templates_dir"]


def templates_dir() -> Path:
    """Return the directory templates are loaded from."""
    package = Path(otelkit.__file__).resolve().parent
    repo = package.parent / "templates"
    if repo.is_dir():
        return repo
    return package / "templates"


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
    """Render ``template`` (a path relative to :func:`templates_dir`) with ``context``."""
    return environment().get_template(template).render(**context)
