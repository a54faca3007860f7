"""A real PostgreSQL server for the tests, started from Debian's `postgresql` package on a free
loopback port in a temporary folder, and stopped at the end of the session.

initdb refuses to run as root, so as root the server runs as the `postgres` user the package
creates. Without the package the PostgreSQL tests skip, saying how to install it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

INSTALL_HINT = "apt-get install postgresql"
START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """Why no server could be started here."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(f"PostgreSQL is not installed ({INSTALL_HINT})")


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def _run_as() -> list[str]:
    """The prefix that runs a server command as a user initdb accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise PostgresUnavailable(
            f"running as root and there is no postgres user ({INSTALL_HINT})"
        ) from error
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check() -> None:
    """Raises PostgresUnavailable, saying why, when no server can be started here."""
    _bin_dir()
    _run_as()


@contextlib.contextmanager
def server() -> Iterator[str]:
    """A running server; yields the URL of its `postgres` database (user `stt`, trust auth)."""
    bin_dir, prefix = _bin_dir(), _run_as()
    folder = Path(tempfile.mkdtemp(prefix="stt-postgres-"))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *map(str, args)], check=True, capture_output=True, timeout=START_TIMEOUT_S
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "stt", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "log", "-w", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        stderr = getattr(error, "stderr", b"") or b""
        raise RuntimeError(f"PostgreSQL did not start: {stderr.decode()} {log}") from error
    try:
        yield f"postgresql://stt@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server, dropped afterwards; yields its URL."""
    name = f"stt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
