"""otelkit.local.gobuild.stubs: the stand-in modules a manifest's relative ``replaces:`` point at."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otelkit.errors import UsageError
from otelkit.local.gobuild.cache import load_manifest
from otelkit.local.gobuild.stubs import write_stubs

SEMCONVTEST = "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/semconvtest"


def _manifest(tmp_path: Path, replaces: list[str]) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "dist": {"name": "otelcol-test", "output_path": "./build"},
                "receivers": [{"gomod": "go.opentelemetry.io/collector/receiver/otlpreceiver v0.161.0"}],
                "replaces": replaces,
            }
        )
    )
    return path


def test_write_stubs_writes_semconvtest_where_the_replace_points(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    m = load_manifest(_manifest(tmp_path, [f"{SEMCONVTEST} => ../stubs/semconvtest", "a/b => a/b v1.0.0"]))
    write_stubs(m, work / "src", work)
    stub = work / "stubs" / "semconvtest"
    assert (stub / "go.mod").read_text() == f"module {SEMCONVTEST}\n\ngo 1.25.0\n"
    assert (stub / "doc.go").read_text().endswith("package semconvtest\n")
    assert sorted(p.name for p in stub.iterdir()) == ["doc.go", "go.mod"]


def test_write_stubs_refuses_a_local_module_it_cannot_provide(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    path = _manifest(tmp_path, ["example.com/mine => ../mine"])
    with pytest.raises(UsageError) as err:
        write_stubs(load_manifest(path), work / "src", work)
    assert str(err.value) == (
        f"collector manifest {str(path)!r} replaces 'example.com/mine' with '../mine', which otelkit cannot "
        "provide; replace it with a module version (MODULE => MODULE vX.Y.Z) instead"
    )


def test_write_stubs_stays_inside_the_build_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    path = _manifest(tmp_path, [f"{SEMCONVTEST} => ../../../elsewhere"])
    with pytest.raises(UsageError) as err:
        write_stubs(load_manifest(path), work / "src", work)
    assert str(err.value) == (
        f"collector manifest {str(path)!r} replaces {SEMCONVTEST!r} with '../../../elsewhere', outside the build "
        "directory; use a path next to dist.output_path such as ../stubs/semconvtest"
    )
    assert not (tmp_path / "elsewhere").exists()
