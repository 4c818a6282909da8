"""The HTTP APIs' breaking-change gate: each rule with a change it must refuse, and the changes it allows.

The released document comes from a FastAPI app, as the real ones do; each test changes
one thing of a copy, as a new version of the service would, and compares the two.
"""

import json
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any
from uuid import UUID

import pytest
from fastapi import FastAPI, Header, Query
from pydantic import BaseModel, ConfigDict, Field

Document = dict[str, Any]


class Status(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(max_length=64)
    quantity: int = Field(ge=1)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    items: list[Line]
    note: str | None = None


class Accepted(BaseModel):
    order_id: UUID
    status: Status


class OrderOut(BaseModel):
    order_id: UUID
    customer_id: str
    status: Status
    total_cents: int
    items: list[Line]
    note: str | None


def released_document() -> Document:
    """The API as released: every test changes one thing of it."""
    app = FastAPI()

    @app.post(
        "/v1/orders",
        status_code=202,
        response_model=Accepted,
        responses={409: {"description": "Idempotency-Key reused"}},
    )
    def place(
        order: OrderIn, key: Annotated[str | None, Header(alias="Idempotency-Key")] = None
    ) -> None:
        """Only the document is read, never the route."""

    @app.get("/v1/orders", response_model=list[UUID])
    def list_orders(
        status: Status | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> None:
        """Only the document is read, never the route."""

    @app.get(
        "/v1/orders/{order_id}", response_model=OrderOut, responses={404: {"description": "None"}}
    )
    def get_order(order_id: UUID) -> None:
        """Only the document is read, never the route."""

    return app.openapi()


def breaks(check_openapi: ModuleType, current: Document) -> list[str]:
    """What the gate says of `current`, a changed copy of the released document."""
    found: list[str] = check_openapi.breaking_changes(released_document(), current)
    return found


def model(document: Document, name: str) -> Document:
    schema: Document = document["components"]["schemas"][name]
    return schema


def operation(document: Document, method: str, path: str) -> Document:
    found: Document = document["paths"][path][method]
    return found


def parameters(document: Document, method: str, path: str) -> list[Document]:
    found: list[Document] = operation(document, method, path)["parameters"]
    return found


def rename(schema: Document, old: str, new: str) -> None:
    schema["properties"][new] = schema["properties"].pop(old)
    schema["required"] = [new if name == old else name for name in schema["required"]]


def add_field(schema: Document, name: str, field: Document, *, required: bool) -> None:
    schema["properties"][name] = field
    if required:
        schema["required"].append(name)


def query(name: str, *, required: bool) -> Document:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


class TestAllowedChanges:
    def test_an_unchanged_api_passes(self, check_openapi: ModuleType) -> None:
        assert breaks(check_openapi, released_document()) == []

    def test_a_new_operation_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        cancel = operation(api, "get", "/v1/orders/{order_id}")
        api["paths"]["/v1/orders/{order_id}/cancel"] = {"post": cancel}
        assert breaks(check_openapi, api) == []

    def test_an_optional_request_field_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        gift = {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None}
        add_field(model(api, "OrderIn"), "gift", gift, required=False)
        assert breaks(check_openapi, api) == []

    def test_a_new_response_field_passes_even_required(self, check_openapi: ModuleType) -> None:
        api = released_document()
        created = {"type": "string", "format": "date-time"}
        add_field(model(api, "OrderOut"), "created_at", created, required=True)
        assert breaks(check_openapi, api) == []

    def test_a_new_optional_parameter_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        parameters(api, "get", "/v1/orders").append(query("customer_id", required=False))
        assert breaks(check_openapi, api) == []

    def test_a_request_that_accepts_more_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        model(api, "OrderIn")["properties"]["customer_id"] = nullable
        parameters(api, "get", "/v1/orders")[1]["schema"]["maximum"] = 5000
        assert breaks(check_openapi, api) == []

    def test_a_response_that_promises_more_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        model(api, "OrderOut")["properties"]["note"] = {"type": "string", "minLength": 1}
        model(api, "OrderOut")["properties"]["total_cents"]["minimum"] = 0
        assert breaks(check_openapi, api) == []

    def test_a_new_error_status_and_a_renamed_path_parameter_pass(
        self, check_openapi: ModuleType
    ) -> None:
        api = released_document()
        item = api["paths"].pop("/v1/orders/{order_id}")
        item["get"]["parameters"][0]["name"] = "id"
        item["get"]["responses"]["410"] = {"description": "Archived"}
        api["paths"]["/v1/orders/{id}"] = item
        assert breaks(check_openapi, api) == []

    def test_the_real_documents_are_compatible_with_themselves(
        self, check_openapi: ModuleType
    ) -> None:
        documents = check_openapi.documents(check_openapi.SERVICES_DIR, check_openapi.DOCUMENT)
        # The saga's three, and any service added since (it has a document from day one).
        assert {"inventory", "order", "payment"} <= set(documents)
        for document in documents.values():
            assert check_openapi.breaking_changes(document, document) == []

    def test_the_real_documents_are_compatible_with_their_release(
        self, check_openapi: ModuleType
    ) -> None:
        released = check_openapi.documents(check_openapi.SERVICES_DIR, check_openapi.RELEASED)
        assert {"inventory", "order", "payment"} <= set(released)
        assert check_openapi.check() == []


class TestOperations:
    def test_a_removed_operation_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del api["paths"]["/v1/orders"]["get"]
        assert breaks(check_openapi, api) == [
            "GET /v1/orders: removed, while clients may still call it; "
            "once none does, retire it with `make contracts-release`"
        ]

    def test_a_removed_path_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del api["paths"]["/v1/orders/{order_id}"]
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: removed, while clients may still call it; "
            "once none does, retire it with `make contracts-release`"
        ]


class TestParameters:
    def test_a_new_required_parameter_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        parameters(api, "get", "/v1/orders").append(query("customer_id", required=True))
        assert breaks(check_openapi, api) == [
            "GET /v1/orders: query parameter `customer_id` added as required: "
            "clients do not send it"
        ]

    def test_a_new_required_header_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        token = {"name": "X-Token", "in": "header", "required": True, "schema": {"type": "string"}}
        parameters(api, "get", "/v1/orders/{order_id}").append(token)
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: header parameter `X-Token` added as required: "
            "clients do not send it"
        ]

    def test_an_optional_header_becoming_required_is_breaking(
        self, check_openapi: ModuleType
    ) -> None:
        api = released_document()
        parameters(api, "post", "/v1/orders")[0]["required"] = True
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: header parameter `Idempotency-Key` newly required: "
            "clients may not send it"
        ]

    def test_a_removed_parameter_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        parameters(api, "get", "/v1/orders").pop(0)
        assert breaks(check_openapi, api) == [
            "GET /v1/orders: query parameter `status` removed: what clients send in it is ignored"
        ]

    def test_a_tightened_parameter_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        parameters(api, "get", "/v1/orders")[1]["schema"]["maximum"] = 100
        assert breaks(check_openapi, api) == [
            "GET /v1/orders: query parameter `limit` changed `maximum` from 1000 to 100"
        ]

    def test_a_changed_parameter_type_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        parameters(api, "get", "/v1/orders/{order_id}")[0]["schema"] = {"type": "integer"}
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: path parameter `order_id` changed type "
            "from string to integer"
        ]


