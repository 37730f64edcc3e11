# The example FastAPI app and its Celery worker, instrumented by otelkit through the launcher.
# Built by docker-compose.yaml (service `app`; `worker` runs the same image with another command).
FROM python:3.12.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY otelkit ./otelkit
COPY example ./example
# [system]: process/host metrics for the System dashboard (enabled by OTELKIT_SYSTEM_METRICS=true).
RUN pip install ".[example,system]" \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001

# otelkit-instrument sets otelkit up in the app's process (OTLP/HTTP for all three signals). The
# distro variable makes `opentelemetry-instrument` do the same for anyone who prefers the stock one.
ENV OTEL_PYTHON_DISTRO=otelkit \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318

EXPOSE 8000
CMD ["otelkit-instrument", "uvicorn", "example.app:app", "--host", "0.0.0.0", "--port", "8000"]
