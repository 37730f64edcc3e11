"""Scale-out with real processes: the example app and its Celery worker → 2 agents → 3 gateways → sinks.

The app exports to agent A and the worker to agent B, so an order's trace reaches the gateways
through two agents: they must pick the same gateway for it on their own. Each gateway exports
traces and logs to its own :class:`~otelkit.testing.OTLPReceiver` ("sink"), so a test knows which
gateway got which span, and serves span metrics on its Prometheus exporter, which a real
Prometheus scrapes. Every request carries its own ``traceparent``: the tests know exactly which
trace ids were sent and compare sets.

Every config is rendered by otelkit (``--role agent`` / ``--role gateway``); the tests restart the
gateways (and agents) with the config each one needs, on the same ports, while the app and the
worker keep running.

The DNS test needs one name listing several gateways on one port, as a headless Service does:
the gateways bind 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all loopback), and the agents run in a
private mount namespace (``unshare --mount``) where a test-owned file is bind-mounted over
``/etc/hosts``: the machine's own resolver files are never touched. Removing a line from that
file is what removing a dead pod from the Service's DNS answer looks like to the agents.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from launch import REPO, app_env, start_app, wait_until

from otelkit.local import procs as _procs
from otelkit.ops.collector import CollectorSpec, render_collector
from otelkit.ops.collector.spec import Role
from otelkit.testing import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
FAST_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
}
GATEWAYS = 3
DNS_NAME = "gateways.otelkit.test"
DNS_IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")

ITEMS = "GET /items/{item_id}"
ORDER = "POST /orders/{order_id}"
PUBLISH = "apply_async/example.tasks.process_order"
RUN = "run/example.tasks.process_order"
BOOM = "GET /boom"
# Every span each kind of request makes (the example app, otelkit's instrumentation, Celery's).
SHAPES = {"items": {ITEMS}, "order": {ORDER, PUBLISH, RUN}, "declined": {ORDER, PUBLISH, RUN}, "boom": {BOOM}}


# --- processes --------------------------------------------------------------------------------


_TAKEN: set[int] = set()


def _free_port_on(hosts: tuple[str, ...]) -> int:
    """A port free on every address in ``hosts`` (gateways of the DNS layout share one port number),
    and not handed out before in this module (the OS may offer a just-closed port again)."""
    for _ in range(50):
        port = _procs.free_port(hosts[0])
        if port in _TAKEN:
            continue
        _TAKEN.add(port)
        try:
            with contextlib.ExitStack() as stack:
                for host in hosts:
                    s = stack.enter_context(socket.socket())
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError(f"no port free on all of {hosts}")


@dataclass
class Ports:
    grpc: int
    http: int
    telemetry: int
    health: int
    prometheus: int

    @classmethod
    def free(cls, hosts: tuple[str, ...] = ("127.0.0.1",)) -> Ports:
        return cls(*(_free_port_on(hosts) for _ in range(5)))


@dataclass
class Tier:
    procs: _procs.ProcessGroup
    workdir: Path
    otelcol: Path
    sinks: list[OTLPReceiver]
    static: list[Ports]
    dns: Ports
    agent_ports: dict[str, Ports]
    hosts_file: Path
    gateways: list[_procs.ManagedProcess | None] = field(default_factory=list)
    agents: dict[str, _procs.ManagedProcess] = field(default_factory=dict)
    gateway_hosts: list[str] = field(default_factory=list)
    gateway_health: list[str] = field(default_factory=list)
    _n: int = 0

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{what}-{self._n}"

    def _config(self, name: str, spec: CollectorSpec) -> Path:
        path = self.workdir / f"{name}.yaml"
        path.write_text(render_collector(spec), encoding="utf-8")
        return path

    # gateways
    def gateway_spec(self, i: int, layout: str, **options: Any) -> CollectorSpec:
        host, p = (DNS_IPS[i], self.dns) if layout == "dns" else ("127.0.0.1", self.static[i])
        return CollectorSpec(
            role=Role.GATEWAY,
            bind=host,
            otlp_grpc_port=p.grpc,
            otlp_http_port=p.http,
            telemetry_port=p.telemetry,
            health_port=p.health,
            prometheus_endpoint=f"{host}:{p.prometheus}",
            traces=("otlp",),
            traces_endpoint=(self.sinks[i].endpoint,),
            logs=("otlp",),
            logs_endpoint=(self.sinks[i].endpoint,),
            metrics=("prometheus",),
            **options,
        )

    def start_gateways(self, layout: str = "static", **options: Any) -> None:
        """(Re)start the three gateways with ``options`` and empty sinks."""
        self.stop_gateways()
        for sink in self.sinks:
            sink.clear()
        self.gateways, self.gateway_hosts, self.gateway_health = [], [], []
        for i in range(GATEWAYS):
            spec = self.gateway_spec(i, layout, **options)
            name = self._name(f"gateway{i}")
            proc = self.procs.start(name, [self.otelcol, "--config", self._config(name, spec)])
            self.gateways.append(proc)
            self.gateway_hosts.append(f"{spec.bind}:{spec.otlp_grpc_port}")
            self.gateway_health.append(f"http://{spec.bind}:{spec.health_port}/")
        for proc, url in zip(self.gateways, self.gateway_health, strict=True):
            assert proc is not None
            proc.wait_http_ready(url, timeout=60)

    def stop_gateways(self) -> None:
        for proc in self.gateways:
            if proc is not None:
                proc.stop()
        self.gateways = []

    # agents
    def agent_spec(self, which: str, resolver: str) -> CollectorSpec:
        p = self.agent_ports[which]
        gateways: dict[str, Any] = (
            {"gateway_dns": f"{DNS_NAME}:{self.dns.grpc}"}
            if resolver == "dns"
            else {"gateway": tuple(f"127.0.0.1:{ports.grpc}" for ports in self.static)}
        )
        return CollectorSpec(
            role=Role.AGENT,
            bind="127.0.0.1",
            otlp_grpc_port=p.grpc,
            otlp_http_port=p.http,
            telemetry_port=p.telemetry,
            health_port=p.health,
            persistent_queue=str(self.workdir / f"queue-{which}"),
            **gateways,
        )

    def start_agent(self, which: str, resolver: str = "static") -> _procs.ManagedProcess:
        old = self.agents.pop(which, None)
        if old is not None:
            old.stop()
        spec = self.agent_spec(which, resolver)
        name = self._name(f"agent{which}")
        argv: list[str | Path] = [self.otelcol, "--config", self._config(name, spec)]
        if resolver == "dns":
            # A private mount namespace whose /etc/hosts is our file (see the module docstring).
            script = 'mount --bind "$0" /etc/hosts && exec "$@"'
            # As root a mount namespace is enough; otherwise it needs a user namespace to own it.
            userns = [] if os.geteuid() == 0 else ["--map-root-user"]
            unshare = ["unshare", "--mount", *userns, "--propagation", "private"]
            argv = [*unshare, "sh", "-c", script, self.hosts_file, *argv]
        proc = self.procs.start(name, argv)
        proc.wait_http_ready(f"http://127.0.0.1:{spec.health_port}/", timeout=60)
        self.agents[which] = proc
        return proc

    def start_agents(self, resolver: str = "static") -> None:
        for which in ("A", "B"):
            self.start_agent(which, resolver)

    def agent_metric(self, which: str, name: str) -> float:
        _, body = _procs.http_get(f"http://127.0.0.1:{self.agent_ports[which].telemetry}/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            metric = re.split(r"[{ ]", line, maxsplit=1)[0]
            if metric in (name, name + "_total"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@dataclass
class Sent:
    trace_id: str
    parent: str
    """The span id in our traceparent: the server span's parent, which no collector ever sees."""
    kind: str
    at: float


