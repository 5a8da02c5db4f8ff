"""The codec lane: one background job at a time, beside the caller's thread.

Theory of operation. Encoding a batch of user blocks into fields (and recording them),
or playing and decoding the next chunk of fields, is codec work that numpy does mostly
without the GIL. The medium hands such a job to its lane and returns at once, so the
transport can go on receiving or serving blocks on the other core while the job runs.
At most one job is in flight: the medium ``finish``es the previous one (waiting for it
if needed) before it gives the next, and before anything else touches the deck, so the
deck and the codec state are only ever used by one thread at a time.

A job's failure is not lost: ``finish`` raises it to the medium, which reports it on
the call it is serving (st's buffered writes: a write error surfaces on a later write
or at the filemark). ``busy`` says, without waiting, whether ``finish`` would wait.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class CodecLane:
    """A single background thread running the medium's codec jobs, one at a time."""

    def __init__(self, name: str = "backer-codec") -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None  # started on the first job
        self._job: Future[Any] | None = None
        self._running = False  # the job's callable has not returned yet

    @property
    def busy(self) -> bool:
        """Whether a job is still running (``finish`` would wait for it)."""
        if self._job is None:
            return False
        # asked on every block: while the job runs, no lock is taken to tell
        return self._running or not self._job.done()

    @property
    def idle(self) -> bool:
        """Whether no job was given since the last ``finish``."""
        return self._job is None

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job`` in the background; the previous job must be finished."""
        if self._job is not None:
            raise RuntimeError("the codec lane runs one job at a time")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._running = True
        self._job = self._pool.submit(self._run, job)

    def _run(self, job: Callable[[], Any]) -> Any:
        try:
            return job()
        finally:
            self._running = False

    def finish(self) -> Any:
        """Wait for the job in flight; its result, or its exception raised (None: no job)."""
        job, self._job = self._job, None
        if job is None:
            return None
        return job.result()
