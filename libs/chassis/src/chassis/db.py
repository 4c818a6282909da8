"""Engine and session factory; the `lifespan` owns them, nothing is built at import."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names that Alembic migrations can rely on."""


def new_metadata() -> MetaData:
    """A `MetaData` with the project's naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


POOL_SIZE = 20
"""Connections per process, all kept open: one opened per transaction above a smaller
pool (the overflow) cost a new server process and the statements prepared anew."""


def create_engine(url: str) -> AsyncEngine:
    """An asyncpg engine with a fixed pool that survives a database restart.

    A connection that the server closed (a restart) is replaced when it is checked
    out; SQLAlchemy's `pool_pre_ping` would do that with three round trips per
    checkout (BEGIN, a ping, ROLLBACK), which cost more than many transactions' SQL.
    A connection that dies unnoticed fails its statement; SQLAlchemy then replaces
    every connection of the pool, and the caller's retry (the consumer's, a client's
    after the 503) gets a fresh one.
    """
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0)
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


def _replace_closed(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    # asyncpg knows locally whether the server closed the socket: no round trip.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")  # the pool reconnects


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit, as async code needs."""
    return async_sessionmaker(engine, expire_on_commit=False)


_AFTER_COMMIT = "chassis.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once the session's current transaction commits; never if it rolls back.

    For what must not happen unless the change is durable: waking the relay, counting
    a saga as finished. A transaction that is retried after a rollback registers again.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
