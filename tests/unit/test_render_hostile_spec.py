"""Hostile text in the free-text values of an SLO spec's ``alerting`` section.

Those values (receiver names, Slack channels, e-mail addresses, URLs, runbook paths, secret file
paths) reach the Alertmanager configuration and the rules' annotations. For any string, ``render-alerts
--alertmanager`` either refuses the spec (exit 2, one ``error:`` line, no file written) or writes two
files that are each one YAML document equal to the model, with the string intact.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import run_cli
from hostile_options import assert_refused, strings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otelkit.ops import slo
from otelkit.ops.slo import alertmanager, rules

FRAGMENTS = ["\n", "\r", "\t", "\x00", "\x1b[2J", "\u2028", "\x85", "---", "#", ": ", "'", '"', "{{ .x }}", "{{",
             "${env:HOME}", "$", "&a", "*a", "!!python/object", "[", "{", "é", " ", "/", "x"]  # fmt: skip
hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=5),
    ),
    max_size=8,
).map("".join)


def _route(name: str, receiver: dict[str, Any]) -> dict[str, Any]:
    return {"receivers": {name: receiver}, "routes": {"critical": [name]}}


def _slack(value: str) -> dict[str, Any]:
    return _route("chat", {"slack": {"api_url_file": "/s/slack", "channel": value}})


def _email(key: str) -> Callable[[str], dict[str, Any]]:
    def build(value: str) -> dict[str, Any]:
        email = {"to": "ops@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:587", key: value}
        return _route("mail", {"email": email})

    return build


FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "slack.channel": _slack,
    "slack.api_url_file": lambda v: _route("chat", {"slack": {"api_url_file": v}}),
    "email.to": _email("to"),
    "email.from": _email("from"),
    "email.smarthost": _email("smarthost"),
    "email.auth_username": _email("auth_username"),
    "webhook.url": lambda v: _route("hook", {"webhook": {"url": "https://hooks.example/" + v}}),
    "receiver name": lambda v: _route(v, {"webhook": {"url": "https://hooks.example/"}}),
    "runbooks": lambda v: {"runbooks": v + "/"},
    # The URL's trailing slashes are dropped (the search path is appended): the text is kept mid-path.
    "jaeger_url": lambda v: {"jaeger_url": "https://jaeger.example/" + v + "/jaeger"},
    "group_by": lambda v: {"group_by": [v]},
}  # fmt: skip


def check_spec(capsys: pytest.CaptureFixture[str], field: str, text: str) -> bool:
    """Render a spec whose ``field`` holds ``text``; True when it was accepted."""
    alerting = FIELDS[field](text)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        spec = workdir / "slo.yaml"
        # Double quotes: PyYAML's single-quoted style folds U+0085 (a YAML 1.1 line break) into a space.
        data = {"version": 1, "alerting": alerting}
        spec.write_text(yaml.safe_dump(data, allow_unicode=True, default_style='"'), encoding="utf-8")
        out_rules, out_am = workdir / "alerts.yaml", workdir / "alertmanager.yaml"
        code, out, err = run_cli(
            capsys, "render-alerts", "--spec", str(spec), "-o", str(out_rules), "--alertmanager", str(out_am)
        )
        if code == 2:
            assert_refused(out, err, workdir, {"slo.yaml"})
            return False
        assert code == 0, err
        parsed = slo.load_spec(spec)
        (rules_doc,) = yaml.safe_load_all(out_rules.read_text(encoding="utf-8"))
        (am_doc,) = yaml.safe_load_all(out_am.read_text(encoding="utf-8"))
        assert rules_doc == rules.document(slo.rule_groups(parsed))
        assert am_doc == alertmanager.alertmanager_config(parsed.alerting, rules.alert_names(parsed))
        written = [*strings(rules_doc), *strings(am_doc)]
        assert any(text in s for s in written), f"{text!r} is not intact in the files"
        return True


@pytest.mark.parametrize("field", sorted(FIELDS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile)
@example(text="#ops\n---\nroute: {}")
@example(text="x: y\u2028z")
@example(text="\t//")
def test_spec_free_text_reaches_files_only_as_scalars(
    capsys: pytest.CaptureFixture[str], field: str, text: str
) -> None:
    check_spec(capsys, field, text)


@pytest.mark.parametrize(
    ("field", "text"),
    [("slack.channel", "#ops: 'on-call' \\o/ ${env:HOME} & *a"), ("email.to", 'a@b.example, "Ops" <c@d.example>')],
)
def test_spec_quoting_characters_are_accepted_intact(capsys: pytest.CaptureFixture[str], field: str, text: str) -> None:
    assert check_spec(capsys, field, text)


def test_spec_smarthost_with_a_huge_port_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert not check_spec(capsys, "email.smarthost", "smtp.example.com:" + "9" * 5000)
