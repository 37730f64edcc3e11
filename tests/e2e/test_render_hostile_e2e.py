"""Hostile option values through the real collector: the rendered config validates and means what the model says.

``otelcol validate`` checks each config, then ``otelcol print-config --mode unredacted`` shows the
configuration the collector resolved (after its ``${…}`` expansion and ``$$`` unescaping): each
hostile value must come out exactly as given, with nothing expanded and nothing injected.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelkit.errors import UsageError
from otelkit.ops.collector import CollectorSpec, build_model, render_collector

pytestmark = pytest.mark.e2e

# No NUL (no argv can hold one and the collector's file paths cannot either), printable or not.
HOSTILE = [
    "/q\n---\nreceivers: {}\n",
    "/var/lib/${env:HOME}/${file:/etc/passwd}/$$/${HOME}/$",
    "/x\r\n#not a comment\t\x1b[2J\x07\u2028\x85\ufeff\u202e 😀 é",
    '/\'"quotes" & *alias !!str %YAML {a: [b]}',
    "/" + "long/" * 400,
]
ENV = {**os.environ, "TOKEN": "token-value", "HOME": "/root-home-must-not-appear"}


def _resolved(otelcol: Path, config: Path) -> dict[str, Any]:
    validate = subprocess.run(
        [str(otelcol), "validate", "--config", str(config)], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert validate.returncode == 0, validate.stderr
    printed = subprocess.run(
        [str(otelcol), "print-config", "--config", str(config), "--mode", "unredacted", "--format", "json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    return dict(json.loads(printed.stdout))


def _spec(text: str) -> CollectorSpec:
    return CollectorSpec(
        bind="127.0.0.1",
        traces=("otlp",),
        # A URL path keeps '$', '{', '}' and ':' raw: `${env:HOME}` there must stay literal too.
        traces_endpoint=("https://collector.example:4318/" + quote(text.lstrip("/"), safe="/${}:"),),
        traces_auth_env=("TOKEN",),
        header_env=("traces:X-$Weird'#=TOKEN",),
        persistent_queue=text,
        drop_route=(text.replace('"', "").replace("\\", ""),),
    )  # fmt: skip


def _check(otelcol: Path, tmp_path: Path, text: str) -> None:
    spec = _spec(text)
    config = tmp_path / "otelcol.yaml"
    config.write_text(render_collector(spec), encoding="utf-8")
    resolved = _resolved(otelcol, config)
    assert resolved["extensions"]["file_storage/queue"]["directory"] == spec.persistent_queue
    (condition,) = resolved["processors"]["filter/routes"]["trace_conditions"][0]["conditions"]
    assert condition == f'span.attributes["http.route"] == "{spec.drop_route[0]}"'
    exporter = resolved["exporters"]["otlp_http/traces"]
    assert exporter["endpoint"] == spec.traces_endpoint[0]
    assert sorted((h["name"], h["value"]) for h in exporter["headers"]) == [
        ("Authorization", "token-value"),
        ("X-$Weird'#", "token-value"),
    ]
    # Nothing else appeared: the resolved sections hold exactly the model's components.
    model, _ = build_model(spec)
    for kind, group in model.sections():
        if group:
            assert sorted(resolved[kind.value]) == sorted(c.id for c in group)
    assert sorted(resolved["service"]["pipelines"]) == sorted(p.name for p in model.pipelines)
    assert "/root-home-must-not-appear" not in json.dumps(resolved)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_validate_and_keep_their_meaning(otelcol_bin: Path, tmp_path: Path, text: str) -> None:
    _check(otelcol_bin, tmp_path, text)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.lists(
        st.one_of(
            st.sampled_from(["\n", "---", "#", "${env:HOME}", "$$", "$", "'", '"', ": ", "\t", "\r", "\u2028", "{"]),
            st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=5),
        ),
        max_size=8,
    ).map(lambda parts: "/" + "".join(parts))
)
def test_sampled_hostile_values_validate_and_keep_their_meaning(otelcol_bin: Path, tmp_path: Path, text: str) -> None:
    try:
        _spec(text)
        render_collector(_spec(text))
    except UsageError:
        return  # refused with one line: nothing reaches a file (the unit property test covers the line)
    _check(otelcol_bin, tmp_path, text)
