"""The breaking-change gate of the HTTP APIs: each service's OpenAPI document against its release.

`python shared-contracts/check_openapi.py` (`make contracts-check`) compares each
released document, `services/<svc>/released/openapi.json`, with the service's current
one, `services/<svc>/openapi.json`, and exits 1 listing every change that would break
a client written against the release:

- an operation removed (a path, or a method on it): its clients get a 404 or a 405;
- a parameter or header removed (what clients send in it is ignored), newly required,
  or added as required (clients do not send it);
- a request body now required or no longer read, or a media type it is no longer
  accepted in;
- a request body or parameter that refuses what the release accepted: a field removed
  or newly required, a type or format changed, a constraint tightened, an enum value
  removed;
- a success status code removed (clients check for it);
- a response, or a response header, that clients on the release cannot read: a field
  removed or renamed, a field no longer required, a type or format changed, a
  constraint loosened, an enum value added.

Adding an operation, an optional parameter or request field, a response field or a
status code passes, and so does loosening what a request may be or tightening what a
response will be. The documents' schemas are compared by `check_compat.schema_changes`,
the comparison the event schemas use, in the direction each is read in: a response is
read by clients on the release, as an event is by consumers, so it may not accept more
than it did; a request is read by the current service, so whatever a client on the
release sends must still be valid.

`python shared-contracts/check_openapi.py release` (`make contracts-release`) makes the
current documents the released ones. It refuses a breaking change too, except removed
operations: retiring an operation (a deprecated `/v1`) once no client calls it is what a
release is for. `release --service payment` (`make contracts-release SERVICE=payment`)
releases that service's document alone, so that each team releases its API when it
releases its service (docs/releasing.md).

Released documents live beside the service that owns them, since an API has one owner,
which releases it on its own schedule; event schemas, shared by every producer and
consumer, live in `shared-contracts/released/`. Stdlib only, like `check_compat.py`.
"""

import json
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from check_compat import (
    Direction,
    Schema,
    command_line,
    describe,
    resolve,
    schema_changes,
    verdict,
)

SERVICES_DIR = Path(__file__).parents[1] / "services"
DOCUMENT = Path("openapi.json")
RELEASED = Path("released") / "openapi.json"

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

RESPONSES = Direction(readers="clients", writes=None)
"""A response is read by clients on the release: it may not accept more than it did."""

REQUESTS = Direction(readers=None, writes="requests written to the release")
"""A request is read by the current service: it must accept every request it did."""

Document = Mapping[str, Any]


def breaking_changes(released: Document, current: Document) -> list[str]:
    """Every change from `released` to `current` that breaks a client, as readable lines."""
    found = removed_operations(released, current)
    now = _operations(current)
    for key, old in _operations(released).items():
        if key in now:
            comparison = _Comparison(released, current, old, now[key])
            found += [f"{old.name}: {change}" for change in comparison.changes()]
    return found


def removed_operations(released: Document, current: Document) -> list[str]:
    """The released operations that `current` no longer has, as breaking changes."""
    now = _operations(current)
    return [
        f"{operation.name}: removed, while clients may still call it; once none does, "
        "retire it with `make contracts-release`"
        for key, operation in _operations(released).items()
        if key not in now
    ]


@dataclass(frozen=True)
class _Operation:
    """An operation of a document, as the comparison needs it."""

    name: str
    """`GET /v1/orders/{order_id}`."""
    path: str
    definition: Schema
    """The operation object, with the parameters its path item declares for every method."""


def _operations(document: Document) -> dict[tuple[str, str], _Operation]:
    """Each operation by method and path with its parameters unnamed: the same URLs,
    whatever the names."""
    found = {}
    for path, item in document.get("paths", {}).items():
        for method in (method for method in METHODS if method in item):
            parameters = [*item.get("parameters", []), *item[method].get("parameters", [])]
            definition = {**item[method], "parameters": parameters}
            key = (method, re.sub(r"\{[^}]*\}", "{}", path))
            found[key] = _Operation(f"{method.upper()} {path}", path, definition)
    return found


