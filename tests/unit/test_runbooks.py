"""Alerts and runbooks stay in step: every alert links its page in docs/runbooks/, every page has an alert.

A runbook says what the alert means, what to look at (PromQL, LogQL, Jaeger) and how to mitigate;
its PromQL must parse (checked with the real ``promtool``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from otelkit.ops import slo

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
SECTIONS = ["## What it means", "## Look at", "## Mitigate"]
# What stands in for the placeholders when a runbook's query is checked.
PLACEHOLDERS = {
    "<service>": "example-api",
    "<worker service>": "example-worker",
    "<route>": "/items/{item_id}",
    "<task>": "example.tasks.process_order",
    "<queue>": "celery",
}


def alerts(spec: slo.SLOSpec) -> dict[str, slo.Rule]:
    return {r.name: r for g in slo.rule_groups(spec) for r in g.rules if r.kind == "alert"}


def pages() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}


def test_runbooks_every_alert_links_its_page_in_the_repository() -> None:
    for name, rule in alerts(slo.default_spec()).items():
        url = rule.annotations["runbook_url"]
        assert url == f"docs/runbooks/{name}.md"
        assert (REPO / url).is_file(), f"{name}: runbook {url} does not exist"


def test_runbooks_every_page_belongs_to_an_alert() -> None:
    assert sorted(pages()) == sorted(alerts(slo.default_spec()))
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\w+)` \| (\w+) \| \[(\w+)\.md\]", index, re.M)
    severities = {name: rule.labels["severity"] for name, rule in alerts(slo.default_spec()).items()}
    assert sorted((name, severity) for name, severity, _ in listed) == sorted(severities.items())
    assert all(name == page for name, _, page in listed)


@pytest.mark.parametrize("name", sorted(pages()))
def test_runbooks_page_says_what_it_means_where_to_look_and_how_to_mitigate(name: str) -> None:
    text = pages()[name]
    assert text.startswith(f"# {name}\n")
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions and positions == sorted(positions), f"{name}: sections {SECTIONS} in order"
    look = text[positions[1] : positions[2]]
    assert "```promql" in look, f"{name}: no PromQL to look at"
    rule = alerts(slo.default_spec())[name]
    if "traces_url" in rule.annotations:
        assert "```logql" in look and "Jaeger" in look, f"{name}: a service alert names its logs and traces"
    # The page states the default severity the rules give the alert.
    assert f"**{rule.labels['severity']}**" in text


def promql_queries(text: str) -> list[str]:
    """The queries of every ```promql block; a query spans lines while brackets are open or around an operator."""
    queries: list[str] = []
    for block in re.findall(r"```promql\n(.*?)```", text, re.S):
        current: list[str] = []
        for line in block.splitlines():
            operator = line.strip() in ("/", "and", "or", "unless", "*", "+", "-")
            joined = "\n".join(current)
            balanced = joined.count("(") == joined.count(")") and joined.count("{") == joined.count("}")
            starts_new = line[:1] not in ("", " ", ")") and not operator
            previous_operator = bool(current) and current[-1].strip() in ("/", "and", "or", "unless", "*", "+", "-")
            if not line.strip() or (current and balanced and starts_new and not previous_operator):
                if current:
                    queries.append(joined)
                current = [line] if line.strip() else []
            else:
                current.append(line)
        if current:
            queries.append("\n".join(current))
    for placeholder, value in PLACEHOLDERS.items():
        queries = [q.replace(placeholder, value) for q in queries]
    return queries


@pytest.mark.e2e
def test_runbooks_promql_parses_with_promtool(prometheus_bin: Path, tmp_path: Path) -> None:
    rules = [
        {"record": f"runbook_{name.lower()}_{i}", "expr": query}
        for name, text in sorted(pages().items())
        for i, query in enumerate(promql_queries(text))
    ]
    assert len(rules) > 40
    assert not [r for r in rules if "<" in r["expr"] and ">" in r["expr"] and re.search(r"<\w", r["expr"])]
    path = tmp_path / "runbook-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}, sort_keys=False))
    promtool = prometheus_bin.parent / "promtool"
    result = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
