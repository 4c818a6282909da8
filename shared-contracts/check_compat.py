"""The breaking-change gate: compare the event schemas with the last released set.

`python shared-contracts/check_compat.py` (`make contracts-check`) compares each schema
in `released/` with the schema of the same event and version in `schemas/`, and exits 1
listing every change that would break a consumer of that version:

- a field removed, or renamed (to a reader, the same thing);
- a field's type changed, or its format or any other constraint (`minimum`, `minItems`...):
  events that were valid before, or are valid now, would be refused by one side;
- a field newly required, or added as required: events written before lack it;
- a field no longer required: consumers that read it may not find it;
- an enum value removed (events written before still carry it) or added (consumers
  still on the released model refuse it);
- an event version removed: its consumers would wait for it forever.

Titles, descriptions and defaults are documentation and may change. Adding an optional
field passes, and so does a new event or a new version of one: a breaking change is a
new version, published beside the old one until its consumers have moved.

The comparison itself (`schema_changes`) takes a `Direction`: who must still understand
what after the change. Events go both ways, since consumers on the released model read
new events and new consumers read events written before; `check_openapi.py` uses it
one way for what HTTP clients read (responses) and the other for what they send (requests).

`python shared-contracts/check_compat.py release` (`make contracts-release`) makes the
current schemas the released set. It refuses a breaking change too, except an event
version that is gone: retiring a version once no consumer reads it is what a release is for.

Stdlib only, and outside the `shared_contracts` package, which holds data, not tools.
"""

import argparse
import json
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent
SCHEMA_DIR = ROOT / "schemas"
RELEASED_DIR = ROOT / "released"

Schema = Mapping[str, Any]

ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "deprecated", "$comment", "readOnly"}
)
"""Keywords that document a schema without changing what is valid."""

# Compared by walking into them; every other keyword is a constraint compared as a value.
_WALKED = frozenset(
    {"$ref", "$defs", "type", "anyOf", "oneOf", "allOf", "enum", "properties", "required", "items"}
)

# Constraints with an order: a higher lower bound, or a lower upper bound, accepts less.
_LOWER_BOUNDS = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"})
_UPPER_BOUNDS = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"})


@dataclass(frozen=True)
class Direction:
    """Who must keep understanding whom across a change, named as the messages name them.

    `readers` are the readers still on the released schema (consumers, clients): what is
    written now must stay valid for them, so the schema may not accept more than it did.
    `writes` are what was written to the released schema (events, requests): current
    readers must still accept it, so the schema may not accept less. None where nobody
    is in that position: the service reading a request is always the current one, and
    a response is read as soon as it is written.
    """

    readers: str | None
    writes: str | None


EVENTS = Direction(readers="consumers", writes="events written before")
"""Events are read by consumers on either model, and outlive the model they were written with."""


def load(directory: Path) -> dict[str, Schema]:
    """The JSON Schemas in `directory`, by file name (`OrderCreated.v1.json`)."""
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def label(file_name: str) -> str:
    """`OrderCreated v1` for `OrderCreated.v1.json`; `Envelope` for `Envelope.json`."""
    event, _, version = file_name.removesuffix(".json").partition(".")
    return f"{event} {version}" if version else event


