"""The breaking-change gate: each rule with a change it must refuse, and the changes it allows.

Schemas come from pydantic models, as the real ones do: nested models and enums in
`$defs`, optional fields as `anyOf [..., null]`.
"""

import json
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from uuid import UUID

import pytest
from pydantic import BaseModel, Field


class Reason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    TIMEOUT = "TIMEOUT"


class Line(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Address(BaseModel):
    city: str
    zip: str


class Released(BaseModel):
    """The event as released: every test changes one thing of it."""

    order_id: UUID
    customer_id: str
    items: list[Line]
    reason: Reason
    shipping: Address
    note: str | None = None


def breaks(check_compat: ModuleType, current: type[BaseModel]) -> list[str]:
    released = {"Thing.v1.json": Released.model_json_schema()}
    changes: list[str] = check_compat.breaking_changes(
        released, {"Thing.v1.json": current.model_json_schema()}
    )
    return changes


class TestAllowedChanges:
    def test_an_unchanged_event_passes(self, check_compat: ModuleType) -> None:
        assert breaks(check_compat, Released) == []

    def test_adding_an_optional_field_passes(self, check_compat: ModuleType) -> None:
        class WithGift(Released):
            gift_wrap: bool | None = None

        assert breaks(check_compat, WithGift) == []

    def test_changing_only_the_documentation_passes(self, check_compat: ModuleType) -> None:
        class Documented(BaseModel):
            """Another docstring."""

            order_id: UUID = Field(description="The order.")
            customer_id: str = Field(title="Buyer", description="Who pays.")
            items: list[Line]
            reason: Reason
            shipping: Address
            note: str | None = Field(default="", description="Free text.")

        assert breaks(check_compat, Documented) == []

    def test_a_new_event_or_a_new_version_passes(self, check_compat: ModuleType) -> None:
        schema = Released.model_json_schema()
        current = {"Thing.v1.json": schema, "Thing.v2.json": {}, "Other.v1.json": schema}
        assert check_compat.breaking_changes({"Thing.v1.json": schema}, current) == []

    def test_the_real_schemas_are_compatible_with_themselves(
        self, check_compat: ModuleType
    ) -> None:
        schemas = check_compat.load(check_compat.SCHEMA_DIR)
        assert len(schemas) > 1
        assert check_compat.breaking_changes(schemas, schemas) == []


class TestFields:
    def test_a_removed_field_is_breaking(self, check_compat: ModuleType) -> None:
        class Removed(BaseModel):
            order_id: UUID
            items: list[Line]
            reason: Reason
            shipping: Address
            note: str | None = None

        assert breaks(check_compat, Removed) == [
            "Thing v1: field `customer_id` removed: consumers that read it lose it"
        ]

    def test_a_renamed_field_is_breaking_and_the_new_name_suggested(
        self, check_compat: ModuleType
    ) -> None:
        class Renamed(BaseModel):
            order_id: UUID
            buyer_id: str
            items: list[Line]
            reason: Reason
            shipping: Address
            note: str | None = None

        assert breaks(check_compat, Renamed) == [
            "Thing v1: field `customer_id` removed (renamed to `buyer_id`?): "
            "consumers that read it lose it",
            "Thing v1: field `buyer_id` added as required: events written before lack it",
        ]

    def test_a_field_removed_from_a_nested_object_is_breaking(
        self, check_compat: ModuleType
    ) -> None:
        class CityOnly(BaseModel):
            city: str

        class Nested(Released):
            shipping: CityOnly  # type: ignore[assignment]

        assert breaks(check_compat, Nested) == [
            "Thing v1: field `shipping.zip` removed: consumers that read it lose it"
        ]

    def test_a_field_removed_from_the_items_of_an_array_is_breaking(
        self, check_compat: ModuleType
    ) -> None:
        class SkuOnly(BaseModel):
            sku: str

        class Nested(Released):
            items: list[SkuOnly]  # type: ignore[assignment]

        assert breaks(check_compat, Nested) == [
            "Thing v1: field `items[].quantity` removed: consumers that read it lose it"
        ]


class TestTypes:
    def test_a_changed_type_is_breaking(self, check_compat: ModuleType) -> None:
        class Numeric(Released):
            customer_id: int  # type: ignore[assignment]

        assert breaks(check_compat, Numeric) == [
            "Thing v1: field `customer_id` changed type from string to integer"
        ]

    def test_a_field_becoming_nullable_is_a_type_change(self, check_compat: ModuleType) -> None:
        class Nullable(Released):
            customer_id: str | None  # type: ignore[assignment]

        assert breaks(check_compat, Nullable) == [
            "Thing v1: field `customer_id` changed type from string to string | null"
        ]

    def test_a_changed_type_in_the_items_of_an_array_is_breaking(
        self, check_compat: ModuleType
    ) -> None:
        class FractionalLine(BaseModel):
            sku: str
            quantity: float = Field(ge=1)

        class Nested(Released):
            items: list[FractionalLine]  # type: ignore[assignment]

        assert breaks(check_compat, Nested) == [
            "Thing v1: field `items[].quantity` changed type from integer to number"
        ]

    def test_a_changed_format_is_breaking(self, check_compat: ModuleType) -> None:
        class AnyId(Released):
            order_id: str  # type: ignore[assignment]

        assert breaks(check_compat, AnyId) == [
            'Thing v1: field `order_id` lost the constraint `format: "uuid"`'
        ]

    def test_a_changed_constraint_is_breaking(self, check_compat: ModuleType) -> None:
        class LooseLine(BaseModel):
            sku: str = Field(min_length=1)
            quantity: int = Field(ge=0)

        class Loose(Released):
            items: list[LooseLine]  # type: ignore[assignment]

        assert breaks(check_compat, Loose) == [
            "Thing v1: field `items[].sku` gained the constraint `minLength: 1`",
            "Thing v1: field `items[].quantity` changed `minimum` from 1 to 0",
        ]


class TestRequired:
    def test_an_optional_field_becoming_required_is_breaking(
        self, check_compat: ModuleType
    ) -> None:
        class NoteRequired(Released):
            note: str | None

        assert breaks(check_compat, NoteRequired) == [
            "Thing v1: field `note` newly required: events written before may lack it"
        ]

    def test_a_new_required_field_is_breaking(self, check_compat: ModuleType) -> None:
        class WithGift(Released):
            gift_wrap: bool

        assert breaks(check_compat, WithGift) == [
            "Thing v1: field `gift_wrap` added as required: events written before lack it"
        ]

    def test_a_required_field_becoming_optional_is_breaking(self, check_compat: ModuleType) -> None:
        class CustomerOptional(Released):
            customer_id: str = ""

        assert breaks(check_compat, CustomerOptional) == [
            "Thing v1: field `customer_id` no longer required: "
            "consumers that read it may not find it"
        ]


class TestEnums:
    def test_a_removed_enum_value_is_breaking(self, check_compat: ModuleType) -> None:
        class Fewer(StrEnum):
            OUT_OF_STOCK = "OUT_OF_STOCK"

        class Narrowed(Released):
            reason: Fewer  # type: ignore[assignment]

        assert breaks(check_compat, Narrowed) == [
            'Thing v1: field `reason` lost the enum value "TIMEOUT": events written before carry it'
        ]

    def test_an_added_enum_value_is_breaking(self, check_compat: ModuleType) -> None:
        class More(StrEnum):
            OUT_OF_STOCK = "OUT_OF_STOCK"
            TIMEOUT = "TIMEOUT"
            FRAUD = "FRAUD"

        class Widened(Released):
            reason: More  # type: ignore[assignment]

        assert breaks(check_compat, Widened) == [
            'Thing v1: field `reason` gained the enum value "FRAUD": '
            "consumers on the released model refuse it"
        ]

    def test_an_enum_replaced_by_a_plain_string_is_breaking(self, check_compat: ModuleType) -> None:
        class FreeText(Released):
            reason: str  # type: ignore[assignment]

        assert breaks(check_compat, FreeText) == [
            'Thing v1: field `reason` is no longer restricted to ["OUT_OF_STOCK", "TIMEOUT"]'
        ]


class TestEventVersions:
    def test_a_removed_event_version_is_breaking(self, check_compat: ModuleType) -> None:
        schema = Released.model_json_schema()
        assert check_compat.breaking_changes({"Thing.v1.json": schema}, {}) == [
            "Thing v1: removed, while its consumers may still read it; once none does, "
            "retire it with `make contracts-release`"
        ]

    def test_the_envelope_is_named_as_such(self, check_compat: ModuleType) -> None:
        old = {"Envelope.json": {"type": "object", "properties": {"event_id": {"type": "string"}}}}
        new = {"Envelope.json": {"type": "object", "properties": {}}}
        assert check_compat.breaking_changes(old, new) == [
            "Envelope: field `event_id` removed: consumers that read it lose it"
        ]


def write(directory: Path, schemas: dict[str, type[BaseModel]]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, model in schemas.items():
        (directory / name).write_text(json.dumps(model.model_json_schema()))
    return directory


class WithoutCustomer(BaseModel):
    order_id: UUID


class TestCommandLine:
    def test_check_exits_1_naming_event_version_and_field(
        self, check_compat: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        released = write(tmp_path / "released", {"Thing.v1.json": Released})
        current = write(tmp_path / "schemas", {"Thing.v1.json": WithoutCustomer})

        status = check_compat.main(["--schemas", str(current), "--released", str(released)])

        assert status == 1
        assert "Thing v1: field `customer_id` removed" in capsys.readouterr().out

    def test_check_passes_a_compatible_set(
        self, check_compat: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        released = write(tmp_path / "released", {"Thing.v1.json": Released})
        current = write(tmp_path / "schemas", {"Thing.v1.json": Released, "Thing.v2.json": Line})

        assert check_compat.main(["--schemas", str(current), "--released", str(released)]) == 0
        assert "compatible" in capsys.readouterr().out

    def test_release_refuses_a_breaking_change_and_keeps_the_released_set(
        self, check_compat: ModuleType, tmp_path: Path
    ) -> None:
        released = write(tmp_path / "released", {"Thing.v1.json": Released})
        before = (released / "Thing.v1.json").read_text()
        current = write(tmp_path / "schemas", {"Thing.v1.json": WithoutCustomer})

        assert check_compat.release(current, released) != []
        assert (released / "Thing.v1.json").read_text() == before

    def test_release_retires_a_removed_version_and_copies_the_current_set(
        self, check_compat: ModuleType, tmp_path: Path
    ) -> None:
        released = write(tmp_path / "released", {"Thing.v1.json": Released})
        current = write(tmp_path / "schemas", {"Thing.v2.json": WithoutCustomer})

        status = check_compat.main(
            ["release", "--schemas", str(current), "--released", str(released)]
        )

        assert status == 0
        assert sorted(p.name for p in released.iterdir()) == ["Thing.v2.json"]
        assert check_compat.check(current, released) == []
