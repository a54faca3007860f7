"""CPU priority of the threads that run models.

Model threads run at a lower priority (a higher nice value) than the event loop: when
inference fills every core, the loop still gets the CPU at once to answer health checks,
metrics scrapes and RESOURCE_EXHAUSTED refusals. The threads a model runtime starts
(CTranslate2 workers, OpenMP and torch pools) inherit the nice value of the thread that starts
them, so models are loaded on a lowered thread too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("stt.core")


def lower_this_thread(increment: int) -> None:
    """Adds `increment` to the calling thread's nice value (on Linux, nice is per thread)."""
    if increment <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + increment))
    except OSError as error:  # a sandbox that forbids it: run at the loop's priority
        log.warning("could not lower a model thread's priority", extra={"error": str(error)})


def model_threads(workers: int, name: str, increment: int) -> ThreadPoolExecutor:
    """A thread pool whose threads run `increment` nice levels below their parent."""
    return ThreadPoolExecutor(workers, name, initializer=lower_this_thread, initargs=(increment,))
