"""Recording estimates in the ledger without costing residents: a per-worker writer thread.

The request path only appends (rows, answers, instant) to a bounded in-memory queue; one daemon thread per
worker drains it and writes everything queued in one transaction, so a burst of estimates costs one commit.
A ledger that is down, read-only or locked never fails an estimate: the write is retried with backoff while
the batch waits in memory (up to `MAX_PENDING` estimates, the oldest dropped and counted beyond that), and
`/readyz` says the service is not recording, and why.

The ledger is used when ETA311_DATABASE_URL is set or ETA311_HOME/ledger.db exists; otherwise the service
runs as it did without one (`status()["configured"]` is false).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("eta311.recording")

MAX_QUEUE = 10_000  # submitted batches waiting for the writer
MAX_PENDING = 100_000  # estimates kept in memory while the ledger is unavailable
BACKOFF_S = (0.5, 1, 2, 5, 10, 30)


def configured_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The ledger's URL when this service has one: ETA311_DATABASE_URL, or an existing ETA311_HOME/ledger.db."""
    from ledger.store import DATABASE_URL_ENV, LEDGER_FILE, database_url

    env = os.environ if environ is None else environ
    home = Path(env.get("ETA311_HOME", "~/.eta311")).expanduser()
    if env.get(DATABASE_URL_ENV) or (home / LEDGER_FILE).is_file():
        return database_url(home, dict(env))
    return None


class Recorder:
    """The worker's writer: `submit` on the request path, `flush` before reading what was written."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.engine: Any | None = None
        self.recording = False
        self.detail = "no ledger configured"
        self.written = 0
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUE)
        self._pending: list[tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]], dt.datetime]] = []
        # Batches submitted and batches settled (written or dropped): `flush` waits for the second to catch up.
        self._submitted = 0
        self._settled = 0
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self, url: str | None = None) -> None:
        """Open the ledger in the writer thread (a slow database must not delay the models)."""
        self.url = url or configured_url()
        if self.url is None or self._thread is not None:
            return
        from ledger.store import redact

        self.detail = f"opening ledger {redact(self.url)}"
        self._thread = threading.Thread(target=self._run, name="eta311-ledger-writer", daemon=True)
        self._thread.start()

    @property
    def configured(self) -> bool:
        return self.url is not None

    def submit(self, rows: Sequence[Mapping[str, Any]], answers: Sequence[Mapping[str, Any]], now: dt.datetime) -> None:
        """Queue estimates for the writer; never blocks, never raises."""
        if self._thread is None:
            return
        try:
            self._queue.put_nowait((rows, answers, now))
        except queue.Full:
            self.dropped += len(answers)
            return
        with self._progress:
            self._submitted += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what this worker queued is written (or give up after `timeout`); True when it was."""
        if self._thread is None:
            return True
        with self._progress:
            target = self._submitted
            return self._progress.wait_for(lambda: self._settled >= target, timeout)

    def _settle(self, batches: int) -> None:
        with self._progress:
            self._settled += batches
            self._progress.notify_all()

    def status(self) -> dict[str, Any]:
        """What `/readyz` shows."""
        if not self.configured:
            return {"configured": False, "recording": False, "detail": self.detail}
        from ledger.store import redact

        return {
            "configured": True,
            "recording": self.recording,
            "url": redact(self.url),
            "detail": self.detail,
            "written": self.written,
            "pending": sum(len(a) for _, a, _ in self._pending) + self._queue.qsize(),
            "dropped": self.dropped,
        }

    def _open(self) -> bool:
        from ledger.store import LedgerError, open_ledger, redact

        try:
            self.engine = open_ledger(self.url)
        except LedgerError as error:
            self._fail(str(error))
            return False
        self.recording = True
        self.detail = f"recording estimates in {redact(self.url)}"
        log.info("%s", self.detail)
        return True

    def _fail(self, reason: str) -> None:
        if self.recording or reason != self.detail:
            log.warning("not recording estimates: %s", reason)
        self.recording = False
        self.detail = f"not recording: {reason}"

    def _run(self) -> None:
        attempt = 0
        while True:
            if self.engine is None and not self._open():
                self._wait(attempt)
                attempt += 1
                continue
            if not self._pending:
                self._pending.append(self._queue.get())
            while True:  # everything queued meanwhile joins the same transaction
                try:
                    self._pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._trim()
            if self._write():
                attempt = 0
            else:
                self._wait(attempt)
                attempt += 1

    def _write(self) -> bool:
        from ledger.estimates import estimate_rows, write_estimates
        from ledger.store import database_errors, describe, redact

        try:
            request_rows, rows = [], []
            for batch_rows, answers, now in self._pending:
                more_requests, more_rows = estimate_rows(zip(batch_rows, answers, strict=True), now)
                request_rows += more_requests
                rows += more_rows
            write_estimates(self.engine, request_rows, rows)
        except database_errors(self.engine) as error:  # down, read-only, locked: keep the batch, retry
            self._fail(f"ledger {redact(self.url)}: {describe(error)}")
            return False
        except Exception as error:  # a bug must not kill the writer: say so, drop the batch
            log.exception("could not record estimates")
            self.dropped += sum(len(a) for _, a, _ in self._pending)
            self._fail(f"estimates could not be recorded: {error}")
        else:
            self.written += len(rows)
            self._recovered()
        self._settle(len(self._pending))
        self._pending.clear()
        return True

    def _recovered(self) -> None:
        from ledger.store import redact

        if not self.recording:
            self.recording = True
            self.detail = f"recording estimates in {redact(self.url)}"
            log.info("ledger available again: %s", self.detail)

    def _trim(self) -> None:
        """Keep at most MAX_PENDING estimates waiting; the oldest beyond that are dropped and counted."""
        while self._pending and sum(len(a) for _, a, _ in self._pending) > MAX_PENDING:
            self.dropped += len(self._pending.pop(0)[1])
            self._settle(1)

    @staticmethod
    def _wait(attempt: int) -> None:
        time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])


RECORDER = Recorder()
