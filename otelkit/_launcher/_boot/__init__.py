"""The directory ``otelkit-instrument`` puts first on ``PYTHONPATH``: it holds only ``sitecustomize``."""
