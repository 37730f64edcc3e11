# Sourced by scripts/test and scripts/demo: create or reuse the project venv and put it on PATH.
#
# The venv lives outside the clone, at $OTELKIT_CACHE_DIR/venv/<hash of pyproject.toml>, so a
# dependency change builds a new one and a fresh clone reuses the cached one. The editable install
# is re-pointed at this clone every time (quick, --no-deps).
say() { printf '==> %s\n' "$*" >&2; }

cache="${OTELKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otelkit}"
export OTELKIT_CACHE_DIR="$cache"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "error: $python is missing or older than 3.10; install Python >= 3.10 or set PYTHON=/path/to/python3"
    exit 2
fi
if [ ! -f pyproject.toml ]; then
    # Without it the key below is empty and the rm -rf further down would remove every venv.
    say "error: no pyproject.toml in $(pwd); source scripts/venv.sh from the repository root"
    exit 2
fi
key=$(sha256sum pyproject.toml | cut -c1-16)
# OTELKIT_VENV_DIR: where the keyed venvs live (default $cache/venv). Give each git worktree its
# own, so two checkouts never re-point each other's editable install.
venv="${OTELKIT_VENV_DIR:-$cache/venv}/$key"
if [ ! -f "$venv/.complete" ]; then
    say "creating the venv $venv (pip install -e '.[test]'; a minute or two)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e '.[test]'
    touch "$venv/.complete"
fi
"$venv/bin/python" -m pip install --quiet --no-deps -e . 2>/dev/null
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"

# apt_install PKG…: install missing Debian packages (as root, or with sudo).
apt_install() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    say "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}
