"""Fitness test: each service builds, installs and passes its tests alone.

Symptom it prevents: a service that only works inside the monorepo, because it
imports a sibling's code or leans on a dependency that only a sibling declares, so it
cannot be built, tested or deployed without the others. See "Fitness tests" in
docs/architecture.md.
"""

import tomllib
from pathlib import Path

import pytest

from .isolation import REPO, SERVICES, Venv, build_wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of the libraries and the services, built from the working tree."""
    out = tmp_path_factory.mktemp("wheels")
    packages = {"shared-contracts": "shared-contracts", "chassis": "libs/chassis"}
    packages |= {service: f"services/{service}" for service in SERVICES}
    return {name: build_wheel(REPO / path, out) for name, path in packages.items()}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_builds_and_passes_its_tests_installed_alone(service, wheels, tmp_path):
    """Symptom: a service that cannot be built or tested without its siblings.

    A fresh venv gets the service's wheel, the chassis and shared-contracts wheels, and
    the third-party packages the service's own metadata requires (as locked) plus its
    `test` group, and nothing else: its tests run there from its directory. Unit tests
    only (their conftest imports the whole app, `main` and every layer); the integration
    tests need the root harness (`devstack`), which `test_previous_chassis.py` installs
    for payment. Every module of the package must import, too, in case a unit test does
    not reach it (`__main__` aside: importing it starts the
    service). See "Fitness tests" in docs/architecture.md.
    """
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    assert "test" in project.get("dependency-groups", {}), (
        f"services/{service}/pyproject.toml: declare a `test` dependency group, what its "
        "tests need beyond its runtime dependencies (pytest, pytest-asyncio, httpx)"
    )
    package = f"{service}_service"
    venv = Venv.create(
        tmp_path / "venv",
        locked_for=[f"{service}-service"],
        wheels=[wheels["shared-contracts"], wheels["chassis"], wheels[service]],
    )
    assert "/site-packages/" in venv.where(package), "the service must come from its wheel"
    assert not [o for o in SERVICES if o != service and venv.can_import(f"{o}_service")]
    venv.pytest(service, ["tests/unit"])
    every_module = (
        f"import importlib, pkgutil, {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    if not m.name.endswith('.__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    venv.run_python(every_module)
