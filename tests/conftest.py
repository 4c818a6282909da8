"""A whole local stack that consecutive tests share (tests/e2e, tests/workshop).

A session-scoped fixture would keep its stack until the session ends, idle after its
last test, and an idle stack takes a quarter of a core (its consumers keep polling the
broker); under xdist every worker would start one of each. Instead, all the tests of a
stack's directory run on one worker, those using the stack first, and the stack, held
by a `Shared`, stops as soon as the next test does not use it.
"""

import contextlib
from collections.abc import Callable, Iterator
from typing import Generic, Self, TypeVar

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_STACKS = {"stack": "tests/e2e/", "workshop": "tests/workshop/"}
"""Each fixture holding a `Shared` stack, and the directory of the tests using it."""
_NEXT_TEST = pytest.StashKey[pytest.Item | None]()
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests using a shared stack first, each directory's in a row, in their order."""
    items.sort(key=lambda item: not _uses_shared_stack(item))  # stable


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest -p no:xdist works too
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With `-n` (`make test`): each directory of `SHARED_STACKS` goes to one worker."""
    return _SharedStackScheduling(config, log) if config.getvalue("dist") == "load" else None


class _SharedStackScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no types
    """`--dist load`, but all the tests of each directory of `SHARED_STACKS` are one unit.

    The units go out largest first, so the two stacks' directories (minutes each) start
    at once, on the two workers, while the short tests fill in around them; a stack's
    directory handed out last would run alone at the end.
    """

    def _split_scope(self, nodeid: str) -> str:
        return next((d for d in SHARED_STACKS.values() if nodeid.startswith(d)), nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # Read by `Shared.lend` while the test's fixtures are torn down, within this call.
    item.stash[_NEXT_TEST] = nextitem
    return (yield)


def _uses(item: pytest.Item | None, fixture: str) -> bool:
    return isinstance(item, pytest.Function) and fixture in item.fixturenames


def _uses_shared_stack(item: pytest.Item) -> bool:
    return any(_uses(item, fixture) for fixture in SHARED_STACKS)


class Shared(Generic[T]):
    """A resource that consecutive tests share: made for the first, closed after the last.

    A session fixture holds it, and the tests' own fixture `lend`s it to each test. A
    later user makes it anew.
    """

    def __init__(self, make: Callable[[], contextlib.AbstractContextManager[T]]) -> None:
        self._make = make
        self._exit = contextlib.ExitStack()
        self._value: T | None = None

    def lend(self, request: pytest.FixtureRequest) -> Iterator[T]:
        """The body of the tests' fixture: yield the resource (made now if it is not
        open), then close it unless the test this worker runs next uses the same fixture."""
        if self._value is None:
            self._value = self._exit.enter_context(self._make())
        yield self._value
        name, nextitem = request.fixturename, request.node.stash.get(_NEXT_TEST, None)
        if name is None or not _uses(nextitem, name):
            self.close()

    def close(self) -> None:
        """Close the resource if it is open."""
        self._value = None
        self._exit.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
