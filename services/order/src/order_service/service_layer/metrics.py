"""The saga's own metrics: how many sagas start and finish, how, and how long they take.

Each is counted once its transaction commits (`chassis.db.after_commit`), so a use case
that rolls back and is retried counts once.
"""

from functools import partial

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import after_commit
from order_service.domain.model import Order, Status

STARTED = Counter("sagas_started_total", "Orders placed: sagas started")
FINISHED = Counter(
    "sagas_finished_total",
    "Sagas decided, by final status and reason (a confirmed order cancelled later counts again)",
    ["status", "reason"],
)
DURATION = Histogram(
    "saga_duration_seconds",
    "From placing an order to its decision (CONFIRMED or CANCELLED)",
    ["status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)

_DECISIONS = {"OrderConfirmed": Status.CONFIRMED, "OrderCancelled": Status.CANCELLED}


def count_started(session: AsyncSession) -> None:
    """Count a saga as started when the session's transaction commits."""
    after_commit(session, STARTED.inc)


def count_decisions(order: Order, session: AsyncSession) -> None:
    """Count the decisions among the order's new steps when the transaction commits."""
    for step in order.new_steps:
        status = _DECISIONS.get(step.step)
        if status is not None:
            reason = str(step.detail.get("reason", ""))
            seconds = (step.at - order.created_at).total_seconds()
            after_commit(session, partial(_finished, status.value, reason, seconds))


def _finished(status: str, reason: str, seconds: float) -> None:
    FINISHED.labels(status, reason).inc()
    DURATION.labels(status).observe(seconds)
