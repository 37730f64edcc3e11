"""The ``alerting`` section of the SLO spec: who hears about an alert, and what it links to.

Its model (:class:`Alerting`, :class:`Receiver`, :class:`Integration`) and the checks that read
it. :mod:`otelkit.ops.slo.alertmanager` renders it as an Alertmanager configuration; the rules take
``runbooks`` and ``jaeger_url`` for their annotations::

    alerting:
      runbooks: docs/runbooks/               # runbook_url = <runbooks><alert>.md
      jaeger_url: http://localhost:16686     # traces_url = a Jaeger search for the alert's service
      group_by: [alertname, service_name]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes: {critical: [pager], warning: [tickets], info: [tickets]}
      receivers:
        pager: {pagerduty: {routing_key_file: /etc/alertmanager/secrets/pagerduty_routing_key}}
        tickets: {slack: {api_url_file: /etc/alertmanager/secrets/slack_api_url, channel: "#alerts"}}

Secrets never appear in the spec nor in the rendered file: a receiver names the file Alertmanager
reads each one from (``*_file``). A secret given inline, or a receiver without its secret file, is
a :class:`~otelkit.errors.ConfigError`. The keys are those Alertmanager 0.25 (Debian's
``prometheus-alertmanager``, the oldest supported) understands: it has no ``url_file`` for
webhooks, so a webhook's URL is plain and its token goes in ``bearer_token_file``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from otelkit.ops.slo.values import SEVERITIES, SpecContext, did_you_mean, duration, mapping, show

__all__ = ["INTEGRATIONS", "UNROUTED", "Alerting", "Integration", "Receiver", "parse_alerting"]

INTEGRATIONS = ("webhook", "slack", "pagerduty", "email")
"""The notification integrations a receiver can use."""

UNROUTED = "unrouted"
"""The receiver of alerts no route takes: shown in Alertmanager, sent nowhere. Reserved name."""

# Used with fullmatch: with match, "$" let a name end in a newline.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Integration:
    """One notification integration of a receiver: ``kind`` (``slack``…) and its checked settings."""

    kind: str
    settings: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)


@dataclass(frozen=True)
class Receiver:
    """A named receiver; with no integration its alerts are visible in Alertmanager and sent nowhere."""

    name: str
    integrations: tuple[Integration, ...] = ()


def _default_routes() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("critical", ("pager",)), ("warning", ("tickets",)), ("info", ("tickets",)))


@dataclass(frozen=True)
class Alerting:
    """Where alerts go (Alertmanager routes and receivers) and the links every alert carries."""

    runbooks: str = "docs/runbooks/"
    jaeger_url: str | None = "http://localhost:16686"
    group_by: tuple[str, ...] = ("alertname", "service_name")
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    routes: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=_default_routes)
    receivers: tuple[Receiver, ...] = (Receiver("pager"), Receiver("tickets"))

    def receivers_for(self, severity: str) -> tuple[str, ...]:
        """Names of the receivers that alerts of ``severity`` go to (may be empty)."""
        return dict(self.routes).get(severity, ())

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbooks}{alert}.md"


# --- checking the section ------------------------------------------------------------------------

_Check = Callable[[SpecContext, str, Any], Any]


def _text(ctx: SpecContext, path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(path, f"expected a non-empty string; got {show(value)}")
    if "\n" in value or "\r" in value:
        raise ctx.error(path, f"expected one line; got {show(value)}")
    if "{{" in value:
        # Alertmanager and Prometheus expand Go templates in these fields: user text stays text.
        raise ctx.error(path, f"templates are not supported here; got {show(value)}")
    return value


def _url(ctx: SpecContext, path: str, value: Any) -> str:
    text = _text(ctx, path, value)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ctx.error(path, f"invalid URL {show(value)}; expected an http:// or https:// URL")
    if "@" in parts.netloc:
        # A token or password before the host; never echoed.
        raise ctx.error(
            path,
            "the URL carries credentials (user:password@ before the host), which would be written into the"
            " rendered file; remove them (a webhook authenticates with username and password_file, or"
            " bearer_token_file)",
        )
    return text


def _hostport(ctx: SpecContext, path: str, value: Any) -> str:
    text = _text(ctx, path, value)
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 0 < int(port) < 65536:
        raise ctx.error(path, f"invalid address {show(value)}; expected host:port, such as smtp.example.com:587")
    return text


def _bool(ctx: SpecContext, path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(path, f"expected true or false; got {show(value)}")
    return value


def _whole(ctx: SpecContext, path: str, value: Any) -> int:
    # Alertmanager reads max_alerts as a uint64; past that, its config does not load.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4294967295:
        raise ctx.error(path, f"expected a whole number from 0 to 4294967295; got {show(value)}")
    return value


# Per integration: its keys and their checks, the keys it requires, and for each secret it needs
# (key holding the file → what the secret is) an example path.
_KEYS: dict[str, dict[str, _Check]] = {
    "webhook": {
        "url": _url,
        "bearer_token_file": _text,
        "username": _text,
        "password_file": _text,
        "max_alerts": _whole,
        "send_resolved": _bool,
    },
    "slack": {"api_url_file": _text, "channel": _text, "send_resolved": _bool},
    "pagerduty": {"routing_key_file": _text, "url": _url, "send_resolved": _bool},
    "email": {
        "to": _text,
        "from": _text,
        "smarthost": _hostport,
        "auth_username": _text,
        "auth_password_file": _text,
        "require_tls": _bool,
        "send_resolved": _bool,
    },
}
_REQUIRED = {"webhook": ("url",), "slack": (), "pagerduty": (), "email": ("to", "from", "smarthost")}
_SECRET_FILES = {
    "slack": ("api_url_file", "its webhook URL", "/etc/alertmanager/secrets/slack_api_url"),
    "pagerduty": (
        "routing_key_file",
        "its Events API v2 routing key",
        "/etc/alertmanager/secrets/pagerduty_routing_key",
    ),
}
# Inline secrets people write, and the key that should name their file instead.
_INLINE_SECRETS = {
    "webhook": {"bearer_token": "bearer_token_file", "password": "password_file", "url_file": "url"},
    "slack": {"api_url": "api_url_file"},
    "pagerduty": {"routing_key": "routing_key_file", "service_key": "routing_key_file"},
    "email": {"auth_password": "auth_password_file", "auth_secret": "auth_password_file"},
}
_LABELS = {"webhook": "webhook", "slack": "Slack", "pagerduty": "PagerDuty", "email": "e-mail"}


def _integration(ctx: SpecContext, path: str, kind: str, raw: Any) -> Integration:
    for bad, good in _INLINE_SECRETS[kind].items():
        if isinstance(raw, dict) and bad in raw:
            if bad == "url_file":
                raise ctx.error(
                    f"{path}.url_file",
                    "Alertmanager 0.25 has no url_file for webhooks; put the URL in url and its token in"
                    " bearer_token_file (or password_file with username)",
                )
            raise ctx.error(
                f"{path}.{bad}",
                f"secrets are never written into the Alertmanager config; put the value in a file"
                f" and name that file with {good}",
            )
    allowed = list(_KEYS[kind])
    raw = mapping(ctx, path, {} if raw is None else raw, allowed)
    settings = {key: _KEYS[kind][key](ctx, f"{path}.{key}", value) for key, value in raw.items()}
    for key in _REQUIRED[kind]:
        if key not in settings:
            raise ctx.error(path, f"missing {key}; a {_LABELS[kind]} receiver needs {', '.join(_REQUIRED[kind])}")
    if kind in _SECRET_FILES:
        key, what, example = _SECRET_FILES[kind]
        if key not in settings:
            raise ctx.error(
                path,
                f"missing {key}; a {_LABELS[kind]} receiver reads {what} from a file ({key}: {example});"
                " secrets are never written into the Alertmanager config",
            )
    pairs = (("username", "password_file"), ("auth_username", "auth_password_file"))
    for user, secret in pairs:
        if user in settings and secret not in settings:
            raise ctx.error(
                path,
                f"missing {secret}; {user} {settings[user]!r} needs its password in a file ({secret}:"
                " /etc/alertmanager/secrets/…); secrets are never written into the Alertmanager config",
            )
        if secret in settings and user not in settings:
            raise ctx.error(path, f"{secret} without {user}; give both, or neither")
    if "bearer_token_file" in settings and "password_file" in settings:
        raise ctx.error(path, "bearer_token_file and password_file both set; a webhook authenticates one way")
    return Integration(kind, tuple(settings.items()))


def _receiver(ctx: SpecContext, path: str, name: Any, raw: Any) -> Receiver:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ctx.error(
            path, f"invalid receiver name {name!r}; expected letters, digits, _ and -, starting with a letter"
        )
    if name == UNROUTED:
        raise ctx.error(path, f"receiver name {name!r} is reserved for alerts no route takes; choose another name")
    raw = mapping(ctx, path, {} if raw is None else raw, list(INTEGRATIONS))
    return Receiver(
        name, tuple(_integration(ctx, f"{path}.{kind}", kind, raw[kind]) for kind in INTEGRATIONS if kind in raw)
    )


def _names(ctx: SpecContext, path: str, value: Any, known: list[str]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ctx.error(path, f"expected a list of receiver names; got {show(value)}")
    for name in names:
        if name not in known:
            raise ctx.error(
                path,
                f"unknown receiver {name!r}; expected one of: {', '.join(known)}{did_you_mean(name, known)}"
                " (define it under alerting.receivers)",
            )
    if len(set(names)) != len(names):
        raise ctx.error(path, f"receiver listed twice in {show(value)}")
    return tuple(names)


def _group_by(ctx: SpecContext, path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ctx.error(path, f"expected a list of label names such as [alertname, service_name]; got {show(value)}")
    for label in value:
        if label != "..." and not _LABEL.fullmatch(label):
            raise ctx.error(path, f"invalid label name {label!r}; expected letters, digits and _ (or ... for all)")
    return tuple(value)


def _runbooks(ctx: SpecContext, path: str, value: Any) -> str:
    text = _text(ctx, path, value)
    if not text.endswith("/"):
        raise ctx.error(
            path,
            f"{show(value)} does not end with /; expected the URL or path each alert's <name>.md is appended to,"
            " such as docs/runbooks/ or https://github.com/acme/shop/blob/main/docs/runbooks/",
        )
    return text


def _jaeger(ctx: SpecContext, path: str, value: Any) -> str | None:
    if value is False:
        return None
    return _url(ctx, path, value).rstrip("/")


def parse_alerting(ctx: SpecContext, path: str, raw: Any) -> Alerting:
    """Check the ``alerting`` section ``raw`` (YAML-loaded) on top of the defaults.

    Receivers and routes merge with the defaults by name and severity: defining ``pager`` replaces
    the default (silent) ``pager``; routes of severities left out keep their default receivers.

    Raises:
        ConfigError: an unknown key, a bad value, an inline secret or a receiver without its secret file.
    """
    keys = ["runbooks", "jaeger_url", "group_by", "group_wait", "group_interval", "repeat_interval", "routes"]
    raw = mapping(ctx, path, {} if raw is None or raw is True else raw, [*keys, "receivers"])
    result = Alerting()
    if "runbooks" in raw:
        result = replace(result, runbooks=_runbooks(ctx, f"{path}.runbooks", raw["runbooks"]))
    if "jaeger_url" in raw:
        result = replace(result, jaeger_url=_jaeger(ctx, f"{path}.jaeger_url", raw["jaeger_url"]))
    if "group_by" in raw:
        result = replace(result, group_by=_group_by(ctx, f"{path}.group_by", raw["group_by"]))
    timings = {
        key: duration(ctx, f"{path}.{key}", raw[key])
        for key in ("group_wait", "group_interval", "repeat_interval")
        if key in raw
    }
    result = replace(
        result,
        group_wait=timings.get("group_wait", result.group_wait),
        group_interval=timings.get("group_interval", result.group_interval),
        repeat_interval=timings.get("repeat_interval", result.repeat_interval),
    )

    receivers = {r.name: r for r in result.receivers}
    if "receivers" in raw:
        given = raw["receivers"]
        if not isinstance(given, dict):
            raise ctx.error(
                f"{path}.receivers", f"expected a mapping of receiver names to integrations; got {show(given)}"
            )
        for name, body in given.items():
            receivers[name] = _receiver(ctx, f"{path}.receivers.{name}", name, body)
    result = replace(result, receivers=tuple(receivers.values()))

    routes = dict(result.routes)
    if "routes" in raw:
        given = mapping(ctx, f"{path}.routes", raw["routes"], list(SEVERITIES))
        for severity, names in given.items():
            routes[severity] = _names(ctx, f"{path}.routes.{severity}", names, list(receivers))
    else:
        for severity, names in routes.items():
            _names(ctx, f"{path}.routes.{severity}", list(names), list(receivers))
    return replace(result, routes=tuple((s, routes[s]) for s in SEVERITIES if s in routes))