@dataclass
class App:
    base: str
    worker: _procs.ManagedProcess

    def send(self, kind: str, n: int) -> list[Sent]:
        sent = []
        for i in range(n):
            trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
            headers = {"traceparent": f"00-{trace_id}-{parent}-01"}
            method, path, status = {
                "items": ("GET", f"/items/{1 + i % 3}", 200),
                "order": ("POST", f"/orders/{1 + i % 3}", 202),
                "declined": ("POST", f"/orders/{1000 + i}", 202),
                "boom": ("GET", "/boom", 500),
            }[kind]
            request = urllib.request.Request(self.base + path, method=method, headers=headers)
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert code == status, (kind, path, code)
            sent.append(Sent(trace_id, parent, kind, time.monotonic()))
        return sent


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory, otelcol_bin: Path, redis_server: str) -> Iterator[tuple[Tier, App]]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) not found: the DNS test runs agents in a private mount namespace")
    workdir = tmp_path_factory.mktemp("scaleout")
    hosts = workdir / "hosts"
    hosts.write_text(_hosts_text(DNS_IPS), encoding="utf-8")
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(OTLPReceiver()) for _ in range(GATEWAYS)]
        procs = stack.enter_context(_procs.ProcessGroup(workdir / "procs"))
        t = Tier(
            procs=procs,
            workdir=workdir,
            otelcol=otelcol_bin,
            sinks=sinks,
            static=[Ports.free() for _ in range(GATEWAYS)],
            dns=Ports.free(DNS_IPS),
            agent_ports={"A": Ports.free(), "B": Ports.free()},
            hosts_file=hosts,
        )
        t.start_gateways()
        t.start_agents()
        extra = {**FAST_EXPORT, "OTELKIT_EXAMPLE_BROKER": redis_server}
        worker_env = app_env(f"http://127.0.0.1:{t.agent_ports['B'].http}", **extra)
        worker_env["OTEL_SERVICE_NAME"] = "example-worker"
        worker = procs.start(
            "worker",
            [
                BIN / "opentelemetry-instrument",
                BIN / "celery",
                "-A",
                "example.tasks",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "1",
                "--without-mingle",
                "--without-gossip",
            ],
            env=worker_env,
            cwd=REPO,
        )
        wait_until(lambda: " ready." in worker.log_text() or worker.check_running(), timeout=60, what="celery ready")
        _, base = start_app(procs, app_env(f"http://127.0.0.1:{t.agent_ports['A'].http}", **extra))
        yield t, App(base, worker)


