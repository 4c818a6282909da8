"""A small HTTP client for the three services' public APIs, used by the demo and the tests."""

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

TERMINAL = frozenset({"CONFIRMED", "CANCELLED"})

Json = dict[str, Any]


class SagaClient:
    """Talks to order, inventory and payment over HTTP only, like any outside client."""

    def __init__(self, urls: Mapping[str, str], timeout: float = 10.0) -> None:
        self._http = {
            svc: httpx.AsyncClient(base_url=url, timeout=timeout) for svc, url in urls.items()
        }

    async def __aenter__(self) -> "SagaClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.gather(*(client.aclose() for client in self._http.values()))

    async def request(self, svc: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request to a service (`order`, `inventory` or `payment`); the raw response."""
        return await self._http[svc].request(method, path, **kwargs)

    async def _json(self, svc: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(svc, method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    # -- inventory ------------------------------------------------------------------

    async def put_product(self, sku: str, name: str, unit_price_cents: int, stock: int) -> Json:
        """Create or replace a product and wait until the order service's replica has it."""
        body = {"name": name, "unit_price_cents": unit_price_cents, "stock": stock}
        product: Json = await self._json("inventory", "PUT", f"/v1/products/{sku}", json=body)
        await self.wait_for(lambda: self._replicated(sku, unit_price_cents, name))
        return product

    async def _replicated(self, sku: str, unit_price_cents: int, name: str) -> bool:
        response = await self.request("order", "GET", f"/v1/catalog/{sku}")
        if response.status_code != 200:
            return False
        replica = response.json()
        return bool(replica["unit_price_cents"] == unit_price_cents and replica["name"] == name)

    async def _pages(self, svc: str, path: str, key: str, **params: str) -> list[Json]:
        """Every item of a paginated listing (`{key: [...], "next": cursor | null}`)."""
        items: list[Json] = []
        query: dict[str, str] = {"limit": "1000", **params}
        while True:
            page = await self._json(svc, "GET", path, params=query)
            items += page[key]
            if page["next"] is None:
                return items
            query["after"] = page["next"]

    async def products(self) -> list[Json]:
        """Every product with its stock buckets and `received` (units ever put in)."""
        return await self._pages("inventory", "/v1/products", "products")

    async def product(self, sku: str) -> Json:
        """Inventory's view of a product: available, reserved, sold."""
        product: Json = await self._json("inventory", "GET", f"/v1/products/{sku}")
        return product

    # -- payment ----------------------------------------------------------------------

    async def put_account(self, customer_id: str, balance_cents: int) -> Json:
        body = {"balance_cents": balance_cents}
        account: Json = await self._json("payment", "PUT", f"/v1/accounts/{customer_id}", json=body)
        return account

    async def accounts(self) -> list[Json]:
        """Every account with `deposited_cents`, `charged_cents` and `refunded_cents`."""
        return await self._pages("payment", "/v1/accounts", "accounts")

    async def account(self, customer_id: str) -> Json:
        account: Json = await self._json("payment", "GET", f"/v1/accounts/{customer_id}")
        return account

    async def payments(self, order_id: str) -> list[Json]:
        payments: list[Json] = await self._json(
            "payment", "GET", "/v1/payments", params={"order_id": order_id}
        )
        return payments

    # -- order ------------------------------------------------------------------------

    async def place_order(
        self, customer_id: str, items: list[tuple[str, int]], idempotency_key: str | None = None
    ) -> httpx.Response:
        """POST /v1/orders; returns the raw response so callers can check refusals."""
        body = {
            "customer_id": customer_id,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self.request("order", "POST", "/v1/orders", json=body, headers=headers)

    async def orders(self, **filters: str) -> list[Json]:
        """Every order (without history), in creation order; filters: status, customer_id."""
        return await self._pages("order", "/v1/orders", "orders", **filters)

    async def order(self, order_id: str) -> Json:
        order: Json = await self._json("order", "GET", f"/v1/orders/{order_id}")
        return order

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.request("order", "POST", f"/v1/orders/{order_id}/cancel")

    async def wait_terminal(self, order_id: str, timeout: float = 60.0) -> Json:
        """Poll the order until it is CONFIRMED or CANCELLED; return it."""
        result: Json = {}

        async def terminal() -> bool:
            nonlocal result
            result = await self.order(order_id)
            return result["status"] in TERMINAL

        await self.wait_for(terminal, timeout)
        return result

    @staticmethod
    async def wait_for(check: Any, timeout: float = 60.0, interval: float = 0.01) -> None:
        """Await `check()` until it returns true; raise TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(interval)
