"""The inventory's business rules, without I/O."""

import uuid
from collections.abc import Callable

import pytest

from inventory_service.domain import model
from inventory_service.domain.model import Product, Reservation, ReservationStatus

ORDER = uuid.UUID("00000000-0000-0000-0000-000000000001")


def stocked(sku: str, stock: int) -> Product:
    product = Product(sku)
    product.replace_catalog(f"Product {sku}", 100, stock)
    return product


def total(product: Product) -> int:
    return product.available + product.reserved + product.sold


class TestCatalog:
    def test_a_new_product_gets_version_1_and_its_stock_on_hand(self) -> None:
        product = stocked("A", 7)
        assert (product.name, product.unit_price_cents, product.version) == ("Product A", 100, 1)
        assert (product.available, product.reserved, product.sold) == (7, 0, 0)

    def test_replacing_sets_units_on_hand_keeps_held_and_sold_and_bumps_the_version(self) -> None:
        product = Product("A", "old", 5, available=1, reserved=2, sold=3, version=4, received=6)
        product.replace_catalog("new", 9, 10)
        assert product == Product(
            "A", "new", 9, available=10, reserved=2, sold=3, version=5, received=15
        )

    @pytest.mark.parametrize(("name", "price", "stock"), [("", 1, 1), ("x", -1, 1), ("x", 1, -1)])
    def test_bad_catalog_data_is_refused(self, name: str, price: int, stock: int) -> None:
        with pytest.raises(model.InvalidProduct):
            Product("A").replace_catalog(name, price, stock)


class TestReceived:
    def test_a_new_product_has_received_its_stock(self) -> None:
        assert stocked("A", 7).received == 7

    def test_each_put_adds_the_change_of_units_on_hand_up_or_down(self) -> None:
        product = stocked("A", 10)
        product.replace_catalog("A", 100, 15)
        assert product.received == 15
        product.replace_catalog("A", 100, 4)
        assert product.received == 4
        product.replace_catalog("A", 100, 4)
        assert product.received == 4

    def test_received_is_the_sum_of_the_buckets_through_moves_and_puts(self) -> None:
        product = stocked("A", 10)
        steps: list[Callable[[], None]] = [
            lambda: product.reserve(4),
            lambda: product.sell(3),
            lambda: product.replace_catalog("A", 100, 2),  # 6 on hand -> 2
            lambda: product.release(1),
            lambda: product.reserve(3),
            lambda: product.replace_catalog("A", 100, 20),
            lambda: product.take_back(2),
            lambda: product.replace_catalog("A", 100, 0),
        ]
        for step in steps:
            step()
            assert total(product) == product.received
        assert (product.available, product.reserved, product.sold, product.received) == (
            0,
            3,
            1,
            4,
        )

    def test_moving_units_never_changes_received(self) -> None:
        product = stocked("A", 10)
        product.reserve(5)
        product.sell(2)
        product.release(3)
        product.take_back(2)
        assert product.received == 10

    def test_a_refused_put_changes_nothing(self) -> None:
        product = stocked("A", 10)
        with pytest.raises(model.InvalidProduct):
            product.replace_catalog("A", 100, -1)
        assert (product.available, product.received) == (10, 10)


class TestProductBuckets:
    def test_reserve_sell_release_and_take_back_only_move_units(self) -> None:
        product = stocked("A", 10)
        product.reserve(4)
        assert (product.available, product.reserved, product.sold) == (6, 4, 0)
        product.sell(3)
        assert (product.available, product.reserved, product.sold) == (6, 1, 3)
        product.release(1)
        assert (product.available, product.reserved, product.sold) == (7, 0, 3)
        product.take_back(3)
        assert (product.available, product.reserved, product.sold) == (10, 0, 0)

    def test_reserving_more_than_is_on_hand_is_refused_and_changes_nothing(self) -> None:
        product = stocked("A", 2)
        with pytest.raises(model.InsufficientStock):
            product.reserve(3)
        assert (product.available, product.reserved) == (2, 0)

    def test_the_last_units_can_be_reserved(self) -> None:
        product = stocked("A", 2)
        product.reserve(2)
        assert (product.available, product.reserved) == (0, 2)

    @pytest.mark.parametrize("move", ["sell", "release", "take_back"])
    def test_moving_more_than_a_bucket_holds_is_refused(self, move: str) -> None:
        product = stocked("A", 5)
        product.reserve(1)
        with pytest.raises(model.InsufficientStock):
            getattr(product, move)(2)

    @pytest.mark.parametrize("move", ["reserve", "sell", "release", "take_back"])
    @pytest.mark.parametrize("quantity", [0, -1])
    def test_quantities_must_be_positive(self, move: str, quantity: int) -> None:
        with pytest.raises(model.InvalidQuantity):
            getattr(stocked("A", 5), move)(quantity)


