"""What the hostile-input property tests of the render commands share (tests/unit/test_render_hostile*.py).

The free-text options of a command are read from its Typer callback's type hints (every option whose
type is ``str`` or ``Path``, alone, optional or repeated), so an option added later is fuzzed too.
``hostile`` is the strategy for their values; ``SHAPES`` and ``CONTEXT`` make a value reach the
rendered file (a route starts with ``/``, an endpoint needs its backend…). :func:`run_hostile` runs a
command with one such value and checks a refusal (the same for every command); each test file checks
what an accepted value wrote.
"""

from __future__ import annotations

import contextlib
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from cli_runner import run_cli
from hypothesis import example
from hypothesis import strategies as st

from otelkit.cli import _register, app

# Pieces of YAML, shell and collector syntax, mixed with arbitrary characters (surrogates included:
# undecodable command-line bytes arrive as lone surrogates).
FRAGMENTS = [
    "\n", "\r", "\r\n", "\t", "\x00", "\x1b[2J", "\x85", "\u2028", "\u2029", "\ufeff", "\xa0", "\x7f",
    "---", "...", "#", " #", ": ", "- ", "? ", "'", '"', "\\", "`", "|", ">", "&a", "*a", "!!str", "%YAML 1.1",
    "{", "}", "[", "]", ",", "<<", "$", "$$", "${", "}", "${env:HOME}", "${file:/etc/passwd}", "${HOME}",
    "$$${env:X}", "0o17", "1e3", "yes", "~", "null", "0x1F", ".inf", "é", "😀", "\u202e", " ", "/", "..",
]  # fmt: skip
_ANY_CHAR = st.characters(exclude_categories=())
hostile = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(_ANY_CHAR, max_size=6)), max_size=10).map("".join),
    st.tuples(st.sampled_from([*FRAGMENTS, "x", "/a b"]), st.integers(100, 1500)).map(lambda t: t[0] * t[1]),
)
# Names, labels and image references that pass a strict check but that a YAML parser may read as
# something else than a string ("0", "1e3", "0o17", "null", "yes"…): they must come back as strings.
plausible = st.from_regex(r"[a-z0-9]([-a-z0-9.:/]{0,12}[a-z0-9])?", fullmatch=True)

# How each option's value is built from the hostile string, and the other arguments that make it
# reach the rendered file. An option missing here is still fuzzed, as its bare value.
HTTPS = ["--traces", "otlp", "--traces-endpoint", "https://collector.example:4318"]
SHAPES: dict[str, Callable[[str], str]] = {
    "--drop-route": lambda s: "/" + s,
    "--header-env": lambda s: f"traces:{s}=TOKEN",
    "--traces-endpoint": lambda s: "https://collector.example/" + s,
    "--metrics-endpoint": lambda s: "https://collector.example/" + s,
    "--logs-endpoint": lambda s: "https://collector.example/" + s,
}
CONTEXT: dict[str, list[str]] = {
    "--traces-endpoint": ["--traces", "otlp"],
    "--metrics-endpoint": ["--metrics", "otlp"],
    "--logs-endpoint": ["--logs", "otlp"],
    "--traces-auth-env": ["--traces", "otlp"],
    "--metrics-auth-env": ["--metrics", "otlp"],
    "--logs-auth-env": ["--logs", "otlp"],
    "--header-env": ["--traces", "otlp"],
    "--ca-file": HTTPS,
    "--cert-file": [*HTTPS, "--key-file", "/etc/otelcol/key.pem"],
    "--key-file": [*HTTPS, "--cert-file", "/etc/otelcol/cert.pem"],
}
# Collector options whose value, once accepted, is written into the config (in a scalar or a key).
WRITTEN = {"--drop-route", "--header-env", "--ca-file", "--cert-file", "--key-file", "--persistent-queue",
           "--traces-endpoint", "--metrics-endpoint", "--logs-endpoint"}  # fmt: skip


def shaped(option: str, text: str, shapes: Mapping[str, Callable[[str], str]] = SHAPES) -> list[str]:
    """The arguments that give ``option`` a value built from ``text``, with the context it needs."""
    return [*CONTEXT.get(option, []), option, shapes.get(option, lambda s: s)(text)]


def written_target(option: str, value: str) -> str:
    """The part of a collector option's ``value`` that must be found intact in the config."""
    return value.split(":", 1)[1].rsplit("=", 1)[0] if option == "--header-env" else value


def click_command(name: str) -> Any:
    """The Click command of ``otelkit name``."""
    _register()
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def _callback(name: str) -> Callable[..., Any]:
    _register()
    for info in app.registered_commands:
        if info.name == name and info.callback is not None:
            return info.callback
    raise LookupError(name)


def _base_type(annotation: Any) -> Any:
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (types.UnionType, typing.Union):
            annotation = next(a for a in args if a is not type(None))
        elif origin in (list, tuple):
            annotation = args[0]
        else:
            return annotation


