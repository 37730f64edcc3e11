# Sourced by scripts/test and scripts/demo: create or reuse the project venv and put it on PATH.
#
# Venvs live outside the clone, under ${OTELKIT_VENV_DIR:-$OTELKIT_CACHE_DIR/venv}, one directory per
# requirement set (make_venv below): a dependency change builds a new one and a fresh clone reuses
# the cached one. otelkit itself is installed editable and re-pointed at this clone on every use
# (quick, --no-deps).
say() { printf '==> %s\n' "$*" >&2; }

cache="${OTELKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otelkit}"
export OTELKIT_CACHE_DIR="$cache"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "error: $python is missing or older than 3.10; install Python >= 3.10 or set PYTHON=/path/to/python3"
    exit 2
fi
if [ ! -f pyproject.toml ]; then
    # make_venv keys every venv by it: source scripts/venv.sh from the repository root.
    say "error: no pyproject.toml in $(pwd); source scripts/venv.sh from the repository root"
    exit 2
fi

# make_venv NAME EXTRAS [PIP ARGS…]: print the path of a venv with otelkit installed editable from
# this clone as ".[EXTRAS]", plus PIP ARGS (e.g. `-c constraints/oldest.txt` to pin the oldest
# supported versions, or more requirements). Created once per requirement set: the directory is
# NAME-<hash of pyproject.toml, EXTRAS, PIP ARGS and the content of every PIP ARG that is a file>
# under ${OTELKIT_VENV_DIR:-$OTELKIT_CACHE_DIR/venv}; every call re-points the editable install at
# this clone. OTELKIT_VENV_DIR: give each clone or git worktree its own, so two checkouts never
# re-point each other's editable install.
make_venv() {
    local name=$1 extras=$2
    shift 2
    local key arg dir
    key=$(
        cat pyproject.toml
        printf '%s\n' "$extras" "$@"
        for arg in "$@"; do
            if [ -f "$arg" ]; then cat "$arg"; fi
        done
    )
    key=$(printf '%s' "$key" | sha256sum | cut -c1-16)
    dir="${OTELKIT_VENV_DIR:-$cache/venv}/$name-$key"
    if [ ! -f "$dir/.complete" ]; then
        say "creating the $name venv $dir (pip install -e '.[$extras]' $*; a minute or two)"
        rm -rf "$dir"
        mkdir -p "$(dirname "$dir")"
        "$python" -m venv "$dir" >&2 || return 1
        "$dir/bin/python" -m pip install --quiet --upgrade pip >&2 || return 1
        "$dir/bin/python" -m pip install --quiet -e ".[$extras]" "$@" >&2 || return 1
        touch "$dir/.complete"
    fi
    "$dir/bin/python" -m pip install --quiet --no-deps -e . >/dev/null 2>&1 || return 1
    printf '%s\n' "$dir"
}

# apt_install PKG…: install missing Debian packages (as root, or with sudo).
apt_install() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    say "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}

# otelkit's C encoder (otelkit/_runtime/otlp/cencoder.c) is built by the editable install where a C
# compiler is there; without one the Python encoder does everything. Installed here when missing.
if ! command -v cc >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt_install gcc libc6-dev || say "could not install gcc: otelkit's C encoder is not built (the Python encoder does all)"
    else
        say "no C compiler: otelkit's C encoder is not built (the Python encoder does all)"
    fi
fi

# The venv with the newest versions the requirements allow (resolved when it is created).
venv=$(make_venv newest test) || {
    say "error: creating the venv failed (see pip's output above)"
    exit 1
}
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"

