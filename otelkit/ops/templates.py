"""The one Jinja environment otelkit renders files with.

``StrictUndefined`` turns a missing variable into an error instead of an empty string, and the
``yaml`` filters dump data with a fixed key order, so the same input always gives the same bytes.
Templates ship inside the package as ``otelkit/templates`` (a wheel install), found with
:mod:`importlib.resources`; in a checkout they are the repository's top-level ``templates/``. A
template that is missing or fails to render is one :class:`~otelkit.errors.TemplateError`.

Nothing reaches a file raw (see :mod:`otelkit.ops.yamltext` for the rules): every ``{{ value }}``
is written as one YAML scalar on one line (quoted when needed) unless a filter below laid it out:

- ``yaml_block(indent)``: data as the block that follows ``key:``;
- ``flow_list``: ``[a, b]``;
- ``key``: a mapping key (keys are never ``$``-escaped: the collector does not expand them);
- ``comment``: the text of one comment line, non-printable characters escaped;
- ``literal(indent)``: a ``|-`` block scalar (or a quoted scalar when it cannot hold the text).

Whole documents built as data (Kubernetes manifests) go through :func:`dump_documents`, with the same
scalar rules; :class:`UserText` is always double-quoted, multi-line strings (an embedded config file)
are ``|`` blocks when a block can hold them exactly.

``render(..., confmap=True)`` marks a collector config: ``$`` in values is written ``$$`` except in
the ``${env:VAR}`` references otelkit makes (:class:`~otelkit.ops.yamltext.EnvRef`). With
``document=``, the rendered text is parsed back and must be exactly that one document.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

import otelkit
from otelkit.errors import TemplateError
from otelkit.ops import yamltext
from otelkit.ops.yamltext import UserText, YAMLText

__all__ = ["UserText", "dump_documents", "environment", "render", "templates_dir"]

_CONFMAP = "_otelkit_confmap"


def templates_dir() -> Path:
    """Return the directory templates are loaded from: the package's own, else the repository's."""
    shipped = importlib.resources.files("otelkit") / "templates"
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    return Path(otelkit.__file__).resolve().parent.parent / "templates"


def _confmap(context: jinja2.runtime.Context) -> bool:
    return bool(context.get(_CONFMAP, False))


@jinja2.pass_context
def _finalize(context: jinja2.runtime.Context, value: Any) -> str:
    if isinstance(value, YAMLText):
        return value
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises UndefinedError here, as without a finalize
    return yamltext.scalar(value, confmap=_confmap(context))


@jinja2.pass_context
def _yaml_block(context: jinja2.runtime.Context, value: Any, indent: int) -> YAMLText:
    return yamltext.dump_block(value, indent, confmap=_confmap(context))


@jinja2.pass_context
def _flow_list(context: jinja2.runtime.Context, items: Iterable[Any]) -> YAMLText:
    return yamltext.flow_list(items, confmap=_confmap(context))


def _key(value: Any) -> YAMLText:
    return yamltext.scalar(value)


def dump_documents(documents: Iterable[Any]) -> str:
    """Dump ``documents`` as a multi-document YAML stream (each starts with ``---``), keys in given order."""
    return yamltext.dump_stream(documents)


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
        finalize=_finalize,
    )
    env.filters["yaml_block"] = _yaml_block
    env.filters["flow_list"] = _flow_list
    env.filters["key"] = _key
    env.filters["comment"] = yamltext.comment
    env.filters["literal"] = yamltext.literal_block
    return env


def render(template: str, /, *, confmap: bool = False, document: Any = None, **context: Any) -> str:
    """Render ``template`` (a path relative to :func:`templates_dir`) with ``context``.

    Args:
        confmap: the file is a collector config (``$`` in values is escaped as ``$$``).
        document: when given, the model as data: the text must parse back to exactly this one document.

    Raises:
        TemplateError: the template is missing or fails to render.
        TemplateError: the text does not match ``document`` (a bug in a template or filter).
        UsageError: a value is not UTF-8 text.
    """
    try:
        text = environment().get_template(template).render(**context, **{_CONFMAP: confmap})
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
    if document is not None:
        yamltext.check_document(text, document, confmap=confmap)
    return text
