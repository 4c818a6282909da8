"""ANTI-PATTERN, for comparison only: the order flow as a synchronous distributed monolith.

Never imported by the real services (`services/`) nor on their code path; `make compare`
starts it next to them to show what the saga replaces. Three FastAPI apps, each a
process of its own with its own PostgreSQL database, as the real ones are, but wired
the way many systems start out:

- `order` takes `POST /orders`, prices it from its own copy of the prices (as the real
  order service does from its catalog replica), writes the order PENDING, then calls
  **payment** (`POST /charges`) and then **inventory** (`POST /reservations`) over
  HTTP, synchronously, while the client waits;
- any error or timeout (`CALL_TIMEOUT`) of a call fails the order at once: no retry, and
  no compensation, so a charge taken before inventory refused the order is kept;
- nothing is idempotent: a call that is retried (by anyone) charges again.

Run one app: `python -m compare.monolith order --port 9001 --database-url URL
--payment-url http://127.0.0.1:9003 --inventory-url http://127.0.0.1:9002`.
"""

import argparse
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

CALL_TIMEOUT = 2.0
"""Seconds the order app waits for payment or inventory before failing the order."""

_SCHEMAS = {
    # No migrations: a throwaway comparison, its tables made when an app starts.
    "order": """
        CREATE TABLE IF NOT EXISTS prices (sku text PRIMARY KEY, unit_price_cents bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS orders (
            order_id uuid PRIMARY KEY, customer_id text NOT NULL, total_cents bigint NOT NULL,
            status text NOT NULL, reason text)""",
    "payment": """
        CREATE TABLE IF NOT EXISTS accounts (customer_id text PRIMARY KEY, balance_cents bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS charges (
            charge_id bigserial PRIMARY KEY, order_id uuid NOT NULL, customer_id text NOT NULL,
            amount_cents bigint NOT NULL)""",
    "inventory": """
        CREATE TABLE IF NOT EXISTS products (sku text PRIMARY KEY, stock bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS reservations (
            reservation_id bigserial PRIMARY KEY, order_id uuid NOT NULL, sku text NOT NULL,
            quantity bigint NOT NULL)""",
}


