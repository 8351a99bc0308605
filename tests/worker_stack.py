"""Services of its own for each pytest-xdist worker (loaded with ``-p tests.worker_stack``).

`make test` runs the suite on several workers. Sharing one PostgreSQL, Valkey and Tansu between
them would not be enough: pytest-django gives each worker a database of its own, but Redis
channels (``room.1`` exists in every worker's database) and the Kafka topics and consumer groups
would be shared, and one worker's messages would reach another's sockets. So the first worker
uses the services `devstack exec` started, and each other one starts an embedded set of its own
in ``.devstack/test-<worker>`` before Django reads its settings, and stops it at exit.

Nothing happens without xdist (``pytest -n 0`` or a plain ``pytest``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _own_services(worker: str) -> None:
    from devstack.stack import OTHER_STACK_VARIABLES, Stack

    root = ROOT / ".devstack" / f"test-{worker}"
    shutil.rmtree(root, ignore_errors=True)  # a killed run's leftovers
    # Without the addresses of the stack `devstack exec` started: this worker starts its own.
    environ = {k: v for k, v in os.environ.items() if k not in OTHER_STACK_VARIABLES}
    stack = Stack(root, environ=environ, fixed_ports=False)
    urls = stack.start()
    atexit.register(_stop, stack)
    os.environ.update(urls)


def _stop(stack) -> None:
    # The process's Kafka producer first, or librdkafka logs the broker going away into a closed
    # stream at exit.
    kafka = sys.modules.get("streams.pipeline.kafka")
    if kafka is not None:
        kafka.reset_producer()
    stack.stop()


# A produce the broker has not acknowledged in 5 s (the default) fails the user's request. The
# embedded broker of a test worker has, late in a few full runs, stopped answering for some
# seconds (tests/broker_watch.py reports when); the tests wait longer than a user would, so that
# such a pause fails no test that is not about the broker. Tests of the timeout set their own.
os.environ.setdefault("KAFKA_PRODUCE_TIMEOUT_S", "20")

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker not in (None, "gw0"):
    # At import, because pytest-django configures Django (and reads the URLs) right after the
    # plugins given with -p are loaded.
    _own_services(_worker)
