"""Hostile text in every free-text option of render-k8s (and in its numbers: gateway replicas, sampling).

``otelkit render-k8s -o DIR`` writes several files of several YAML documents each, and its
ConfigMaps embed the rendered collector configs as strings. Its free-text options are read from the
Typer command, as in test_render_hostile.py (enumeration and strategies shared, in
tests/hostile_options.py), so an option added later is fuzzed too. For any string, render-k8s either
refuses it (exit 2, exactly one ``error:`` line on stderr, nothing created) or:

- writes exactly the files :func:`~otelkit.ops.kubernetes.manifests` names, inside the ``-o``
  directory and nowhere else (no temporary file left either);
- each file is a header of comment lines, then exactly the model's documents (same kinds, names,
  structure), with the string intact where the model puts it; no plain scalar that YAML 1.1 reads
  as a string is something else for YAML 1.2 (the Go parsers of the collector and of Kubernetes);
- each embedded collector config is ONE YAML document equal to its model, with no ``$`` left for the
  collector to expand except the ``${env:VAR}`` references otelkit writes, and the gateway takes from
  its Secret exactly the variables its config references (user text never adds one);
- the command shown in the header, read as a shell reads it, is the same spec and ``-o`` directory.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hostile_options import (
    SHAPES,
    WRITTEN,
    assert_no_expansion,
    assert_yaml12_reads_strings,
    click_command,
    free_text_options,
    hostile,
    load_all,
    one_document,
    plausible,
    run_hostile,
    strings,
    with_examples,
    written_target,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelkit.cli.render_k8s import build_k8s_spec
from otelkit.ops.collector import build_model
from otelkit.ops.collector.render import document as collector_document
from otelkit.ops.kubernetes import K8sSpec, collector_specs, manifests
from otelkit.ops.yamltext import unescape_dollars

COMMAND = "render-k8s"
# The numbers too (gateway replicas, tail sampling): hostile text there must be refused as cleanly.
_ENUMERATED = sorted(free_text_options(COMMAND, numbers=True))
OPTIONS = [option for _, option, _ in _ENUMERATED]
PATH_OPTIONS = {option for _, option, is_path in _ENUMERATED if is_path}
# The pod mounts each TLS file at the path the config names: an absolute path outside /etc/otelkit.
K8S_SHAPES = {**SHAPES, **{flag: (lambda s: "/etc/ssl/" + s) for flag in ("--ca-file", "--cert-file", "--key-file")}}
# Kubernetes options whose value, once accepted, is written into a manifest or an embedded config.
K8S_WRITTEN = {"--namespace", "--cluster-domain", "--collector-image", "--app-image"}
_ENV_OR_ESCAPE = re.compile(r"\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def test_free_text_options_of_render_k8s_are_enumerated() -> None:
    # Guards the enumeration itself: the Kubernetes options and the gateways' collector options.
    assert {
        "--output",
        "--namespace",
        "--cluster-domain",
        "--collector-image",
        "--app-image",
        "--traces",
        "--traces-endpoint",
        "--traces-auth-env",
        "--header-env",
        "--ca-file",
        "--cert-file",
        "--key-file",
        "--drop-route",
        "--gateway-replicas",
        "--gateway-max-replicas",
        "--tail-sampling",
    } <= set(OPTIONS)
    assert {"--output"} == PATH_OPTIONS


_SEGMENT = re.compile(r"[A-Za-z0-9_./:=,@%+-]+|'[^']*'|\\'|\$'((?:[^'\\]|\\.)*)'| ")


def shell_words(line: str) -> list[str]:
    """``line`` split as a POSIX shell (bash) splits it, for the quoting :func:`shell_quote` writes.

    Nothing is run: anything but plain words, ``'…'``, ``\\'`` and ``$'…'`` (ANSI-C) fails the test.
    ``$'\\xHH'`` is one byte, as in bash; the bytes are decoded as Python decodes its argv."""
    words: list[str] = []
    word = bytearray()
    pos = 0
    while pos < len(line):
        m = _SEGMENT.match(line, pos)
        assert m is not None, f"unquoted shell syntax at {line[pos:]!r} in the header: {line!r}"
        tok = m.group(0)
        if tok == " ":
            words.append(os.fsdecode(bytes(word)))
            word = bytearray()
        elif m.group(1) is not None:
            word += _ansi_c(m.group(1))
        elif tok.startswith("'"):
            word += os.fsencode(tok[1:-1])
        elif tok == "\\'":
            word += b"'"
        else:
            word += os.fsencode(tok)
        pos = m.end()
    words.append(os.fsdecode(bytes(word)))
    return words


def _ansi_c(body: str) -> bytes:
    # Only what reads the same in every locale: $'\u2028' is left as it is outside a UTF-8 one.
    simple = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", "'": b"'"}
    out = bytearray()
    pos = 0
    while pos < len(body):
        if body[pos] != "\\":
            out += os.fsencode(body[pos])
            pos += 1
        elif body[pos + 1] in simple:
            out += simple[body[pos + 1]]
            pos += 2
        else:
            hex_byte = re.fullmatch(r"x[0-9a-f]{2}", body[pos + 1 : pos + 4])
            assert hex_byte is not None, f"escape {body[pos : pos + 6]!r} depends on the locale: {body!r}"
            out.append(int(body[pos + 2 : pos + 4], 16))
            pos += 4
    return bytes(out)


def _referenced(config: Any) -> set[str]:
    """The variables the collector expands in ``config`` (its ``$$`` escapes aside)."""
    return {m[1] for raw in strings(config) for m in _ENV_OR_ESCAPE.finditer(raw) if m[1]}


def _read_all(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())}


def _spec(argv: list[str]) -> K8sSpec:
    params = dict(click_command(COMMAND).make_context(COMMAND, list(argv)).params)
    del params["output"]
    return build_k8s_spec(**params)


def _expected(argv: list[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The model: the documents of each file, and each role's collector config as data."""
    spec = _spec(argv)
    configs = {role: collector_document(build_model(s)[0]) for role, s in collector_specs(spec).items()}
    return manifests(spec), configs


