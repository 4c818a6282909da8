"""The console's buttons: what it needs from whoever provides them.

The console only shows controls and runs them on request; it cannot start or stop
anything itself. The stack launcher (`devstack`), which owns the processes, provides
the controls (`devstack.workshop.Workshop`) and serves the console in its own process.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ControlInfo:
    """One control as the page and `make scenario` list it."""

    name: str
    """What `make scenario NAME=...` takes, e.g. `place-order`."""
    title: str
    """The button's label."""
    group: str
    """Which row of buttons it belongs to (`orders`, `order`, `inventory`, `payment`, `broker`)."""
    help: str
    """One sentence: what it does and what to watch."""


@dataclass(frozen=True)
class ControlResult:
    """What running a control did."""

    ok: bool
    message: str
    order_ids: Sequence[str] = field(default_factory=tuple)
    """The orders it placed, so that the page (and a test) can follow them."""


class Controls(Protocol):
    """The workshop controls a console offers."""

    @property
    def catalog(self) -> Sequence[ControlInfo]:
        """Every control, in the order the page shows them."""
        ...

    async def start(self) -> None:
        """Get ready (e.g. seed products and accounts); called once the console is up."""
        ...

    async def run(self, name: str) -> ControlResult:
        """Run the control `name` (one of `catalog`) and say what it did."""
        ...

    async def aclose(self) -> None:
        """Release what `start` and `run` opened."""
        ...
