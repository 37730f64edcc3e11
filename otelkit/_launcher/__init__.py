"""``otelkit-instrument`` (:mod:`otelkit._launcher.command`) and the boot directory it puts on ``PYTHONPATH``.

``_boot/`` holds only ``sitecustomize``: everything in it is importable by every Python process
the command starts. The launcher runs in the user's process tree, so it belongs to the runtime
side: it never imports ``otelkit.ops``, ``otelkit.local`` nor ``otelkit.cli``.
"""
