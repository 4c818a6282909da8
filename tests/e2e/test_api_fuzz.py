"""Fuzzing each service's HTTP API from its OpenAPI document, against the running stack.

`schemathesis run` loads the document a service serves, generates requests from it,
valid and invalid, and sends them to the live service (every phase: boundary values,
random data, and chains of calls along the links it infers, such as placing an order
and then reading or cancelling it). Every response must be documented, in status code,
content type, headers and body, no response may be a 5xx, and invalid requests must be
refused. The run is bounded (`MAX_EXAMPLES` per operation) and deterministic: the same
requests every time, so a failure in CI reproduces locally.

What the fuzzer sends is real data in the shared stack (products, accounts, orders);
the saga must keep its invariants for any valid input, so the last test checks them.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from devstack.client import SagaClient
from devstack.invariants import settle
from devstack.stack import Stack

pytestmark = pytest.mark.e2e

FUZZED = ["inventory", "payment", "order"]
"""Catalog and accounts first: the orders fuzzed last may then name products and buyers
that exist, and go through the whole saga rather than stop at a 422."""

MAX_EXAMPLES = 50
"""Generated requests per operation in the fuzzing phase (the other phases add a few)."""

EXCLUDED_CHECKS = {
    # A schema-valid request may still be refused by the domain: an order for a SKU
    # not in the catalog, or a page after an unknown cursor, is a documented 422.
    "positive_data_acceptance",
    # A 405 lists only the methods of the first route on that path (Starlette's
    # routing): `OPTIONS /v1/orders` answers `Allow: GET` although POST exists too.
    "allow_header_conformance",
}

TIMEOUT_SECONDS = 240
"""A hung run fails the test; `subprocess.run` kills the fuzzer when it expires."""


@pytest.mark.parametrize("svc", FUZZED)
def test_no_request_gets_a_5xx_or_an_undocumented_response(
    stack: Stack, svc: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{stack.url(svc)}/openapi.json",
            "--checks=all",
            f"--exclude-checks={','.join(sorted(EXCLUDED_CHECKS))}",
            f"--max-examples={MAX_EXAMPLES}",
            "--generation-deterministic",
            "--workers=1",
            "--no-color",
            # The stack holds no secrets; unmasked headers make the printed curl
            # commands that reproduce a failure complete (`Idempotency-Key`).
            "--output-sanitize=false",
        ],
        # Schemathesis and Hypothesis keep caches in the working directory.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


async def test_the_invariants_hold_after_fuzzing(client: SagaClient) -> None:
    """Runs after the fuzzing above: pytest runs a module's tests in the order written."""
    assert (await settle(client)).violations == []
