"""The embedded development stack: PostgreSQL, Valkey and Tansu started from pip wheels.

When ``DATABASE_URL``, ``REDIS_URL`` or ``KAFKA_BOOTSTRAP_SERVERS`` is unset, ``make run`` and
``make test`` start that service from its wheel, with its data under one ignored folder
(``.devstack/``). The URLs of the running services are written to ``services.json`` in that
folder so that ``manage.py`` commands run by hand find the same services.

This package imports nothing from Django or the apps: it runs before Django is configured.
"""
