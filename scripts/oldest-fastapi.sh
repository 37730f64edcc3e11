# Sourced by scripts/test: the ASGI tests once more against the oldest FastAPI otelkit supports.
#
# OLDEST_FASTAPI is the lower bound README.md states; its Starlette (0.32) names no route in the
# scope for mounts and plain routes (/docs, /openapi.json) and routes mounts differently, which
# the newest FastAPI's tests cannot show. Its venv sits beside the main one, keyed by this file and
# pyproject.toml. Needs `say` and `$python` from scripts/venv.sh.

OLDEST_FASTAPI="0.108.0"

run_oldest_fastapi() {
    local key venv
    key=$(cat pyproject.toml scripts/oldest-fastapi.sh | sha256sum | cut -c1-16)
    venv="${OTELKIT_VENV_DIR:-$OTELKIT_CACHE_DIR/venv}/oldest-fastapi-$key"
    if [ ! -f "$venv/.complete" ]; then
        say "creating the venv $venv (FastAPI $OLDEST_FASTAPI; a minute or two)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        # httpx < 0.27: Starlette 0.32's TestClient passes app=, which httpx 0.27 deprecates and 0.28 removed.
        "$venv/bin/python" -m pip install --quiet -e '.[redis]' "fastapi==$OLDEST_FASTAPI" 'httpx>=0.25,<0.27' \
            'uvicorn>=0.30' 'celery[redis]>=5.4' 'python-socketio>=5.10' simple-websocket pytest pytest-timeout
        touch "$venv/.complete"
    fi
    "$venv/bin/python" -m pip install --quiet --no-deps -e . 2>/dev/null
    say "pytest with FastAPI $OLDEST_FASTAPI: tests/unit/test_asgi.py tests/e2e/test_realapp_e2e.py"
    # Starlette 0.32 uses an anyio alias that newer anyio deprecates.
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$venv/bin/python" -m pytest -p no:cacheprovider \
        -W "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning" \
        tests/unit/test_asgi.py tests/e2e/test_realapp_e2e.py
}