def free_text_options(*commands: str, numbers: bool = False) -> Iterator[tuple[str, str, bool]]:
    """``(command, --option, is_path)`` for every option of ``commands`` that takes text or a path
    (and, with ``numbers``, an ``int`` or a ``float``: hostile text there must be refused cleanly too)."""
    kinds = (str, Path, int, float) if numbers else (str, Path)
    for name in commands:
        hints = typing.get_type_hints(_callback(name), include_extras=True)
        for param, annotation in hints.items():
            # bool is an int: a flag takes no value.
            if param == "return" or _base_type(annotation) not in kinds or _base_type(annotation) is bool:
                continue
            info = next((m for m in typing.get_args(annotation)[1:] if isinstance(m, typer.models.OptionInfo)), None)
            decls = [d for d in (info.param_decls if info is not None else ()) if d.startswith("--")]
            yield name, decls[0] if decls else "--" + param.replace("_", "-"), _base_type(annotation) is Path


def safe_name(text: str) -> str:
    """A hostile file name, always inside the test's own directory."""
    return "o-" + text.replace("/", "_")


# Texts every hostile test tries first: a value that starts documents of its own, a reference the
# collector would expand, line breaks YAML 1.1 and 1.2 read differently, an undecodable byte, a long one.
EXAMPLES = (
    "/q\n---\nreceivers: {}\n",
    "/q\n---\nkind: Secret\n",
    "${env:HOME}",
    "a\u2028b\x85c\x1b[2J\r\x00",
    "\udcff",
    "x" * 5000,
)


def with_examples(test: Callable[..., None]) -> Callable[..., None]:
    """``test`` (a ``@given(text=…)`` test) also run on each of :data:`EXAMPLES`."""
    for text in reversed(EXAMPLES):
        test = example(text=text)(test)
    return test


@dataclass(frozen=True)
class Accepted:
    """A run that exited 0: its arguments, the option's value as given, stdout, stderr, and the
    names in the test's directory before it ran."""

    argv: list[str]
    value: str
    out: str
    err: str
    before: set[str]


def run_hostile(
    capsys: pytest.CaptureFixture[str],
    command: str,
    option: str,
    text: str,
    workdir: Path,
    *,
    is_path: bool,
    base: Sequence[str] = (),
    shapes: Mapping[str, Callable[[str], str]] = SHAPES,
    input_text: str | None = None,
) -> Accepted | None:
    """Run ``otelkit command *base`` with ``option`` built from ``text``; None when it was refused.

    A path option is given a file name made from ``text`` inside ``workdir`` (never elsewhere); with
    ``input_text`` that file is written first, when such a file can exist. A refusal must be exit 2,
    nothing on stdout, exactly one ``error:`` line on stderr and nothing created in ``workdir``; any
    other exit code than 0 and 2 fails the test.
    """
    if is_path:
        value = str(workdir / safe_name(text))
        if input_text is not None:
            # When no such file can exist, the command must refuse the path.
            with contextlib.suppress(OSError, ValueError, UnicodeEncodeError):
                Path(value).write_text(input_text, encoding="utf-8")
        argv = [*base, option, value]
    else:
        argv = [*base, *shaped(option, text, shapes)]
        value = argv[-1]
    before = set(os.listdir(workdir))
    code, out, err = run_cli(capsys, command, *argv)
    if code == 2:
        assert_refused(out, err, workdir, before)
        return None
    assert code == 0, f"exit {code}: {err}"
    return Accepted(argv, value, out, err, before)


def assert_refused(out: str, err: str, workdir: Path, before: set[str]) -> None:
    """A refusal (exit 2): nothing on stdout, one ``error:`` line, no traceback, nothing created in ``workdir``."""
    assert out == ""
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert set(os.listdir(workdir)) == before, "a refused command left a file or directory behind"


def strings(data: Any) -> Iterator[str]:
    """Every key and string value in ``data``."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from strings(v)
    elif isinstance(data, str):
        yield data


def values(data: Any) -> Iterator[str]:
    """Every string value (not key) in ``data``."""
    if isinstance(data, dict):
        for v in data.values():
            yield from values(v)
    elif isinstance(data, list):
        for v in data:
            yield from values(v)
    elif isinstance(data, str):
        yield data


def load_all(text: str) -> list[Any]:
    """The YAML documents of ``text`` (libyaml's parser when PyYAML has it: the same reading, faster)."""
    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def one_document(text: str) -> Any:
    documents = load_all(text)
    assert len(documents) == 1, f"{len(documents)} YAML documents"
    return documents[0]


def assert_no_expansion(config: Any) -> None:
    """No ``$`` in a collector config's values is left for the collector to expand, except ``${env:VAR}``."""
    for raw in values(config):
        if re.fullmatch(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}", raw):
            continue
        assert "$" not in raw.replace("$$", ""), f"{raw!r} leaves a '$' for the collector to expand"


# Plain scalars that are NOT strings under the YAML 1.2 core schema (spec 1.2.2, section 10.3.2),
# which the collector's parser (Go yaml.v3) follows; written from the spec, not from otelkit's rules.
_YAML12_NOT_STR = re.compile(
    r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_RESOLVER = yaml.resolver.Resolver()


def assert_yaml12_reads_strings(text: str) -> None:
    """Every plain scalar (key or value) PyYAML (YAML 1.1) reads as a string is a string in YAML 1.2 too."""
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not isinstance(event, yaml.ScalarEvent) or event.style or event.tag is not None:
            continue
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False))  # type: ignore[no-untyped-call]
        if tag == "tag:yaml.org,2002:str":
            assert not _YAML12_NOT_STR.fullmatch(event.value), f"plain {event.value!r} is no string in YAML 1.2"
