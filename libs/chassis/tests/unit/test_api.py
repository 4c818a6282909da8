"""What the services' HTTP APIs share: integers as their documents promise, documented errors."""

from typing import Annotated

import pytest
from fastapi import FastAPI
from pydantic import Field, TypeAdapter, ValidationError

from chassis.api import JSON_SCHEMA_INTEGER, UNAVAILABLE, error, unprocessable

Quantity = Annotated[int, Field(strict=True, ge=1, le=10), JSON_SCHEMA_INTEGER]


@pytest.mark.parametrize(("value", "expected"), [(2, 2), (2.0, 2), (10.0, 10)])
def test_an_integer_is_any_number_without_a_fraction(value: object, expected: int) -> None:
    assert TypeAdapter(Quantity).validate_python(value) == expected


@pytest.mark.parametrize("value", [2.5, "2", True, 11.0, 0, float("inf"), float("nan")])
def test_fractions_strings_booleans_and_values_out_of_bounds_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Quantity).validate_python(value)


def test_the_schema_keeps_the_constraints() -> None:
    assert TypeAdapter(Quantity).json_schema() == {"type": "integer", "minimum": 1, "maximum": 10}


def test_documented_errors_appear_in_the_openapi_document() -> None:
    app = FastAPI()

    @app.get("/things/{thing}", responses={**UNAVAILABLE, 404: error("No such thing")})
    async def get_thing(thing: int) -> None:
        """A route with every kind of documented error."""

    @app.post("/things", responses=unprocessable("the thing exists"))
    async def post_thing(thing: int) -> None:
        """A route whose 422 may also come from the domain."""

    paths = app.openapi()["paths"]
    get, post = paths["/things/{thing}"]["get"], paths["/things"]["post"]
    assert sorted(get["responses"]) == ["200", "404", "422", "503"]
    assert get["responses"]["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert post["responses"]["422"]["description"] == "Validation error, or the thing exists"
    content = post["responses"]["422"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/UnprocessableOut"}
