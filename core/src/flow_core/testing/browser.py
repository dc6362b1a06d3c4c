"""Tests in a real browser: headless Chromium from Debian's ``chromium`` package, driven by
Playwright for Python, with the network cut off.

Playwright's own browser download is not used (nor reachable everywhere): the fixture finds
the machine's Chromium, installing Debian's package when it is missing and the test runs as
root (``scripts/test`` installs it otherwise). Every page is routed so that a request that
would leave the machine is refused and recorded: a test asserts ``page.left_machine == []``.

Fixtures: ``chromium`` (the launched browser, per test module) and ``offline_page`` (a fresh page).
Playwright is imported only when a fixture is used, so the kit loads without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

#: Where Debian's chromium package puts the browser.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Hosts a page may reach: this machine only.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: Schemes that never touch the network.
LOCAL_SCHEMES = {"file", "data", "blob", "about"}


def find_chromium(install: bool = True) -> str:
    """The path of the machine's Chromium, installing Debian's package first if it is missing."""
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium")
    if found:
        return found
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(command, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True)
            subprocess.run(command, capture_output=True, check=True)
        return find_chromium(install=False)
    raise RuntimeError("Chromium is not installed: apt-get install chromium (scripts/test does it)")


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOCAL_HOSTS


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium under Playwright, launched once per test module: while Playwright's
    sync API is open it keeps an event loop running in this thread, and a later test's
    ``asyncio.run`` (the Runner API's, say) would fail with "cannot be called from a running
    event loop"."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def offline_page(chromium: Any) -> Iterator[Any]:
    """A fresh page in its own context where every request off this machine is refused;
    ``page.left_machine`` lists the URLs that tried, ``page.console_errors`` what the page logged."""
    context = chromium.new_context(service_workers="block")
    page = context.new_page()
    left: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            left.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", guard)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.left_machine = left
    page.console_errors = errors
    try:
        yield page
    finally:
        context.close()
