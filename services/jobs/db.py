"""The job store's connection to its database: a SQLite file (the embedded default, one
machine) or PostgreSQL by URL (several workers in a cluster).

The store writes each statement once, with `?` placeholders; a `Database` runs it on its
engine and says the few words that differ (column types, row locks). Every statement runs
inside `transaction`, which commits when the block ends and rolls back when it raises.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

SQLITE_FILE = "jobs.sqlite3"
# A writer waits this long for another process's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 30.0


class Tx:
    """One transaction's cursor, taking `?` placeholders whatever the engine."""

    def __init__(self, cursor, placeholder: str):
        self._cursor = cursor
        self._placeholder = placeholder

    def run(self, sql: str, params: tuple = ()) -> int:
        """Runs a statement; the number of rows it changed."""
        self._cursor.execute(sql.replace("?", self._placeholder), params)
        return self._cursor.rowcount

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        self._cursor.execute(sql.replace("?", self._placeholder), params)
        return list(self._cursor.fetchall())

    def row(self, sql: str, params: tuple = ()) -> tuple | None:
        found = self.rows(sql, params)
        return found[0] if found else None


class Database(abc.ABC):
    dialect = ""
    #: Column types by role, as each engine spells them.
    types: ClassVar[dict[str, str]] = {}
    #: What a claim's SELECT adds so that concurrent claimers never take the same row.
    lock_rows = ""

    @abc.abstractmethod
    def transaction(self, write: bool = True) -> contextlib.AbstractContextManager[Tx]: ...

    @abc.abstractmethod
    def columns(self, tx: Tx, table: str) -> set[str]:
        """The names of `table`'s columns."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases connections."""


class SqliteDatabase(Database):
    """A file under the data directory. Each transaction opens its own connection (cheap for
    SQLite), so any thread may use the store; a write transaction takes the database's write
    lock at its start (BEGIN IMMEDIATE), which serialises claims without row locks."""

    dialect = "sqlite"
    types: ClassVar[dict[str, str]] = {"blob": "BLOB", "real": "REAL", "bigint": "INTEGER"}

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with contextlib.closing(self._connect()) as connection:
                # Readers and one writer at a time, across processes, without blocking each other.
                connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as error:  # a folder it may not write, a file that is no database
            raise OSError(f"cannot open the job store {path}: {error}") from error

    def columns(self, tx: Tx, table: str) -> set[str]:
        return {row[1] for row in tx.rows(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        pass  # each transaction closed its own connection

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        with contextlib.closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(connection.cursor(), "?")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


class PostgresDatabase(Database):
    """PostgreSQL through a psycopg 3 connection pool; claims lock the row they take and skip
    rows other claimers hold (`FOR UPDATE SKIP LOCKED`)."""

    dialect = "postgres"
    types: ClassVar[dict[str, str]] = {
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
    }
    lock_rows = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, max_connections: int):
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
            name="stt-jobs",
        )
        self._pool.open(wait=True, timeout=POSTGRES_CONNECT_TIMEOUT_S)

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            yield Tx(cursor, "%s")

    def columns(self, tx: Tx, table: str) -> set[str]:
        rows = tx.rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row[0] for row in rows}

    def close(self) -> None:
        self._pool.close()


def open_database(data_dir: Path | None, database_url: str, max_connections: int) -> Database:
    """PostgreSQL when a URL is given, else the SQLite file in `data_dir`."""
    if database_url:
        return PostgresDatabase(database_url, max_connections)
    if data_dir is None:
        raise ValueError("the job store needs a data directory or a database URL")
    return SqliteDatabase(Path(data_dir).expanduser() / SQLITE_FILE)
