"""How text becomes YAML in rendered files: scalars, comments, shell commands, ``${env:VAR}``.

Every rendered file (collector config, ocb manifest, Prometheus rules) goes through these rules,
applied by the one Jinja environment (:mod:`otelkit.ops.templates`), so user text can only ever land
in a file as a quoted scalar, or in a comment as one escaped line:

- **Scalars.** A string is written plain only when both YAML 1.1 (PyYAML) and YAML 1.2 (the
  collector's Go parser) read it back as the same string; otherwise it is quoted, and in double
  quotes with escapes when it holds a line break, a control or format character or anything a
  parser may read differently (``\\u2028``, ``0o17``, ``1e3``). Strings never span lines, so a
  newline can neither end a value nor start a ``---`` document.
- **``$`` in collector configs.** The collector expands ``${env:VAR}``/``${file:…}`` in every
  string value at start-up and turns ``$$`` into ``$``. In a collector config every ``$`` of a
  value is therefore written ``$$``, except in an :class:`EnvRef`: the reference otelkit itself
  writes (``--traces-auth-env`` and friends). Mapping keys are not expanded by the collector and
  are written as they are. (confmap's ``Resolver.Resolve`` → ``escapeDollarSigns``, read at
  confmap v1.36.0 = collector 0.130.0 and v1.67.0 = 0.161.0; ``print-config`` shows the result.)
- **Comments.** :func:`comment` escapes every character that is not printable (line breaks,
  ``\\x85``, ``\\u2028``, ESC, NUL…) as ``\\n``/``\\xHH``/``\\uHHHH``, so a comment stays one line.
- **Commands shown in headers.** :func:`shell_join` quotes each argument for a POSIX shell, with
  ANSI-C quoting (``$'…\\n…'``, other non-printable characters as their UTF-8 bytes ``\\xHH``) for
  arguments holding non-printable characters: pasted into a shell, it is the same command.

Text that is not UTF-8 (undecodable command-line bytes arrive as lone surrogates) cannot be
written faithfully and is refused with a :class:`~otelkit.errors.UsageError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from otelkit.errors import TemplateError, UsageError

__all__ = [
    "EnvRef",
    "UserText",
    "YAMLText",
    "check_document",
    "check_stream",
    "comment",
    "dump_block",
    "dump_stream",
    "env_ref",
    "env_vars",
    "escape_dollars",
    "scalar",
    "shell_join",
    "shell_quote",
    "unescape_dollars",
]

_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Plain scalars YAML 1.2 / Go's yaml.v3 resolve to something other than a string. PyYAML (YAML 1.1)
# already quotes its own ambiguous ones (yes, 0x1F, 1_000, 1.5, ~, 2024-01-01…).
_GO_NULL_BOOL = frozenset({"~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"})
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)")
_GO_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)

# Strings that are plain scalars in any context once _resolves_to_str() agrees (no indicator first,
# no ": " or " #", no trailing ":", nothing to escape): written as they are without running the emitter.
_PLAIN_FAST = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*(?<!:)")
_RESOLVER = yaml.resolver.Resolver()

_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./:=,@%+-]+")
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ANSI_C_ESCAPES = {**_CONTROL_ESCAPES, "\\": "\\\\", "'": "\\'"}


class EnvRef(str):
    """A ``${env:VAR}`` reference otelkit writes on purpose; the only string whose ``$`` is kept."""

    __slots__ = ()


class UserText(str):
    """A string that came from the user (a flag, a name, an image): always written double-quoted."""

    __slots__ = ()


class YAMLText(str):
    """Text already laid out as YAML by one of the filters; templates write it as it is."""

    __slots__ = ()


def env_ref(var: str, what: str) -> EnvRef:
    """``${env:VAR}`` for the environment variable ``var``, named by option ``what``.

    Raises:
        UsageError: ``var`` is not a variable name.
    """
    if not _ENV_VAR.fullmatch(var):
        raise UsageError(
            f"invalid environment variable name {var!r} for {what}; expected letters, digits and '_' "
            "(e.g. OTLP_TOKEN); pass the variable's name, never its value"
        )
    return EnvRef("${env:" + var + "}")


def env_vars(data: Any) -> list[str]:
    """The variables of the :class:`EnvRef` references in ``data`` (a model as data), sorted, once each.

    Read from the model, never from the rendered text: user text that looks like ``${env:X}`` is
    escaped (``$${env:X}``) and is no reference."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, EnvRef):
            found.add(value[len("${env:") : -1])
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(data)
    return sorted(found)


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # undecodable command-line bytes come back as the bytes they were
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        shown = repr(raw[:80]) + ("…" if len(raw) > 80 else "")
        raise UsageError(f"{shown} is not UTF-8 text; rendered files are UTF-8, so pass the value as UTF-8") from None


