"""Engine and session factory; the `lifespan` owns them, nothing is built at import."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

_T = TypeVar("_T")

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


class TransactionLocal(Generic[_T]):
    """A value kept for one transaction of a session, as a thread-local is for one thread.

    For what a module holds until the commit: the rows it locked, the changes it saves
    in one statement as the transaction commits rather than one statement per change.
    Made once per module, at import (it registers its session event listeners then).
    `name` is its key in `session.info`, one per value (the module's, say).
    `new` makes the value on a transaction's first `get`, which begins the transaction
    if none has begun (as a first statement would). `write`, if given, is called with
    it inside the commit, on the sync session that `AsyncSession` drives (SQL is
    allowed there): a failing write fails the commit, which then rolls back. The value
    is gone when the transaction ends: after the commit, or unwritten after a rollback
    or the session's close.
    """

    def __init__(
        self,
        name: str,
        new: Callable[[], _T],
        write: Callable[[Session, _T], None] | None = None,
    ) -> None:
        self._key = name
        self._new = new
        self._write = write
        event.listen(Session, "before_commit", self._at_commit)
        event.listen(Session, "after_transaction_end", self._forget)

    def get(self, session: AsyncSession | Session) -> _T:
        """The transaction's value, made on its first use."""
        value = self.find(session)
        if value is None:
            sync = session.sync_session if isinstance(session, AsyncSession) else session
            if not sync.in_transaction():
                sync.begin()  # else a rollback before any statement would not end it
            value = session.info[self._key] = self._new()
        return value

    def find(self, session: AsyncSession | Session) -> _T | None:
        """The transaction's value if it has one yet, without making one."""
        value: _T | None = session.info.get(self._key)
        return value

    def _at_commit(self, session: Session) -> None:
        # Read, not taken: the value stays until the transaction ends, so that what
        # runs after the commit (`after_commit`) still finds it.
        value = self.find(session)
        if value is not None and self._write is not None:
            self._write(session, value)

    def _forget(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the outermost: not a savepoint
            session.info.pop(self._key, None)


_CALLBACKS: TransactionLocal[list[Callable[[], None]]] = TransactionLocal(
    "chassis.after_commit", list
)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once the session's current transaction commits; never if it rolls
    back or the session closes first.

    For what must not happen unless the change is durable: waking the relay, counting
    a saga as finished. A transaction that is retried after a rollback registers again.
    """
    _CALLBACKS.get(session).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in _CALLBACKS.find(session) or []:
        callback()
