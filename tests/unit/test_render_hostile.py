"""Hostile text in every free-text option of render-collector, render-builder and render-alerts.

The options are read from the Typer commands, so an option added later is fuzzed too. For any
string (newlines, quotes, ``#``, ``${…}``, ``---``, unicode, NUL, CR, tabs, undecodable bytes, very
long), each command either refuses it (exit 2, exactly one ``error:`` line on stderr, no output
file) or writes ONE YAML document that is exactly the model's document, with the string intact
inside a scalar. In a collector config no ``$`` is left for the collector to expand except the
``${env:VAR}`` references otelkit writes itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from cli_runner import run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otelkit.cli import _register, app
from otelkit.cli.render_collector import build_spec
from otelkit.ops import slo
from otelkit.ops.collector import build_model
from otelkit.ops.collector.builder import manifest
from otelkit.ops.collector.render import document as collector_document
from otelkit.ops.slo import rules as slo_rules
from otelkit.ops.slo.alertmanager import alertmanager_config
from otelkit.ops.yamltext import unescape_dollars

COMMANDS = ("render-collector", "render-builder", "render-alerts")

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
# Options whose value, once accepted, is written into the file (in a scalar or a key).
WRITTEN = {"--drop-route", "--header-env", "--ca-file", "--cert-file", "--key-file", "--persistent-queue",
           "--traces-endpoint", "--metrics-endpoint", "--logs-endpoint"}  # fmt: skip
SPEC_TEXT = "version: 1\nhttp:\n  error_rate: {max: 3%}\n"


def _command(name: str) -> Any:
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


def free_text_options() -> Iterator[tuple[str, str, bool]]:
    """``(command, --option, is_path)`` for every option of the three commands that takes text or a path."""
    for name in COMMANDS:
        hints = typing.get_type_hints(_callback(name), include_extras=True)
        for param, annotation in hints.items():
            if param == "return" or _base_type(annotation) not in (str, Path):
                continue
            info = next((m for m in typing.get_args(annotation)[1:] if isinstance(m, typer.models.OptionInfo)), None)
            decls = [d for d in (info.param_decls if info is not None else ()) if d.startswith("--")]
            yield name, decls[0] if decls else "--" + param.replace("_", "-"), _base_type(annotation) is Path


_ENUMERATED = sorted(free_text_options())
OPTIONS = [(command, option) for command, option, _ in _ENUMERATED]
# Every path option is given a path inside the test's own directory (a hostile path must never
# reach the real file system); all but these inputs are files the command writes.
PATH_OPTIONS = {option for _, option, is_path in _ENUMERATED if is_path}
INPUT_PATHS = {"--spec"}


def test_free_text_options_are_enumerated() -> None:
    # Guards the enumeration itself: these must be among the fuzzed options.
    found = set(OPTIONS)
    for expected in [
        ("render-collector", "--persistent-queue"),
        ("render-collector", "--drop-route"),
        ("render-collector", "--ca-file"),
        ("render-collector", "--output"),
        ("render-builder", "--header-env"),
        ("render-builder", "--output"),
        ("render-alerts", "--spec"),
        ("render-alerts", "--output"),
    ]:
        assert expected in found
    assert len(found) >= 30
    # Path options are found by their type, so a new one is fuzzed inside the sandbox too.
    assert {"--output", "--spec", "--alertmanager"} <= PATH_OPTIONS


def _safe_name(text: str) -> str:
    # Hostile file names, but always inside the test's own directory.
    return "o-" + text.replace("/", "_")


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)
    elif isinstance(data, str):
        yield data


def _values(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for v in data.values():
            yield from _values(v)
    elif isinstance(data, list):
        for v in data:
            yield from _values(v)
    elif isinstance(data, str):
        yield data


def _expected(command: str, argv: list[str]) -> dict[str, Any]:
    """The model's documents: ``"main"`` (stdout, or -o) and one per other file the command writes."""
    ctx = _command(command).make_context(command, list(argv))
    params = dict(ctx.params)
    params.pop("output", None)
    if command == "render-alerts":
        spec = slo.default_spec() if params["spec"] is None else slo.load_spec(params["spec"])
        docs = {"main": slo_rules.document(slo.rule_groups(spec))}
        if params.get("alertmanager") is not None:
            docs["--alertmanager"] = alertmanager_config(spec.alerting, slo_rules.alert_names(spec))
        return docs
    params.pop("graph", None)
    all_components = params.pop("all_components", False)
    spec = build_spec(**params)
    if command == "render-builder":
        return {"main": manifest(spec, all_components=all_components)}
    return {"main": collector_document(build_model(spec)[0])}


