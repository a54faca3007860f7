"""What `stt up` runs: the services of `services/registry.py` that can run here, each on its
own local port, the routing table that puts the router in front of them, and one job worker.

A member runs when the package its default model comes in is installed, and, if it has no
bundled model, when its model is configured (`<PREFIX>MODEL` in the environment). Whisper is
multilingual, so it is every other language's fallback, and serves a language alone when its
own service does not run. The diarization service serves no language: the router calls it for
Recognize with speakers, and relays the job worker's Diarize to it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.jobs.uri_policy import FILE_ROOTS
from services.registry import Member
from services.router.config import RoutingConfig
from services.router.settings import RouterSettings

ROUTER_GRPC_PORT, ROUTER_HTTP_PORT = 50051, 9090
FALLBACK = "whisper_en"


@dataclass(frozen=True)
class Child:
    """A process of the tree: its name in logs, its command, variables set for it."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def service_child(member: Member) -> Child:
    """A language service, as the cluster runs it (`stt serve`)."""
    return Child(
        member.service,
        (
            *_stt(),
            "serve",
            member.service,
            "--host",
            "127.0.0.1",
            "--grpc-port",
            str(member.grpc_port),
            "--http-port",
            str(member.http_port),
        ),
    )


def worker_child(
    data_dir: Path,
    database_url: str,
    router_port: int,
    http_port: int,
    env: dict[str, str] | None = None,
) -> Child:
    """One job worker on the router's job store, transcribing (and diarizing) through the
    router; `env` (see `worker_env`) is set for it."""
    argv = [
        *_stt(),
        "worker",
        "--data-dir",
        str(data_dir),
        "--target",
        f"127.0.0.1:{router_port}",
        "--host",
        "127.0.0.1",
        "--http-port",
        str(http_port),
    ]
    env = dict(env or {})
    if database_url:  # it holds a password: it goes in the environment, not on a command line
        env["WORKER_DATABASE_URL"] = database_url
    return Child("worker", tuple(argv), env)


def worker_env(
    router: RouterSettings, file_roots: list[Path], environ: dict[str, str] | None = None
) -> dict[str, str]:
    """What the worker needs to read the jobs and reach the router as `stt up` runs it: the
    file roots given to `stt up`; with TLS on the router's ports, the router's own certificate
    as the one it trusts (and as its client certificate under mutual TLS: it must then be one
    the client CA signed), unless the environment says otherwise. Raises ValueError when the
    router asks for API keys and nothing gives the worker one."""
    environ = dict(os.environ) if environ is None else environ
    env: dict[str, str] = {}
    if file_roots:
        env[FILE_ROOTS] = ",".join(map(str, file_roots))
    tls = router.tls
    if tls.cert_file is not None and "WORKER_TARGET_TLS_CA_FILE" not in environ:
        env["WORKER_TARGET_TLS_CA_FILE"] = str(tls.cert_file)
        if tls.client_ca_file is not None:
            env["WORKER_TARGET_TLS_CERT_FILE"] = str(tls.cert_file)
            env["WORKER_TARGET_TLS_KEY_FILE"] = str(tls.key_file)
    if router.api_keys_file is not None and not environ.get("WORKER_API_KEY_FILE"):
        raise ValueError(
            "the router asks for API keys (ROUTER_API_KEYS_FILE): set WORKER_API_KEY_FILE to a "
            "file holding one of its keys, for the job worker's calls"
        )
    return env


def _stt() -> tuple[str, ...]:
    return (sys.executable, "-m", "services.cli")


def shifted(members: tuple[Member, ...], offset: int) -> tuple[Member, ...]:
    """The table with every port moved by `offset`, to run a second stack beside the first."""
    return tuple(
        replace(m, grpc_port=m.grpc_port + offset, http_port=m.http_port + offset) for m in members
    )


def runnable(
    members: tuple[Member, ...], environ: dict[str, str] | None = None
) -> tuple[list[Member], dict[str, str]]:
    """The members that can run here, and why each of the others cannot."""
    environ = dict(os.environ) if environ is None else environ
    chosen, skipped = [], {}
    for member in members:
        if member.requires and importlib.util.find_spec(member.requires) is None:
            skipped[member.service] = (
                f"{member.requires} is not installed (pip install 'stt-suite[{member.service}]')"
            )
        elif member.model_env and not environ.get(member.model_env, "").strip():
            skipped[member.service] = f"no model configured (set {member.model_env})"
        else:
            chosen.append(member)
    return chosen, skipped


def routing(members: tuple[Member, ...], running: list[Member]) -> RoutingConfig:
    """Each language to its own service when it runs, then to the fallback when that runs;
    the diarization service as the router's diarization target when it runs."""
    names = {m.service for m in running}
    diarization = next((m.target for m in running if m.diarization), "")
    running = [m for m in running if not m.diarization]
    routes: dict[str, tuple[str, ...]] = {}
    for member in members:
        chain = [name for name in (member.service, FALLBACK) if name in names]
        for language in member.languages:
            if chain:
                routes[language] = tuple(dict.fromkeys(chain))
    return RoutingConfig(
        backends={m.service: m.target for m in running},
        routes=routes,
        detector=FALLBACK if FALLBACK in names else "",
        diarization=diarization,
    )