class TestRequestBodies:
    def test_a_field_becoming_required_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        model(api, "OrderIn")["required"].append("note")
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body field `note` newly required: "
            "requests written to the release may lack it"
        ]

    def test_a_new_required_field_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        add_field(model(api, "OrderIn"), "currency", {"type": "string"}, required=True)
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body field `currency` added as required: "
            "requests written to the release lack it"
        ]

    def test_a_renamed_field_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        rename(model(api, "OrderIn"), "customer_id", "buyer_id")
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body field `customer_id` removed (renamed to `buyer_id`?): "
            "requests written to the release may carry it",
            "POST /v1/orders: request body field `buyer_id` added as required: "
            "requests written to the release lack it",
        ]

    def test_a_field_no_longer_accepted_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del model(api, "OrderIn")["properties"]["note"]
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body field `note` removed: "
            "requests written to the release may carry it"
        ]

    def test_a_changed_field_type_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        model(api, "OrderIn")["properties"]["customer_id"] = {"type": "integer"}
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body field `customer_id` changed type from string to integer"
        ]

    def test_a_body_newly_required_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        body = operation(api, "post", "/v1/orders")["requestBody"]
        operation(api, "get", "/v1/orders")["requestBody"] = body
        assert breaks(check_openapi, api) == [
            "GET /v1/orders: request body now required: clients do not send one"
        ]

    def test_a_body_no_longer_read_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del operation(api, "post", "/v1/orders")["requestBody"]
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body no longer read: what clients send in it is ignored"
        ]

    def test_a_media_type_no_longer_accepted_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        content = operation(api, "post", "/v1/orders")["requestBody"]["content"]
        content["application/cbor"] = content.pop("application/json")
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: request body no longer in application/json"
        ]

    def test_a_removed_enum_value_is_breaking_where_requests_send_it(
        self, check_openapi: ModuleType
    ) -> None:
        api = released_document()
        model(api, "Status")["enum"].remove("CONFIRMED")
        assert breaks(check_openapi, api) == [
            'GET /v1/orders: query parameter `status` lost the enum value "CONFIRMED": '
            "requests written to the release carry it"
        ]


