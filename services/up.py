"""`stt up`: one process tree on one machine. Each language service and the job worker run as
child processes (`stt serve`, `stt worker`, as in the cluster), the router runs in this process
in front of them.

SIGINT (Ctrl-C) or SIGTERM drains the router and every child, then exits 0. A child that
stops on its own (a model that fails to load, a crash) stops the whole tree with exit 1, so a
broken stack never looks healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal

from services.router.server import RouterServer
from services.stack import Child

log = logging.getLogger("stt.up")
PR_SET_PDEATHSIG = 1
# Time a child gets to drain beyond its own grace before it is killed.
KILL_AFTER_S = 10.0


async def run(router: RouterServer, children: list[Child], grace_s: float) -> int:
    processes = [await _spawn(c) for c in children]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await router.start()
    except BaseException:
        await _stop_children(processes, grace_s)
        raise
    pairs = zip(processes, children, strict=True)
    exits = {asyncio.create_task(process.wait()): child for process, child in pairs}
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
    died = [exits[task].name for task in done if task in exits]
    if died:
        log.error("a child stopped on its own; stopping the others", extra={"children": died})
    stopping.cancel()
    await asyncio.gather(router.drain(grace_s), _stop_children(processes, grace_s))
    codes = {c.name: p.returncode for p, c in zip(processes, children, strict=True)}
    log.info("all stopped", extra={"exit_codes": codes})
    return 1 if died or any(codes.values()) else 0


async def _spawn(child: Child) -> asyncio.subprocess.Process:
    log.info("starting", extra={"member": child.name, "command": list(child.argv[3:])})
    return await asyncio.create_subprocess_exec(
        *child.argv, env={**os.environ, **child.env}, preexec_fn=_die_with_parent
    )


async def _stop_children(children: list[asyncio.subprocess.Process], grace_s: float) -> None:
    for child in children:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.wait(), grace_s + KILL_AFTER_S)
        except TimeoutError:
            log.warning("killing a child that did not stop", extra={"pid": child.pid})
            child.kill()
            await child.wait()


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux it gets SIGTERM if this process dies without
    stopping it (kill -9), so no service outlives the tree."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
