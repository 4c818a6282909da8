"""Fitness tests: the boundaries that keep this from becoming a distributed monolith."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
SERVICES = ("order", "inventory", "payment")


def imported_modules(root: Path) -> set[str]:
    """Top-level names of every module imported by the Python files under `root`."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = {f"{other}_service" for other in SERVICES if other != service}
    assert not imported_modules(REPO / "services" / service) & others


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_names_another_service_database(service):
    others = [f"{other.upper()}_DATABASE_URL" for other in SERVICES if other != service]
    for path in (REPO / "services" / service).rglob("*"):
        if path.is_file() and path.suffix in {".py", ".ini", ".md", ".toml"}:
            text = path.read_text()
            assert not [name for name in others if name in text], path


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_is_pure(service):
    domain = REPO / "services" / service / "src" / f"{service}_service" / "domain"
    forbidden = {"fastapi", "sqlalchemy", "aiokafka", "shared_contracts", "chassis", "httpx"}
    assert not imported_modules(domain) & forbidden


def test_shared_libraries_hold_no_service_code():
    services = {f"{s}_service" for s in SERVICES}
    assert not imported_modules(REPO / "libs" / "chassis" / "src") & services
    contracts = imported_modules(REPO / "shared-contracts" / "src")
    assert contracts <= {"shared_contracts", "pydantic", "enum", "uuid", "typing", "datetime"}