class TestResponses:
    def test_a_removed_field_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del model(api, "OrderOut")["properties"]["total_cents"]
        model(api, "OrderOut")["required"].remove("total_cents")
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: response 200 field `total_cents` removed: "
            "clients that read it lose it"
        ]

    def test_a_renamed_field_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        rename(model(api, "OrderOut"), "customer_id", "buyer_id")
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: response 200 field `customer_id` removed "
            "(renamed to `buyer_id`?): clients that read it lose it"
        ]

    def test_a_changed_field_type_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        model(api, "OrderOut")["properties"]["total_cents"] = {"type": "string"}
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: response 200 field `total_cents` changed type "
            "from integer to string"
        ]

    def test_a_field_that_may_now_be_missing_or_null_is_breaking(
        self, check_openapi: ModuleType
    ) -> None:
        api = released_document()
        model(api, "OrderOut")["required"].remove("customer_id")
        nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        model(api, "OrderOut")["properties"]["customer_id"] = nullable
        assert breaks(check_openapi, api) == [
            "GET /v1/orders/{order_id}: response 200 field `customer_id` no longer required: "
            "clients that read it may not find it",
            "GET /v1/orders/{order_id}: response 200 field `customer_id` changed type "
            "from string to string | null",
        ]

    def test_an_added_enum_value_is_breaking_where_responses_carry_it(
        self, check_openapi: ModuleType
    ) -> None:
        api = released_document()
        model(api, "Status")["enum"].append("SHIPPED")
        assert breaks(check_openapi, api) == [
            'POST /v1/orders: response 202 field `status` gained the enum value "SHIPPED": '
            "clients on the released model refuse it",
            "GET /v1/orders/{order_id}: response 200 field `status` gained the enum value "
            '"SHIPPED": clients on the released model refuse it',
        ]

    @pytest.mark.parametrize(
        ("max_length", "broken"),
        [
            (32, "POST /v1/orders: request body field `items[].sku`"),
            (128, "GET /v1/orders/{order_id}: response 200 field `items[].sku`"),
        ],
    )
    def test_a_constraint_shared_by_request_and_response_breaks_one_each_way(
        self, check_openapi: ModuleType, max_length: int, broken: str
    ) -> None:
        api = released_document()
        model(api, "Line")["properties"]["sku"]["maxLength"] = max_length
        assert breaks(check_openapi, api) == [
            f"{broken} changed `maxLength` from 64 to {max_length}"
        ]

    def test_a_removed_success_status_is_breaking(self, check_openapi: ModuleType) -> None:
        api = released_document()
        responses = operation(api, "post", "/v1/orders")["responses"]
        responses["200"] = responses.pop("202")
        assert breaks(check_openapi, api) == [
            "POST /v1/orders: response 202 removed: clients that expect it fail"
        ]

    def test_a_removed_error_status_passes(self, check_openapi: ModuleType) -> None:
        api = released_document()
        del operation(api, "post", "/v1/orders")["responses"]["409"]
        assert breaks(check_openapi, api) == []

    def test_a_removed_response_header_is_breaking(self, check_openapi: ModuleType) -> None:
        released = released_document()
        retry = {"Retry-After": {"schema": {"type": "integer"}}}
        operation(released, "post", "/v1/orders")["responses"]["409"]["headers"] = retry
        assert check_openapi.breaking_changes(released, released_document()) == [
            "POST /v1/orders: response 409 header `Retry-After` removed: "
            "clients that read it lose it"
        ]


