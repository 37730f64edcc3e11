# Sourced by scripts/test: the unit tests once more, against otelkit's compiled build.
#
# A build with OTELKIT_COMPILE=1 (setup.py) compiles the modules otelkit/_runtime/compiled.py lists
# with mypyc; the source files stay the fallback. Both must pass the same tests: this copies the
# clone's tracked files to a temporary directory, puts the compiled extension modules beside their
# sources there, and runs tests/unit and the e2e tests of the launcher and of a real app (their
# servers and workers are processes started with that PYTHONPATH) in it with
# OTELKIT_EXPECT_COMPILED=1 (test_compiled.py then fails unless every listed module was imported
# compiled). scripts/compiled_build.py builds the extension modules once per source and toolchain
# (~2 min on 2 cores), cached under $OTELKIT_CACHE_DIR/compiled, and makes the copy.
# Needs `say`, `$venv` and `$cache` from scripts/venv.sh, and a C compiler (installed when missing).

run_compiled_unit_tests() {
    local work count rc=0
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
    work=$(mktemp -d "${TMPDIR:-/tmp}/otelkit-compiled.XXXXXX")
    chmod 755 "$work"  # readable as a clone is: some tests run a command as another user
    # Built as README.md tells users to (pip wheel --no-build-isolation), cached, copied in with the clone.
    count=$("$venv/bin/python" scripts/compiled_build.py --cache "$cache" --tree "$work") || { rm -rf "$work"; return 1; }
    say "pytest tests/unit and the launcher and real-app e2e tests against the compiled build ($count extension modules)"
    (cd "$work" && PYTHONPATH="$work" OTELKIT_EXPECT_COMPILED=1 "$venv/bin/python" -m pytest -p no:cacheprovider \
        tests/unit tests/e2e/test_launcher_e2e.py tests/e2e/test_realapp_e2e.py "$@") || rc=$?
    [ "$rc" -ne 0 ] || rm -rf "$work"
    return "$rc"
}
