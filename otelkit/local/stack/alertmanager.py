"""Alertmanager in the local stack: its binary, its config moved out of the container, its secrets checked.

``otelkit stack up`` runs the Alertmanager that Debian packages (``prometheus-alertmanager``, 0.25)
or any ``alertmanager`` on PATH, on a copy of ``stack/alertmanager/alertmanager.yaml`` — the file
compose mounts at ``/etc/alertmanager/`` — in which every path under ``/etc/alertmanager/``
points into the repository's ``stack/alertmanager/`` instead, so the same secret files serve
both. Before anything starts, every secret file a receiver names must exist: a missing one is a
:class:`~otelkit.errors.UsageError` naming the receiver, the file and the fix (Alertmanager itself
would start and fail only when it first sends).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from otelkit.errors import ExternalToolError, UsageError

__all__ = ["CONTAINER_DIR", "argv", "find_binary", "local_config"]

CONTAINER_DIR = "/etc/alertmanager/"
"""Where compose mounts ``stack/alertmanager/``."""


def find_binary() -> Path:
    """Debian's ``prometheus-alertmanager`` or ``alertmanager`` from PATH."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ExternalToolError(
        "alertmanager not found on PATH; install it (Debian: `apt-get install -y prometheus-alertmanager`)"
    )


def _secret_files(config: Any) -> Iterator[tuple[str, str, str, str]]:
    """``(receiver, integration, key, path)`` of every ``*_file`` a receiver reads."""
    for receiver in config.get("receivers") or []:
        for key, integrations in receiver.items():
            if not key.endswith("_configs"):
                continue
            for integration in integrations or []:
                yield from _walk(receiver.get("name", "?"), key.removesuffix("_configs"), integration)


def _walk(receiver: str, kind: str, node: Any) -> Iterator[tuple[str, str, str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str):
                yield receiver, kind, key, value
            else:
                yield from _walk(receiver, kind, value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(receiver, kind, value)


def _relocate(node: Any, here: Path) -> Any:
    if isinstance(node, dict):
        return {k: _relocate(v, here) for k, v in node.items()}
    if isinstance(node, list):
        return [_relocate(v, here) for v in node]
    if isinstance(node, str) and node.startswith(CONTAINER_DIR):
        return str(here / node.removeprefix(CONTAINER_DIR))
    return node


def local_config(source: Path) -> str:
    """The config at ``source`` with ``/etc/alertmanager/…`` paths moved into ``source``'s directory.

    Raises:
        UsageError: a receiver's secret file does not exist.
    """
    config = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    config = _relocate(config, source.parent.resolve())
    for receiver, kind, key, path in _secret_files(config):
        if not Path(path).is_file():
            raise UsageError(
                f"receiver {receiver!r} ({kind}) reads its {key} from {path}, which does not exist; put the"
                f" secret there, or change the receiver in stack/slo.yaml and run otelkit render-alerts again"
                " (docs/stack.md, 'Alerts that reach people')"
            )
    header = f"# Derived from {source} by otelkit's local stack: {CONTAINER_DIR} paths moved to {source.parent}.\n"
    return header + str(yaml.safe_dump(config, sort_keys=False))


def argv(binary: Path, config: Path, data: Path, host: str, port: int) -> list[str]:
    """The command line of a single Alertmanager on ``host:port`` (no gossip cluster)."""
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={host}:{port}",
        f"--web.external-url=http://{host}:{port}",
        "--cluster.listen-address=",
    ]