class Line(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class OrderIn(BaseModel):
    customer_id: str
    items: list[Line] = Field(min_length=1)


class Charge(BaseModel):
    order_id: uuid.UUID
    customer_id: str
    amount_cents: int = Field(ge=0)


class Reservation(BaseModel):
    order_id: uuid.UUID
    items: list[Line] = Field(min_length=1)


def _app(
    service: str, database_url: str, routes: Callable[[FastAPI, AsyncEngine], None]
) -> FastAPI:
    """An app whose lifespan owns its database engine and makes its tables."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with app.state.engine.begin() as conn:
            for statement in _SCHEMAS[service].split(";"):
                await conn.execute(text(statement))
        async with app.state.calls:
            yield
        await app.state.engine.dispose()

    app = FastAPI(
        title=f"monolith {service} (ANTI-PATTERN, for comparison only)", lifespan=lifespan
    )
    app.state.engine = create_async_engine(database_url, pool_size=20)
    app.state.calls = httpx.AsyncClient(timeout=CALL_TIMEOUT)
    app.get("/health")(lambda: {"status": "ok"})
    routes(app, app.state.engine)
    return app


async def _write(engine: AsyncEngine, sql: str, **params: Any) -> None:
    """One statement in a transaction of its own."""
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def _take(
    conn: AsyncConnection, sql: str, params: dict[str, Any], refusal: HTTPException
) -> None:
    """A guarded UPDATE (`... WHERE what_is_left >= what_is_asked`); `refusal` if it took nothing."""
    if (await conn.execute(text(sql), params)).rowcount == 0:
        raise refusal


# -- payment ------------------------------------------------------------------------------


def payment_routes(app: FastAPI, engine: AsyncEngine) -> None:
    @app.put("/accounts/{customer_id}")
    async def put_account(customer_id: str, balance_cents: int) -> dict[str, Any]:
        sql = "INSERT INTO accounts VALUES (:c, :b) ON CONFLICT (customer_id) DO UPDATE SET balance_cents = :b"
        await _write(engine, sql, c=customer_id, b=balance_cents)
        return {"customer_id": customer_id, "balance_cents": balance_cents}

    @app.post("/charges", status_code=201)
    async def charge(body: Charge) -> dict[str, Any]:
        async with engine.begin() as conn:
            take = "UPDATE accounts SET balance_cents = balance_cents - :a WHERE customer_id = :c AND balance_cents >= :a"
            params = {"a": body.amount_cents, "c": body.customer_id}
            await _take(conn, take, params, HTTPException(402, "insufficient funds"))
            await conn.execute(
                text(
                    "INSERT INTO charges (order_id, customer_id, amount_cents) VALUES (:o, :c, :a)"
                ),
                {"o": body.order_id, "c": body.customer_id, "a": body.amount_cents},
            )
        return {"order_id": str(body.order_id), "charged_cents": body.amount_cents}

    @app.get("/charges")
    async def charges() -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT order_id, amount_cents FROM charges"))
        return [{"order_id": str(r.order_id), "amount_cents": r.amount_cents} for r in rows]


# -- inventory ----------------------------------------------------------------------------


def inventory_routes(app: FastAPI, engine: AsyncEngine) -> None:
    @app.put("/products/{sku}")
    async def put_product(sku: str, stock: int) -> dict[str, Any]:
        sql = "INSERT INTO products VALUES (:s, :n) ON CONFLICT (sku) DO UPDATE SET stock = :n"
        await _write(engine, sql, s=sku, n=stock)
        return {"sku": sku, "stock": stock}

    @app.post("/reservations", status_code=201)
    async def reserve(body: Reservation) -> dict[str, Any]:
        # All lines or none: one transaction, rolled back by the exception.
        async with engine.begin() as conn:
            for line in body.items:
                take = "UPDATE products SET stock = stock - :q WHERE sku = :s AND stock >= :q"
                refusal = HTTPException(409, f"out of stock: {line.sku}")
                await _take(conn, take, {"q": line.quantity, "s": line.sku}, refusal)
                await conn.execute(
                    text("INSERT INTO reservations (order_id, sku, quantity) VALUES (:o, :s, :q)"),
                    {"o": body.order_id, "s": line.sku, "q": line.quantity},
                )
        return {"order_id": str(body.order_id)}

    @app.get("/reservations")
    async def reservations() -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT DISTINCT order_id FROM reservations"))
        return [{"order_id": str(r.order_id)} for r in rows]


# -- order --------------------------------------------------------------------------------


def order_routes(payment_url: str, inventory_url: str) -> Callable[[FastAPI, AsyncEngine], None]:
    def routes(app: FastAPI, engine: AsyncEngine) -> None:
        calls: httpx.AsyncClient = app.state.calls

        async def set_status(order_id: uuid.UUID, status: str, reason: str | None) -> None:
            sql = "UPDATE orders SET status = :s, reason = :r WHERE order_id = :o"
            await _write(engine, sql, s=status, r=reason, o=order_id)

        @app.put("/prices/{sku}")
        async def put_price(sku: str, unit_price_cents: int) -> dict[str, Any]:
            sql = "INSERT INTO prices VALUES (:s, :p) ON CONFLICT (sku) DO UPDATE SET unit_price_cents = :p"
            await _write(engine, sql, s=sku, p=unit_price_cents)
            return {"sku": sku, "unit_price_cents": unit_price_cents}

        @app.post("/orders", status_code=201)
        async def place_order(body: OrderIn) -> JSONResponse:
            order_id = uuid.uuid4()
            async with engine.begin() as conn:
                rows = await conn.execute(
                    text("SELECT sku, unit_price_cents FROM prices WHERE sku = ANY(:s)"),
                    {"s": [line.sku for line in body.items]},
                )
                prices = {r.sku: r.unit_price_cents for r in rows}
                if unknown := {line.sku for line in body.items} - prices.keys():
                    raise HTTPException(422, f"unknown SKUs: {sorted(unknown)}")
                total = sum(prices[line.sku] * line.quantity for line in body.items)
                await conn.execute(
                    text("INSERT INTO orders VALUES (:o, :c, :t, 'PENDING', NULL)"),
                    {"o": order_id, "c": body.customer_id, "t": total},
                )
            charge = {"order_id": str(order_id), "customer_id": body.customer_id}
            items = [line.model_dump() for line in body.items]
            try:
                # THE ANTI-PATTERN: two remote calls in a row while the client waits. A
                # failure of the second leaves the first done: the charge is not refunded.
                paid = await calls.post(
                    f"{payment_url}/charges", json={**charge, "amount_cents": total}
                )
                paid.raise_for_status()
                reserved = await calls.post(
                    f"{inventory_url}/reservations",
                    json={"order_id": str(order_id), "items": items},
                )
                reserved.raise_for_status()
            except httpx.HTTPError as exc:
                reason = _reason(exc)
                await set_status(order_id, "FAILED", reason)
                answer = {"order_id": str(order_id), "status": "FAILED", "reason": reason}
                return JSONResponse(answer, status_code=502)
            await set_status(order_id, "CONFIRMED", None)
            return JSONResponse({"order_id": str(order_id), "status": "CONFIRMED"}, status_code=201)

        @app.get("/orders")
        async def orders() -> list[dict[str, Any]]:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT order_id, customer_id, status, reason FROM orders")
                )
            return [{**r._asdict(), "order_id": str(r.order_id)} for r in rows]

    return routes


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{exc.request.url.path} answered {exc.response.status_code}"
    return f"{exc.request.url.path}: {type(exc).__name__}"


def create_app(
    service: str, database_url: str, payment_url: str = "", inventory_url: str = ""
) -> FastAPI:
    """The app of one monolith service (`order`, `payment` or `inventory`)."""
    routes = {
        "order": order_routes(payment_url, inventory_url),
        "payment": payment_routes,
        "inventory": inventory_routes,
    }[service]
    return _app(service, database_url, routes)


def main(argv: list[str] | None = None) -> None:
    """Serve one monolith app until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=["order", "payment", "inventory"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--payment-url", default="")
    parser.add_argument("--inventory-url", default="")
    args = parser.parse_args(argv)
    app = create_app(args.service, args.database_url, args.payment_url, args.inventory_url)
    # The same server settings as the real services (chassis.app.serve), written out:
    # the anti-pattern stays free of the services' chassis.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=75,  # chassis.app.KEEP_ALIVE_SECONDS
    )


if __name__ == "__main__":
    main()