def escape_dollars(text: str) -> str:
    """``$`` → ``$$``: what the collector reads back as one literal ``$``."""
    return text.replace("$", "$$")


def unescape_dollars(data: Any) -> Any:
    """The values the collector sees after its ``$$`` → ``$`` step (keys are left alone, as it does)."""
    if isinstance(data, Mapping):
        return {k: unescape_dollars(v) for k, v in data.items()}
    if isinstance(data, list):
        return [unescape_dollars(v) for v in data]
    if isinstance(data, str):
        return data.replace("$$", "$")
    return data


def _go_reads_as_non_string(text: str) -> bool:
    if text in _GO_NULL_BOOL:
        return True
    plain = text.replace("_", "")
    return bool(_GO_INT.fullmatch(plain) or _GO_FLOAT.fullmatch(text))


def _resolves_to_str(text: str) -> bool:
    """Whether PyYAML (YAML 1.1) reads ``text`` as a plain string (else it quotes it itself)."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == "tag:yaml.org,2002:str")


def _needs_double_quotes(text: str) -> bool:
    # Any non-printable character (line breaks of either YAML version, controls, format characters,
    # a BOM, NBSP…) is written as an escape; so is a string PyYAML would leave plain but a YAML 1.2
    # parser would not read as a string (0o17, 1e3). PyYAML quotes its own ambiguous ones ('1', 'yes').
    return not text.isprintable() or (_go_reads_as_non_string(text) and _resolves_to_str(text))


class _Dumper(yaml.SafeDumper):
    """Block-style YAML: nested lists indented under their key, risky strings double-quoted."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    _check_utf8(data)
    style = '"' if isinstance(data, UserText) or _needs_double_quotes(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(EnvRef, _represent_str)
_Dumper.add_representer(UserText, _represent_str)
_Dumper.add_representer(YAMLText, _represent_str)


def _literal_ok(text: str) -> bool:
    """Whether a ``|`` block holds ``text`` exactly, for YAML 1.1 and 1.2 parsers alike."""
    lines = text.split("\n")
    return (
        "\n" in text
        and all(line.isprintable() for line in lines)
        and not text.startswith((" ", "\n"))
        and all(line == line.rstrip(" ") for line in lines)
    )


class _DocumentDumper(_Dumper):
    """Whole documents: as :class:`_Dumper`, and multi-line strings (embedded files) as ``|`` blocks."""


def _represent_document_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if not isinstance(data, UserText) and _literal_ok(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")
    return _represent_str(dumper, data)


_DocumentDumper.add_representer(str, _represent_document_str)
_DocumentDumper.add_representer(UserText, _represent_document_str)


def _prepare(value: Any, confmap: bool) -> Any:
    """Plain dicts/lists (views and tuples too), with ``$`` escaped in collector-config values.

    :class:`UserText` stays :class:`UserText` (the dumper double-quotes it) unless it is escaped."""
    if isinstance(value, Mapping):
        return {k: _prepare(v, confmap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare(v, confmap) for v in value]
    if isinstance(value, EnvRef):
        return str(value)
    if isinstance(value, str):
        _check_utf8(value)
        return escape_dollars(value) if confmap else value
    return value


def _dump(value: Any) -> str:
    return yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000_000
    )


def _plain_fast(text: str) -> bool:
    return _PLAIN_FAST.fullmatch(text) is not None and _resolves_to_str(text) and not _go_reads_as_non_string(text)


def scalar(value: Any, *, confmap: bool = False) -> YAMLText:
    """``value`` (a string, number or bool) as one YAML scalar on one line."""
    if isinstance(value, YAMLText):
        return value
    if type(value) is str and _plain_fast(value):
        return YAMLText(value)
    if value is None or isinstance(value, (bool, int, float)):
        text = _dump(value)
    elif isinstance(value, str):
        text = _dump(_prepare(value, confmap))
    else:
        raise TemplateError(
            f"a template writes a {type(value).__name__} as a YAML scalar; this is a bug in otelkit, please report it"
        )
    if text.endswith("\n...\n"):  # a plain scalar at the top of a document "ends" it
        text = text[: -len("...\n")]
    text = text.rstrip("\n")
    if "\n" in text:  # _needs_double_quotes prevents this; never let a value span lines
        raise TemplateError(f"scalar {value!r} does not fit on one line; this is a bug in otelkit, please report it")
    return YAMLText(text)


def dump_block(value: Any, indent: int, *, confmap: bool = False) -> YAMLText:
    """``value`` as the YAML that follows ``key:``: `` {}`` for an empty map, else an indented block."""
    if value is None or (isinstance(value, Mapping) and not value):
        return YAMLText(" {}")
    pad = " " * indent
    lines = _dump(_prepare(value, confmap)).rstrip("\n").splitlines()
    return YAMLText("\n" + "\n".join(pad + line for line in lines))


def dump_stream(documents: Iterable[Any]) -> str:
    """``documents`` as a YAML stream, each starting with ``---``, keys in the given order."""
    return yaml.dump_all(
        [_prepare(d, False) for d in documents],
        Dumper=_DocumentDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000_000,
        explicit_start=True,
    )


def flow_list(items: Iterable[Any], *, confmap: bool = False) -> YAMLText:
    """``[a, b]`` on one line (flow style: commas and brackets inside an item are quoted)."""
    text = yaml.dump(
        _prepare(list(items), confmap), Dumper=_Dumper, default_flow_style=True, allow_unicode=True, width=1_000_000_000
    ).rstrip("\n")
    if "\n" in text:
        raise TemplateError(f"list {text!r} does not fit on one line; this is a bug in otelkit, please report it")
    return YAMLText(text)


def literal_block(text: str, indent: int) -> YAMLText:
    """``|-`` and ``text``'s lines indented by ``indent``, or one double-quoted scalar when a literal
    block cannot hold ``text`` exactly (non-printable characters, leading blanks, trailing spaces)."""
    _check_utf8(text)
    lines = text.split("\n")
    literal_ok = (
        text != ""
        and all(line.isprintable() for line in lines)
        and not text.startswith((" ", "\n"))
        and not text.endswith("\n")
        and all(line == line.rstrip(" ") for line in lines)
    )
    if not literal_ok:
        return scalar(text)
    pad = " " * indent
    return YAMLText("|-\n" + "\n".join(pad + line if line else "" for line in lines))


def _escape_char(ch: str) -> str:
    if ch in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def comment(text: Any) -> YAMLText:
    """``text`` as the content of one comment line: every non-printable character escaped."""
    return YAMLText("".join(ch if ch.isprintable() else _escape_char(ch) for ch in str(text)))


def _shell_bytes(ch: str) -> str:
    # $'\xHH' is one byte whatever the locale ($'\u2028' is left as it is outside a UTF-8 one, and
    # $'\x85' is the byte 0x85, not U+0085): a character is written as its UTF-8 bytes, and a lone
    # surrogate (an undecodable command-line byte) as the byte it was.
    try:
        raw = ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = ch.encode("utf-8", "surrogatepass")
    return "".join(f"\\x{b:02x}" for b in raw)


def shell_quote(arg: str) -> str:
    """``arg`` quoted for a POSIX shell; ANSI-C quoting (``$'…'``) when it holds non-printable characters.

    A shell (bash, zsh, ksh) reads it back as exactly ``arg``, in any locale."""
    if _SHELL_SAFE.fullmatch(arg):
        return arg
    if arg.isprintable():
        return "'" + arg.replace("'", "'\\''") + "'"
    out = []
    for ch in arg:
        if ch in _ANSI_C_ESCAPES:
            out.append(_ANSI_C_ESCAPES[ch])
        else:
            out.append(ch if ch.isprintable() else _shell_bytes(ch))
    return "$'" + "".join(out) + "'"


def shell_join(argv: Iterable[str]) -> str:
    """A command line from ``argv``, each argument quoted with :func:`shell_quote`."""
    return " ".join(shell_quote(a) for a in argv)


def _load_all(text: str) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return list(yaml.load_all(text, Loader=loader))


def _parse(text: str) -> list[Any]:
    try:
        return _load_all(text)
    except yaml.YAMLError as exc:
        raise TemplateError(
            f"the rendered file is not valid YAML ({exc}); this is a bug in otelkit, please report it"
        ) from None


def check_document(text: str, expected: Any, *, confmap: bool = False) -> None:
    """Check that ``text`` is exactly one YAML document equal to ``expected`` (the model as data).

    With ``confmap``, ``$$`` in values is read back as ``$`` first, as the collector does.

    Raises:
        TemplateError: it is not; this is a bug in a template or a filter, never the user's input.
    """
    documents = _parse(text)
    if len(documents) != 1:
        raise TemplateError(
            f"the rendered file holds {len(documents)} YAML documents, not 1; this is a bug in otelkit,"
            " please report it"
        )
    got = unescape_dollars(documents[0]) if confmap else documents[0]
    if got != _prepare(expected, False):
        raise TemplateError("the rendered file does not match its model; this is a bug in otelkit, please report it")


def check_stream(text: str, expected: Iterable[Any]) -> None:
    """Check that ``text`` is exactly the YAML documents ``expected`` (the model as data), in order.

    Raises:
        TemplateError: it is not; this is a bug in otelkit, never the user's input.
    """
    documents = _parse(text)
    wanted = [_prepare(d, False) for d in expected]
    if len(documents) != len(wanted):
        raise TemplateError(
            f"the rendered file holds {len(documents)} YAML documents, not {len(wanted)}; this is a bug in otelkit,"
            " please report it"
        )
    if documents != wanted:
        raise TemplateError("the rendered file does not match its model; this is a bug in otelkit, please report it")
