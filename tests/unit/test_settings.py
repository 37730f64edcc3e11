from __future__ import annotations

import pytest

from otelkit.errors import ConfigError
from otelkit.settings import Settings


def test_settings_defaults_without_env():
    s = Settings.from_env({})
    assert s.environment == "production"
    assert s.log_level == "INFO"
    assert s.console_format == "json"
    assert s.http_instrumentation == "otelkit"
    assert s.shutdown_timeout == 3.0
    assert s.request_id_header == "X-Request-ID"
    assert s.system_metrics is False


def test_settings_development_means_pretty_console():
    assert Settings.from_env({"OTELKIT_ENVIRONMENT": "Development"}).console_format == "pretty"


def test_settings_explicit_argument_beats_env():
    s = Settings.from_env({"OTELKIT_LOG_LEVEL": "debug"}, log_level="error")
    assert s.log_level == "ERROR"


def test_settings_env_values_parsed():
    s = Settings.from_env(
        {
            "OTELKIT_LOG_CONSOLE": "off",
            "OTELKIT_SHUTDOWN_TIMEOUT": "1.5",
            "OTELKIT_SYSTEM_METRICS": "yes",
            "OTELKIT_REDACT_KEYS": "ssn, card_number",
            "OTELKIT_REQUEST_ID_HEADER": "X-Correlation-ID",
        }
    )
    assert s.console_format == "off"
    assert s.shutdown_timeout == 1.5
    assert s.system_metrics is True
    assert s.redact_keys == ("ssn", "card_number")
    assert s.request_id_header == "X-Correlation-ID"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTELKIT_ENVIRONMENT": "prod"},
            "invalid OTELKIT_ENVIRONMENT='prod'; expected one of: production, development"
            " (did you mean 'production'?); fix or unset OTELKIT_ENVIRONMENT",
        ),
        (
            {"OTELKIT_LOG_LEVEL": "verbose"},
            "invalid OTELKIT_LOG_LEVEL='verbose'; expected one of: debug, info, warning, error, critical;"
            " fix or unset OTELKIT_LOG_LEVEL",
        ),
        (
            {"OTELKIT_SHUTDOWN_TIMEOUT": "soon"},
            "invalid OTELKIT_SHUTDOWN_TIMEOUT='soon'; expected a number of seconds greater than 0 and at most 120;"
            " fix or unset OTELKIT_SHUTDOWN_TIMEOUT",
        ),
        (
            {"OTELKIT_SYSTEM_METRICS": "maybe"},
            "invalid OTELKIT_SYSTEM_METRICS='maybe'; expected true or false; fix or unset OTELKIT_SYSTEM_METRICS",
        ),
        (
            {"OTELKIT_REQUEST_ID_HEADER": "X Request"},
            "invalid OTELKIT_REQUEST_ID_HEADER='X Request'; expected an HTTP header name such as X-Request-ID;"
            " fix or unset OTELKIT_REQUEST_ID_HEADER",
        ),
        (
            {"OTELKIT_HTTP_INSTRUMENTATION": "contrb"},
            "invalid OTELKIT_HTTP_INSTRUMENTATION='contrb'; expected one of: otelkit, contrib"
            " (did you mean 'contrib'?); fix or unset OTELKIT_HTTP_INSTRUMENTATION",
        ),
    ],
)
def test_settings_bad_value_is_one_clear_line(env, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert info.value.variable == next(iter(env))


def test_settings_unknown_argument_rejected():
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Settings.from_env({}, colour="red")


def test_settings_gc_freeze_default_and_off():
    assert Settings.from_env({}).gc_freeze is True
    assert Settings.from_env({"OTELKIT_GC_FREEZE": "false"}).gc_freeze is False
