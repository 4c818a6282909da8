"""The saga console in a real browser: headless Chromium (Debian's), driven by Playwright.

From the page only: place an order and watch it reach CONFIRMED, lane by lane, with
its trace id; stop inventory and watch a new order wait, charged but not reserved;
restart inventory and watch that order complete. Screenshots of each moment go to
`tests/workshop/artifacts/` (not committed).

`make test` installs Chromium first where it can (`make chromium`: as root, with
apt-get); only where it could not do these tests skip, saying so.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from devstack.invariants import settle
from devstack.stack import SERVICES

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Nothing but the console: no update checks, sync or other calls home.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [
    pytest.mark.e2e,
    # Decided before the stack is started for nothing.
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `make chromium` installs it (apt-get install "
        "chromium chromium-driver, as root) and could not here",
    ),
]
SAGA_STEPS = [
    ("order", "created"),
    ("payment", "charged"),
    ("inventory", "reserved"),
    ("order", "confirmed"),
    ("inventory", "sold"),
]


@asynccontextmanager
async def console_page(url: str) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(url)
            yield page
        finally:
            await browser.close()


async def click_control(page: Page, name: str) -> str:
    """Press a control's button and wait for its entry in the log; return the orders it placed."""
    entries = page.locator(f'#log li[data-control="{name}"]')
    before = await entries.count()
    await page.click(f'button[data-control="{name}"]')
    await expect(entries).to_have_count(before + 1, timeout=90_000)
    await expect(entries.first).to_have_attribute("data-ok", "true")
    return await entries.first.get_attribute("data-order-ids") or ""


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - where to find the artefact (pytest -s, or -rA)


async def test_an_order_placed_from_the_page_is_shown_until_confirmed(workshop, saga_client):
    async with console_page(workshop.console_url) as page:
        await expect(page.locator("#connection")).to_have_text("live")
        for svc in SERVICES:
            service = page.locator(f'[data-service="{svc}"]')
            await expect(service).to_have_attribute("data-state", "ready", timeout=30_000)

        order_id = await click_control(page, "place-order")
        card = page.locator(f'[data-order-id="{order_id}"]')
        await expect(card).to_have_attribute("data-status", "CONFIRMED", timeout=30_000)
        for lane, step in SAGA_STEPS:
            await expect(card.locator(f'[data-lane="{lane}"] [data-step="{step}"]')).to_have_count(
                1
            )
        await expect(card.locator(".trace")).to_have_text(re.compile(r"^trace [0-9a-f]{32}$"))
        await screenshot(page, "console-confirmed")

        # Inventory goes down: a new order is accepted and charged, and waits for its stock.
        await click_control(page, "stop-inventory")
        inventory = page.locator('[data-service="inventory"]')
        await expect(inventory).to_have_attribute("data-state", "down", timeout=10_000)
        waiting_id = await click_control(page, "place-order")
        waiting = page.locator(f'[data-order-id="{waiting_id}"]')
        await expect(waiting.locator('[data-lane="payment"] [data-step="charged"]')).to_have_count(
            1, timeout=30_000
        )
        await expect(waiting.locator('[data-lane="inventory"] .waiting')).to_have_text(
            re.compile(r"^waiting \d+\.\d s$")
        )
        await page.wait_for_timeout(2_000)
        await expect(waiting).to_have_attribute("data-status", "PENDING")
        await screenshot(page, "console-inventory-down")

        # Inventory is back: it reads the order it missed, and the saga completes.
        await click_control(page, "restart-inventory")
        await expect(inventory).to_have_attribute("data-state", "ready", timeout=30_000)
        await expect(waiting).to_have_attribute("data-status", "CONFIRMED", timeout=60_000)
        for lane, step in SAGA_STEPS:
            await expect(
                waiting.locator(f'[data-lane="{lane}"] [data-step="{step}"]')
            ).to_have_count(1)
        await screenshot(page, "console-inventory-restarted")

    report = await settle(saga_client, 60)
    assert not report.violations, report.violations
