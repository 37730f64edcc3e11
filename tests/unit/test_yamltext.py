"""The text rules of rendered files (otelkit/ops/yamltext.py), word for word."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from cli_runner import run_cli

from otelkit.errors import TemplateError
from otelkit.ops.yamltext import (
    check_document,
    check_stream,
    comment,
    dump_block,
    env_ref,
    env_vars,
    flow_list,
    literal_block,
    scalar,
    shell_join,
    shell_quote,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("otlp_grpc/jaeger", "otlp_grpc/jaeger"),
        ("0.0.0.0:4317", "0.0.0.0:4317"),
        ("a\nb", '"a\\nb"'),
        ("x\u2028y\x85z\ufeff", '"x\\Ly\\Nz\\uFEFF"'),
        ("\x1b[2J\x00\t", '"\\e[2J\\0\\t"'),
        ("0o17", '"0o17"'),  # YAML 1.2 (the collector) reads it as 15
        ("1e3", '"1e3"'),
        ("yes", "'yes'"),
        ("a: b", "'a: b'"),
        ("#x", "'#x'"),
        ("---", "'---'"),
    ],
)
def test_scalar_is_one_line_and_reads_back_as_the_string(value: str, text: str) -> None:
    assert scalar(value) == text
    assert yaml.safe_load(f"key: {text}\n") == {"key": value}


def test_scalar_escapes_dollars_in_collector_configs_except_env_refs() -> None:
    assert scalar("/a/${env:HOME}/$", confmap=True) == "/a/$${env:HOME}/$$"
    assert scalar(env_ref("TOKEN", "--traces-auth-env"), confmap=True) == "${env:TOKEN}"
    assert scalar("/a/${env:HOME}") == "/a/${env:HOME}"  # not a collector config


def test_dump_block_keeps_keys_and_escapes_values() -> None:
    block = dump_block({"headers": {"X-$a": "${env:X}", "Authorization": env_ref("T", "x")}}, 2, confmap=True)
    assert block == "\n  headers:\n    X-$a: $${env:X}\n    Authorization: ${env:T}"


def test_flow_list_quotes_flow_indicators() -> None:
    assert flow_list(["a", "b,c", "[d]"]) == "[a, 'b,c', '[d]']"


def test_literal_block_or_quoted_scalar() -> None:
    assert literal_block("a > 1\n/\nb", 4) == "|-\n    a > 1\n    /\n    b"
    assert literal_block("a\x1b", 4) == '"a\\e"'
    assert literal_block(" leading", 4) == "' leading'"


def test_comment_escapes_every_non_printable_character() -> None:
    assert comment("a\nb\r\x1b\u2028\x85\ufeff\t\udcff é") == "a\\nb\\r\\x1b\\u2028\\x85\\ufeff\\t\\udcff é"


def test_shell_join_keeps_a_command_on_one_line() -> None:
    assert shell_join(["otelkit", "--x", "/q\n---", "it's", "plain/ok"]) == (
        "otelkit --x $'/q\\n---' 'it'\\''s' plain/ok"
    )


def test_shell_quote_writes_non_printable_characters_as_their_utf8_bytes() -> None:
    # $'\x85' is the byte 0x85 in bash, not U+0085; $'\u2028' stays as it is outside a UTF-8 locale.
    assert shell_quote("a\x85b\u2028c") == "$'a\\xc2\\x85b\\xe2\\x80\\xa8c'"
    assert shell_quote("dir\udcff") == "$'dir\\xff'"  # an undecodable byte from the command line: that byte
    assert shell_quote("é ü") == "'é ü'"


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_shell_join_reads_back_in_bash_as_the_same_arguments(locale: str) -> None:
    # The command in a header, pasted into a shell, is the command: every argument comes back exactly.
    args = ["a\x85b", "x\u2028y", "q\n---\nr", "it's", "é", "dir\udcff", "t\tz\r", "\x1b[2J", "$HOME `x`", ""]
    script = f"printf '%s\\0' {shell_join(args)}"
    result = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "LC_ALL": locale}, capture_output=True, timeout=30, check=True
    )
    assert [os.fsdecode(word) for word in result.stdout.split(b"\0")[:-1]] == args


def test_env_vars_are_the_env_refs_of_the_model_not_text_that_looks_like_one() -> None:
    model = {"a": {"h": env_ref("TOKEN", "--x")}, "b": ["${env:EVIL}", env_ref("A_1", "--y")], "c": 3}
    assert env_vars(model) == ["A_1", "TOKEN"]


def test_check_stream_refuses_another_number_of_documents_and_a_different_structure() -> None:
    with pytest.raises(TemplateError, match="holds 3 YAML documents, not 2; this is a bug in otelkit"):
        check_stream("# x\n---\na: 1\n---\nb: 2\n---\nkind: Secret\n", [{"a": 1}, {"b": 2}])
    with pytest.raises(TemplateError, match="does not match its model"):
        check_stream("---\na: 1\n---\nb: 3\n", [{"a": 1}, {"b": 2}])
    check_stream("# header\n---\na: [1]\n---\nb: 2\n", [{"a": (1,)}, {"b": 2}])


def test_check_document_refuses_two_documents_and_a_different_structure() -> None:
    with pytest.raises(TemplateError, match="holds 2 YAML documents, not 1; this is a bug in otelkit"):
        check_document("a: 1\n---\nb: 2\n", {"a": 1})
    with pytest.raises(TemplateError, match="does not match its model"):
        check_document("a: 2\n", {"a": 1})
    check_document("a: $${x}\n", {"a": "${x}"}, confmap=True)


def test_render_refuses_text_that_is_not_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "render-collector", "--persistent-queue", "/q/a\udcffb")
    assert (code, out) == (2, "")
    assert err == "error: b'/q/a\\xffb' is not UTF-8 text; rendered files are UTF-8, so pass the value as UTF-8\n"
