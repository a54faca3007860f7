"""Where the job store lives: settings that the router (which accepts jobs) and the workers
(which run them) both read, each with its own prefix (`ROUTER_DATA_DIR`, `WORKER_DATA_DIR`),
and the store they open."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from services.core.settings import SettingsGroup
from services.jobs.db import open_database
from services.jobs.store import Store


def default_data_dir() -> Path:
    """Where `stt up` and `stt worker` keep the embedded job store when given no --data-dir:
    `$XDG_DATA_HOME/stt-suite`, by default `~/.local/share/stt-suite`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stt-suite"


class StoreSettings(SettingsGroup):
    data_dir: Path | None = Field(
        None,
        description="Folder of the embedded job store (a SQLite file, `jobs.sqlite3`). A router "
        "with neither this nor a database URL serves no jobs; `stt up` and `stt worker` "
        "default to ~/.local/share/stt-suite.",
    )
    database_url: str = Field(
        "",
        description="PostgreSQL URL of the job store (`postgresql://user:password@host/db`); "
        "when set, used instead of the data directory.",
    )
    database_connections: int = Field(
        8, ge=1, description="Most PostgreSQL connections this process holds."
    )
    result_ttl_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="How long a finished job and its result are kept, in seconds, then deleted "
        "(the router's for cancelled jobs, the worker's for those it ends).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.database_url or self.data_dir)


def open_store(settings: StoreSettings) -> Store:
    database = open_database(
        settings.data_dir, settings.database_url, settings.database_connections
    )
    return Store(database, settings.result_ttl_s)
