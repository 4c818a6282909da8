"""What the services' HTTP APIs share: the error responses they document, JSON integers.

Every refusal is JSON with a `detail`: a sentence for the errors a route raises itself
(404, 409, a 422 from the domain), the chassis (503) or FastAPI (400); the list of
problems FastAPI's own request validation finds (422). A route lists in `responses=`
the ones it can give, so that its OpenAPI document names every status code a client,
or the fuzzer that holds the services to their documents, can get.
"""

from typing import Any

from pydantic import BaseModel, BeforeValidator, Field

Responses = dict[int | str, dict[str, Any]]
"""What FastAPI takes as `responses=` on a route or a router."""


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JSON_SCHEMA_INTEGER = BeforeValidator(_whole)
"""Makes a strict `int` of a request body take what its document promises: JSON Schema's
`integer` is any number without a fractional part, `2` or `2.0`. Last in the `Annotated`,
after the constraints, which then stay in the schema: `Annotated[int, Field(strict=True,
ge=0), JSON_SCHEMA_INTEGER]`. Strict still refuses strings and booleans."""


class ErrorOut(BaseModel):
    """A refused request: what went wrong, in one sentence."""

    detail: str = Field(description="Why the request was refused.")


class ValidationProblem(BaseModel):
    """One reason a request failed validation, as FastAPI reports it."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field."
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of problem, e.g. `missing`.")


class UnprocessableOut(BaseModel):
    """A 422: the request is malformed, or well-formed but not possible as asked."""

    detail: list[ValidationProblem] | str = Field(
        description="The problems with a malformed request, or why a well-formed one is refused."
    )


def error(description: str) -> dict[str, Any]:
    """A response whose body is an `ErrorOut`, described as `description`."""
    return {"model": ErrorOut, "description": description}


def unprocessable(description: str) -> Responses:
    """The 422 of a route that also refuses some well-formed requests, which `description` names."""
    return {422: {"model": UnprocessableOut, "description": f"Validation error, or {description}"}}


MALFORMED_BODY: Responses = {400: error("The body cannot be decoded: it is not UTF-8 text")}
"""What FastAPI answers, before validating it, to a body it cannot decode (JSON that is
not valid is a 422 like any other validation error)."""

UNAVAILABLE: Responses = {
    503: {
        **error(
            "The service cannot take the request now (its database is unreachable, too many "
            "requests are in flight, or too much work is pending): retry after `Retry-After` "
            "seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        },
    },
}
"""What the chassis answers to any API request it cannot serve now (see `chassis.app`)."""
