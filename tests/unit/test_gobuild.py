"""otelkit.local.gobuild and the build-* commands, against a fake ``go`` (and the ocb it "installs") on PATH."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from otelkit.cli import main
from otelkit.errors import ExternalToolError, UsageError
from otelkit.local import gobuild as _gobuild

# One Python script plays `go`; `go install …/builder@V` writes a second one that plays ocb, and both
# "build" small Python scripts that answer the checks the real binaries must pass. Every call is
# appended to $FAKE_GO_LOG as a JSON line; $FAKE_GO_FAIL makes one step fail.
FAKE_GO = textwrap.dedent(
    """\
    #!{python}
    import json, os, pathlib, re, stat, sys

    def log(entry):
        with open(os.environ["FAKE_GO_LOG"], "a") as fh:
            fh.write(json.dumps(entry) + "\\n")

    def write_exe(path, text):
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)

    FAIL = os.environ.get("FAKE_GO_FAIL", "")
    BINARY = "#!/bin/sh\\n" + ("echo broken >&2; exit 1\\n" if FAIL == "binary" else 'echo "ran $*"\\n')
    args = sys.argv[1:]
    log({{"argv": [pathlib.Path(sys.argv[0]).name, *args], "cwd": os.getcwd(), "gobin": os.environ.get("GOBIN")}})

    if pathlib.Path(sys.argv[0]).name.startswith(("builder", "ocb-")):
        import yaml
        config = yaml.safe_load(pathlib.Path(args[args.index("--config") + 1]).read_text())
        log({{"builder_config": config}})
        # What a relative replace resolves to, as Go resolves it: against the output path.
        for entry in config.get("replaces") or []:
            new = entry.split("=>")[1].strip()
            if new.startswith("."):
                stub = (pathlib.Path(config["dist"]["output_path"]) / new).resolve()
                log({{"stub": new, "files": sorted(p.name for p in stub.iterdir()) if stub.is_dir() else None}})
        out = pathlib.Path(config["dist"]["output_path"]) / config["dist"]["name"]
        write_exe(out, BINARY)
        if FAIL == "builder":
            print("compiling…", flush=True)
            print("error: module go.example/missing: 404 Not Found", file=sys.stderr)
            sys.exit(1)
    elif args[:2] == ["env", "GOVERSION"]:
        print(os.environ.get("FAKE_GO_VERSION", "go1.26.0"))
    elif args[0] == "install":
        version = args[1].rsplit("@", 1)[1]
        write_exe(pathlib.Path(os.environ["GOBIN"]) / "builder", open(sys.argv[0]).read())
    elif args[:3] == ["mod", "download", "-json"]:
        module, version = args[3].rsplit("@", 1)
        if FAIL == "download":
            print(json.dumps({{"Path": module, "Version": version, "Error": "module not found: 404"}}, indent="\\t"))
            sys.exit(1)
        root = pathlib.Path(os.environ["FAKE_GO_MODCACHE"]) / f"{{module}}@{{version}}"
        if not root.exists():
            if module == "github.com/grafana/loki/v3":
                (root / "cmd" / "loki").mkdir(parents=True)
                (root / "pkg").mkdir()
                (root / "go.mod").write_text(
                    "module github.com/grafana/loki/v3\\n\\n"
                    "require github.com/grafana/loki/pkg/push v0.0.0-20250101000000-abcdef123456\\n\\n"
                    "replace github.com/grafana/loki/pkg/push => ./pkg/push\\n"
                )
            elif module == "github.com/grafana/loki/pkg/push":
                root.mkdir(parents=True)
                (root / "go.mod").write_text("module github.com/grafana/loki/pkg/push\\n")
            else:
                (root / "cmd" / "jaeger").mkdir(parents=True)
                (root / "go.mod").write_text("module github.com/jaegertracing/jaeger\\n")
            # Like Go's module cache: read-only files and directories.
            for dirpath, _, files in os.walk(root, topdown=False):
                for name in files:
                    os.chmod(os.path.join(dirpath, name), 0o444)
                os.chmod(dirpath, 0o555)
        print(json.dumps({{"Path": module, "Version": version, "Dir": str(root)}}, indent="\\t"))
    elif args[:3] == ["mod", "edit", "-json"]:
        text = pathlib.Path("go.mod").read_text()
        require = [{{"Path": p, "Version": v}} for p, v in re.findall(r"^require (\\S+) (\\S+)$", text, re.M)]
        pairs = re.findall(r"^replace (\\S+) => (\\S+)$", text, re.M)
        replace = [{{"Old": {{"Path": o}}, "New": {{"Path": n}}}} for o, n in pairs]
        print(json.dumps({{"Module": {{"Path": "x"}}, "Require": require, "Replace": replace}}))
    elif args[0] == "build":
        push = pathlib.Path("pkg/push/go.mod")
        log({{"push_present": push.exists(), "writable": os.access(".", os.W_OK) and os.access("go.mod", os.W_OK)}})
        if FAIL == "build":
            print("./main.go:3:1: syntax error", file=sys.stderr)
            sys.exit(2)
        write_exe(args[args.index("-o") + 1], BINARY)
    else:
        print("fake go: unexpected arguments", args, file=sys.stderr)
        sys.exit(99)
    """
)

MANIFEST = textwrap.dedent(
    """\
    dist:
      name: otelcol-otelkit
      description: test collector
      output_path: ./build
    receivers:
      - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v0.161.0
    exporters:
      - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter v0.161.0
    providers:
      - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v1.67.0
    """
)


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `go` as the only `go` on PATH, an empty cache dir; returns the call log file."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(0o755)
    log = tmp_path / "go-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("FAKE_GO_MODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("OTELKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FAKE_GO_FAIL", raising=False)
    monkeypatch.setattr(_gobuild.build, "_GO_FALLBACKS", ())
    return log


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "builder-manifest.yaml"
    path.write_text(MANIFEST)
    return path


def calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def argvs(log: Path) -> list[list[str]]:
    return [c["argv"] for c in calls(log) if "argv" in c]


def quiet(line: str) -> None:
    pass


def test_collector_cache_key_is_sha256_prefix_of_manifest_bytes() -> None:
    assert _gobuild.collector_cache_key(b"abc") == hashlib.sha256(b"abc").hexdigest()[:16]
    assert len(_gobuild.collector_cache_key(b"")) == 16


def test_cache_root_prefers_otelkit_cache_dir_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OTELKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert _gobuild.cache_root() == tmp_path / "home" / ".cache" / "otelkit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _gobuild.cache_root() == tmp_path / "xdg" / "otelkit"
    monkeypatch.setenv("OTELKIT_CACHE_DIR", str(tmp_path / "explicit"))
    assert _gobuild.cache_root() == tmp_path / "explicit"


def test_cached_collector_path_is_none_until_built(fake_go: Path, manifest: Path, tmp_path: Path) -> None:
    assert _gobuild.cached_collector_path(manifest) is None
    built = _gobuild.ensure_collector(manifest, progress=quiet)
    key = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    assert built == tmp_path / "cache" / "otelcol" / key / "otelcol-otelkit"
    assert _gobuild.cached_collector_path(manifest) == built
    assert (built.parent / "builder-manifest.yaml").read_bytes() == manifest.read_bytes()


def test_ensure_collector_builds_once_then_reuses_cache(fake_go: Path, manifest: Path) -> None:
    first = _gobuild.ensure_collector(manifest, progress=quiet)
    n_calls = len(calls(fake_go))
    lines: list[str] = []
    assert _gobuild.ensure_collector(manifest, progress=lines.append) == first
    assert len(calls(fake_go)) == n_calls
    assert lines == []


def test_ensure_collector_installs_ocb_at_the_manifest_version(fake_go: Path, manifest: Path, tmp_path: Path) -> None:
    manifest.write_text(MANIFEST.replace("v0.161.0", "v0.150.2"))
    _gobuild.ensure_collector(manifest, progress=quiet)
    install = [c for c in calls(fake_go) if c.get("argv", [""])[:2] == ["go", "install"]]
    assert [c["argv"] for c in install] == [["go", "install", "go.opentelemetry.io/collector/cmd/builder@v0.150.2"]]
    assert (tmp_path / "cache" / "bin" / "ocb-v0.150.2").is_file()
    assert not any(p.name.startswith(".ocb-") for p in (tmp_path / "cache" / "bin").iterdir())


def test_ensure_collector_writes_the_stub_a_relative_replace_points_at(fake_go: Path, manifest: Path) -> None:
    module = "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/semconvtest"
    manifest.write_text(MANIFEST + f"replaces:\n  - {module} => ../stubs/semconvtest\n")
    _gobuild.ensure_collector(manifest, progress=quiet)
    assert [c for c in calls(fake_go) if "stub" in c] == [
        {"stub": "../stubs/semconvtest", "files": ["doc.go", "go.mod"]}
    ]


def test_ensure_collector_rewrites_output_path_into_the_cache(fake_go: Path, manifest: Path, tmp_path: Path) -> None:
    _gobuild.ensure_collector(manifest, progress=quiet)
    (config,) = [c["builder_config"] for c in calls(fake_go) if "builder_config" in c]
    output = Path(config["dist"]["output_path"])
    assert output.is_absolute()
    assert output.parent.parent == tmp_path / "cache" / "otelcol"
    assert output.parent.name.startswith(".build-")
    assert config["dist"]["name"] == "otelcol-otelkit"
    assert config["dist"]["description"] == "test collector"
    assert config["receivers"] == [{"gomod": "go.opentelemetry.io/collector/receiver/otlpreceiver v0.161.0"}]
    assert manifest.read_text() == MANIFEST  # the user's manifest is never touched


def test_ensure_collector_new_manifest_bytes_build_a_new_entry(fake_go: Path, manifest: Path) -> None:
    first = _gobuild.ensure_collector(manifest, progress=quiet)
    manifest.write_text("# same components, new bytes\n" + MANIFEST)
    assert _gobuild.cached_collector_path(manifest) is None
    second = _gobuild.ensure_collector(manifest, progress=quiet)
    assert second != first
    assert first.is_file()
    assert second.is_file()


def test_ensure_collector_failed_build_leaves_no_cached_binary(
    fake_go: Path, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "builder")
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_collector(manifest, progress=quiet)
    cache = tmp_path / "cache"
    (config,) = [c["builder_config"] for c in calls(fake_go) if "builder_config" in c]
    work = Path(config["dist"]["output_path"]).parent
    assert str(info.value) == (
        f"`{cache}/bin/ocb-v0.161.0 --config {work}/manifest.yaml` failed with exit code 1; last lines of output:\n"
        "compiling…\n"
        "error: module go.example/missing: 404 Not Found\n"
        f"(full log: {cache}/logs/otelcol-build.log)"
    )
    assert _gobuild.cached_collector_path(manifest) is None
    assert not work.exists()
    assert [p.name for p in (cache / "otelcol").iterdir() if not p.name.endswith(".lock")] == []


def test_ensure_collector_binary_failing_its_check_is_not_cached(
    fake_go: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "binary")
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_collector(manifest, progress=quiet)
    assert str(info.value).startswith("the built binary failed its check: `")
    assert str(info.value).endswith("/otelcol-otelkit components` exited 1; last lines:\nbroken")
    assert _gobuild.cached_collector_path(manifest) is None


def test_ensure_collector_removes_stale_build_dirs(fake_go: Path, manifest: Path, tmp_path: Path) -> None:
    key = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    stale = tmp_path / "cache" / "otelcol" / f".build-{key}-interrupted"
    (stale / "src").mkdir(parents=True)
    (stale / "src" / "otelcol-otelkit").write_text("half a binary")
    built = _gobuild.ensure_collector(manifest, progress=quiet)
    assert not stale.exists()
    assert built.read_text() != "half a binary"


def test_ensure_collector_reports_progress_before_building(fake_go: Path, manifest: Path) -> None:
    lines: list[str] = []
    _gobuild.ensure_collector(manifest, progress=lines.append)
    assert lines[0] == "installing ocb v0.161.0 (go install go.opentelemetry.io/collector/cmd/builder@v0.161.0)"
    assert lines[1] == (
        f"building collector otelcol-otelkit from {manifest} with ocb v0.161.0; the first build takes ~5 min on 2 cores"
    )
    assert lines[-1].startswith("collector ready: ")


def test_ensure_collector_without_go_says_how_to_install_it(fake_go: Path, manifest: Path, tmp_path: Path) -> None:
    (tmp_path / "fakebin" / "go").unlink()
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_collector(manifest, progress=quiet)
    assert str(info.value) == (
        "`go` not found on PATH; otelkit builds the collector, Jaeger and Loki from source:"
        " install Go >= 1.24 (https://go.dev/doc/install) and put its bin directory on PATH"
    )


def test_ensure_collector_with_old_go_says_which_version_is_needed(
    fake_go: Path, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.22.5")
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_collector(manifest, progress=quiet)
    assert str(info.value) == (
        f"Go 1.22.5 at {tmp_path}/fakebin/go is too old; otelkit's builds need Go >= 1.24:"
        " install a newer Go (https://go.dev/doc/install) and put it first on PATH"
    )


def test_cached_collector_path_rejects_manifest_without_versions(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("dist:\n  name: x\nreceivers:\n  - gomod: example.com/receiver\n")
    with pytest.raises(UsageError) as info:
        _gobuild.cached_collector_path(path)
    assert str(info.value) == (
        f"collector manifest {str(path)!r} names no component at a v0.x version, so the ocb version is unknown;"
        " expected 'gomod: MODULE v0.N.M' lines under receivers/processors/exporters/connectors/extensions"
    )


def test_cached_collector_path_rejects_manifest_without_dist(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("- just a list\n")
    with pytest.raises(UsageError) as info:
        _gobuild.cached_collector_path(path)
    assert str(info.value) == (
        f"collector manifest {str(path)!r} has no 'dist' section; expected an ocb manifest with 'dist' and"
        " 'receivers'/'processors'/'exporters'/… lists of 'gomod' lines"
    )


def test_cached_collector_path_rejects_missing_manifest(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(UsageError) as info:
        _gobuild.cached_collector_path(path)
    assert str(info.value) == (
        f"cannot read collector manifest {str(path)!r}: No such file or directory; pass --manifest with an ocb"
        " manifest such as collector/builder-manifest.yaml"
    )


def test_default_manifest_is_the_repos_collector_manifest() -> None:
    assert _gobuild.default_manifest() == Path(__file__).resolve().parents[2] / "collector" / "builder-manifest.yaml"


def test_ensure_backend_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UsageError) as info:
        _gobuild.ensure_backend("jeager", progress=quiet)
    assert str(info.value) == "unknown backend 'jeager'; expected one of: jaeger, loki (did you mean 'jaeger'?)"
    with pytest.raises(UsageError) as info:
        _gobuild.cached_backend_path("tempo")
    assert str(info.value) == "unknown backend 'tempo'; expected one of: jaeger, loki"


def test_ensure_backend_loki_adds_nested_push_module_and_caches_by_version(fake_go: Path, tmp_path: Path) -> None:
    assert _gobuild.cached_backend_path("loki") is None
    built = _gobuild.ensure_backend("loki", progress=quiet)
    assert built == tmp_path / "cache" / "loki" / "v3.7.8" / "loki"
    assert _gobuild.cached_backend_path("loki") == built
    assert ["go", "mod", "download", "-json", "github.com/grafana/loki/v3@v3.7.8"] in argvs(fake_go)
    assert [
        "go",
        "mod",
        "download",
        "-json",
        "github.com/grafana/loki/pkg/push@v0.0.0-20250101000000-abcdef123456",
    ] in argvs(fake_go)
    (build,) = [c for c in calls(fake_go) if c.get("argv", [""])[:2] == ["go", "build"]]
    assert build["argv"][2:5] == ["-ldflags", "-X github.com/grafana/loki/v3/pkg/util/build.Version=3.7.8", "-o"]
    assert Path(build["argv"][5]).name == "loki"
    assert build["argv"][6:] == ["./cmd/loki"]
    assert [c for c in calls(fake_go) if "push_present" in c] == [{"push_present": True, "writable": True}]
    assert not [p for p in (tmp_path / "cache" / "loki").iterdir() if p.name.startswith(".build-")]


def test_ensure_backend_jaeger_builds_once(fake_go: Path, tmp_path: Path) -> None:
    built = _gobuild.ensure_backend("jaeger", progress=quiet)
    assert built == tmp_path / "cache" / "jaeger" / "v1.76.0" / "jaeger"
    assert os.stat(built).st_mode & stat.S_IXUSR
    n_calls = len(calls(fake_go))
    assert _gobuild.ensure_backend("jaeger", progress=quiet) == built
    assert len(calls(fake_go)) == n_calls
    assert [c for c in calls(fake_go) if "push_present" in c] == [{"push_present": False, "writable": True}]


def test_ensure_backend_download_error_names_the_command(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "download")
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_backend("jaeger", progress=quiet)
    assert str(info.value) == (
        f"`{tmp_path}/fakebin/go mod download -json github.com/jaegertracing/jaeger@v1.76.0` failed with exit"
        " code 1; last lines of output:\n"
        "{\n"
        '\t"Path": "github.com/jaegertracing/jaeger",\n'
        '\t"Version": "v1.76.0",\n'
        '\t"Error": "module not found: 404"\n'
        "}\n"
        f"(full log: {tmp_path}/cache/logs/jaeger-build.log)"
    )
    assert _gobuild.cached_backend_path("jaeger") is None


def test_ensure_backend_build_failure_leaves_nothing_cached(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "build")
    with pytest.raises(ExternalToolError) as info:
        _gobuild.ensure_backend("loki", progress=quiet)
    assert "failed with exit code 2; last lines of output:\n./main.go:3:1: syntax error\n" in str(info.value)
    assert _gobuild.cached_backend_path("loki") is None
    assert [p.name for p in (tmp_path / "cache" / "loki").iterdir()] == [".v3.7.8.lock"]


def test_cli_build_collector_print_path_prints_only_the_path(
    fake_go: Path, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["build-collector", "--manifest", str(manifest), "--print-path"])
    out, err = capsys.readouterr()
    assert out == f"{_gobuild.cached_collector_path(manifest)}\n"
    assert "building collector otelcol-otelkit" in err


def test_cli_build_backend_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["build-backend", "lokki"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "error: unknown backend 'lokki'; expected one of: jaeger, loki (did you mean 'loki'?)\n"
    )