def _one_document(text: str) -> Any:
    documents = list(yaml.safe_load_all(text))
    assert len(documents) == 1, f"{len(documents)} YAML documents"
    return documents[0]


def check_one(capsys: pytest.CaptureFixture[str], command: str, option: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        argv: list[str] = []
        written: Path | None = None
        if option in PATH_OPTIONS:
            path = str(workdir / _safe_name(text))
            if option in INPUT_PATHS:
                # When no such file can exist, the command must refuse the path.
                with contextlib.suppress(OSError, ValueError, UnicodeEncodeError):
                    Path(path).write_text(SPEC_TEXT, encoding="utf-8")
            else:
                written = Path(path)
            value = path
        else:
            value = SHAPES.get(option, lambda s: s)(text)
            argv += CONTEXT.get(option, [])
        argv += [option, value]
        before = set(os.listdir(workdir))
        code, out, err = run_cli(capsys, command, *argv)
        if code == 2:
            assert out == ""
            assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
            assert "Traceback" not in err
            assert set(os.listdir(workdir)) == before, "a refused command left a file behind"
            return
        assert code == 0, f"exit {code}: {err}"
        expected = _expected(command, argv)
        rendered: dict[str, str] = {}
        if written is not None:
            assert err.count("\n") == 1 and err.startswith("wrote "), err
            rendered["main" if option == "--output" else option] = written.read_text(encoding="utf-8")
            assert sorted(os.listdir(workdir)) == sorted(before | {written.name}), "temporary files left behind"
        else:
            assert err == ""
        if option != "--output":
            rendered["main"] = out
        assert sorted(rendered) == sorted(expected)
        confmap = command == "render-collector"
        docs = {key: _one_document(text) for key, text in rendered.items()}
        for key, raw_doc in docs.items():
            assert (unescape_dollars(raw_doc) if confmap else raw_doc) == expected[key]
        doc = unescape_dollars(docs["main"]) if confmap else docs["main"]
        if confmap:
            for raw in _values(docs["main"]):
                if re.fullmatch(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}", raw):
                    continue
                assert "$" not in raw.replace("$$", ""), f"{raw!r} leaves a '$' for the collector to expand"
        if command == "render-collector" and option in WRITTEN:
            target = value.split(":", 1)[1].rsplit("=", 1)[0] if option == "--header-env" else value
            assert any(target in s for s in _strings(doc)), f"{target!r} is not intact in the document"


@pytest.mark.parametrize(("command", "option"), OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile)
@example(text="/q\n---\nreceivers: {}\n")
@example(text="${env:HOME}")
@example(text="a\u2028b\x85c\x1b[2J\r\x00")
@example(text="\udcff")
@example(text="x" * 5000)
def test_render_hostile_option_keeps_document(
    capsys: pytest.CaptureFixture[str], command: str, option: str, text: str
) -> None:
    check_one(capsys, command, option, text)


@pytest.mark.parametrize(
    ("command", "option", "text"),
    [
        ("render-collector", "--persistent-queue", "/q\n---\nreceivers: {}\n"),
        ("render-collector", "--persistent-queue", "/var/${env:HOME}/q$"),
        ("render-collector", "--ca-file", "/etc/${file:/etc/shadow}"),
        ("render-collector", "--drop-route", "/x\n#\n---\n"),
        ("render-collector", "--header-env", "X-$a"),
        ("render-builder", "--persistent-queue", "/q\n---\nreceivers: {}\n"),
        ("render-alerts", "--spec", "slo\n---\ngroups: []\n.yaml"),
        ("render-alerts", "--output", "alerts\n---\ngroups: []\n.yaml"),
        ("render-alerts", "--alertmanager", "am\n---\nroute: {}\n.yaml"),
    ],
)
def test_render_accepts_hostile_value_and_keeps_it_intact(
    capsys: pytest.CaptureFixture[str], command: str, option: str, text: str
) -> None:
    # Each of these must be ACCEPTED (exit 0): a refusal would make the property above vacuous.
    with tempfile.TemporaryDirectory() as tmp:
        if option in PATH_OPTIONS:
            path = Path(tmp) / _safe_name(text)
            if option in INPUT_PATHS:
                path.write_text(SPEC_TEXT, encoding="utf-8")
            argv = [option, str(path)]
        else:
            argv = [*CONTEXT.get(option, []), option, SHAPES.get(option, lambda s: s)(text)]
        code, out, err = run_cli(capsys, command, *argv)
        assert code == 0, err
        if option == "--output":
            out = path.read_text(encoding="utf-8")
    check_one(capsys, command, option, text)
    header = out.split("\n", 3)
    assert all(line.startswith("#") for line in header[:2]), header