def write(services: Path, service: str, document: Document, *, released: bool = False) -> None:
    path = services / service / ("released/openapi.json" if released else "openapi.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def without_listing() -> Document:
    document = released_document()
    del document["paths"]["/v1/orders"]["get"]
    return document


class TestCommandLine:
    def test_check_exits_1_naming_service_operation_and_field(
        self, check_openapi: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        current = released_document()
        rename(model(current, "OrderOut"), "customer_id", "buyer_id")
        write(tmp_path, "order", released_document(), released=True)
        write(tmp_path, "order", current)

        assert check_openapi.main(["--services", str(tmp_path)]) == 1
        assert (
            "order: GET /v1/orders/{order_id}: response 200 field `customer_id` removed"
            in capsys.readouterr().out
        )

    def test_check_passes_a_compatible_api_and_one_never_released(
        self, check_openapi: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write(tmp_path, "order", released_document(), released=True)
        write(tmp_path, "order", released_document())
        write(tmp_path, "shipping", without_listing())

        assert check_openapi.main(["--services", str(tmp_path)]) == 0
        assert "compatible" in capsys.readouterr().out

    def test_a_service_whose_api_is_gone_breaks_every_operation(
        self, check_openapi: ModuleType, tmp_path: Path
    ) -> None:
        write(tmp_path, "order", released_document(), released=True)

        assert len(check_openapi.check(tmp_path)) == 3

    def test_release_refuses_a_breaking_change_and_keeps_the_released_document(
        self, check_openapi: ModuleType, tmp_path: Path
    ) -> None:
        current = released_document()
        model(current, "OrderIn")["required"].append("note")
        write(tmp_path, "order", released_document(), released=True)
        write(tmp_path, "order", current)
        before = (tmp_path / "order/released/openapi.json").read_text()

        assert check_openapi.release(tmp_path) != []
        assert (tmp_path / "order/released/openapi.json").read_text() == before

    def test_a_service_releases_its_api_alone(
        self, check_openapi: ModuleType, tmp_path: Path
    ) -> None:
        write(tmp_path, "order", released_document(), released=True)
        write(tmp_path, "order", without_listing())
        write(tmp_path, "payment", released_document(), released=True)
        write(tmp_path, "payment", without_listing())
        before = (tmp_path / "order/released/openapi.json").read_text()

        assert (
            check_openapi.main(["release", "--service", "payment", "--services", str(tmp_path)])
            == 0
        )
        payment = tmp_path / "payment"
        assert (payment / "released/openapi.json").read_text() == (
            payment / "openapi.json"
        ).read_text()
        assert (tmp_path / "order/released/openapi.json").read_text() == before

    def test_releasing_an_unknown_service_is_refused(
        self, check_openapi: ModuleType, tmp_path: Path
    ) -> None:
        write(tmp_path, "order", released_document(), released=True)

        assert check_openapi.release(tmp_path, "shipping") != []

    def test_release_retires_a_removed_operation_and_releases_every_service(
        self, check_openapi: ModuleType, tmp_path: Path
    ) -> None:
        write(tmp_path, "order", released_document(), released=True)
        write(tmp_path, "order", without_listing())
        write(tmp_path, "shipping", released_document())

        assert check_openapi.main(["release", "--services", str(tmp_path)]) == 0
        for service in ("order", "shipping"):
            released = tmp_path / service / "released/openapi.json"
            assert released.read_text() == (tmp_path / service / "openapi.json").read_text()
        assert check_openapi.check(tmp_path) == []
