"""Fixtures of the shared-contracts tests: its tools, scripts kept beside the package."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
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
