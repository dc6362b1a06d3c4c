"""A real browser for tests: Debian's headless chromium driven by Playwright, kept offline.

Playwright's own browser download cannot be reached here, so it drives ``/usr/bin/chromium``
(``apt-get install chromium``). Every request to anything but 127.0.0.1 is refused and
recorded, so a test can assert that a page fetched nothing from the network. Import the
fixtures into a conftest: ``from flow_ui.testing import browser, browser_page  # noqa: F401``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("FLOW_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1"}


class OfflinePage:
    """A Playwright page whose requests off 127.0.0.1 are aborted and listed in ``blocked``;
    ``requests`` lists every URL the page asked for."""

    def __init__(self, page: Any):
        self.page = page
        self.blocked: list[str] = []
        self.requests: list[str] = []
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith("data:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium for a test module (skips the test when chromium or Playwright is
    missing). Per module, because Playwright's sync API keeps an event loop running in this
    thread while it is open, which other tests' ``asyncio.run`` would trip over."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def browser_page(browser: Any) -> Iterator[OfflinePage]:
    """A fresh page (its own context) that may reach only 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = OfflinePage(context.new_page())
    yield page
    context.close()