class TestTotalQuantities:
    def test_lines_of_one_sku_are_summed_and_skus_sorted(self) -> None:
        lines = [("B", 1), ("A", 2), ("B", 3)]
        assert list(model.total_quantities(lines).items()) == [("A", 2), ("B", 4)]

    def test_a_non_positive_quantity_is_refused(self) -> None:
        with pytest.raises(model.InvalidQuantity):
            model.total_quantities([("A", 0)])


class TestReserveOrder:
    def test_every_line_is_reserved_when_all_are_on_hand(self) -> None:
        products = {"A": stocked("A", 5), "B": stocked("B", 1)}
        decision = model.reserve_order(ORDER, {"A": 2, "B": 1}, products)
        assert decision == model.Reserved([Reservation(ORDER, "A", 2), Reservation(ORDER, "B", 1)])
        assert (products["A"].available, products["A"].reserved) == (3, 2)
        assert (products["B"].available, products["B"].reserved) == (0, 1)

    def test_one_short_line_reserves_nothing_and_names_the_short_skus(self) -> None:
        products = {"A": stocked("A", 5), "B": stocked("B", 1), "C": stocked("C", 0)}
        decision = model.reserve_order(ORDER, {"A": 2, "B": 2, "C": 1}, products)
        assert decision == model.Rejected(["B", "C"])
        assert all(p.reserved == 0 for p in products.values())
        assert [p.available for p in products.values()] == [5, 1, 0]

    def test_an_unknown_sku_is_short(self) -> None:
        products = {"A": stocked("A", 5)}
        assert model.reserve_order(ORDER, {"A": 1, "Z": 1}, products) == model.Rejected(["Z"])
        assert products["A"].reserved == 0


class TestSellAndRelease:
    def reserved_order(self) -> tuple[list[Reservation], dict[str, Product]]:
        products = {"A": stocked("A", 5), "B": stocked("B", 5)}
        decision = model.reserve_order(ORDER, {"A": 2, "B": 3}, products)
        assert isinstance(decision, model.Reserved)
        return decision.reservations, products

    def test_selling_turns_held_units_into_sold_ones(self) -> None:
        reservations, products = self.reserved_order()
        assert model.sell_order(reservations, products) == reservations
        assert {r.status for r in reservations} == {ReservationStatus.SOLD}
        assert [(p.available, p.reserved, p.sold) for p in products.values()] == [
            (3, 0, 2),
            (2, 0, 3),
        ]

    def test_selling_twice_changes_nothing_the_second_time(self) -> None:
        reservations, products = self.reserved_order()
        model.sell_order(reservations, products)
        assert model.sell_order(reservations, products) == []
        assert products["A"].sold == 2

    def test_releasing_held_units_puts_them_back_on_hand(self) -> None:
        reservations, products = self.reserved_order()
        assert model.release_order(reservations, products) == reservations
        assert {r.status for r in reservations} == {ReservationStatus.RELEASED}
        assert all((p.available, p.reserved, p.sold) == (5, 0, 0) for p in products.values())

    def test_releasing_a_sold_order_takes_the_units_back(self) -> None:
        reservations, products = self.reserved_order()
        model.sell_order(reservations, products)
        assert model.release_order(reservations, products) == reservations
        assert all((p.available, p.reserved, p.sold) == (5, 0, 0) for p in products.values())

    def test_releasing_twice_or_with_nothing_reserved_changes_nothing(self) -> None:
        reservations, products = self.reserved_order()
        model.release_order(reservations, products)
        assert model.release_order(reservations, products) == []
        assert model.release_order([], products) == []
        assert all(p.available == 5 for p in products.values())

    def test_a_released_order_cannot_be_sold(self) -> None:
        reservations, products = self.reserved_order()
        model.release_order(reservations, products)
        assert model.sell_order(reservations, products) == []
        assert all(p.sold == 0 for p in products.values())

    def test_every_step_conserves_each_products_units(self) -> None:
        reservations, products = self.reserved_order()
        model.sell_order(reservations[:1], products)
        model.release_order(reservations, products)
        assert [total(p) for p in products.values()] == [5, 5]