def _hosts_text(ips: tuple[str, ...]) -> str:
    return "127.0.0.1 localhost\n" + "".join(f"{ip} {DNS_NAME}\n" for ip in ips)


# --- reading the sinks ------------------------------------------------------------------------


def _spans_by_trace(sinks: list[OTLPReceiver], ids: set[str]) -> dict[str, list[tuple[int, ReceivedSpan]]]:
    out: dict[str, list[tuple[int, ReceivedSpan]]] = {}
    for i, sink in enumerate(sinks):
        for span in sink.spans:
            if span.trace_id in ids:
                out.setdefault(span.trace_id, []).append((i, span))
    return out


def _complete(sent: list[Sent], sinks: list[OTLPReceiver]) -> Callable[[], bool]:
    ids = {s.trace_id for s in sent}

    def check() -> bool:
        got = _spans_by_trace(sinks, ids)
        return all(SHAPES[s.kind] <= {sp.name for _, sp in got.get(s.trace_id, [])} for s in sent)

    return check


def _whole(spans: list[ReceivedSpan], root_parent: str) -> bool:
    """No span's parent is missing: every parent is in the trace, or is the caller's (our traceparent)."""
    ids = {s.span_id for s in spans}
    return all(s.parent_span_id in ids or s.parent_span_id == root_parent for s in spans)


# --- the tests --------------------------------------------------------------------------------