class _Comparison:
    """One operation as released and as it is now, each in its own document."""

    def __init__(
        self, old_doc: Document, new_doc: Document, old: _Operation, new: _Operation
    ) -> None:
        self._docs = (old_doc, new_doc)
        self._operations = (old, new)
        self._old, self._new = old.definition, new.definition

    def changes(self) -> Iterator[str]:
        """What breaks a client of this operation, one phrase each."""
        yield from self._parameters()
        yield from self._request_body()
        yield from self._responses()

    def _schema_changes(self, old: Schema, new: Schema, direction: Direction) -> Iterator[str]:
        for path, change in schema_changes(
            old, new, direction, old_root=self._docs[0], new_root=self._docs[1]
        ):
            yield describe(path, change)

    def _content(self, name: str, old: Schema, new: Schema, direction: Direction) -> Iterator[str]:
        """The changes to each media type of a request body or a response, `name` naming it."""
        for media_type, content in old.get("content", {}).items():
            if media_type not in new.get("content", {}):
                yield f"{name} no longer in {media_type}"
                continue
            new_schema = new["content"][media_type].get("schema", {})
            for change in self._schema_changes(content.get("schema", {}), new_schema, direction):
                yield f"{name} {change}"

    def _parameters(self) -> Iterator[str]:
        old = _parameters(self._operations[0], self._docs[0])
        new = _parameters(self._operations[1], self._docs[1])
        for key, parameter in old.items():
            name = f"{key[0]} parameter `{parameter['name']}`"
            if key not in new:
                yield f"{name} removed: what clients send in it is ignored"
                continue
            if new[key].get("required") and not parameter.get("required"):
                yield f"{name} newly required: clients may not send it"
            for change in self._schema_changes(
                parameter.get("schema", {}), new[key].get("schema", {}), REQUESTS
            ):
                yield f"{name} {change}"
        for key, parameter in new.items():
            name = f"{key[0]} parameter `{parameter['name']}`"
            if key not in old and parameter.get("required"):
                yield f"{name} added as required: clients do not send it"

    def _request_body(self) -> Iterator[str]:
        old = resolve(self._old.get("requestBody", {}), self._docs[0])
        new = resolve(self._new.get("requestBody", {}), self._docs[1])
        if not old:
            if new.get("required"):
                yield "request body now required: clients do not send one"
            return
        if not new:
            yield "request body no longer read: what clients send in it is ignored"
            return
        if new.get("required") and not old.get("required"):
            yield "request body newly required: clients may not send one"
        yield from self._content("request body", old, new, REQUESTS)

    def _responses(self) -> Iterator[str]:
        new_responses = self._new.get("responses", {})
        for status, old in self._old.get("responses", {}).items():
            if status not in new_responses:
                if status.startswith("2"):
                    yield f"response {status} removed: clients that expect it fail"
                continue
            old = resolve(old, self._docs[0])
            new = resolve(new_responses[status], self._docs[1])
            yield from self._response(status, old, new)

    def _response(self, status: str, old: Schema, new: Schema) -> Iterator[str]:
        yield from self._content(f"response {status}", old, new, RESPONSES)
        for header, definition in old.get("headers", {}).items():
            name = f"response {status} header `{header}`"
            if header not in new.get("headers", {}):
                yield f"{name} removed: clients that read it lose it"
                continue
            new_schema = new["headers"][header].get("schema", {})
            for change in self._schema_changes(definition.get("schema", {}), new_schema, RESPONSES):
                yield f"{name} {change}"


def _parameters(operation: _Operation, document: Document) -> dict[tuple[str, str], Schema]:
    """An operation's parameters by where they go and their name; header names ignore
    case, and a path parameter is known by its place in the path, since its name is
    nowhere in the URL."""
    places = re.findall(r"\{([^}]*)\}", operation.path)
    found = {}
    for parameter in operation.definition["parameters"]:
        parameter = resolve(parameter, document)
        where, name = parameter["in"], parameter["name"]
        if where == "header":
            name = name.lower()
        elif where == "path" and name in places:
            name = str(places.index(name))
        found[(where, name)] = parameter
    return found


def documents(services_dir: Path, path: Path) -> dict[str, Document]:
    """The OpenAPI document at `path` in each service's directory that has one, by service."""
    return {
        service.name: json.loads((service / path).read_text())
        for service in sorted(services_dir.iterdir())
        if (service / path).is_file()
    }


def check(services_dir: Path = SERVICES_DIR) -> list[str]:
    """The breaking changes of each service's document since its released one."""
    current = documents(services_dir, DOCUMENT)
    return [
        f"{service}: {change}"
        for service, released in documents(services_dir, RELEASED).items()
        for change in breaking_changes(released, current.get(service, {}))
    ]


def release(services_dir: Path = SERVICES_DIR, service: str | None = None) -> list[str]:
    """Make each service's document (or only `service`'s) its released one, unless a
    change breaks a client.

    Returns the breaking changes that stopped it (none is released then), or [] once
    every such service's `released/openapi.json` is a copy of its `openapi.json`.
    """
    current, released = documents(services_dir, DOCUMENT), documents(services_dir, RELEASED)
    if service is not None:
        if service not in current.keys() | released.keys():
            return [f"{service}: no such service with an OpenAPI document in {services_dir}"]
        current = {name: doc for name, doc in current.items() if name == service}
        released = {name: doc for name, doc in released.items() if name == service}
    blocking = []
    for service, document in released.items():
        retired = set(removed_operations(document, current.get(service, {})))
        blocking += [
            f"{service}: {change}"
            for change in breaking_changes(document, current.get(service, {}))
            if change not in retired
        ]
    if blocking:
        return blocking
    for service in released.keys() - current.keys():
        (services_dir / service / RELEASED).unlink()  # its API is retired as a whole
    for service in current:
        (services_dir / service / RELEASED).parent.mkdir(exist_ok=True)
        shutil.copyfile(services_dir / service / DOCUMENT, services_dir / service / RELEASED)
    return []


def main(argv: list[str] | None = None) -> int:
    """Run `check` (the default) or `release`; print the verdict; return the exit status."""
    parser = command_line("check_openapi.py", __doc__ or "")
    parser.add_argument(
        "--services", type=Path, default=SERVICES_DIR, help="the directory of the services"
    )
    parser.add_argument(
        "--service", help="release this service's document only (the others stay as released)"
    )
    args = parser.parse_args(argv)
    if args.command == "release":
        problems = release(args.services, args.service)
    else:
        problems = check(args.services)
    done = "released" if args.command == "release" else "compatible with the last release"
    if args.service and args.command == "release":
        which = f"the OpenAPI document of {args.service}"
    else:
        which = f"{len(documents(args.services, DOCUMENT))} OpenAPI documents"
    return verdict(
        problems,
        since="the last release of the APIs",
        advice="Add the new shape as a new operation (a /v2) beside the old one instead "
        "(docs/evolving-contracts.md).",
        passed=f"APIs {done}: {which} in {args.services}",
    )


if __name__ == "__main__":
    sys.exit(main())