def removed_versions(released: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """The released event versions that `current` no longer has, as breaking changes."""
    return [
        f"{label(name)}: removed, while its consumers may still read it; once none does, "
        "retire it with `make contracts-release`"
        for name in released
        if name not in current
    ]


def breaking_changes(released: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """Every change from `released` to `current` that breaks a consumer, as readable lines."""
    found = removed_versions(released, current)
    for name, old in released.items():
        if name in current:
            found += [
                f"{label(name)}: {describe(path, change)}"
                for path, change in schema_changes(old, current[name], EVENTS)
            ]
    return found


def schema_changes(
    old: Schema,
    new: Schema,
    direction: Direction,
    *,
    old_root: Schema | None = None,
    new_root: Schema | None = None,
) -> Iterator[tuple[str, str]]:
    """`(field path, what changed)` for every change from `old` to `new` that breaks `direction`.

    The root's path is ''. `$ref`s resolve against `old_root` and `new_root` (the
    documents holding the schemas), by default the schemas themselves.
    """
    roots = (old if old_root is None else old_root, new if new_root is None else new_root)
    return _Comparison(*roots, direction).changes(old, new)


def describe(path: str, change: str) -> str:
    """A change as a phrase: "field `items[].sku` removed: ..."; the root's has no field."""
    return f"field `{path}` {change}" if path else change


class _Comparison:
    """Walks a released schema and its current version side by side, each with its own `$defs`."""

    def __init__(self, old_root: Schema, new_root: Schema, direction: Direction) -> None:
        self._roots = (old_root, new_root)
        self._direction = direction
        self._walking: set[tuple[int, int]] = set()

    def changes(self, old: Schema, new: Schema) -> Iterator[tuple[str, str]]:
        """`(field path, what changed)` for every breaking change, the root's path being ''."""
        return self._compare(old, new, "")

    def _compare(self, old: Schema, new: Schema, path: str) -> Iterator[tuple[str, str]]:
        old, new = resolve(old, self._roots[0]), resolve(new, self._roots[1])
        pair = (id(old), id(new))
        if pair in self._walking:
            return  # a recursive model: this pair is being compared further up
        self._walking.add(pair)
        try:
            yield from self._compare_resolved(old, new, path)
        finally:
            self._walking.discard(pair)

    def _compare_resolved(self, old: Schema, new: Schema, path: str) -> Iterator[tuple[str, str]]:
        old_type, new_type = self._type(old, 0), self._type(new, 1)
        if old_type != new_type:
            yield from self._retyped(old, new, path, f"changed type from {old_type} to {new_type}")
            return
        yield from _constraints(old, new, path, self._direction)
        yield from _enum(old, new, path, self._direction)
        yield from self._properties(old, new, path)
        if isinstance(old.get("items"), Mapping) and isinstance(new.get("items"), Mapping):
            yield from self._compare(old["items"], new["items"], f"{path}[]")
        # Equal types pair the alternatives up; one side spelling them as a `type` list
        # instead (`["integer", "null"]`) leaves nothing nested to compare.
        for keyword in ("anyOf", "oneOf", "allOf"):
            branches = zip(old.get(keyword, []), new.get(keyword, []), strict=False)
            for old_branch, new_branch in branches:
                yield from self._compare(old_branch, new_branch, path)

    def _retyped(
        self, old: Schema, new: Schema, path: str, change: str
    ) -> Iterator[tuple[str, str]]:
        """A type that gained or lost alternatives (`string` to `string | null`).

        Breaking unless the direction allows it: current readers of old writes need every
        old alternative kept; readers on the release need nothing added. What both keep
        is then compared alternative by alternative.
        """
        old_branches, new_branches = self._branches(old, 0), self._branches(new, 1)
        shared = old_branches.keys() & new_branches.keys()
        lost = len(shared) < len(old_branches) and self._direction.writes is not None
        gained = len(shared) < len(new_branches) and self._direction.readers is not None
        if lost or gained or not shared:
            yield path, change
            return
        for name in sorted(shared):
            yield from self._compare(old_branches[name], new_branches[name], path)

    def _branches(self, schema: Schema, side: int) -> dict[str, Schema]:
        """A schema's alternatives by type (itself alone if it has none); a name the
        alternatives share (two objects) is left out, since they cannot be paired up."""
        schema = resolve(schema, self._roots[side])
        alternatives = schema.get("anyOf") or schema.get("oneOf") or [schema]
        names = [self._type(branch, side) for branch in alternatives]
        return {
            name: branch
            for name, branch in zip(names, alternatives, strict=True)
            if names.count(name) == 1
        }

    def _type(self, schema: Schema, side: int) -> str:
        """A readable summary of what a schema accepts: `integer`, `string | null`, ..."""
        schema = resolve(schema, self._roots[side])
        for keyword in ("anyOf", "oneOf", "allOf"):
            if keyword in schema:
                joiner = " & " if keyword == "allOf" else " | "
                return joiner.join(self._type(branch, side) for branch in schema[keyword])
        declared = schema.get("type", "any")
        return " | ".join(declared) if isinstance(declared, list) else str(declared)

    def _properties(self, old: Schema, new: Schema, path: str) -> Iterator[tuple[str, str]]:
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        readers, writes = self._direction.readers, self._direction.writes
        added = [name for name in new_fields if name not in old_fields]
        for name, old_field in old_fields.items():
            field = f"{path}.{name}" if path else name
            if name not in new_fields:
                renamed = f" (renamed to `{added[0]}`?)" if len(added) == 1 else ""
                lost = f"{readers} that read it lose it" if readers else f"{writes} may carry it"
                yield field, f"removed{renamed}: {lost}"
                continue
            if readers and name in old_required and name not in new_required:
                yield field, f"no longer required: {readers} that read it may not find it"
            if writes and name not in old_required and name in new_required:
                yield field, f"newly required: {writes} may lack it"
            yield from self._compare(old_field, new_fields[name], field)
        for name in added:
            if writes and name in new_required:
                field = f"{path}.{name}" if path else name
                yield field, f"added as required: {writes} lack it"


def resolve(schema: Schema, root: Schema) -> Schema:
    """Follow local `$ref`s (`#/$defs/OrderLine`) to the schema they name."""
    seen = set()
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot resolve $ref {ref!r}: only local, acyclic refs are")
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema = target
    return schema


def _constraints(
    old: Schema, new: Schema, path: str, direction: Direction
) -> Iterator[tuple[str, str]]:
    for keyword in sorted((old.keys() | new.keys()) - ANNOTATIONS - _WALKED):
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        narrower, wider = _narrows(keyword, before, after)
        if not ((narrower and direction.writes) or (wider and direction.readers)):
            continue  # e.g. a looser bound on a request: every request sent before still passes
        if before is None:
            yield path, f"gained the constraint `{keyword}: {json.dumps(after)}`"
        elif after is None:
            yield path, f"lost the constraint `{keyword}: {json.dumps(before)}`"
        else:
            yield path, f"changed `{keyword}` from {json.dumps(before)} to {json.dumps(after)}"


def _narrows(keyword: str, before: Any, after: Any) -> tuple[bool, bool]:
    """Whether a constraint's change makes the schema refuse values it accepted, and
    whether it makes it accept values it refused; an unordered change does both."""
    if before is None or after is None:
        return before is None, after is None
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if numbers and keyword in _LOWER_BOUNDS:
        return after > before, after < before
    if numbers and keyword in _UPPER_BOUNDS:
        return after < before, after > before
    return True, True


def _enum(old: Schema, new: Schema, path: str, direction: Direction) -> Iterator[tuple[str, str]]:
    readers, writes = direction.readers, direction.writes
    if "enum" not in old and "enum" not in new:
        return
    if "enum" not in new:
        if readers:
            yield path, f"is no longer restricted to {json.dumps(old['enum'])}"
        return
    if "enum" not in old:
        if writes:
            yield path, f"is now restricted to {json.dumps(new['enum'])}"
        return
    for value in old["enum"]:
        if writes and value not in new["enum"]:
            yield path, f"lost the enum value {json.dumps(value)}: {writes} carry it"
    for value in new["enum"]:
        if readers and value not in old["enum"]:
            refused = f"{readers} on the released model refuse it"
            yield path, f"gained the enum value {json.dumps(value)}: {refused}"


def check(schema_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR) -> list[str]:
    """The breaking changes of the schemas in `schema_dir` since those in `released_dir`."""
    return breaking_changes(load(released_dir), load(schema_dir))


def release(schema_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR) -> list[str]:
    """Make the schemas the released set, unless a change breaks a kept version.

    Returns the breaking changes that stopped it, or [] once `released_dir` holds exactly
    the schemas of `schema_dir`.
    """
    released, current = load(released_dir), load(schema_dir)
    retired = set(removed_versions(released, current))
    blocking = [change for change in breaking_changes(released, current) if change not in retired]
    if blocking:
        return blocking
    released_dir.mkdir(exist_ok=True)
    for stale in released_dir.glob("*.json"):
        stale.unlink()
    for name in current:
        shutil.copyfile(schema_dir / name, released_dir / name)
    return []


def command_line(prog: str, description: str) -> argparse.ArgumentParser:
    """The options a gate's command line starts with: `check` (the default) or `release`."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=["check", "release"], default="check")
    return parser


def verdict(problems: list[str], *, since: str, advice: str, passed: str) -> int:
    """Print the breaking changes and `advice`, or `passed` if there are none; the exit status."""
    if problems:
        print(f"{len(problems)} breaking change(s) since {since}:")
        print("\n".join(f"  - {line}" for line in problems))
        print(advice)
        return 1
    print(passed)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `check` (the default) or `release`; print the verdict; return the exit status."""
    parser = command_line("check_compat.py", __doc__ or "")
    parser.add_argument("--schemas", type=Path, default=SCHEMA_DIR, help="the current schemas")
    parser.add_argument("--released", type=Path, default=RELEASED_DIR, help="the released set")
    args = parser.parse_args(argv)
    action = release if args.command == "release" else check
    done = "released" if args.command == "release" else "compatible with the last release"
    return verdict(
        action(args.schemas, args.released),
        since=f"the last release ({args.released})",
        advice="Publish a breaking change as a new event version instead (docs/evolving-contracts.md).",
        passed=f"contracts {done}: {len(load(args.schemas))} schemas in {args.schemas}",
    )


if __name__ == "__main__":
    sys.exit(main())