def test_every_span_of_a_trace_reaches_exactly_one_gateway(tier: tuple[Tier, App]) -> None:
    t, app = tier
    t.start_gateways()
    t.start_agents()
    sent = app.send("items", 30) + app.send("order", 9) + app.send("declined", 2) + app.send("boom", 2)
    wait_until(_complete(sent, t.sinks), timeout=90, what="every span of every trace at a sink")
    got = _spans_by_trace(t.sinks, {s.trace_id for s in sent})

    gateway_of: dict[str, int] = {}
    for s in sent:
        spans = got[s.trace_id]
        names = sorted(sp.name for _, sp in spans)
        assert names == sorted(SHAPES[s.kind]), (s.kind, names)  # none lost, none twice
        assert len({i for i, _ in spans}) == 1, (s.kind, [(i, sp.name) for i, sp in spans])
        gateway_of[s.trace_id] = spans[0][0]
    # The app's spans went through agent A and the worker's through agent B: same gateway.
    orders = [s for s in sent if s.kind in ("order", "declined")]
    for s in orders:
        services = {sp.service_name for _, sp in got[s.trace_id]}
        assert services == {"example", "example-worker"}
    load = [sum(1 for g in gateway_of.values() if g == i) for i in range(GATEWAYS)]
    assert all(n > 0 for n in load), load
    # Log records go by trace id too: every record of a trace, from the app (agent A) and from the
    # worker (agent B), reaches one gateway, and none is lost. At collector 0.161 that gateway is
    # not in general the one of the trace's spans: load_balancing hashes a log record's trace id
    # as hex text and a span's as raw bytes (see docs/scale-out.md).
    expected = {"fetched item": 30, "order enqueued": 11, "order processed": 9, "order declined": 2}

    def records_of_the_traces() -> list[tuple[int, Any]]:
        return [(i, r) for i, sink in enumerate(t.sinks) for r in sink.logs if r.trace_id in gateway_of]

    def all_arrived() -> bool:
        bodies = [r.body for _, r in records_of_the_traces()]
        return all(bodies.count(body) >= n for body, n in expected.items())

    wait_until(all_arrived, timeout=30, what=f"the log records {expected}")
    records = records_of_the_traces()
    sinks_of: dict[str, set[int]] = {}
    for i, r in records:
        sinks_of.setdefault(r.trace_id, set()).add(i)
    assert all(len(v) == 1 for v in sinks_of.values()), {k: v for k, v in sinks_of.items() if len(v) > 1}
    bodies = [r.body for _, r in records]
    assert {body: bodies.count(body) for body in expected} == expected  # none lost, none twice
    same = sum(1 for k, v in sinks_of.items() if v == {gateway_of[k]})
    print(f"\nlog records of {len(sinks_of)} traces: {same} at their spans' gateway")


def test_tail_sampling_at_one_percent_keeps_every_error_trace_whole(tier: tuple[Tier, App]) -> None:
    t, app = tier
    decision_wait = 8
    t.start_gateways(span_metrics=True, tail_sampling=1, decision_wait=decision_wait)
    t.start_agents()
    prom_targets = [f"127.0.0.1:{p.prometheus}" for p in t.static]
    prom = _procs.start_prometheus(t.procs, prom_targets, name=f"prometheus-{t._n}")

    # The worker is paused while the orders come in: their tasks run seconds after the requests,
    # as they do behind a backed-up queue, and their spans reach the gateways that much later.
    app.worker.signal(signal.SIGSTOP)
    try:
        sent = app.send("items", 30) + app.send("order", 20) + app.send("declined", 4) + app.send("boom", 2)
        time.sleep(3)
    finally:
        app.worker.signal(signal.SIGCONT)
    errors = [s for s in sent if s.kind in ("declined", "boom")]
    wait_until(_complete(errors, t.sinks), timeout=decision_wait + 60, what="every error trace at a sink")
    time.sleep(decision_wait + 2)  # every other trace has been decided by now

    got = _spans_by_trace(t.sinks, {s.trace_id for s in sent})
    for s in errors:
        spans = got[s.trace_id]
        assert sorted(sp.name for _, sp in spans) == sorted(SHAPES[s.kind]), s.kind
        assert len({i for i, _ in spans}) == 1
        assert _whole([sp for _, sp in spans], root_parent=s.parent)
    for s in (s for s in errors if s.kind == "declined"):
        by_name = {sp.name: sp for _, sp in got[s.trace_id]}
        assert by_name[RUN].status_code == "ERROR"
        assert by_name[ORDER].status_code != "ERROR"  # the request itself succeeded (202)
        # The task ran seconds after its request, and was still in the same decision.
        assert by_name[RUN].start_time_ns - by_name[ORDER].end_time_ns > 2_000_000_000
    kept_ok = [s for s in sent if s.kind in ("items", "order") and s.trace_id in got]
    # 1 % of 50: rarely one. Every order trace spans > 3 s (the paused worker); a trace-envelope
    # "slow" policy would have kept all 20.
    assert len(kept_ok) <= 3, [(s.kind, s.trace_id) for s in kept_ok]

    # Span metrics count every request, sampled or not, summed over the three gateways.
    requests = len(sent)
    query = 'sum(traces_span_metrics_calls_total{service_name="example",span_kind="SPAN_KIND_SERVER"})'

    def counted() -> float:
        result = prom.query(query)
        return float(result[0]["value"][1]) if result else 0.0

    wait_until(lambda: counted() >= requests, timeout=60, what=f"Prometheus to count {requests} requests")
    time.sleep(3)
    assert counted() == requests
    per_gateway = prom.query(
        'sum by (instance) (traces_span_metrics_calls_total{service_name="example",span_kind="SPAN_KIND_SERVER"})'
    )
    assert len(per_gateway) == GATEWAYS
    prom.process.stop()


