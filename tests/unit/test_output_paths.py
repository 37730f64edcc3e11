"""``-o`` of the three render commands: stdout, symlinks, FIFOs, devices, directories, failed writes.

Whatever happens, the target is either the whole new text or what it was before, and no temporary
file is left next to it. Refusals are exit 2 with one ``error:`` line.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli

from otelkit.errors import OutputError
from otelkit.ops import files as _files

COMMANDS = ["render-collector", "render-builder", "render-alerts"]


def _one_error_line(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("command", COMMANDS)
def test_output_dash_writes_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, command, "-o", "-")
    assert (code, err) == (0, "")
    assert yaml.safe_load(out)
    assert list(tmp_path.iterdir()) == []


def test_output_dash_with_graph_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "render-collector", "-o", "-", "--graph")
    assert (code, out) == (2, "")
    assert err == "error: --graph and '-o -' both write to stdout; give -o a file or drop --graph\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_output_fifo_is_refused_without_opening_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, out, err = run_cli(capsys, command, "-o", str(fifo))  # opening it would block: no reader
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        f"error: cannot write '{fifo}': it is a FIFO (named pipe), not a regular file; give -o a file path"
        " (or '-o -' for stdout)\n"
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_directory_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    code, out, err = run_cli(capsys, command, "-o", str(tmp_path))
    assert (code, out) == (2, "")
    assert "it is a directory, not a regular file" in _one_error_line(err)


def test_output_dev_null_is_refused_by_its_type(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard: if the type check ever failed, no temporary file is created in /dev and nothing is
    # renamed over /dev/null (as root that would replace the device with a regular file).
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"write attempted: {args}")

    monkeypatch.setattr(_files.tempfile, "mkstemp", forbidden)
    monkeypatch.setattr(_files.os, "replace", forbidden)
    code, out, err = run_cli(capsys, "render-collector", "-o", "/dev/null")
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        "error: cannot write '/dev/null': it is a character device, not a regular file; give -o a file path"
        " (or '-o -' for stdout)\n"
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_symlink_writes_through_to_its_target_atomically(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = tmp_path / "configs" / "otelcol.yaml"
    real.parent.mkdir()
    real.write_text("previous\n")
    real.chmod(0o600)
    inode = real.stat().st_ino
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    code, out, err = run_cli(capsys, "render-collector", "-o", str(link))
    assert (code, out, err) == (0, "", f"wrote {link}\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert yaml.safe_load(real.read_text())["service"]["pipelines"]
    assert real.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["otelcol.yaml"]


def test_output_dangling_symlink_creates_its_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "new.yaml")
    code, _, _ = run_cli(capsys, "render-alerts", "-o", str(link))
    assert code == 0
    assert link.is_symlink() and yaml.safe_load((tmp_path / "new.yaml").read_text())["groups"]


def test_output_symlink_to_a_fifo_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    code, _, err = run_cli(capsys, "render-builder", "-o", str(link))
    assert code == 2
    assert _one_error_line(err) == (
        f"error: cannot write '{link}': it is a FIFO (named pipe) (the link points to '{fifo}'), not a regular"
        " file; give -o a file path (or '-o -' for stdout)\n"
    )


def test_output_symlink_planted_in_shared_directory_is_not_followed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = shared / "otelcol.yaml"
    link.symlink_to(victim)
    os.lchown(link, 65534, 65534)  # planted by another user (nobody)
    code, out, err = run_cli(capsys, "render-collector", "-o", str(link))
    assert (code, out) == (2, "")
    assert _one_error_line(err) == (
        f"error: cannot write '{link}': it is a symbolic link owned by uid 65534 in the shared directory "
        f"'{shared}', which otelkit does not follow; remove the link or choose another -o path\n"
    )
    assert victim.read_text() == "precious\n"


def test_output_path_with_nul_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = f"{tmp_path}/a\0b"
    code, _, err = run_cli(capsys, "render-alerts", "-o", path)
    assert code == 2
    assert _one_error_line(err) == (
        f"error: Invalid value for '-o' / '--output' ({path!r}): Value error, embedded null byte"
        " (see 'otelkit render-alerts --help')\n"
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="the path contains a NUL character"):
        _files.write_atomic(f"{tmp_path}/a\0b", "text")


def test_output_interrupted_write_leaves_target_and_no_temp_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "otelcol.yaml"
    target.write_text("previous\n")
    real_write = os.write

    def write_then_interrupt(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:100]))  # half the file is on disk when Ctrl-C arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(_files.os, "write", write_then_interrupt)
    code, _, _ = run_cli(capsys, "render-collector", "-o", str(target))
    assert code == 130
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["otelcol.yaml"]


_SUBPROCESS = """
import contextlib, io, os, resource, signal, sys
from otelkit.cli import main
mode, argv = sys.argv[1], sys.argv[2:]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main([argv[0], "-o", "-"])  # import every module and template the command needs, while we may

if mode == "disk-full":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
elif mode == "nobody":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
main(sys.argv[2:])
"""


def _run_limited(mode: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, mode, *argv], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_output_disk_full_leaves_target_and_no_temp_file(tmp_path: Path, command: str) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("previous\n")
    result = _run_limited("disk-full", command, "-o", str(target))
    assert result.returncode == 2, result.stderr
    assert (
        _one_error_line(result.stderr) == f"error: cannot write '{target}': File too large; choose a writable -o path\n"
    )
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]


def test_output_permission_denied_writes_nothing() -> None:
    # Root ignores permission bits, so the command runs as nobody; /tmp, not pytest's 0700 tmp_path.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        target = Path(tmp) / "otelcol.yaml"
        target.write_text("previous\n")
        result = _run_limited("nobody", "render-collector", "-o", str(target))
        assert result.returncode == 2, result.stderr
        assert _one_error_line(result.stderr) == (
            f"error: cannot write '{target}': Permission denied; choose a writable -o path\n"
        )
        assert target.read_text() == "previous\n"
        assert [p.name for p in Path(tmp).iterdir()] == ["otelcol.yaml"]
