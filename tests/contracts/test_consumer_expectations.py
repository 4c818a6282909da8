"""Each service's declared expectations name exactly the events its consumer handles.

`services/<service>/contracts/consumes.yaml` is the one list of who consumes what: the
producers' contract tests check against it and `asyncapi.yaml` is generated from it. So
it must not drift from the code: every event with a handler is declared, on a topic the
service subscribes to, and nothing else is.
"""

import importlib
from pathlib import Path

import pytest

from chassis.contract_testing import load_expectations
from devstack.stack import discover_services
from shared_contracts import event_key

SERVICES = Path(__file__).parents[2] / "services"


@pytest.mark.parametrize("service", discover_services(SERVICES.parent))
def test_a_service_declares_what_it_handles_on_the_topics_it_subscribes_to(service):
    main = importlib.import_module(f"{service}_service.main")
    declared = [e for e in load_expectations(SERVICES) if e.consumer == service]

    assert sorted(e.event for e in declared) == sorted(event_key(model) for model in main.HANDLERS)
    assert {e.topic for e in declared} == {topic.value for topic in main.TOPICS}
