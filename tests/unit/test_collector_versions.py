"""Any collector version in the checked range renders, with the rules of the nearest checked version below it."""

from __future__ import annotations

import pytest
import yaml
from cli_runner import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from otelkit.errors import UsageError
from otelkit.ops.collector import SUPPORTED_VERSIONS, CollectorSpec, render_builder, render_collector, version_info


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_version_between_checked_ones_renders_with_the_rules_below(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "render-collector", "--collector-version", "0.135.0", "--metrics", "prometheusremotewrite",
        "--span-metrics",
    )  # fmt: skip
    assert (code, err) == (0, "")
    config = yaml.safe_load(out)
    assert "# Target collector: v0.135.0 · profile: production" in out
    # 0.130.0's rules: old exporter names, the batch processor (exporters batch from 0.138.0).
    assert sorted(config["exporters"]) == ["otlp/jaeger", "otlphttp/loki", "prometheusremotewrite"]
    assert "spanmetrics" in config["connectors"]
    assert "batch" in config["processors"]


def test_version_between_checked_ones_builds_its_own_modules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "render-builder", "--collector-version", "v0.135.0")
    assert code == 0
    gomods = [e["gomod"] for section in yaml.safe_load(out).values() if isinstance(section, list) for e in section]
    assert "go.opentelemetry.io/collector/receiver/otlpreceiver v0.135.0" in gomods
    assert "go.opentelemetry.io/collector/confmap/provider/envprovider v1.41.0" in gomods


def test_version_just_below_a_rename_keeps_the_old_name() -> None:
    # prometheus_remote_write is the name from 0.154.0, but 0.150.0 is the last checked version below.
    assert version_info("0.154.0").prometheus_remote_write_exporter == "prometheusremotewrite"
    assert version_info("0.155.0").prometheus_remote_write_exporter == "prometheus_remote_write"


@settings(deadline=None)  # two renders per example; a loaded machine makes the 200 ms default flaky
@given(minor=st.integers(130, 161), patch=st.integers(0, 30))
def test_every_version_in_range_renders_like_the_checked_one_below(minor: int, patch: int) -> None:
    version = f"0.{minor}.{patch}"
    if _key(version) > _key(SUPPORTED_VERSIONS[-1]):
        with pytest.raises(UsageError):
            version_info(version)
        return
    checked = max((v for v in SUPPORTED_VERSIONS if _key(v) <= _key(version)), key=_key)
    spec = CollectorSpec(collector_version=version, span_metrics=True, metrics=("prometheus", "prometheusremotewrite"))
    text = render_collector(spec)
    expected = render_collector(CollectorSpec(collector_version=checked, span_metrics=True,
                                              metrics=("prometheus", "prometheusremotewrite")))  # fmt: skip
    assert yaml.safe_load(text) == yaml.safe_load(expected)
    assert f"v0.{minor}.{patch}" in render_builder(spec)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("0.129.9", "unsupported collector version '0.129.9'; expected a version from 0.130.0 to 0.161.0"),
        ("0.161.1", "unsupported collector version '0.161.1'; expected a version from 0.130.0 to 0.161.0"),
        ("1.0.0", "unsupported collector version '1.0.0'; expected a version from 0.130.0 to 0.161.0"),
        ("0.135", "malformed collector version '0.135'; expected MAJOR.MINOR.PATCH from 0.130.0 to 0.161.0"),
        ("0.0135.0", "malformed collector version '0.0135.0'; expected MAJOR.MINOR.PATCH from 0.130.0 to 0.161.0"),
        ("0.135.0-rc.1", "malformed collector version '0.135.0-rc.1'; expected MAJOR.MINOR.PATCH from 0.130.0"),
        ("0.135.0\n", "malformed collector version '0.135.0\\n'; expected MAJOR.MINOR.PATCH from 0.130.0"),
        ("0.1" + "3" * 5000 + ".0", "malformed collector version '0.13333"),
        ("", "malformed collector version ''; expected MAJOR.MINOR.PATCH from 0.130.0 to 0.161.0"),
    ],
)
def test_version_outside_range_or_malformed_is_exit_2(
    capsys: pytest.CaptureFixture[str], version: str, message: str
) -> None:
    code, out, err = run_cli(capsys, "render-collector", "--collector-version", version)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
