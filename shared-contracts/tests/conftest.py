"""Fixtures of the shared-contracts tests: its tools, scripts kept beside the package."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as an import would: `check_openapi.py` imports its
    # sibling `check_compat`, which is on no path but the script's own directory.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generate_schemas() -> ModuleType:
    """`generate_schemas.py`: writes `schemas/` and `asyncapi.yaml` (`make contracts`)."""
    return _load("generate_schemas")


@pytest.fixture(scope="session")
def check_compat() -> ModuleType:
    """`check_compat.py`: the breaking-change gate (`make contracts-check`)."""
    return _load("check_compat")


@pytest.fixture(scope="session")
def check_openapi(check_compat: ModuleType) -> ModuleType:
    """`check_openapi.py`: the HTTP APIs' breaking-change gate, built on `check_compat`."""
    assert sys.modules["check_compat"] is check_compat  # what its `import check_compat` finds
    return _load("check_openapi")
