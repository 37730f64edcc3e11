"""The app configures logging itself, at import, as many projects do."""

import logging.config

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"app": {"format": "APP [%(levelname)s] %(name)s: %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "app"}},
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {"uvicorn.access": {"propagate": True}},
    }
)
