"""Each service's checked-in OpenAPI document is what its code serves."""

from pathlib import Path

import pytest

from chassis.openapi import build_app, render

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize("service", ["order", "inventory", "payment"])
def test_the_checked_in_openapi_document_is_current(service):
    committed = (REPO / "services" / service / "openapi.json").read_text()
    assert committed == render(build_app(service)), (
        f"services/{service}/openapi.json is stale: run `make contracts`"
    )
