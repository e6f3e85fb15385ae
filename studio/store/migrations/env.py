"""Alembic environment for the project database.

The studio runs migrations in-process and passes its own connection in
``config.attributes["connection"]``. Developers can also run the ``alembic`` command with
``studio/store/alembic.ini`` (``-x db=PATH`` picks the database) to autogenerate a revision.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from studio.store.orm import BaseModel, UTCDateTime

config = context.config
target_metadata = BaseModel.metadata


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write plain SQLAlchemy types into revisions, so migrations never import the ORM module."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def _database_url() -> str:
    db = context.get_x_argument(as_dictionary=True).get("db")
    if db:
        return db if "://" in db else f"sqlite:///{db}"
    return config.get_main_option("sqlalchemy.url") or "sqlite:///studio.sqlite"


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    from studio.store.db import make_engine
    from studio.store.migrate import migration_connection

    engine = make_engine(_database_url())
    try:
        with migration_connection(engine) as own_connection:
            _run_on(own_connection)
    finally:
        engine.dispose()


if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
