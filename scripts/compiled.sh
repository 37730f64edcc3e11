# Sourced by scripts/test: the unit tests once more, against otelkit's compiled build.
#
# A build with OTELKIT_COMPILE=1 (setup.py) compiles the modules otelkit/_runtime/compiled.py lists
# with mypyc; the source files stay the fallback. Both must pass the same tests: this copies the
# clone's tracked files to a temporary directory, puts the compiled extension modules beside their
# sources there, and runs tests/unit and the e2e tests of the launcher and of a real app (their
# servers and workers are processes started with that PYTHONPATH) in it with
# OTELKIT_EXPECT_COMPILED=1 (test_compiled.py then fails unless every listed module was imported
# compiled). The extension modules are built once
# per source and toolchain (~2 min on 2 cores) and cached under $OTELKIT_CACHE_DIR/compiled.
# Needs `say`, `$venv` and `$cache` from scripts/venv.sh, and a C compiler (installed when missing).

run_compiled_unit_tests() {
    local key built work rc=0
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
    key=$(
        {
            cat setup.py otelkit/_runtime/compiled.py pyproject.toml
            "$venv/bin/python" -c 'import sys; from importlib.metadata import version as v
print(sys.version, v("mypy"), v("setuptools"))'
            "$venv/bin/python" - <<'PY'
import pathlib
ns = {}
exec(pathlib.Path("otelkit/_runtime/compiled.py").read_text(), ns)
for name in ns["MODULES"]:
    print(pathlib.Path(*name.split(".")).with_suffix(".py").read_text())
PY
        } | sha256sum | cut -c1-16
    ) || return 1
    built="$cache/compiled/$key"
    work=$(mktemp -d "${TMPDIR:-/tmp}/otelkit-compiled.XXXXXX")
    chmod 755 "$work"  # readable as a clone is: some tests run a command as another user
    git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work" || { rm -rf "$work"; return 1; }
    if [ ! -f "$built/.complete" ]; then
        say "compiling otelkit's hot modules with mypyc into $built (once per source; ~2 min)"
        rm -rf "$built"
        # As README.md tells users to build it: a wheel, without build isolation (mypy is in the venv).
        if ! OTELKIT_COMPILE=1 "$venv/bin/python" -m pip wheel --quiet --no-build-isolation --no-deps \
            -w "$work/.wheel" "$work" >"$work/build.log" 2>&1; then
            tail -40 "$work/build.log" >&2
            say "error: the compiled build failed (the whole log: $work/build.log)"
            return 1
        fi
        mkdir -p "$built"
        "$venv/bin/python" - "$built" "$work"/.wheel/otelkit-*.whl <<'PY' || return 1
import sys, zipfile
with zipfile.ZipFile(sys.argv[2]) as wheel:
    members = [name for name in wheel.namelist() if name.endswith(".so")]
    assert members, "the wheel holds no extension module"
    wheel.extractall(sys.argv[1], members)
PY
        rm -rf "$work/.wheel" "$work/build" "$work"/*.egg-info  # as in a run that finds them cached
        touch "$built/.complete"
    fi
    (cd "$built" && find otelkit -name '*.so' -print0 | xargs -0 cp --parents -t "$work") || return 1
    say "pytest tests/unit and the launcher and real-app e2e tests against the compiled build ($(cd "$built" && find otelkit -name '*.so' | wc -l) extension modules)"
    (cd "$work" && PYTHONPATH="$work" OTELKIT_EXPECT_COMPILED=1 "$venv/bin/python" -m pytest -p no:cacheprovider \
        tests/unit tests/e2e/test_launcher_e2e.py tests/e2e/test_realapp_e2e.py "$@") || rc=$?
    [ "$rc" -ne 0 ] || rm -rf "$work"
    return "$rc"
}
