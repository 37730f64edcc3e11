"""Hostile text in every free-text option of render-collector, render-builder and render-alerts.

The options are read from the Typer commands, so an option added later is fuzzed too. For any
string (newlines, quotes, ``#``, ``${…}``, ``---``, unicode, NUL, CR, tabs, undecodable bytes, very
long), each command either refuses it (exit 2, exactly one ``error:`` line on stderr, no output
file) or writes ONE YAML document that is exactly the model's document, with the string intact
inside a scalar. In a collector config no ``$`` is left for the collector to expand except the
``${env:VAR}`` references otelkit writes itself. (render-k8s: test_render_hostile_k8s.py; the option
enumeration and the strategies are shared, in tests/hostile_options.py.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hostile_options import (
    WRITTEN,
    assert_no_expansion,
    click_command,
    free_text_options,
    hostile,
    one_document,
    run_hostile,
    strings,
    with_examples,
    written_target,
)
from hypothesis import HealthCheck, given, settings

from otelkit.cli.render_collector import build_spec
from otelkit.ops import slo
from otelkit.ops.collector import build_model
from otelkit.ops.collector.builder import manifest
from otelkit.ops.collector.render import document as collector_document
from otelkit.ops.slo import rules as slo_rules
from otelkit.ops.slo.alertmanager import alertmanager_config
from otelkit.ops.yamltext import unescape_dollars

COMMANDS = ("render-collector", "render-builder", "render-alerts")
SPEC_TEXT = "version: 1\nhttp:\n  error_rate: {max: 3%}\n"

_ENUMERATED = sorted(free_text_options(*COMMANDS))
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


def _expected(command: str, argv: list[str]) -> dict[str, Any]:
    """The model's documents: ``"main"`` (stdout, or -o) and one per other file the command writes."""
    ctx = click_command(command).make_context(command, list(argv))
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


def check_one(capsys: pytest.CaptureFixture[str], command: str, option: str, text: str) -> str | None:
    """Render with ``option`` built from ``text`` and check the property; the main output when accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        is_path = option in PATH_OPTIONS
        input_text = SPEC_TEXT if option in INPUT_PATHS else None
        run = run_hostile(capsys, command, option, text, workdir, is_path=is_path, input_text=input_text)
        if run is None:
            return None
        written = Path(run.value) if is_path and input_text is None else None
        expected = _expected(command, run.argv)
        rendered: dict[str, str] = {}
        if written is not None:
            assert run.err.count("\n") == 1 and run.err.startswith("wrote "), run.err
            rendered["main" if option == "--output" else option] = written.read_text(encoding="utf-8")
            assert sorted(os.listdir(workdir)) == sorted(run.before | {written.name}), "temporary files left behind"
        else:
            assert run.err == ""
        if option != "--output":
            rendered["main"] = run.out
        assert sorted(rendered) == sorted(expected)
        confmap = command == "render-collector"
        docs = {key: one_document(text) for key, text in rendered.items()}
        for key, raw_doc in docs.items():
            assert (unescape_dollars(raw_doc) if confmap else raw_doc) == expected[key]
        doc = unescape_dollars(docs["main"]) if confmap else docs["main"]
        if confmap:
            assert_no_expansion(docs["main"])
        if command == "render-collector" and option in WRITTEN:
            target = written_target(option, run.value)
            assert any(target in s for s in strings(doc)), f"{target!r} is not intact in the document"
        return rendered["main"]


@pytest.mark.parametrize(("command", "option"), OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile)
@with_examples
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
    main = check_one(capsys, command, option, text)
    assert main is not None, f"{option} {text!r} was refused"
    header = main.split("\n", 3)
    assert all(line.startswith("#") for line in header[:2]), header
