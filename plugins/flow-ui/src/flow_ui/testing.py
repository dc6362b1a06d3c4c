"""A page of the UI in a real browser, kept offline: flow-core's kit launches Debian's headless
Chromium (``flow_core.testing.chromium``); this page also records every URL it asked for, so
a test can assert that a page made one request, and that nothing left 127.0.0.1. Import the
fixture into a conftest: ``from flow_ui.testing import browser_page  # noqa: F401``.
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

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


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[OfflinePage]:
    """A fresh page (its own context) that may reach only 127.0.0.1, in flow-core's kit's
    ``chromium`` (Debian's, under Playwright)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = OfflinePage(context.new_page())
    yield page
    context.close()
