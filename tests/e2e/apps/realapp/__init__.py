"""A FastAPI + Celery app with the traits of real projects, run for real by test_realapp_e2e.py.

Its own ``dictConfig`` at import, routers under a prefix, a socket.io app mounted at ``/ws``, a
websocket, a listener task started by a request, an ``after_setup_logger`` receiver writing a log
file, chains, retries, ETA tasks and several queues. Nothing in it knows about otelkit except the
health router it mounts.
"""
