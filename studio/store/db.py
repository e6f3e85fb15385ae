"""Engines and transactions for the project database.

SQLite settings live here and nowhere else, so that every connection the studio opens (the
window, the command line, a migration) behaves the same way. Database errors are turned into
one-sentence ``StudioError`` subclasses at this boundary, so callers never see SQLAlchemy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from studio.api import StudioError

BUSY_TIMEOUT_MS = 10_000

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer, and a crash never leaves half a commit
    "PRAGMA foreign_keys=ON",  # lineage links are checked by the database, not only by our code
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",  # wait for another studio's short write instead of failing
    "PRAGMA synchronous=NORMAL",  # durable at every checkpoint; safe with WAL
)


class StoreError(StudioError):
    """The project database cannot do what was asked."""


class DatabaseLockedError(StoreError):
    """Another process holds the write lock for longer than the busy timeout."""


class DatabaseDamagedError(StoreError):
    """The file is not a readable database, or its pages are corrupt."""


class SchemaError(StoreError):
    """The database is not a studio database, or its schema is one this code does not know."""


def is_url(url_or_path: str | Path) -> bool:
    """A string with a scheme (``sqlite:///x``, ``postgresql://...``) is a URL; anything else a path."""
    return isinstance(url_or_path, str) and "://" in url_or_path


def make_engine(url_or_path: str | Path) -> Engine:
    """An engine for a SQLite file path or any SQLAlchemy URL, with the studio's SQLite settings."""
    if is_url(url_or_path):
        url = make_url(str(url_or_path))
    else:
        url = make_url("sqlite://").set(database=str(Path(url_or_path)))
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        # One shared connection, or every session would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except exc.SQLAlchemyError as error:
        session.rollback()
        raise translate_error(error) from error
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn database errors raised in the block into one-sentence studio errors."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate_error(error) from error


def translate_error(error: exc.SQLAlchemyError) -> StoreError:
    """The one sentence a user sees for a database failure, picked from the driver's message."""
    detail = str(getattr(error, "orig", None) or error).splitlines()[0].strip()
    text = detail.lower()
    if "locked" in text or "busy" in text:
        return DatabaseLockedError("the project database is locked by another studio")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return DatabaseDamagedError(f"the project database is damaged: {detail}")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the project database cannot be written (read-only): {detail}")
    if "disk is full" in text or "disk i/o" in text:
        return StoreError(f"the project database could not be written to disk: {detail}")
    if "unable to open" in text:
        return StoreError(f"the project database cannot be opened: {detail}")
    if isinstance(error, exc.IntegrityError):
        return StoreError(f"the change conflicts with what the project already holds: {detail}")
    return StoreError(f"the project database failed: {detail}")
