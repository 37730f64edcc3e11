"""The benchmarked service: one trivial JSON endpoint, the same file for every variant.

``uvicorn bench.app:app`` serves ``GET /items/{item_id}``, the endpoint FACTS' cost figures were
measured on. The variant and workload are chosen by the environment ``bench.run`` starts it with:

- ``BENCH_LOG_PER_REQUEST=1``: the endpoint logs one INFO record with an ``extra=`` field per
  request, as most endpoints of a real service log something (the default-deployment workload;
  uvicorn's access log is on there too). The app configures no logging of its own, as an app
  started with uvicorn's defaults: bare FastAPI creates the record and, with no handler on the
  root logger, writes it nowhere; under otelkit it becomes an OTel log record and a console line.
  Unset: the endpoint logs nothing (the no-log workload, with ``--no-access-log``).
- ``BENCH_GC_TUNING=1``: the app applies otelkit's own GC tuning (``gc.freeze()`` and the raised
  generation-0 threshold, :func:`otelkit._runtime.gctune.tune_gc`, the function otelkit's launcher calls) and
  nothing else of otelkit: the ``bare-gc`` variant, the honest baseline for what the telemetry
  itself costs.
- ``BENCH_PROMETHEUS=1``: prometheus-fastapi-instrumentator on the app (and ``/metrics``). This is
  the only place in the repository that imports prometheus_client, and only through that package:
  otelkit itself never does (the app must not open a metrics port of its own).

OpenTelemetry variants need nothing here: the launcher instruments the app from outside.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

app = FastAPI()

if os.environ.get("BENCH_PROMETHEUS") == "1":
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)

if os.environ.get("BENCH_GC_TUNING") == "1":
    from otelkit._runtime.gctune import tune_gc

    tune_gc()

if os.environ.get("BENCH_LOG_PER_REQUEST") == "1":
    _log = logging.getLogger("bench.app")
    # The root logger's default WARNING level is not in the way: a logger's own level decides,
    # then the record reaches every handler on root (the OTel one under the launcher).
    _log.setLevel(logging.INFO)

    @app.get("/items/{item_id}")
    async def read_item_logged(item_id: int, q: str | None = None) -> dict[str, object]:
        _log.info("read item", extra={"item_id": item_id})
        return {"item_id": item_id, "q": q}

else:

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
        return {"item_id": item_id, "q": q}
