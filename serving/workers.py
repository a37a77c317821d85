"""Which of the server's workers have loaded their models: one marker file per ready worker.

Each worker loads the models itself, and any of them may take the next connection. So `/readyz` says ready
only once every worker of the first start has loaded (a worker still loading would answer 503 "not ready"
to a client told the service is ready), and a worker started later (the process manager replacing one that
died) loads before it accepts its first connection: `Eta311.__init__` then loads synchronously, inside
BentoML's startup, while the other workers serve.

The markers live in a directory the process manager creates for this server only (`serving.control`):
`ready-PID`, written when the worker's estimator is ready; a marker whose process is gone does not count.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

RUN_DIR_ENV = "ETA311_RUN_DIR"  # set by serving.control for the workers
WORKERS_ENV = "ETA311_WORKERS"  # how many workers the first start has (serving.control)
_PREFIX = "ready-"


def run_dir() -> Path | None:
    folder = os.environ.get(RUN_DIR_ENV)
    return Path(folder) if folder else None


def expected_workers() -> int:
    value = os.environ.get(WORKERS_ENV, "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's (a reused pid): not one of ours
        return False
    return True


def ready_workers(folder: Path) -> set[int]:
    """The pids of live workers that marked themselves ready (markers of dead ones are removed)."""
    pids = set()
    for marker in folder.glob(f"{_PREFIX}*"):
        suffix = marker.name[len(_PREFIX) :]
        if not suffix.isdigit():
            continue
        if _alive(int(suffix)):
            pids.add(int(suffix))
        else:
            with contextlib.suppress(OSError):
                marker.unlink()
    return pids


def mark_ready(folder: Path) -> None:
    (folder / f"{_PREFIX}{os.getpid()}").touch()


def others_ready(folder: Path) -> bool:
    """Whether another live worker is ready: this one is a replacement (or a late starter)."""
    return bool(ready_workers(folder) - {os.getpid()})
