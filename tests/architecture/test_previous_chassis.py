"""Independent release: a service pinned to an older chassis release still passes on it.

Symptom it prevents: a shared library that every service must upgrade to, in lockstep,
whenever it changes (and pins whose lower bound nobody has tried). The oldest chassis
release that the pins admit is built from the commit its CHANGELOG names (`release_source`: `git archive`,
then `uv build`), and each service whose pin admits it is installed with it, alone, in a
fresh venv. See docs/releasing.md and "Fitness tests" in docs/architecture.md.
"""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from .isolation import REPO, SERVICES, Venv, build_wheel, release_source

OLDEST_CHASSIS = "0.1.0"
"""The oldest chassis release that a service's pin admits, the lower bound of the
lowest pin: move it on when that pin moves, not with each release (docs/releasing.md)."""


def pin(service: str, library: str) -> Requirement:
    """The service's requirement on `library`, from its `[project] dependencies`."""
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in project["project"]["dependencies"]]
    (found,) = [r for r in requirements if r.name == library]
    return found


def chassis_pin(service: str) -> Requirement:
    return pin(service, "chassis")


def version_of(package_dir: str) -> str:
    project = tomllib.loads((REPO / package_dir / "pyproject.toml").read_text())
    version: str = project["project"]["version"]
    return version


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_pins_the_libraries_it_uses(service):
    """Symptom: a service that takes whatever chassis or contracts the tree has, so that
    nobody can say which releases it works with, or release it against an older one.

    Its requirements on `chassis` and `shared-contracts` have a lower and an upper bound,
    and admit the versions in the tree (which `uv lock` enforces as well). See
    docs/releasing.md.
    """
    for library, directory in (
        ("chassis", "libs/chassis"),
        ("shared-contracts", "shared-contracts"),
    ):
        specifier = pin(service, library).specifier
        operators = {spec.operator for spec in specifier}
        assert {">=", "<"} <= operators, f"{service}: pin {library} as >=X,<Y, not {specifier!r}"
        assert specifier.contains(version_of(directory)), f"{service}: {library} {specifier}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The oldest chassis release the pins admit, and the current shared-contracts, services, devstack
    (with the saga console, which `devstack up` serves)."""
    out = tmp_path_factory.mktemp("wheels")
    old = release_source("libs/chassis", OLDEST_CHASSIS, tmp_path_factory.mktemp("release"))
    built = {"chassis": build_wheel(old, out)}
    packages = {
        "shared-contracts": "shared-contracts",
        "devstack": "infra/devstack",
        "saga-console": "infra/console",
    }
    packages |= {service: f"services/{service}" for service in SERVICES}
    return built | {name: build_wheel(REPO / path, out) for name, path in packages.items()}


def test_the_oldest_chassis_is_the_lowest_pin_and_older_than_the_tree():
    """Otherwise the other tests would prove nothing about moving the chassis on, or
    would try a release no pin names as its lower bound."""
    lowest = min(
        Version(spec.version)
        for service in SERVICES
        for spec in chassis_pin(service).specifier
        if spec.operator == ">="
    )
    assert lowest == Version(OLDEST_CHASSIS)
    current = version_of("libs/chassis")
    assert tuple(map(int, current.split("."))) > tuple(map(int, OLDEST_CHASSIS.split(".")))
    assert chassis_pin(ON_THE_OLDEST).specifier.contains(OLDEST_CHASSIS)
    assert chassis_pin(ON_THE_OLDEST).specifier.contains(current)


ON_THE_OLDEST = "shipping"
"""The service that runs its integration tests on the oldest chassis too: one whose pin
admits it (payment did, until it took the consumer's prefetch of chassis 0.3.0)."""

ITS_TESTS = [
    "tests/integration/test_api.py",
    "tests/integration/test_service.py",
    "tests/integration/test_migrations.py",
]
"""Its integration tests but `test_handlers.py`, which uses the chassis' contract-testing
helpers: their extra (`chassis[contract-testing]`) is the workspace's, not in the
service's own test group."""


@pytest.mark.parametrize(
    "service", [s for s in SERVICES if chassis_pin(s).specifier.contains(OLDEST_CHASSIS)]
)
def test_a_service_passes_its_unit_tests_on_the_oldest_chassis_it_admits(service, wheels, tmp_path):
    """Symptom: a chassis release that forces every service to move with it.

    The service's unit tests (whose conftest builds the whole app on the chassis) pass in
    a venv holding the oldest chassis release it admits, unchanged service code and the current
    shared-contracts. See docs/releasing.md.
    """
    venv = Venv.create(
        tmp_path / "venv",
        locked_for=[f"{service}-service"],
        wheels=[wheels["chassis"], wheels["shared-contracts"], wheels[service]],
    )
    assert venv.version("chassis") == OLDEST_CHASSIS
    venv.pytest(service, ["tests/unit"])


# It starts PostgreSQL and the broker, as the integration tests it runs do.
@pytest.mark.integration
def test_a_service_runs_its_integration_tests_on_the_oldest_chassis(wheels, tmp_path):
    """Symptom: a chassis release that forces every service to move with it.

    Shipping, pinned `chassis>=0.1,<1`, passes its integration tests (`ITS_TESTS`) on
    the oldest release it admits: its API, consumer, relay, outbox, inbox and migrations
    run on chassis 0.1.0, against real PostgreSQL and the broker (the root harness,
    `devstack`, installed beside it). Every service that admits it runs its unit tests
    on it (above); one runs its integration tests, which keeps the whole file near a
    minute. See docs/releasing.md.
    """
    venv = Venv.create(
        tmp_path / "venv",
        locked_for=[f"{ON_THE_OLDEST}-service", "devstack", "saga-console"],
        wheels=[
            wheels[name]
            for name in ("chassis", "shared-contracts", ON_THE_OLDEST, "devstack", "saga-console")
        ],
    )
    assert venv.version("chassis") == OLDEST_CHASSIS
    assert venv.where("chassis").startswith(str(venv.path))
    venv.pytest(ON_THE_OLDEST, ITS_TESTS, with_harness=True)
