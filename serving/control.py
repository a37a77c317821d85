"""`python -m serving.control serve ...`: `bentoml serve ...` with its process manager reachable by this user only.

`bentoml serve` runs a circus arbiter that supervises the workers. BentoML 1.4 binds its control and pub/sub
channels to two TCP ports on 127.0.0.1 (`bentoml._internal.utils.circus.create_standalone_arbiter`, no
setting to change it), and circus answers any local user there: `list`, `options` (each watcher's whole
environment) and control commands (`stop`, `incr`, `signal`). Here the same arbiter is created with
ZeroMQ IPC endpoints, unix sockets in a fresh directory only this user can enter (mode 0700, removed when
the arbiter stops). A process of the same user can still connect, as it could signal the workers anyway.

The same directory holds the workers' readiness markers (`serving.workers`): its path and the number of
workers are put in each watcher's environment.

The factory is replaced in BentoML's module before its CLI runs, because BentoML's server imports it from
there when it starts the arbiter. Checked against BentoML 1.4 and circus 0.18.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CONTROL_SOCKET, PUBSUB_SOCKET = "control", "pubsub"
_DIR_PREFIX = "eta311-circus-"


def private_arbiter(watchers: list[Any], *, threaded: bool = False, **kwargs: Any) -> Any:
    """BentoML's `create_standalone_arbiter` with owner-only IPC endpoints instead of loopback TCP ports."""
    from bentoml._internal.utils.circus import Arbiter, ThreadedArbiter

    folder = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))  # mode 0700: other users cannot reach the sockets
    from serving.workers import RUN_DIR_ENV, WORKERS_ENV

    for watcher in watchers:
        watcher.env = {**(watcher.env or {}), RUN_DIR_ENV: str(folder), WORKERS_ENV: str(watcher.numprocesses)}
    arbiter_cls = ThreadedArbiter if threaded else Arbiter
    arbiter = arbiter_cls(
        watchers,
        endpoint=f"ipc://{folder / CONTROL_SOCKET}",
        pubsub_endpoint=f"ipc://{folder / PUBSUB_SOCKET}",
        check_delay=kwargs.pop("check_delay", 10),  # BentoML's value (see its factory)
        **kwargs,
    )
    arbiter.exit_stack.callback(shutil.rmtree, folder, ignore_errors=True)
    return arbiter


def main(argv: list[str]) -> None:
    """Run the BentoML CLI with `private_arbiter` in place of BentoML's arbiter factory."""
    from bentoml._internal.utils import circus
    from bentoml_cli.cli import cli

    circus.create_standalone_arbiter = private_arbiter
    cli.main(args=argv, prog_name="bentoml")


if __name__ == "__main__":
    main(sys.argv[1:])