def check_k8s(capsys: pytest.CaptureFixture[str], option: str, text: str) -> bool:
    """Render with ``option`` built from ``text`` and check the property; True when it was accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        is_path = option in PATH_OPTIONS
        base = [] if is_path else ["-o", str(workdir / "k8s")]
        run = run_hostile(capsys, COMMAND, option, text, workdir, is_path=is_path, base=base, shapes=K8S_SHAPES)
        if run is None:
            return False
        argv, value = run.argv, run.value
        out_dir = Path(value) if is_path else workdir / "k8s"
        assert run.out == ""
        assert run.err.startswith("wrote 4 files to ") and run.err.count("\n") == 1, run.err
        # Nothing outside the -o directory; in it, the model's files and nothing else.
        assert os.listdir(workdir) == [out_dir.name]
        expected, configs = _expected(argv)
        files = _read_all(out_dir)
        assert sorted(files) == sorted(expected), "missing, extra or temporary files in the -o directory"
        headers = set()
        parsed: list[dict[str, Any]] = []
        for name, docs in expected.items():
            body = files[name]
            header = body[: body.index("\n---\n") + 1]
            assert header and all(line.startswith("# ") for line in header.splitlines()), header
            headers.add(header)
            got = load_all(body)
            assert_yaml12_reads_strings(body)
            assert [(d["kind"], d["metadata"]["name"]) for d in got] == [
                (d["kind"], d["metadata"]["name"]) for d in docs
            ], name
            assert got == docs, name
            parsed += got
        assert len(headers) == 1
        # Each embedded collector config: one document, its model's, nothing left to expand but ours.
        raw_configs: dict[str, Any] = {}
        for doc in parsed:
            if doc["kind"] == "ConfigMap":
                role = doc["metadata"]["name"].removeprefix("otelkit-")
                raw_configs[role] = one_document(doc["data"]["config.yaml"])
                assert_yaml12_reads_strings(doc["data"]["config.yaml"])
                assert unescape_dollars(raw_configs[role]) == configs[role], role
                assert_no_expansion(raw_configs[role])
        assert sorted(raw_configs) == sorted(configs)
        # The gateway's environment from its Secret: exactly what its config references.
        gateway = next(d for d in parsed if d["kind"] == "Deployment" and d["metadata"]["name"] == "otelkit-gateway")
        env = gateway["spec"]["template"]["spec"]["containers"][0].get("env", [])
        assert {e["valueFrom"]["secretKeyRef"]["key"] for e in env} == _referenced(raw_configs["gateway"])
        # The string intact where it belongs.
        if option in WRITTEN:
            target = written_target(option, value)
            config = unescape_dollars(raw_configs["gateway"])
            assert any(target in s for s in strings(config)), f"{target!r} is not intact in the gateway's config"
        elif option in K8S_WRITTEN:
            everywhere = [*strings(parsed), *strings(raw_configs)]
            assert any(value in s for s in everywhere), f"{value!r} is not intact in the manifests"
        # The header's command, as a shell reads it, is this spec and this directory: same spec, same bytes.
        line = next(iter(headers)).splitlines()[1]
        words = shell_words(line.removeprefix("#   "))
        assert words[:2] == ["otelkit", COMMAND], line
        assert _spec(words[2:]) == _spec(argv), f"the header's command is another spec: {line!r}"
        params = click_command(COMMAND).make_context(COMMAND, words[2:]).params
        assert params["output"] == out_dir, f"the header's command writes elsewhere: {line!r}"
        return True


@pytest.mark.parametrize("option", OPTIONS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(hostile, plausible))
@with_examples
def test_render_k8s_hostile_option_keeps_documents(capsys: pytest.CaptureFixture[str], option: str, text: str) -> None:
    check_k8s(capsys, option, text)


@pytest.mark.parametrize(
    ("option", "text"),
    [
        # A directory name that ends the header comment and starts documents of its own.
        ("--output", "k8s\n---\nkind: Secret\n"),
        ("--output", "k8s $HOME 'q' \x85\xa0é\u2028"),
        # YAML 1.1 and 1.2 read these plain scalars as null, bool, numbers.
        ("--namespace", "null"),
        ("--namespace", "yes"),
        ("--namespace", "1e3"),
        ("--namespace", "0o17"),
        ("--cluster-domain", "0x1f.1e3"),
        ("--app-image", "null"),
        ("--collector-image", "0o17"),
        # User text that looks like a ${env:VAR} reference must not make the pod need a Secret key.
        ("--drop-route", "${env:EVIL}"),
        ("--traces-endpoint", "${env:EVIL}"),
        # The header shows the flags as given, even when a value holds " --".
        ("--drop-route", "a --role x"),
        ("--drop-route", "a\n---\nkind: Secret\n"),
        ("--ca-file", 'ca # x: \'"${file:/etc/shadow}".pem'),
        ("--header-env", "X-$a"),
    ],
)
def test_render_k8s_accepts_hostile_value_and_keeps_it_intact(
    capsys: pytest.CaptureFixture[str], option: str, text: str
) -> None:
    # Each of these must be ACCEPTED: a refusal would make the property above vacuous.
    assert check_k8s(capsys, option, text)
