"""ops: spec in, files out — the collector config, its builder manifest, alerting rules.

Everything here is pure computation on data the CLI hands in (a :class:`~otelkit.ops.collector.CollectorSpec`,
an SLO spec) and text or files handed back: the collector model, backends and versions
(:mod:`otelkit.ops.collector`), SLO rules (:mod:`otelkit.ops.slo`), the one Jinja environment
(:mod:`otelkit.ops.templates`) and all-or-nothing file writes (:mod:`otelkit.ops.files`). It may
import ``otelkit.errors``, the ``otelkit`` package itself and other ``otelkit.ops`` modules, plus
Jinja2 and PyYAML; never OpenTelemetry (no SDK, no API), never ``otelkit._runtime``, ``otelkit.local``
or ``otelkit.cli``. It raises :class:`~otelkit.errors.OtelkitError` subclasses and never prints
(tests/unit/test_layering.py enforces the imports).
"""