def test_gateway_killed_mid_traffic_its_share_moves_to_the_others(tier: tuple[Tier, App]) -> None:
    t, app = tier
    t.hosts_file.write_text(_hosts_text(DNS_IPS), encoding="utf-8")
    t.start_gateways(layout="dns")
    t.start_agents(resolver="dns")
    warm = app.send("items", 30)
    wait_until(_complete(warm, t.sinks), timeout=60, what="the warm-up traces")
    assert all(t.sinks[i].spans for i in range(GATEWAYS)), "the DNS resolver did not spread the load"

    sent: list[Sent] = []
    failures: list[BaseException] = []
    killed_at: list[float] = []
    stop = threading.Event()

    def traffic() -> None:
        try:
            while not stop.is_set():
                sent.extend(app.send("items", 1))
                time.sleep(0.05)
        except BaseException as exc:  # reported below: the app must keep answering
            failures.append(exc)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        time.sleep(4)
        dead = t.gateways[2]
        assert dead is not None
        dead.signal(signal.SIGKILL)
        killed_at.append(time.monotonic())
        # Its pod leaves the headless Service: the name no longer lists it.
        t.hosts_file.write_text(_hosts_text(DNS_IPS[:2]), encoding="utf-8")
        time.sleep(12)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failures, failures
    kill = killed_at[0]
    after = [s for s in sent if s.at > kill]
    before = [s for s in sent if s.at <= kill]
    wait_until(_complete(after, t.sinks), timeout=120, what="every trace sent after the kill")

    got = _spans_by_trace(t.sinks, {s.trace_id for s in sent})
    assert {i for s in after for i, _ in got[s.trace_id]} == {0, 1}
    lost = [s for s in sent if s.trace_id not in got]
    # Only what the killed gateway had accepted and not yet exported is lost: traces sent before.
    assert not [s for s in lost if s.at > kill]
    duplicates = sum(len(got[s.trace_id]) - 1 for s in sent if s.trace_id in got)
    print(
        f"\ngateway kill: {len(before)} traces before, {len(after)} after; lost {len(lost)} (all sent before the"
        f" kill, {[round(kill - s.at, 2) for s in lost]} s before it); {duplicates} duplicate spans (retried batches)"
    )
    assert len(lost) <= len(before)


def test_agent_persistent_queue_survives_sigkill_while_gateways_are_down(tier: tuple[Tier, App]) -> None:
    t, app = tier
    t.start_gateways()
    t.start_agents()
    warm = app.send("items", 3)
    wait_until(_complete(warm, t.sinks), timeout=60, what="the warm-up traces")

    t.stop_gateways()
    accepted = t.agent_metric("A", "otelcol_receiver_accepted_spans")
    sent = app.send("items", 20)
    # Accepted by the receiver means enqueued: the persistent queue writes before the receiver answers.
    wait_until(
        lambda: t.agent_metric("A", "otelcol_receiver_accepted_spans") >= accepted + 20,
        timeout=30,
        what="agent A to accept the 20 spans",
    )
    wait_until(
        lambda: "Exporting failed" in t.agents["A"].log_text(),
        timeout=30,
        what="agent A to fail to send to the stopped gateways",
    )
    agent = t.agents["A"]
    agent.signal(signal.SIGKILL)
    assert agent.popen is not None
    agent.popen.wait(timeout=10)
    t.start_agent("A")  # gateways still down
    time.sleep(2)
    for sink in t.sinks:
        assert not {sp.trace_id for sp in sink.spans} & {s.trace_id for s in sent}

    # Gateways back, without clearing what the sinks hold.
    for i in range(GATEWAYS):
        spec = t.gateway_spec(i, "static")
        name = t._name(f"gateway{i}")
        t.gateways.append(t.procs.start(name, [t.otelcol, "--config", t._config(name, spec)]))
    for proc, url in zip(t.gateways, t.gateway_health, strict=True):
        assert proc is not None
        proc.wait_http_ready(url, timeout=60)
    wait_until(_complete(sent, t.sinks), timeout=90, what="the 20 traces queued on disk before the SIGKILL")
