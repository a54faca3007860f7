"""Work whose answer may stop being wanted: a request whose client went away or whose deadline
passed, a job cancelled, taken over or handed back at shutdown.

Whoever runs the work calls `check` between units of it (segments, windows, chunks), so an
abandoned piece of work stops soon after, with no need to interrupt a model mid-step; `wait`
sleeps unless it is cancelled meanwhile.
"""

from __future__ import annotations

import threading
import time

from services.core.errors import Cancelled, DeadlineExceeded

CLIENT_WENT_AWAY = "the client cancelled the request"


class Cancellation:
    def __init__(self, deadline: float | None = None):
        self._event = threading.Event()
        self._deadline = deadline  # time.monotonic() value, or None for no deadline
        self.reason = ""

    def cancel(self, reason: str = CLIENT_WENT_AWAY) -> None:
        """Cancels the work; the first reason given is the one reported."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleeps `seconds`, or less when cancelled meanwhile; True when cancelled."""
        return self._event.wait(seconds)

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise DeadlineExceeded("the request's deadline passed during inference")
