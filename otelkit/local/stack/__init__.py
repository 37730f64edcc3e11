"""The observability stack as local processes (``otelkit stack``); see :mod:`otelkit.local.stack.localstack`."""

from __future__ import annotations

from otelkit.local.stack.localstack import BACKEND_NAMES, LocalStack, default_workdir, repo_root, where_table
from otelkit.local.stack.pidfile import PID_FILE, read_pid_file, stop_running
from otelkit.local.stack.ports import StackPorts

__all__ = [
    "BACKEND_NAMES",
    "PID_FILE",
    "LocalStack",
    "StackPorts",
    "default_workdir",
    "read_pid_file",
    "repo_root",
    "stop_running",
    "where_table",
]
