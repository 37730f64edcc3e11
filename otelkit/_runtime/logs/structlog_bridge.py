"""structlog routed through stdlib logging, so its key-value pairs become OTel log attributes."""

from __future__ import annotations

__all__ = ["configure_structlog"]


def configure_structlog(*, force: bool = False) -> bool:
    """Route structlog through stdlib logging so its fields become OTel log attributes.

    Does nothing when structlog is not installed, or when the app already configured it (unless
    ``force``). Returns whether structlog was configured.
    """
    try:
        import structlog
    except ImportError:
        return False
    if structlog.is_configured() and not force:
        return False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return True
